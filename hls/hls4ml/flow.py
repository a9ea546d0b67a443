"""The hls4ml flow: golden model -> Keras model with delta stages -> hls4ml project -> C simulation.

Read top to bottom:

1. :func:`check_keras_layers` - the layers the flow maps (a BatchNormalization or MaxPooling in
   the quantized model is a one-line error, not a crash inside hls4ml);
2. :func:`delta_stage_layers` - where the delta stages go (before every layer whose golden
   threshold is > 0, and always before the first layer);
3. :func:`build_keras` - a Keras model whose weights are exactly ``w_int * 2^-frac`` of the golden
   model, with a :class:`~rl2fpga.hls.hls4ml.delta_layer.DeltaStage` before those layers;
4. :func:`layer_precisions` / :func:`hls_config` - every hls4ml precision (input, delta, weight,
   bias, accumulator, result, activation) GENERATED from the golden formats;
5. :func:`convert` - ``hls4ml.converters.convert_from_keras_model`` for the chosen backend
   (io_parallel for MLPs, io_stream for CNNs; Latency strategy, reuse factors by layer size);
6. :class:`CSim` - the compiled C simulation driven frame by frame, with the delta state reset
   and the thresholds set at run time through the hooks exported by ``rl2fpga_delta.h``;
7. :func:`compare_with_golden` - every output integer of the C simulation against
   ``GoldenModel.step`` over real frames in episode order;
8. :func:`written_weights` - the weights hls4ml wrote, read back (pruned weights must be 0).

Per-output-channel weight scales: hls4ml keeps one weight type per layer, so a layer with
per-channel scales is lowered as :meth:`GoldenModel.widened` (channel j's weights and bias shifted
onto the finest channel's grid, the weight type widened to hold them): exactly the same integers
at every layer output, every precision still generated from (the widened) golden formats.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rl2fpga.config import HlsConfig
from rl2fpga.core.fixedpoint import Fmt
from rl2fpga.core.golden import GoldenModel, squash_action
from rl2fpga.core.layers import Conv2D, Dense, Layer, lowering
from rl2fpga.errors import Rl2fpgaError, ToolMissing

PROJECT_NAME = "rl2fpga_policy"
INPUT_NAME = "obs"

# vendor executables each backend's build() calls (any one of the set must be on PATH)
BACKEND_TOOLS: dict[str, tuple[str, ...]] = {
    "Vitis": ("vitis-run",),
    "Vivado": ("vivado_hls",),
    "VivadoAccelerator": ("vivado_hls",),
}
ALL_TOOLS = ("vivado_hls", "vitis_hls", "vitis-run", "vivado")

# Keras layer classes the flow maps onto hls4ml (anything else is refused up front)
SUPPORTED_LAYERS = {
    "InputLayer", "Dense", "Conv2D", "Flatten", "ReLU", "Activation",
    "QDense", "QConv2D", "QActivation", "DeltaStage",
}


# ------------------------------------------------------------------------------ 1. checks


def check_keras_layers(model: Any) -> None:
    """Refuse layers the hls flow does not map, naming the first one and the fix."""
    for layer in model.layers:
        cls = type(layer).__name__
        if cls == "PruneLowMagnitude":  # tfmot wrapper: check what it wraps
            cls = type(layer.layer).__name__
        if cls not in SUPPORTED_LAYERS:
            raise Rl2fpgaError(
                f"layer '{layer.name}' ({cls}) is not supported by the hls flow; use only Dense, "
                "Conv2D (valid padding), ReLU and Flatten (fold BatchNormalization into the "
                "previous layer, replace pooling with strided convolutions) and quantize again"
            )
        if cls in ("Conv2D", "QConv2D") and layer.get_config().get("padding") != "valid":
            raise Rl2fpgaError(
                f"layer '{layer.name}' ({cls}) has padding '{layer.get_config().get('padding')}'; "
                "the hls flow maps valid padding only, rebuild the network with padding='valid'"
            )
        act = layer.get_config().get("activation")
        if cls in ("Dense", "Conv2D", "Activation") and act not in (None, "relu", "linear"):
            raise Rl2fpgaError(
                f"layer '{layer.name}' ({cls}) has activation '{act}'; the hls flow maps relu and "
                "linear only, retrain with those"
            )


def vendor_tools_on_path() -> dict[str, str]:
    """The vendor executables found on PATH, name -> path."""
    return {t: p for t in ALL_TOOLS if (p := shutil.which(t)) is not None}


def require_vendor_tool(backend: str) -> str:
    """The build tool of ``backend``, or :class:`ToolMissing` with a one-line message."""
    for tool in BACKEND_TOOLS[backend]:
        path = shutil.which(tool)
        if path is not None:
            return path
    names = " or ".join(BACKEND_TOOLS[backend])
    raise ToolMissing(
        f"{backend} build skipped: {names} not found on PATH; source the Xilinx settings64.sh "
        "(or set hls.build=false) to synthesise, the project and C simulation are complete"
    )


# ------------------------------------------------------------------------------ 2-3. Keras model


def delta_stage_layers(golden: GoldenModel) -> list[int]:
    """Indices of the layers that get a delta stage in front: threshold > 0, and always 0."""
    return [k for k, layer in enumerate(golden.layers) if k == 0 or layer.threshold > 0]


def needs_flatten(golden: GoldenModel, k: int) -> bool:
    """A dense layer reading an image (the input or a convolution's output) flattens it first."""
    layer = golden.layers[k]
    prev_shape = golden.in_shape if k == 0 else golden.layers[k - 1].out_shape
    return layer.reads_flattened(prev_shape)


def _frac_scale(bits: int) -> float:
    return float(2.0 ** (-bits))


def build_keras(golden: GoldenModel, stages: list[int] | None = None) -> Any:
    """The golden model's layers as Keras layers with float weights exactly ``w * 2^-frac`` and
    biases ``b * 2^-acc_frac``, a :class:`DeltaStage` before each layer in ``stages``. The
    requantization (rounding, saturation) is not in this float model: it lives in the hls4ml
    precisions that :func:`hls_config` generates. Per-channel scales are lowered widened."""
    import tensorflow as tf

    from rl2fpga.hls.hls4ml.delta_layer import DeltaStage

    golden = golden.widened()
    stages = delta_stage_layers(golden) if stages is None else stages
    inp = tf.keras.Input(shape=golden.in_shape, name=INPUT_NAME)
    x = inp
    for k, layer in enumerate(golden.layers):
        if k in stages:  # before a Flatten: elementwise, and the stream packs stay per pixel
            x = DeltaStage(
                threshold_int=layer.threshold, frac=layer.in_fmt.frac, stage=stages.index(k), name=f"{layer.name}_delta"
            )(x)
        if needs_flatten(golden, k):
            x = tf.keras.layers.Flatten(name=f"{layer.name}_flatten")(x)
        x = _weight_layer(layer)(x)
        if layer.activation == "relu":
            x = tf.keras.layers.ReLU(name=f"{layer.name}_relu")(x)
    model = tf.keras.Model(inp, x, name=PROJECT_NAME)
    for layer in golden.layers:
        kernel = layer.w.astype(np.float64) * _frac_scale(layer.w_fmt.frac)
        bias = layer.b.astype(np.float64) * _frac_scale(layer.acc_frac)
        model.get_layer(layer.name).set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    return model


def _keras_dense(layer: Layer) -> Any:
    import tensorflow as tf

    return tf.keras.layers.Dense(layer.n_out, activation="linear", name=layer.name)


def _keras_conv(layer: Layer) -> Any:
    import tensorflow as tf

    kh, kw = layer.w.shape[:2]
    return tf.keras.layers.Conv2D(
        layer.n_out, (kh, kw), strides=layer.stride, padding="valid", activation="linear", name=layer.name
    )


@dataclass(frozen=True)
class HlsLowering:
    """How the hls4ml back end lowers one golden layer class."""

    keras_layer: Callable[[Layer], Any]  # the float Keras layer hls4ml converts
    streams: bool  # needs io_stream (hls4ml's convolutions are stream-only)


# the back end's one lowering table, keyed by golden layer class
HLS4ML_LOWERING: dict[type[Layer], HlsLowering] = {
    Dense: HlsLowering(_keras_dense, streams=False),
    Conv2D: HlsLowering(_keras_conv, streams=True),
}


def _lowering(layer: Layer) -> HlsLowering:
    return lowering(HLS4ML_LOWERING, layer, "hls4ml")


def _weight_layer(layer: Layer) -> Any:
    return _lowering(layer).keras_layer(layer)


# ------------------------------------------------------------------------------ 4. precisions


def fixed(bits: int, integer: int, signed: bool = True, rounding: bool = False) -> str:
    base = "ap_fixed" if signed else "ap_ufixed"
    return f"{base}<{bits},{integer},AP_RND_CONV,AP_SAT>" if rounding else f"{base}<{bits},{integer}>"


def _signed_bits(values: np.ndarray) -> int:
    """Bits of a signed integer type that holds every value exactly."""
    v = np.asarray(values, dtype=np.int64)
    mag = int(max(v.max(initial=0), -v.min(initial=0) - 1, 0))
    return mag.bit_length() + 1


@dataclass
class LayerPrecisions:
    """The hls4ml precisions of one golden layer (strings in ap_fixed syntax) and its widths."""

    input: str
    weight: str
    bias: str
    accum: str
    result: str
    accum_bits: int
    bias_bits: int

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def layer_precisions(layer: Layer, max_accum_bits: int) -> LayerPrecisions:
    """Precisions generated from the golden formats: exact products, an accumulator as wide as
    the proved bound (never wrapping), round-half-even + saturation into the output format.
    A layer with per-channel scales gets the precisions of its widened form."""
    layer = layer.widened()
    acc_frac = layer.acc_frac
    acc_bits = max(layer.acc_bits(), 2)
    if acc_bits > max_accum_bits:
        raise Rl2fpgaError(
            f"layer {layer.name}: accumulator needs {acc_bits} bits, more than the {max_accum_bits} "
            "allowed (hls.max_accum_bits); use fewer weight/input bits or prune harder"
        )
    bias_bits = max(_signed_bits(layer.b), 2)
    w, i, o = layer.w_fmt, layer.in_fmt, layer.out_fmt
    return LayerPrecisions(
        input=fixed(i.bits, i.integer, i.signed, rounding=True),
        weight=fixed(w.bits, w.integer, w.signed),
        bias=fixed(bias_bits, bias_bits - acc_frac, True),
        accum=fixed(acc_bits, acc_bits - acc_frac, True),
        result=fixed(o.bits, o.integer, o.signed, rounding=True),
        accum_bits=acc_bits,
        bias_bits=bias_bits,
    )


def reuse_factor(layer: Layer, override: int | None, max_mults: int) -> int:
    """Reuse factor of a layer: the override, else 1 up to ``max_mults`` multipliers per layer
    (per output pixel for a convolution), else the smallest valid factor that fits."""
    from hls4ml.backends import get_backend

    n_in = int(np.prod(layer.w.shape[:-1]))
    n_out = layer.n_out
    valid = get_backend("Vivado").get_valid_reuse_factors(n_in, n_out)
    if override is not None:
        if override not in valid:
            raise Rl2fpgaError(
                f"layer {layer.name}: reuse factor {override} is not valid for {n_in}x{n_out} "
                f"multiplications; valid ones: {', '.join(map(str, valid[:12]))}, ..."
            )
        return override
    need = int(np.ceil(n_in * n_out / max_mults))
    return next(rf for rf in valid if rf >= need)


def hls_config(golden: GoldenModel, hcfg: HlsConfig, stages: list[int]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(hls4ml config dict, precisions used per layer) - all generated from the golden formats
    (per-channel scales widened)."""
    golden = golden.widened()
    prec: dict[str, Any] = {}
    layers: dict[str, Any] = {INPUT_NAME: {"Precision": {"result": layer_precisions(golden.layers[0], hcfg.max_accum_bits).input}}}
    for k, layer in enumerate(golden.layers):
        p = layer_precisions(layer, hcfg.max_accum_bits)
        rf = reuse_factor(layer, hcfg.reuse_factor, hcfg.max_mults_per_layer)
        prec[layer.name] = {**p.to_json(), "reuse_factor": rf, "delta_stage": k in stages,
                            "threshold": layer.threshold}
        if needs_flatten(golden, k):
            layers[f"{layer.name}_flatten"] = {"Precision": {"result": p.input}}
        if k in stages:
            layers[f"{layer.name}_delta"] = {"Precision": {"result": p.input}}
        layers[layer.name] = {
            "Precision": {"weight": p.weight, "bias": p.bias, "accum": p.accum, "result": p.result},
            "ReuseFactor": rf,
            "Strategy": hcfg.strategy,
        }
        layers[f"{layer.name}_linear"] = {"Precision": {"result": p.result}}
        layers[f"{layer.name}_relu"] = {"Precision": {"result": p.result}}
    model = {"Precision": "ap_fixed<16,6>", "ReuseFactor": 1, "Strategy": hcfg.strategy, "BramFactor": 1_000_000_000}
    return {"Model": model, "LayerName": layers}, prec


# ------------------------------------------------------------------------------ 5. convert


def check_board(board: str) -> None:
    """VivadoAccelerator knows the boards in hls4ml's supported_boards.json."""
    import json

    import hls4ml

    path = Path(hls4ml.__file__).parent / "backends" / "vivado_accelerator" / "supported_boards.json"
    boards = list(json.loads(path.read_text()))
    if board not in boards:
        raise Rl2fpgaError(f"board '{board}' is not supported by hls4ml's VivadoAccelerator; use one of {', '.join(boards)}")


def io_type_for(golden: GoldenModel) -> str:
    return "io_stream" if any(_lowering(layer).streams for layer in golden.layers) else "io_parallel"


@dataclass
class HlsProject:
    """A written hls4ml project and what produced it."""

    hls_model: Any
    out_dir: Path
    backend: str
    io_type: str
    stages: list[int]
    precisions: dict[str, Any] = field(default_factory=dict)


def convert(golden: GoldenModel, hcfg: HlsConfig, out_dir: str | Path, backend: str | None = None) -> HlsProject:
    """Golden model -> Keras with delta stages -> hls4ml project written to ``out_dir``."""
    import hls4ml

    from rl2fpga.hls.hls4ml.delta_layer import register_delta_extension

    backend = backend or hcfg.backend
    if hcfg.strategy == "Resource" and hcfg.compression:
        raise Rl2fpgaError(
            "hls.strategy=Resource with hls.compression=true crashes in hls4ml 1.3.0 "
            "(KeyError 'dense_function'); set hls.compression=false or hls.strategy=Latency"
        )
    if backend == "VivadoAccelerator":
        check_board(hcfg.board)
    golden = golden.widened()  # one weight type per layer in hls4ml: same integers
    golden.check_accumulators(hcfg.max_accum_bits)
    register_delta_extension()
    stages = delta_stage_layers(golden)
    keras_model = build_keras(golden, stages)
    config, precisions = hls_config(golden, hcfg, stages)
    io_type = io_type_for(golden)
    kwargs: dict[str, Any] = {"part": hcfg.part}
    if backend == "VivadoAccelerator":
        kwargs = {"board": hcfg.board, "part": None, "interface": "axi_stream", "driver": "python"}
    out_dir = Path(out_dir)
    hls_model = hls4ml.converters.convert_from_keras_model(
        keras_model,
        hls_config=config,
        output_dir=str(out_dir),
        project_name=PROJECT_NAME,
        backend=backend,
        io_type=io_type,
        clock_period=hcfg.clock_period_ns,
        **kwargs,
    )
    check_generated_precisions(hls_model, config)
    return HlsProject(hls_model, out_dir, backend, io_type, stages, precisions)


def check_generated_precisions(hls_model: Any, config: dict[str, Any]) -> None:
    """Every weight layer's hls4ml types must be exactly the ones generated from the golden model."""
    want = config["LayerName"]
    for layer in hls_model.get_layers():
        if layer.name not in want and layer.inputs:  # a layer hls4ml added: it must pass types through
            got, inp = layer.get_output_variable().type.precision, layer.get_input_variable().type.precision
            if _norm(got.definition_cpp()) != _norm(inp.definition_cpp()):
                raise Rl2fpgaError(
                    f"hls4ml layer {layer.name} ({layer.class_name}) got the default precision "
                    f"{got.definition_cpp()} instead of its input's; this is a bug in the flow"
                )
            continue
        spec = want.get(layer.name, {}).get("Precision", {})
        checks = {"result": layer.get_output_variable().type.precision}
        for w in ("weight", "bias"):
            if w in layer.weights:
                checks[w] = layer.weights[w].type.precision
        if layer.get_attr("accum_t") is not None:
            checks["accum"] = layer.get_attr("accum_t").precision
        for key, got in checks.items():
            if key in spec and _norm(got.definition_cpp()) != _norm(spec[key]):
                raise Rl2fpgaError(
                    f"hls4ml changed the {key} precision of layer {layer.name} to "
                    f"{got.definition_cpp()} (generated: {spec[key]}); this is a bug in the flow"
                )


def _norm(t: str) -> str:
    """ap type text without spaces and default modes (AP_TRN, AP_WRAP, 0 saturation bits)."""
    t = t.replace(" ", "").replace(",0>", ">")
    return t.replace(",AP_TRN,AP_WRAP>", ">")


# ------------------------------------------------------------------------------ 6. C simulation


class CSim:
    """The compiled C simulation, one frame per call, integers in and out."""

    def __init__(self, project: HlsProject, golden: GoldenModel):
        self.project = project
        self.golden = golden
        model = project.hls_model
        if model._top_function_lib is None:
            compile_quietly(model)
        self.lib = model._top_function_lib
        self.lib.rl2fpga_delta_reset.argtypes = []
        self.lib.rl2fpga_delta_set_threshold.argtypes = [ctypes.c_int, ctypes.c_long]
        self.in_scale = 2.0 ** (-golden.in_fmt.frac)
        self.out_scale = 2.0 ** golden.layers[-1].out_fmt.frac

    def reset(self) -> None:
        """Episode start: every delta stage's x_hat <- 0."""
        self.lib.rl2fpga_delta_reset()

    def set_thresholds(self, thresholds: list[int] | None) -> None:
        """Per golden layer T_int for the delta stages (None: the compiled values)."""
        if thresholds is not None:
            lacking = [self.golden.layers[k].name for k, t in enumerate(thresholds)
                       if t > 0 and k not in self.project.stages]
            if lacking:
                raise Rl2fpgaError(
                    f"layer {lacking[0]} has no delta stage in this firmware (its compiled threshold "
                    "is 0); convert with a threshold > 0 on that layer to simulate one"
                )
        for stage, k in enumerate(self.project.stages):
            t = -1 if thresholds is None else int(thresholds[k])
            self.lib.rl2fpga_delta_set_threshold(stage, t)

    def step(self, x_int: np.ndarray) -> np.ndarray:
        x = (np.asarray(x_int, dtype=np.float64) * self.in_scale).reshape(1, -1)
        y = np.asarray(self.project.hls_model.predict(np.ascontiguousarray(x)), dtype=np.float64)
        q = y.reshape(-1) * self.out_scale
        out = np.round(q).astype(np.int64)
        if not np.array_equal(out.astype(np.float64), q):
            raise Rl2fpgaError("C simulation output is off the output grid; the output precision is wrong")
        return out


def compile_quietly(hls_model: Any) -> None:
    """``hls_model.compile()`` with hls4ml's chatter sent to the log, a clean error on failure."""
    log = Path(hls_model.config.get_output_dir()) / "compile.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    fd = os.dup(1)
    try:
        with open(log, "w") as f:
            sys.stdout.flush()
            os.dup2(f.fileno(), 1)
            try:
                hls_model.compile()
            finally:
                sys.stdout.flush()
                os.dup2(fd, 1)
    except Exception as e:  # g++ failures surface as CalledProcessError / OSError
        raise Rl2fpgaError(f"C simulation library failed to compile ({type(e).__name__}); see {log}") from None
    finally:
        os.close(fd)


@dataclass
class CSimResult:
    frames: int
    mismatches: int
    thresholds: list[int]
    first_mismatch: int | None
    outputs: np.ndarray
    golden_outputs: np.ndarray

    def to_json(self) -> dict[str, Any]:
        return {"frames": self.frames, "mismatches": self.mismatches, "thresholds": self.thresholds,
                "first_mismatch": self.first_mismatch}


def compare_with_golden(
    csim: CSim, frames: np.ndarray, episode_starts: np.ndarray, thresholds: list[int] | None = None, progress: bool = True
) -> CSimResult:
    """Feed ``frames`` (integers, in episode order) one by one to the C simulation and to the
    golden model; a frame whose output integers differ anywhere is a mismatch."""
    from tqdm import tqdm

    golden = csim.golden.copy()
    if thresholds is not None:
        golden.set_thresholds(list(thresholds))
    csim.set_thresholds(golden.thresholds)
    hw, ref = [], []
    for i in tqdm(range(len(frames)), desc="C simulation", disable=None if progress else True, leave=False):  # None: only on a terminal
        if episode_starts[i]:
            csim.reset()
            golden.reset()
        hw.append(csim.step(frames[i]))
        ref.append(golden.step(frames[i])[0].reshape(-1))
    hw_a, ref_a = np.array(hw), np.array(ref)
    bad = np.flatnonzero((hw_a != ref_a).any(axis=1))
    return CSimResult(len(frames), int(bad.size), golden.thresholds, int(bad[0]) if bad.size else None, hw_a, ref_a)


# ------------------------------------------------------------------------------ 7. real frames


def collect_frames(env_cfg: Any, golden: GoldenModel, n: int, seed: int, eps: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """``n`` consecutive real observations on the golden input grid, episode order, and the
    episode-start flags. Actions: the golden policy's (greedy, or the actor's
    ``tanh(mean) * scale + offset`` for continuous actions), epsilon-random (seeded; ``eps=1``
    plays uniformly at random)."""
    from rl2fpga.train.envs import make_env

    env = make_env(env_cfg, seed=seed, training=False)
    rng = np.random.default_rng(seed)
    space = env.action_space

    def act(y: np.ndarray) -> Any:
        if hasattr(space, "n"):
            return int(rng.integers(space.n)) if rng.random() < eps else GoldenModel.action(y)
        if rng.random() < eps:
            return rng.uniform(space.low, space.high).astype(np.float32)
        return squash_action(golden.output_float(y), space.low, space.high)

    player = golden.copy()
    frames, starts = [], []
    obs, _ = env.reset(seed=seed)
    start = True
    try:
        while len(frames) < n:
            x = golden.quantize_input(obs).astype(np.int32)
            frames.append(x)
            starts.append(start)
            if start:
                player.reset()
            y, _ = player.step(x)
            obs, _, term, trunc, _ = env.step(act(y))
            start = term or trunc
            if start:
                obs, _ = env.reset()
    finally:
        env.close()
    return np.stack(frames), np.array(starts, dtype=bool)


# ------------------------------------------------------------------------------ 8. weights


_NUM = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def written_weights(project: HlsProject) -> dict[str, dict[str, np.ndarray]]:
    """The weight and bias arrays hls4ml wrote into firmware/weights/*.h, per golden layer, as
    floats in the order written (read from the files, not from memory)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    wdir = project.out_dir / "firmware" / "weights"
    for layer in project.hls_model.get_layers():
        if "weight" not in layer.weights:
            continue
        arrays = {}
        for key in ("weight", "bias"):
            var = layer.weights[key]
            text = (wdir / f"{var.name}.h").read_text()
            body = text[text.rindex("= {") + 3 : text.rindex("};")]
            arrays[key] = np.array([float(v) for v in _NUM.findall(body)], dtype=np.float64)
        out[layer.name] = arrays
    return out


def check_written_weights(project: HlsProject, golden: GoldenModel) -> dict[str, dict[str, int]]:
    """Written weights == golden integers (as multisets: hls4ml may reorder taps) and pruned
    weights exactly zero; returns nonzero counts per layer."""
    written = written_weights(project)
    golden = golden.widened()  # what was lowered
    counts = {}
    for layer in golden.layers:
        if layer.name not in written:
            raise Rl2fpgaError(f"hls4ml wrote no weights for layer {layer.name}; the project is incomplete")
        w = written[layer.name]["weight"] * 2.0**layer.w_fmt.frac
        b = written[layer.name]["bias"] * 2.0**layer.acc_frac
        ok_w = np.array_equal(np.sort(w), np.sort(layer.w.reshape(-1).astype(np.float64)))
        ok_b = np.array_equal(np.sort(b), np.sort(layer.b.astype(np.float64)))
        if not (ok_w and ok_b):
            raise Rl2fpgaError(f"weights written for layer {layer.name} differ from the golden integers; this is a bug in the flow")
        counts[layer.name] = {"nonzero": int(np.count_nonzero(w)), "zero": int(w.size - np.count_nonzero(w)),
                              "total": int(w.size)}
    return counts


def fmt_json(f: Fmt) -> dict[str, Any]:
    return {**f.to_json(), "ap_type": f.ap_type()}
