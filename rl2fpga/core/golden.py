"""The golden integer model: the one meaning every hardware form is checked against.

Per layer (the classes of :mod:`rl2fpga.core.layers`: Dense, or valid-padding Conv2D, channels-last):

* integer weights ``w`` (dense: ``(n_in, n_out)``; conv: ``(kh, kw, c_in, c_out)``), their
  format ``w_fmt``; integer biases ``b`` already in accumulator LSBs
  (``acc_frac = in_fmt.frac + w_fmt.frac``); with per-output-channel power-of-two scales
  (``w_frac``) channel j has its own ``acc_frac_j`` and shift (:mod:`rl2fpga.core.layers`);
* the input format ``in_fmt`` and a delta threshold ``threshold`` (T_int, in input LSBs);
* ``x_hat_i <- x_i`` when ``|x_i - x_hat_i| > T_int``, else unchanged; x_hat starts at 0;
* ``acc = W @ x_hat + b`` in exact integers (the incremental form ``acc += W[:, i] * delta_i``
  over changed inputs gives the same integers);
* ``y = saturate(round_half_even(acc * 2^-(acc_frac - out_frac)))`` into ``out_fmt``, then the
  activation (ReLU clamps at 0; with an unsigned ``out_fmt`` the saturation already does).

A dense layer after a convolution reads the conv output flattened in C order (h, w, c), as
Keras' Flatten does. The greedy action is the first index of the largest output.

Significant multiplications of a layer at a step = the number of (nonzero weight, changed
input) pairs actually used: for a dense layer ``sum_i changed_i * nnz(W[i, :])``; for a
convolution each changed input contributes the nonzero taps of every output position whose
receptive field holds it (borders and stride respected).

Files: ``formats.json`` (everything but the arrays) and ``weights.npz`` (``<name>.w``,
``<name>.b``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rl2fpga.core.fixedpoint import Fmt, quantize_float, round_shift
from rl2fpga.core.layers import Conv2D, Dense, Layer, layer_class, layer_from_json
from rl2fpga.errors import Rl2fpgaError

# re-exported: the fixed-point types and layer classes are imported from here by older code
__all__ = ["ACC_LIMIT_BITS", "FORMAT_VERSION", "Conv2D", "Dense", "Fmt", "GoldenModel", "InputSaturation", "InputStandardize", "Layer",
           "StepStats", "quantize_float", "random_model", "round_shift", "squash_action"]

FORMAT_VERSION = 1
ACC_LIMIT_BITS = 48  # accumulators the hardware keeps (DSP48 P register)


@dataclass
class StepStats:
    """What one inference step cost, per layer."""

    events: list[int] = field(default_factory=list)  # changed inputs (transmitted deltas)
    macs: list[int] = field(default_factory=list)  # significant multiplications

    @property
    def total_macs(self) -> int:
        return int(sum(self.macs))


@dataclass
class InputSaturation:
    """Input elements that fell outside the input format and were saturated, counted over every
    observation :meth:`GoldenModel.quantize_input` put on the grid (per frame: how many)."""

    frames: int = 0
    elements: int = 0
    saturated: int = 0
    frames_saturated: int = 0
    max_per_frame: int = 0

    def add(self, n_saturated: int, n_elements: int) -> None:
        self.frames += 1
        self.elements += n_elements
        self.saturated += n_saturated
        self.frames_saturated += int(n_saturated > 0)
        self.max_per_frame = max(self.max_per_frame, n_saturated)

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "fraction": self.saturated / self.elements if self.elements else 0.0}


STANDARDIZE_SHIFT_BITS = 6  # a per-input shift e in -32..31, as stored


@dataclass(frozen=True)
class InputStandardize:
    """Per-input standardisation, part of the deployed model: input ``i`` becomes
    ``round_half_even(obs_i * 2^(frac + shift_i)) - offset_i`` (then saturates into the input
    format), i.e. ``(obs_i - mean_i) * 2^shift_i`` on the grid with ``mean_i = offset_i *
    2^-(frac + shift_i)``. Multiplying by a power of two is exact in float64, so every back end
    that follows this order gets the same integers. Stored in ``formats.json`` as
    ``input_standardize``; absent = identity (older run folders)."""

    shift: tuple[int, ...]
    offset: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.shift) != len(self.offset):
            raise Rl2fpgaError(f"input standardisation has {len(self.shift)} shifts but {len(self.offset)} offsets")
        lim = 1 << (STANDARDIZE_SHIFT_BITS - 1)
        if any(not -lim <= e < lim for e in self.shift):
            raise Rl2fpgaError(f"input standardisation shift {list(self.shift)} outside {-lim}..{lim - 1}; the inputs' scales are degenerate")

    def grid(self, obs: np.ndarray, frac: int) -> np.ndarray:
        """float64 integers ``round(obs * 2^(frac + shift)) - offset`` (before saturation)."""
        x = np.asarray(obs, dtype=np.float64).reshape(-1)
        if x.size != len(self.shift):
            raise Rl2fpgaError(f"observation has {x.size} values but the input standardisation {len(self.shift)}")
        return np.round(x * np.exp2(frac + np.asarray(self.shift, np.float64))) - np.asarray(self.offset, np.float64)

    def stored_bits(self, in_bits: int) -> int:
        """Bits the deployed model stores for it: an offset (input width) and a shift per input."""
        return len(self.shift) * (in_bits + STANDARDIZE_SHIFT_BITS)

    def to_json(self) -> dict[str, Any]:
        return {"shift": [int(v) for v in self.shift], "offset": [int(v) for v in self.offset]}

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> InputStandardize | None:
        if d is None:
            return None
        return cls(tuple(int(v) for v in d["shift"]), tuple(int(v) for v in d["offset"]))


class GoldenModel:
    """A chain of :class:`~rl2fpga.core.layers.Layer` with delta state."""

    def __init__(self, layers: list[Layer], meta: dict[str, Any] | None = None,
                 standardize: InputStandardize | None = None):
        if not layers:
            raise Rl2fpgaError("golden model has no layers")
        for a, b in zip(layers, layers[1:], strict=False):
            if int(np.prod(a.out_shape)) != int(np.prod(b.in_shape)):
                raise Rl2fpgaError(f"layer {b.name} expects {b.in_shape} but {a.name} gives {a.out_shape}")
            if a.out_fmt != b.in_fmt:
                raise Rl2fpgaError(f"layer {b.name} input format {b.in_fmt} != {a.name} output format {a.out_fmt}")
        self.layers = layers
        self.meta = dict(meta or {})
        self.standardize = standardize  # per-input standardisation in quantize_input (None: identity)
        if standardize is not None and len(standardize.shift) != int(np.prod(self.in_shape)):
            raise Rl2fpgaError(f"input standardisation has {len(standardize.shift)} inputs, the model {int(np.prod(self.in_shape))}")
        self.saturation = InputSaturation()
        self.reset()

    # -- state ----------------------------------------------------------------------------
    def reset(self) -> None:
        """Episode start: x_hat = 0 everywhere, accumulators = bias."""
        self.x_hat = [np.zeros(layer.in_shape, dtype=np.int64) for layer in self.layers]
        self.acc = [np.broadcast_to(layer.b, layer.out_shape).astype(np.int64).copy() for layer in self.layers]

    @property
    def in_fmt(self) -> Fmt:
        return self.layers[0].in_fmt

    @property
    def in_shape(self) -> tuple[int, ...]:
        return self.layers[0].in_shape

    @property
    def thresholds(self) -> list[int]:
        return [layer.threshold for layer in self.layers]

    def set_thresholds(self, t: int | list[int]) -> None:
        ts = [t] * len(self.layers) if isinstance(t, int) else list(t)
        if len(ts) != len(self.layers):
            raise Rl2fpgaError(f"{len(ts)} thresholds given for {len(self.layers)} layers")
        for layer, v in zip(self.layers, ts, strict=True):
            if v < 0:
                raise Rl2fpgaError(f"layer {layer.name}: negative delta threshold {v}")
            layer.threshold = int(v)

    # -- inference ------------------------------------------------------------------------
    def quantize_input(self, obs: np.ndarray) -> np.ndarray:
        """An observation onto the input grid; uint8 pixels p become p (i.e. p * 2^-8)."""
        obs = np.asarray(obs)
        if obs.dtype == np.uint8 and self.in_fmt.frac == 8 and not self.in_fmt.signed and self.in_fmt.bits == 8:
            self.saturation.add(0, obs.size)
            return obs.astype(np.int64).reshape(self.in_shape)
        fmt = self.in_fmt
        if self.standardize is not None:
            q = self.standardize.grid(obs, fmt.frac)
        else:
            q = np.round(np.asarray(obs, dtype=np.float64) * (2.0**fmt.frac))
        self.saturation.add(int(np.count_nonzero((q < fmt.qmin) | (q > fmt.qmax))), q.size)
        return np.clip(q, fmt.qmin, fmt.qmax).astype(np.int64).reshape(self.in_shape)

    def step(self, x: np.ndarray, incremental: bool = False) -> tuple[np.ndarray, StepStats]:
        """One time step on integer input ``x``; returns the integer outputs and the cost.

        ``incremental=False`` recomputes ``W @ x_hat + b``; ``True`` adds ``W * delta`` for the
        changed inputs to the kept accumulators. Both give the same integers.
        """
        x = np.asarray(x, dtype=np.int64).reshape(self.in_shape)
        fmt = self.in_fmt
        if x.min(initial=0) < fmt.qmin or x.max(initial=0) > fmt.qmax:
            raise Rl2fpgaError(f"input outside its format {fmt} (range {fmt.qmin}..{fmt.qmax}); quantize it with quantize_input")
        stats = StepStats()
        for k, layer in enumerate(self.layers):
            x = x.reshape(layer.in_shape)
            self.x_hat[k], changed, delta = layer.delta_input.update(x, self.x_hat[k])
            stats.events.append(int(changed.sum()))
            stats.macs.append(layer.significant(changed))
            if incremental:
                if changed.any():
                    self.acc[k] = self.acc[k] + layer.matvec(delta)
            else:
                self.acc[k] = layer.matvec(self.x_hat[k]) + layer.b
            x = layer.requantize(self.acc[k])
        return x.reshape(self.layers[-1].out_shape), stats

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Stateless dense inference (no delta, no state change)."""
        x = np.asarray(x, dtype=np.int64)
        for layer in self.layers:
            x = layer.requantize(layer.matvec(x.reshape(layer.in_shape)) + layer.b)
        return x

    @staticmethod
    def action(y: np.ndarray) -> int:
        return int(np.argmax(np.asarray(y).reshape(-1)))

    def output_float(self, y: np.ndarray) -> np.ndarray:
        return np.asarray(y, dtype=np.float64) * self.layers[-1].out_fmt.lsb

    # -- accounting -----------------------------------------------------------------------
    def dense_mults(self) -> list[int]:
        return [layer.dense_mults() for layer in self.layers]

    def check_accumulators(self, limit_bits: int = ACC_LIMIT_BITS) -> list[int]:
        """Proved accumulator widths; an overflow risk is an error."""
        bits = []
        for layer in self.layers:
            need = layer.acc_bits()
            if need > limit_bits:
                raise Rl2fpgaError(
                    f"layer {layer.name}: accumulator needs {need} bits > {limit_bits}; use fewer weight or input bits"
                )
            bits.append(need)
        return bits

    # -- files ----------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        std = {} if self.standardize is None else {"input_standardize": self.standardize.to_json()}
        return {"format_version": FORMAT_VERSION, "meta": self.meta, **std, "layers": [layer.to_json() for layer in self.layers]}

    def save(self, folder: str | Path) -> None:
        from rl2fpga.fsutil import atomic_save_npz, atomic_write_json

        folder = Path(folder)
        arrays = {}
        for layer in self.layers:
            arrays[f"{layer.name}.w"] = layer.w
            arrays[f"{layer.name}.b"] = layer.b
        atomic_save_npz(folder / "weights.npz", **arrays)
        atomic_write_json(folder / "formats.json", self.to_json())

    @classmethod
    def load(cls, folder: str | Path) -> GoldenModel:
        folder = Path(folder)
        fj, wz = folder / "formats.json", folder / "weights.npz"
        for p in (fj, wz):
            if not p.exists():
                raise Rl2fpgaError(f"golden model file {p} is missing; run `rl2fpga quantize` first")
        try:
            spec = json.loads(fj.read_text())
            from rl2fpga.safety import load_npz

            arrays = load_npz(wz, "golden model file", "rerun `rl2fpga quantize`")
        except (json.JSONDecodeError, ValueError, OSError) as e:
            raise Rl2fpgaError(f"golden model in {folder} is corrupt ({e}); rerun `rl2fpga quantize`") from None
        if spec.get("format_version") != FORMAT_VERSION:
            raise Rl2fpgaError(f"golden model in {folder} has format version {spec.get('format_version')}, expected {FORMAT_VERSION}; rerun `rl2fpga quantize`")
        try:
            layers = [layer_from_json(d, arrays[f"{d['name']}.w"], arrays[f"{d['name']}.b"]) for d in spec["layers"]]
            std = InputStandardize.from_json(spec.get("input_standardize"))
        except (KeyError, TypeError, ValueError) as e:
            raise Rl2fpgaError(f"golden model in {folder} is corrupt (missing {e}); rerun `rl2fpga quantize`") from None
        return cls(layers, spec.get("meta"), std)

    @property
    def per_channel(self) -> bool:
        """Whether any layer has per-output-channel weight scales."""
        return any(layer.per_channel for layer in self.layers)

    def widened(self) -> GoldenModel:
        """The same model with one weight format per layer (:meth:`Layer.widened`): the same
        integers at every layer output, for back ends that keep one weight type per layer."""
        return GoldenModel([layer.widened() for layer in self.layers], self.meta)

    def copy(self) -> GoldenModel:
        return GoldenModel([dataclasses.replace(layer) for layer in self.layers], self.meta, self.standardize)


