"""Float Keras policy -> QKeras chain -> golden integer model, bit for bit.

The QKeras model keeps the float model's layer names (``conv1``.., ``fc1``.., ``out``) and is a
plain chain: ``QConv2D``/``QDense`` with ``quantized_bits(bits, integer, alpha=1)`` weights and
biases, ``QActivation(quantized_relu(bits, integer))`` after each hidden layer (named
``<layer>_relu``) and ``QActivation(quantized_bits(output_bits, integer, alpha=1))`` after the
last one (``out_quant``), ``Flatten`` where the float model has one. Its input is fed on the
input grid (``x_int * 2^-frac``); it has no input quantizer.

Formats (golden :class:`Fmt` terms, ``integer`` includes the sign bit):

* QKeras ``quantized_bits(b, i)`` (signed) is ``Fmt(b, i + 1, True)``;
  ``quantized_relu(b, i)`` is ``Fmt(b, i, False)``. QKeras 0.9 needs ``i >= 0``.
* Because ``i >= 0``, small weights would waste bits (Atari fc1 weights are ~0.04). ReLU is
  positively homogeneous, so every hidden layer ``k`` is rescaled by a power of two ``c_k``
  (``W_k <- W_k c_k / c_{k-1}``, ``b_k <- b_k c_k``, ``c_0 = c_L = 1``) chosen so that the
  largest weight lies in [0.5, 1) and the largest calibrated activation in [1, 2) or above.
  The float function is unchanged exactly (powers of two); the scales are kept in the golden
  model's ``meta["act_scale"]`` so thresholds given in float units convert correctly.
* Weights are stored *on the grid* (:func:`snap_to_grid`): QKeras' quantizer is then the
  identity on them, so its float32 straight-through arithmetic ``x + (xq - x)`` is exact.

Why golden == QKeras exactly (proof, not hope): inputs, weights and biases are dyadic numbers
``int * 2^-f``; every product and partial sum of a layer is an integer multiple of
``2^-acc_frac`` whose magnitude is at most ``S = sum_i |w_i||x_i| + |b|`` LSBs, in any
summation order, blocking or FMA use. float32 holds every integer multiple of ``2^-acc_frac``
below ``2^24`` of them exactly, so when ``S < 2^24`` the float32 accumulator equals the exact
integer accumulator. The quantizers then multiply by powers of two (exact), ``tf.round``
(half to even, like :func:`golden.round_shift`), clip (= saturation) and ``x + (xq - x)``
with ``|x - xq|`` a small multiple of the accumulator LSB (exact). :func:`float32_bounds`
computes ``S`` per layer statically (worst case over the input format) or for given states.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from rl2fpga.config import QuantizeConfig
from rl2fpga.core.fixedpoint import Fmt, quantize_float
from rl2fpga.core.golden import GoldenModel
from rl2fpga.core.layers import Conv2D, Dense, Layer
from rl2fpga.errors import Rl2fpgaError

FLOAT32_EXACT = 1 << 24  # float32 significand: integers below this are exact
INPUT_HEADROOM = 2.0  # float observations: range covered = this x the largest sample

# ----------------------------------------------------------------------------- formats


def qkeras_signed(fmt: Fmt) -> tuple[int, int]:
    """(bits, integer) of ``quantized_bits`` for a signed Fmt (QKeras' integer excludes the sign)."""
    return fmt.bits, fmt.integer - 1


def signed_fmt_for(max_abs: float, bits: int, min_int: int = 1) -> Fmt:
    """Smallest-integer signed format whose range holds ``max_abs`` (``integer >= min_int``)."""
    integer = min_int
    while integer < bits + 24 and max_abs > (2.0 ** (integer - 1)):
        integer += 1
    return Fmt(bits, integer, True)


def unsigned_fmt_for(max_val: float, bits: int) -> Fmt:
    """Unsigned format (integer >= 0) whose range ``[0, 2^integer)`` holds ``max_val``."""
    integer = 0
    while integer < bits + 24 and max_val >= 2.0**integer:
        integer += 1
    return Fmt(bits, integer, False)


def input_format(spec_or_samples: Any, bits: int = 8) -> Fmt:
    """The input grid: uint8 pixels -> ``Fmt(8, 0, unsigned)`` (p * 2^-8); float observations ->
    the signed ``bits``-bit format covering ``INPUT_HEADROOM`` times the largest magnitude in
    the samples (a quantized agent may visit states the float one did not; one spare bit keeps
    them off saturation). An EnvSpec alone says nothing about float ranges: pass samples."""
    if isinstance(spec_or_samples, np.ndarray):
        x = spec_or_samples
        if x.dtype == np.uint8:
            return Fmt(8, 0, False)
        if x.size == 0 or not np.isfinite(x).all():
            raise Rl2fpgaError("observation samples are empty or not finite; record real episodes before choosing the input format")
        return signed_fmt_for(INPUT_HEADROOM * float(np.abs(x).max()), bits)
    dtype = getattr(spec_or_samples, "obs_dtype", None)
    if dtype == "uint8" or getattr(spec_or_samples, "is_atari", False):
        return Fmt(8, 0, False)
    raise Rl2fpgaError("a float observation space needs observation samples to choose the input format; pass an array of observations")


def to_grid(obs: np.ndarray, fmt: Fmt, standardize: Any = None) -> np.ndarray:
    """Observations onto ``fmt``'s grid as integers (uint8 pixels p -> p); with an
    :class:`~rl2fpga.core.golden.InputStandardize` (a batch ``(n, d)`` or one observation),
    the golden model's standardised grid."""
    obs = np.asarray(obs)
    if obs.dtype == np.uint8 and fmt == Fmt(8, 0, False):
        return obs.astype(np.int64)
    if standardize is not None:
        d = len(standardize.shift)
        q = np.stack([standardize.grid(o, fmt.frac) for o in obs.reshape(-1, d)]).reshape(obs.shape)
        return np.clip(q, fmt.qmin, fmt.qmax).astype(np.int64)
    return quantize_float(obs, fmt)


def grid_float(x_int: np.ndarray, fmt: Fmt) -> np.ndarray:
    """Integers on ``fmt``'s grid -> the float32 values the QKeras model takes (exact)."""
    return (np.asarray(x_int, dtype=np.float64) * fmt.lsb).astype(np.float32)


def quantize_exact(w: np.ndarray, fmt: Fmt) -> np.ndarray:
    """Round half to even and saturate onto ``fmt``, as integers (float64, exact for our sizes)."""
    q = np.round(np.asarray(w, dtype=np.float64) * 2.0**fmt.frac)
    return np.clip(q, fmt.qmin, fmt.qmax).astype(np.int64)


# ----------------------------------------------------------------------------- float model walk


def _activation_name(layer: tf.keras.layers.Layer) -> str:
    act = layer.get_config().get("activation", "linear")
    if isinstance(act, dict):
        act = act.get("config", {}).get("name", act.get("class_name", "linear"))
    return str(act)


def _chain(model: tf.keras.Model) -> list[tf.keras.layers.Layer]:
    """The float model's layers as a chain (InputLayer dropped); only Dense, Conv2D, Flatten,
    ReLU/linear activations are accepted."""
    out = []
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.InputLayer):
            continue
        if isinstance(layer, tf.keras.layers.Dense | tf.keras.layers.Conv2D):
            if isinstance(layer, tf.keras.layers.Conv2D) and layer.padding != "valid":
                raise Rl2fpgaError(f"layer {layer.name}: padding '{layer.padding}' unsupported; use padding='valid'")
            if _activation_name(layer) not in ("relu", "linear"):
                raise Rl2fpgaError(f"layer {layer.name}: activation '{_activation_name(layer)}' unsupported; use relu or linear")
            if not layer.use_bias:
                raise Rl2fpgaError(f"layer {layer.name}: layers without bias are unsupported; build it with use_bias=True")
        elif not isinstance(layer, tf.keras.layers.Flatten):
            raise Rl2fpgaError(f"layer {layer.name} ({type(layer).__name__}) unsupported; policies may use Dense, Conv2D (valid) and Flatten only")
        out.append(layer)
    return out


def _weight_layers(chain: list[tf.keras.layers.Layer]) -> list[tf.keras.layers.Layer]:
    return [la for la in chain if not isinstance(la, tf.keras.layers.Flatten)]


def float_activations(model: tf.keras.Model, x: np.ndarray) -> list[np.ndarray]:
    """Outputs of every weight layer (after its activation) on the batch ``x``."""
    wl = _weight_layers(_chain(model))
    probe = tf.keras.Model(model.inputs, [la.output for la in wl])
    outs = probe(np.asarray(x, dtype=np.float32), training=False)
    return [np.asarray(o) for o in (outs if isinstance(outs, list | tuple) else [outs])]


def _lost_bits(log2_max: float, top: int) -> int:
    """Bits a format with integer >= ``top`` wastes on values whose maximum is 2^log2_max."""
    return max(0, top - 1 - math.floor(log2_max)) if math.isfinite(log2_max) else 0


def rescale_powers(model: tf.keras.Model, samples: np.ndarray | None, span: int = 24) -> list[float]:
    """Power-of-two scales ``c_k = 2^e_k`` of each weight layer's output (``c_L = 1``).

    QKeras needs ``integer >= 0``: weights use ``[-1, 1)`` or wider, ReLU outputs ``[0, 1)`` or
    wider. A layer whose largest weight is below 0.5, or whose largest activation is below 1,
    wastes bits. The scales telescope (``W_k`` gains ``e_k - e_{k-1}``), so a dynamic program
    over the chain picks the ``e_k`` minimising the sum of squared wasted bits per layer (an
    unavoidable loss -- a network whose overall gain is tiny -- is spread instead of wiping
    out one layer; ties: smallest ``|e|``)."""
    wl = _weight_layers(_chain(model))
    acts = float_activations(model, samples) if samples is not None else None
    lw = [math.log2(r) if (r := float(np.abs(la.get_weights()[0]).max())) > 0 else -math.inf for la in wl]
    la_ = [math.log2(m) if acts is not None and (m := float(acts[k].max())) > 0 else math.inf for k in range(len(wl))]
    choices = list(range(-span, span + 1))
    n_hidden = len(wl) - 1
    # best[e] = (cost, |e| sum, path) for layers 0..k with e_k = e
    best: dict[int, tuple[int, int, list[int]]] = {0: (0, 0, [])}
    for k in range(n_hidden + 1):
        nxt: dict[int, tuple[int, int, list[int]]] = {}
        for e in ([0] if k == n_hidden else choices):
            for e_prev, (cost, mag, path) in best.items():
                c = cost + _lost_bits(lw[k] + e - e_prev, 0) ** 2  # weights: integer >= 1 incl. sign
                if k < n_hidden:
                    c += _lost_bits(la_[k] + e, 0) ** 2  # relu: integer >= 0 -> [0, 1)
                cand = (c, mag + abs(e), [*path, e])
                if e not in nxt or cand[:2] < nxt[e][:2]:
                    nxt[e] = cand
        best = nxt
    return [2.0**e for e in best[0][2]]