def squash_action(mean: np.ndarray, low: Any, high: Any) -> np.ndarray:
    """A SAC actor's deterministic action from its (float) mean output:
    ``tanh(mean) * (high - low) / 2 + (high + low) / 2`` as float32; with the golden model,
    ``squash_action(gm.output_float(y), low, high)``."""
    lo, hi = np.asarray(low, np.float64), np.asarray(high, np.float64)
    return (np.tanh(np.asarray(mean, np.float64).reshape(-1)) * (hi - lo) / 2 + (hi + lo) / 2).astype(np.float32)


def random_model(
    rng: np.random.Generator,
    in_shape: tuple[int, ...],
    specs: list[tuple],
    sparsity: float = 0.5,
    w_bits: int = 8,
    act: Fmt = Fmt(8, 3, False),
    in_fmt: Fmt = Fmt(8, 0, False),
    out_fmt: Fmt = Fmt(16, 8, True),
    threshold: int = 0,
    flatten: bool = False,
    w_frac_spread: int = 0,
) -> GoldenModel:
    """A random integer model for tests: ``specs`` items are ("dense", n_out) or
    ("conv2d", filters, k, stride). The last layer is linear into ``out_fmt``. ``flatten``
    gives a dense layer after a convolution the 1-D input shape a Keras Flatten produces (as
    the QKeras extraction does) instead of the feature map's (h, w, c). ``w_frac_spread`` > 0
    gives every output channel its own weight scale, 0 to ``w_frac_spread`` bits finer than the
    coarsest (per-channel power-of-two scales)."""
    layers = []
    shape = tuple(in_shape)
    fmt_in = in_fmt
    for i, spec in enumerate(specs):
        w_fmt = Fmt(w_bits, 1, True)
        last = i == len(specs) - 1
        o_fmt = out_fmt if last else act
        cls = layer_class(spec[0], f"random_model spec {spec}")
        if issubclass(cls, Dense):
            n_in = int(np.prod(shape))
            if flatten:
                shape = (n_in,)
            w = rng.integers(w_fmt.qmin, w_fmt.qmax + 1, size=(n_in, spec[1]))
            stride = (1, 1)
        else:
            _, f, k, s = spec
            w = rng.integers(w_fmt.qmin, w_fmt.qmax + 1, size=(k, k, shape[2], f))
            stride = (s, s)
        w = np.where(rng.random(w.shape) < sparsity, 0, w)
        w_frac = w_fmt.frac + rng.integers(0, w_frac_spread + 1, size=w.shape[-1])
        if w_frac_spread:
            w_frac[0], w_frac[-1] = w_fmt.frac + w_frac_spread, w_fmt.frac  # the full spread, always
            w_fmt = Fmt(w_bits, w_bits - int(w_frac.max()), True)
        acc_frac = fmt_in.frac + w_frac
        if w_frac_spread:
            b = np.array([rng.integers(-(1 << (int(a) - 1)), 1 << (int(a) - 1)) for a in acc_frac], dtype=np.int64)
        else:
            b = rng.integers(-(1 << (int(acc_frac[0]) - 1)), 1 << (int(acc_frac[0]) - 1), size=w.shape[-1])
        layer = cls(f"l{i}", w, b, w_fmt, fmt_in, o_fmt, "linear" if last else "relu",
                            shape, stride, threshold, tuple(int(f) for f in w_frac) if w_frac_spread else None)
        layers.append(layer)
        shape = layer.out_shape
        fmt_in = o_fmt
    return GoldenModel(layers)