# ----------------------------------------------------------------------------- QKeras model


def _qlayers():
    from qkeras import QActivation, QConv2D, QDense, quantized_bits, quantized_relu

    return QActivation, QConv2D, QDense, quantized_bits, quantized_relu


@dataclass(frozen=True)
class _QKerasKind:
    """How a golden layer class meets Keras: the float Keras class it comes
    from, the QKeras layer it becomes, and the golden layer's input shape and stride."""

    keras: type
    build: Callable[[Any, dict[str, Any]], Any]  # (float Keras layer, quantizer kwargs) -> QKeras layer
    in_shape: Callable[[tuple[int, ...]], tuple[int, ...]]  # producer's shape -> golden in_shape
    stride: Callable[[Any], tuple[int, int]]


def _qconv(layer: Any, kw: dict[str, Any]) -> Any:
    return _qlayers()[1](layer.filters, layer.kernel_size, strides=layer.strides, padding="valid", **kw)


def _qdense(layer: Any, kw: dict[str, Any]) -> Any:
    return _qlayers()[2](layer.units, **kw)


# Keras/QKeras layers <-> golden layer classes: the QKeras back end lowers by this one table and
# the float DeltaNetwork (quantize/delta.py) reads Keras layers through it
KERAS_KINDS: dict[type[Layer], _QKerasKind] = {
    Conv2D: _QKerasKind(tf.keras.layers.Conv2D, _qconv, lambda shape: shape, lambda la: tuple(la.strides)),
    Dense: _QKerasKind(tf.keras.layers.Dense, _qdense, lambda shape: (int(np.prod(shape)),), lambda la: (1, 1)),
}


def golden_class_of(layer: Any) -> type[Layer]:
    """The golden layer class a (Q)Keras weight layer lowers to (QConv2D/QDense subclass the
    Keras classes)."""
    for cls, k in KERAS_KINDS.items():
        if isinstance(layer, k.keras):
            return cls
    raise Rl2fpgaError(f"layer {layer.name} ({type(layer).__name__}) unsupported; use Dense or Conv2D weight layers")


def _calibration_samples(model: tf.keras.Model, input_fmt: Fmt, samples: np.ndarray | None) -> np.ndarray:
    if samples is None:
        rng = np.random.default_rng(0)
        shape = (256, *model.input_shape[1:])
        samples = grid_float(rng.integers(input_fmt.qmin, input_fmt.qmax + 1, size=shape), input_fmt)
    return np.asarray(samples, dtype=np.float32)


def _masked_float_weights(wl: list[tf.keras.layers.Layer], masks: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The float weights with the pruning masks applied (pruned weights are zero before anything
    else happens)."""
    for name in masks:
        if name not in {la.name for la in wl}:
            raise Rl2fpgaError(f"mask for unknown layer '{name}'; masks must be keyed by the model's layer names")
    float_w: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for layer in wl:
        w, b = layer.get_weights()
        if layer.name in masks:
            m = np.asarray(masks[layer.name])
            if m.shape != w.shape:
                raise Rl2fpgaError(f"mask of layer {layer.name} has shape {m.shape}, weights {w.shape}; use the masks saved with this model")
            w = w * m
        float_w[layer.name] = (w, b)
    return float_w


MAX_CHANNEL_SPREAD = 8  # a channel's step is at most 2^8 finer than its layer's coarsest


def channel_fracs(w: np.ndarray, bits: int) -> np.ndarray:
    """Per-output-channel power-of-two scales: the fractional bits of the smallest-integer
    ``bits``-bit signed format holding each channel's largest weight, at most
    :data:`MAX_CHANNEL_SPREAD` bits finer than the layer's step (an all-zero channel gets the
    layer's)."""
    layer_fmt = signed_fmt_for(float(np.abs(w).max()), bits)
    peak = np.abs(w).reshape(-1, w.shape[-1]).max(axis=0)
    low = layer_fmt.integer - MAX_CHANNEL_SPREAD
    return np.array([signed_fmt_for(float(m), bits, min_int=low).frac if m > 0 else layer_fmt.frac for m in peak],
                    dtype=np.int64)


def _weight_formats(w: np.ndarray, b: np.ndarray, in_fmt: Fmt, qcfg: QuantizeConfig,
                    bits: int) -> tuple[Fmt, Fmt, np.ndarray | None]:
    """(weight, bias) formats of the rescaled float weights and, with ``quantize.per_channel``,
    the weight fractional bits per output channel (``w_fmt`` is then the finest channel's). The
    bias LSB is a whole number of every channel's accumulator LSBs."""
    w_frac = channel_fracs(w, bits) if qcfg.per_channel else None
    w_fmt = signed_fmt_for(float(np.abs(w).max()), bits) if w_frac is None else Fmt(bits, bits - int(w_frac.max()), True)
    acc_frac = in_fmt.frac + (w_fmt.frac if w_frac is None else int(w_frac.min()))
    b_fmt = signed_fmt_for(float(np.abs(b).max()), qcfg.bias_bits)
    if b_fmt.frac > acc_frac:
        b_fmt = Fmt(qcfg.bias_bits, qcfg.bias_bits - acc_frac, True)
    return w_fmt, b_fmt, w_frac


def _layer_bits(qcfg: QuantizeConfig, n_layers: int) -> list[int]:
    """Weight bits of every weight layer (``quantize.layer_weight_bits`` or ``weight_bits``)."""
    if not qcfg.layer_weight_bits:
        return [qcfg.weight_bits] * n_layers
    if len(qcfg.layer_weight_bits) != n_layers:
        raise Rl2fpgaError(
            f"quantize.layer_weight_bits has {len(qcfg.layer_weight_bits)} entries for {n_layers} weight layers; give one per layer or leave it empty"
        )
    return [int(b) for b in qcfg.layer_weight_bits]


def kernel_base(w_fmt: Fmt, w_frac: np.ndarray | None) -> Fmt:
    """The grid of the kernel variable: ``w_fmt`` per layer; per channel ``Fmt(bits, 1)``
    (QKeras ``quantized_bits(bits, 0)``: QKeras refuses a negative integer part)."""
    return w_fmt if w_frac is None else Fmt(w_fmt.bits, 1, True)


def kernel_quantizer(w_fmt: Fmt, w_frac: np.ndarray | None) -> Any:
    """``quantized_bits`` of a kernel: per layer ``alpha=1``; per channel the explicit
    power-of-two scales ``alpha_j = 2^(base.frac - w_frac[j])`` on :func:`kernel_base`'s grid,
    so channel j's quantized weights are ``w_int * 2^-w_frac[j]`` exactly."""
    quantized_bits = _qlayers()[3]
    base = kernel_base(w_fmt, w_frac)
    wb, wi = qkeras_signed(base)
    if w_frac is None:
        return quantized_bits(wb, wi, alpha=1)
    return quantized_bits(wb, wi, alpha=[float(2.0 ** (base.frac - int(f))) for f in w_frac])


def quantize_channels(w: np.ndarray, w_fmt: Fmt, w_frac: np.ndarray | None) -> np.ndarray:
    """Integer weights: per layer on ``w_fmt``, per channel on channel j's own grid."""
    if w_frac is None:
        return quantize_exact(w, w_fmt)
    q = np.round(np.asarray(w, dtype=np.float64) * 2.0 ** w_frac.astype(np.float64))
    return np.clip(q, w_fmt.qmin, w_fmt.qmax).astype(np.int64)


def _output_activation(layer: tf.keras.layers.Layer, a: np.ndarray, acc_frac: int, qcfg: QuantizeConfig,
                       last: bool) -> tuple[Fmt, str, Any]:
    """(output format, activation, the QActivation layer) from the calibrated (rescaled) float
    activations ``a``: the last layer is linear into a signed format, the others ReLU into an
    unsigned one."""
    QActivation, _, _, quantized_bits, quantized_relu = _qlayers()
    if last:
        if _activation_name(layer) != "linear":
            raise Rl2fpgaError(f"last layer {layer.name} must be linear; build the policy with a linear output layer")
        o_fmt = signed_fmt_for(2.0 * float(np.abs(a).max()), qcfg.output_bits)
        if o_fmt.frac > acc_frac:
            o_fmt = Fmt(qcfg.output_bits, qcfg.output_bits - acc_frac, True)
        ob, oi = qkeras_signed(o_fmt)
        return o_fmt, "linear", QActivation(quantized_bits(ob, oi, alpha=1), name="out_quant")
    if _activation_name(layer) != "relu":
        raise Rl2fpgaError(f"hidden layer {layer.name} must use relu; only the last layer may be linear")
    o_fmt = unsigned_fmt_for(float(a.max()), qcfg.act_bits)
    if o_fmt.frac > acc_frac:
        o_fmt = Fmt(qcfg.act_bits, qcfg.act_bits - acc_frac, False)
    return o_fmt, "relu", QActivation(quantized_relu(o_fmt.bits, o_fmt.integer), name=f"{layer.name}_relu")


def quantize_model(
    model: tf.keras.Model,
    qcfg: QuantizeConfig,
    masks: dict[str, np.ndarray] | None,
    input_fmt: Fmt,
    samples: np.ndarray | None = None,
) -> tf.keras.Model:
    """The QKeras chain of ``model`` (same layer names), weights rescaled (powers of two),
    masked and snapped to their grids.

    ``samples``: a batch of float network inputs (on the grid) used to calibrate activation
    and output ranges; without it, uniform random inputs over ``input_fmt`` are used.
    The scales ``c_k`` and formats are attached as ``qmodel.rl2fpga_meta`` (saved by
    :func:`save_qmodel`).
    """
    quantized_bits = _qlayers()[3]
    chain = _chain(model)
    wl = _weight_layers(chain)
    layer_bits = _layer_bits(qcfg, len(wl))
    masks = dict(masks or {})
    float_w = _masked_float_weights(wl, masks)
    samples = _calibration_samples(model, input_fmt, samples)

    masked = tf.keras.models.clone_model(model)
    masked.set_weights([a for la in wl for a in float_w[la.name]])
    scales = rescale_powers(masked, samples)
    acts = float_activations(masked, samples)

    inp = tf.keras.Input(shape=model.input_shape[1:], name="obs")
    x = inp
    prev_scale = 1.0
    in_fmt = input_fmt
    formats: dict[str, dict[str, Any]] = {}
    weights: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    k = 0
    for layer in chain:
        if isinstance(layer, tf.keras.layers.Flatten):
            x = tf.keras.layers.Flatten(name=layer.name)(x)
            continue
        c = scales[k]
        w, b = float_w[layer.name]
        w, b = w * (c / prev_scale), b * c
        w_fmt, b_fmt, w_frac = _weight_formats(w, b, in_fmt, qcfg, layer_bits[k])
        bb, bi = qkeras_signed(b_fmt)
        kw = dict(kernel_quantizer=kernel_quantizer(w_fmt, w_frac), bias_quantizer=quantized_bits(bb, bi, alpha=1),
                  name=layer.name)
        x = KERAS_KINDS[golden_class_of(layer)].build(layer, kw)(x)
        low_frac = w_fmt.frac if w_frac is None else int(w_frac.min())
        o_fmt, act, qact = _output_activation(layer, acts[k] * c, in_fmt.frac + low_frac, qcfg, k == len(wl) - 1)
        x = qact(x)
        formats[layer.name] = {"w_fmt": w_fmt.to_json(), "b_fmt": b_fmt.to_json(), "in_fmt": in_fmt.to_json(),
                               "out_fmt": o_fmt.to_json(), "activation": act, "act_scale": c,
                               **({"w_frac": [int(f) for f in w_frac]} if w_frac is not None else {})}
        # per channel the kernel variable holds w_int on kernel_base()'s grid; alpha rescales it
        weights[layer.name] = (quantize_channels(w, w_fmt, w_frac) * kernel_base(w_fmt, w_frac).lsb,
                               quantize_exact(b, b_fmt) * b_fmt.lsb)
        in_fmt = o_fmt
        prev_scale = c
        k += 1
    qmodel = tf.keras.Model(inp, x, name=f"{model.name}_q")
    for layer in _weight_layers_q(qmodel):
        w_q, b_q = weights[layer.name]
        layer.set_weights([w_q.astype(np.float32), b_q.astype(np.float32)])
    qmodel.rl2fpga_meta = {"input_fmt": input_fmt.to_json(), "act_scale": scales, "layers": formats}
    qmodel.rl2fpga_masks = {name: np.asarray(m, dtype=bool) for name, m in masks.items()}
    return qmodel


def _weight_layers_q(qmodel: tf.keras.Model) -> list[tf.keras.layers.Layer]:
    return [la for la in qmodel.layers if hasattr(la, "kernel_quantizer_internal")]


def snap_to_grid(qmodel: tf.keras.Model, masks: dict[str, np.ndarray] | None = None) -> None:
    """Set every kernel and bias to its own quantized value (exact float64 rounding), masked
    weights to exactly zero. Afterwards QKeras' quantizers are the identity on them."""
    masks = masks if masks is not None else getattr(qmodel, "rl2fpga_masks", {})
    for layer in _weight_layers_q(qmodel):
        w, b = layer.get_weights()
        if layer.name in masks:
            w = w * masks[layer.name]
        wf = _kernel_fmt(layer.kernel_quantizer_internal, layer.name)[0]
        bf = _quantizer_fmt(layer.bias_quantizer_internal, layer.name)
        layer.set_weights([(quantize_exact(w, wf) * wf.lsb).astype(np.float32),
                           (quantize_exact(b, bf) * bf.lsb).astype(np.float32)])


def apply_masks(qmodel: tf.keras.Model, masks: dict[str, np.ndarray]) -> None:
    """Zero the masked kernel entries in place (after every optimiser step in QAT)."""
    for layer in _weight_layers_q(qmodel):
        if layer.name in masks:
            layer.kernel.assign(layer.kernel * tf.constant(masks[layer.name], dtype=layer.kernel.dtype))


# ----------------------------------------------------------------------------- golden extraction


def _quantizer_fmt(q: Any, where: str) -> Fmt:
    from qkeras import quantized_bits, quantized_relu

    if isinstance(q, quantized_bits):
        if q.alpha not in (1, 1.0) or q.use_stochastic_rounding or not q.keep_negative or q.symmetric:
            raise Rl2fpgaError(f"{where}: quantizer {q} unsupported; use quantized_bits(bits, integer, alpha=1) (kernels: or alpha=[one power of two per output channel])")
        return Fmt(int(q.bits), int(q.integer) + 1, True)
    if isinstance(q, quantized_relu):
        if q.use_sigmoid or q.negative_slope or q.use_stochastic_rounding or not q.is_quantized_clip:
            raise Rl2fpgaError(f"{where}: quantizer {q} unsupported; use quantized_relu(bits, integer)")
        return Fmt(int(q.bits), int(q.integer), False)
    raise Rl2fpgaError(f"{where}: quantizer {q!r} unsupported; use quantized_bits or quantized_relu")


def _kernel_fmt(q: Any, where: str) -> tuple[Fmt, np.ndarray | None]:
    """(the kernel quantizer's base format, the per-channel weight fractional bits or None): a
    ``quantized_bits`` with ``alpha=1`` or a list of power-of-two per-channel scales."""
    from qkeras import quantized_bits

    alpha = getattr(q, "alpha", None)
    if not isinstance(q, quantized_bits) or isinstance(alpha, (int, float, str)) or alpha is None:
        return _quantizer_fmt(q, where), None
    a = np.asarray(list(alpha), dtype=np.float64)
    e = np.round(np.log2(a)) if (a > 0).all() else a
    if a.ndim != 1 or not (a > 0).all() or not np.array_equal(2.0**e, a):
        raise Rl2fpgaError(f"{where}: kernel quantizer alpha {list(alpha)} is not one power of two per output channel; use powers of two")
    base = _quantizer_fmt(quantized_bits(int(q.bits), int(q.integer), alpha=1, keep_negative=q.keep_negative,
                                         symmetric=q.symmetric, use_stochastic_rounding=q.use_stochastic_rounding), where)
    return base, base.frac - e.astype(np.int64)


def _on_grid(values: np.ndarray, fmt: Fmt, what: str) -> np.ndarray:
    scaled = np.asarray(values, dtype=np.float64) * 2.0**fmt.frac
    ints = np.round(scaled)
    if not np.array_equal(ints, scaled) or ints.min(initial=0) < fmt.qmin or ints.max(initial=0) > fmt.qmax:
        raise Rl2fpgaError(f"{what} is not on its {fmt} grid; call quantize.qkeras_model.snap_to_grid(qmodel) first")
    return ints.astype(np.int64)


def _weight_record(layer: Any, shape: tuple[int, ...]) -> dict[str, Any]:
    """A QDense/QConv2D layer's integer weights and biases read through its own quantizers, its
    golden layer class, formats, input shape (``shape`` is the producer's) and stride."""
    act = layer.get_config().get("activation")
    if act not in (None, "linear") and not (isinstance(act, dict) and act.get("class_name") == "linear"):
        raise Rl2fpgaError(f"layer {layer.name}: put the activation in a separate QActivation layer")
    w_fmt, w_frac = _kernel_fmt(layer.kernel_quantizer_internal, layer.name)
    b_fmt = _quantizer_fmt(layer.bias_quantizer_internal, layer.name)
    w_q = layer.kernel_quantizer_internal(layer.kernel).numpy()
    if w_frac is not None:  # channel j on its own grid: read it as the integers on the finest grid
        if w_frac.shape != (w_q.shape[-1],):
            raise Rl2fpgaError(f"layer {layer.name}: {w_frac.size} kernel scales for {w_q.shape[-1]} output channels; give one per channel")
        w_fmt = Fmt(w_fmt.bits, w_fmt.bits - int(w_frac.max()), True)
        w_q = w_q * 2.0 ** (w_frac - w_fmt.frac).astype(np.float64)
    b_q = layer.bias_quantizer_internal(layer.bias).numpy()
    if getattr(layer, "padding", "valid") != "valid":
        raise Rl2fpgaError(f"layer {layer.name}: padding '{layer.padding}' unsupported; use padding='valid'")
    cls = golden_class_of(layer)
    return {
        "name": layer.name,
        "cls": cls,
        "w": _on_grid(w_q, w_fmt, f"layer {layer.name} kernel"),
        "b_int": _on_grid(b_q, b_fmt, f"layer {layer.name} bias"),
        "w_fmt": w_fmt,
        "w_frac": None if w_frac is None else tuple(int(f) for f in w_frac),
        "b_fmt": b_fmt,
        "in_shape": KERAS_KINDS[cls].in_shape(shape),
        "stride": KERAS_KINDS[cls].stride(layer),
    }


def golden_from_qkeras(qmodel: tf.keras.Model, input_fmt: Fmt, threshold: int | list[int] = 0) -> GoldenModel:
    """Integer weights/biases and formats exactly matching what the QKeras chain computes.

    Weights are read through the layer's own quantizer (float32, as QKeras runs it) and must
    come out as integers on the grid. The output format of the last layer is its
    ``quantized_bits`` output quantizer when present, else the accumulator itself.
    """
    QActivation = _qlayers()[0]
    layers: list[Layer] = []
    pending: dict[str, Any] | None = None
    shape = tuple(int(s) for s in qmodel.input_shape[1:])
    in_fmt = input_fmt

    def close(out_fmt: Fmt | None, activation: str) -> None:
        nonlocal pending, in_fmt, shape
        assert pending is not None
        p = pending
        wf = p["w_frac"]
        acc_ch = in_fmt.frac + (np.full(len(p["b_int"]), p["w_fmt"].frac) if wf is None else np.asarray(wf, dtype=np.int64))
        acc_frac = int(acc_ch.max())
        if p["b_fmt"].frac > int(acc_ch.min()):
            raise Rl2fpgaError(f"layer {p['name']}: bias has {p['b_fmt'].frac} fractional bits, more than the accumulator's {int(acc_ch.min())}; use fewer bias fractional bits")
        b_acc = p["b_int"] << (acc_ch - p["b_fmt"].frac)
        if out_fmt is None and wf is not None:
            raise Rl2fpgaError(f"layer {p['name']}: per-channel weight scales need an output quantizer (QActivation) after the layer; add one")
        if out_fmt is None:  # linear, no output quantizer: the accumulator is the output
            probe = p["cls"](p["name"], p["w"], b_acc, p["w_fmt"], in_fmt,
                                Fmt(64, 64 - acc_frac, True), "linear", p["in_shape"], p["stride"])
            bits = probe.acc_bits()
            out_fmt = Fmt(bits, bits - acc_frac, True)
        layer = p["cls"](p["name"], p["w"], b_acc, p["w_fmt"], in_fmt, out_fmt, activation,
                            p["in_shape"], p["stride"], w_frac=wf)
        layers.append(layer)
        shape = layer.out_shape
        in_fmt = out_fmt
        pending = None

    for layer in qmodel.layers:
        if isinstance(layer, tf.keras.layers.InputLayer):
            continue
        if isinstance(layer, tf.keras.layers.Flatten):
            if pending is not None:
                close(None, "linear")
            shape = (int(np.prod(shape)),)
            continue
        if hasattr(layer, "kernel_quantizer_internal"):
            if pending is not None:
                close(None, "linear")
            pending = _weight_record(layer, shape)
            continue
        if isinstance(layer, QActivation):
            if pending is None:
                raise Rl2fpgaError(f"QActivation {layer.name} does not follow a weight layer; only QDense/QConv2D -> QActivation chains are supported")
            q = layer.quantizer
            fmt = _quantizer_fmt(q, layer.name)
            close(fmt, "relu" if not fmt.signed else "linear")
            continue
        raise Rl2fpgaError(f"layer {layer.name} ({type(layer).__name__}) unsupported in the golden model; use QDense, QConv2D, QActivation, Flatten")
    if pending is not None:
        close(None, "linear")
    meta = dict(getattr(qmodel, "rl2fpga_meta", {}) or {})
    gm = GoldenModel(layers, meta)
    gm.set_thresholds(threshold)
    return gm


def float32_bounds(gm: GoldenModel, states: np.ndarray | None = None) -> list[int]:
    """Per layer, the largest ``S = sum_i |w_i| |x_i| + |b|`` (accumulator LSBs): over every
    input of the format (``states=None``, a static proof) or over the given integer input
    states (each run through the golden model). float32 is exact when ``S < 2^24``."""
    out = []
    if states is None:
        for layer in gm.layers:
            xmax = max(abs(layer.in_fmt.qmin), abs(layer.in_fmt.qmax))
            aw = np.abs(layer.w)
            s = aw.sum(axis=layer.fan_in_axes) * xmax + np.abs(layer.b)
            out.append(int(s.max()))
        return out
    worst = [0] * len(gm.layers)
    for x in np.asarray(states, dtype=np.int64):
        x = x.reshape(gm.in_shape)
        for k, layer in enumerate(gm.layers):
            s = _abs_layer(layer).matvec(np.abs(x)) + np.abs(layer.b)
            worst[k] = max(worst[k], int(np.max(s)))
            x = layer.requantize(layer.matvec(x) + layer.b)
    return worst


def _abs_layer(layer: Layer) -> Layer:
    return dataclasses.replace(layer, w=np.abs(layer.w), b=np.zeros_like(layer.b))


def qkeras_int_outputs(qmodel: tf.keras.Model, gm: GoldenModel, x_int: np.ndarray, batch: int = 256) -> np.ndarray:
    """The QKeras model on grid inputs, its outputs scaled by 2^out_frac (checked integral)."""
    out_fmt = gm.layers[-1].out_fmt
    ys = []
    for i in range(0, len(x_int), batch):
        xf = grid_float(x_int[i : i + batch], gm.in_fmt).reshape(-1, *qmodel.input_shape[1:])
        ys.append(np.asarray(qmodel(xf, training=False), dtype=np.float64) * 2.0**out_fmt.frac)
    y = np.concatenate(ys)
    if not np.array_equal(y, np.round(y)):
        raise Rl2fpgaError("QKeras outputs are off the output grid; the model is not a supported QKeras chain")
    return y.astype(np.int64)


# ----------------------------------------------------------------------------- thresholds


def threshold_ints(gm: GoldenModel, t: float | list[float]) -> list[int]:
    """T (float units of each layer's *original* input, i.e. before the power-of-two rescaling)
    -> T_int = floor(T * c_{k-1} / LSB_in) per layer, strict comparison ``|d| > T_int``; ``t``
    is one T for every layer or one per layer (``quantize.layer_thresholds``).

    A requested ``T > 0`` that maps below one LSB of the *network input* is an error; hidden
    layers whose LSB is coarser than T get T_int 0 (their delta stage is then exact)."""
    ts = per_layer_thresholds(t, len(gm.layers))
    scales = [1.0] + list(gm.meta.get("act_scale", [1.0] * len(gm.layers)))[: len(gm.layers) - 1]
    out = []
    for layer, c, tk in zip(gm.layers, scales, ts, strict=True):
        out.append(int(math.floor(tk * c / layer.in_fmt.lsb + 1e-9)))
    t = ts[0]
    if t > 0 and out[0] == 0:
        lsb = gm.layers[0].in_fmt.lsb
        raise Rl2fpgaError(
            f"delta threshold T={t} is below one LSB ({lsb:g}) of layer {gm.layers[0].name}'s input {gm.layers[0].in_fmt}; use T >= {lsb:g}, more input fractional bits, or T=0"
        )
    return out


def per_layer_thresholds(t: float | list[float], n_layers: int) -> list[float]:
    """One T per layer from one T for all or a per-layer list (checked: length, T >= 0)."""
    ts = [float(v) for v in t] if isinstance(t, list | tuple) else [float(t)] * n_layers
    if len(ts) != n_layers:
        raise Rl2fpgaError(f"quantize.layer_thresholds has {len(ts)} entries but the network has {n_layers} layers; "
                           "give one T per layer input or leave it empty for quantize.threshold everywhere")
    for v in ts:
        if v < 0:
            raise Rl2fpgaError(f"delta threshold T={v} is negative; use T >= 0")
    return ts


# ----------------------------------------------------------------------------- files


def custom_objects() -> dict[str, Any]:
    from qkeras.utils import _add_supported_quantized_objects

    co: dict[str, Any] = {}
    _add_supported_quantized_objects(co)
    return co


def save_qmodel(qmodel: tf.keras.Model, path: str | Path) -> None:
    """HDF5 ``path`` (``.h5``: QKeras 0.9's QActivation cannot round-trip the ``.keras``
    format) plus ``<stem>.meta.json`` (scales, formats), both atomic."""
    import os
    import tempfile

    from rl2fpga.fsutil import atomic_write_json

    path = Path(path)
    if path.suffix != ".h5":
        raise Rl2fpgaError(f"QKeras models are saved as HDF5; name the file {path.with_suffix('.h5').name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".h5", dir=path.parent)
    from rl2fpga.fsutil import current_umask

    os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600: respect the umask
    os.close(fd)
    try:
        qmodel.save(tmp, save_format="h5")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    meta = dict(getattr(qmodel, "rl2fpga_meta", {}) or {})
    atomic_write_json(path.with_suffix(".meta.json"), meta)


def load_qmodel(path: str | Path) -> tf.keras.Model:
    """Load a QKeras model saved by :func:`save_qmodel` (its meta reattached)."""
    path = Path(path)
    if not path.exists():
        raise Rl2fpgaError(f"QKeras model {path} is missing; run `rl2fpga quantize` first")
    try:
        from rl2fpga.safety import load_keras_model

        qmodel = load_keras_model(path, custom_objects())
    except (OSError, ValueError, KeyError, TypeError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise Rl2fpgaError(f"QKeras model {path} is corrupt ({first}); rerun `rl2fpga quantize`") from None
    meta_path = path.with_suffix(".meta.json")
    if meta_path.exists():
        try:
            qmodel.rl2fpga_meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError:
            raise Rl2fpgaError(f"{meta_path} is corrupt; rerun `rl2fpga quantize`") from None
    else:
        qmodel.rl2fpga_meta = {}
    return qmodel
