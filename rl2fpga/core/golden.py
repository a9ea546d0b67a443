"""The golden integer model: the one meaning every hardware form is checked against.

Per layer (dense or valid-padding conv2d, channels-last):

* integer weights ``w`` (dense: ``(n_in, n_out)``; conv: ``(kh, kw, c_in, c_out)``), their
  format ``w_fmt``; integer biases ``b`` already in accumulator LSBs
  (``acc_frac = in_fmt.frac + w_fmt.frac``);
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
from typing import Any, Literal

import numpy as np

from rl2fpga.errors import Rl2fpgaError

FORMAT_VERSION = 1
ACC_LIMIT_BITS = 48  # accumulators the hardware keeps (DSP48 P register)


@dataclass(frozen=True)
class Fmt:
    """A fixed-point format in hls4ml/ap_fixed terms: ``bits`` total, ``integer`` bits before
    the binary point (sign bit included when signed). Value = q * 2^-frac."""

    bits: int
    integer: int
    signed: bool = True

    @property
    def frac(self) -> int:
        return self.bits - self.integer

    @property
    def qmin(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def qmax(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def lsb(self) -> float:
        return 2.0 ** (-self.frac)

    def ap_type(self) -> str:
        base = "ap_fixed" if self.signed else "ap_ufixed"
        return f"{base}<{self.bits},{self.integer},AP_RND_CONV,AP_SAT>"

    def to_json(self) -> dict[str, Any]:
        return {"bits": self.bits, "integer": self.integer, "signed": self.signed}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Fmt:
        return cls(int(d["bits"]), int(d["integer"]), bool(d["signed"]))


def round_shift(acc: np.ndarray, shift: int) -> np.ndarray:
    """``acc * 2^-shift`` rounded half to even (ap_fixed AP_RND_CONV, tf.round), exact in int64."""
    acc = np.asarray(acc, dtype=np.int64)
    if shift <= 0:
        return acc << (-shift)
    q = acc >> shift  # floor
    rem = acc - (q << shift)
    half = 1 << (shift - 1)
    up = (rem > half) | ((rem == half) & ((q & 1) == 1))
    return q + up.astype(np.int64)


def quantize_float(x: np.ndarray, fmt: Fmt) -> np.ndarray:
    """Floats onto ``fmt``'s grid (round half to even, saturate) as integers."""
    q = np.round(np.asarray(x, dtype=np.float64) * (2.0**fmt.frac))
    return np.clip(q, fmt.qmin, fmt.qmax).astype(np.int64)


@dataclass
class GoldenLayer:
    name: str
    kind: Literal["dense", "conv2d"]
    w: np.ndarray
    b: np.ndarray
    w_fmt: Fmt
    in_fmt: Fmt
    out_fmt: Fmt
    activation: Literal["relu", "linear"]
    in_shape: tuple[int, ...]
    stride: tuple[int, int] = (1, 1)
    threshold: int = 0

    def __post_init__(self) -> None:
        self.w = np.asarray(self.w, dtype=np.int64)
        self.b = np.asarray(self.b, dtype=np.int64)
        self.in_shape = tuple(int(s) for s in self.in_shape)
        self.stride = (int(self.stride[0]), int(self.stride[1]))
        if self.kind == "dense":
            if self.w.ndim != 2 or int(np.prod(self.in_shape)) != self.w.shape[0]:
                raise Rl2fpgaError(f"layer {self.name}: dense weights {self.w.shape} do not fit input {self.in_shape}")
        elif self.kind == "conv2d":
            if self.w.ndim != 4 or len(self.in_shape) != 3 or self.in_shape[2] != self.w.shape[2]:
                raise Rl2fpgaError(f"layer {self.name}: conv weights {self.w.shape} do not fit input {self.in_shape}")
            if self.out_hw[0] < 1 or self.out_hw[1] < 1:
                raise Rl2fpgaError(f"layer {self.name}: kernel {self.w.shape[:2]} larger than input {self.in_shape[:2]}")
        else:
            raise Rl2fpgaError(f"layer {self.name}: unsupported kind '{self.kind}' (dense and conv2d only)")
        if self.b.shape != (self.n_out,):
            raise Rl2fpgaError(f"layer {self.name}: bias shape {self.b.shape} != ({self.n_out},)")
        if self.threshold < 0:
            raise Rl2fpgaError(f"layer {self.name}: negative delta threshold {self.threshold}")
        if self.out_fmt.frac > self.acc_frac:
            raise Rl2fpgaError(
                f"layer {self.name}: output format has {self.out_fmt.frac} fractional bits, more than the accumulator's {self.acc_frac}; use fewer output fractional bits"
            )

    # -- shapes ---------------------------------------------------------------------------
    @property
    def n_out(self) -> int:
        return int(self.w.shape[-1])

    @property
    def out_hw(self) -> tuple[int, int]:
        kh, kw = self.w.shape[:2]
        h, w = self.in_shape[:2]
        return ((h - kh) // self.stride[0] + 1, (w - kw) // self.stride[1] + 1)

    @property
    def out_shape(self) -> tuple[int, ...]:
        if self.kind == "dense":
            return (self.n_out,)
        return (*self.out_hw, self.n_out)

    @property
    def acc_frac(self) -> int:
        return self.in_fmt.frac + self.w_fmt.frac

    @property
    def shift(self) -> int:
        return self.acc_frac - self.out_fmt.frac

    def dense_mults(self) -> int:
        """Multiplications of the dense (no sparsity) layer: Table 1 of the 2023 paper."""
        if self.kind == "dense":
            return int(self.w.shape[0] * self.w.shape[1])
        kh, kw, cin, cout = self.w.shape
        oh, ow = self.out_hw
        return int(oh * ow * cout * kh * kw * cin)

    def nnz(self) -> int:
        return int(np.count_nonzero(self.w))

    def acc_bound(self) -> int:
        """Largest |acc| any input in ``in_fmt`` can produce (exact, from the weights)."""
        lo, hi = self.in_fmt.qmin, self.in_fmt.qmax
        wpos = np.clip(self.w, 0, None)
        wneg = np.clip(self.w, None, 0)
        axes = 0 if self.kind == "dense" else (0, 1, 2)
        # per output: max of sum w*x with x in [lo, hi]
        mx = (wpos * hi + wneg * lo).sum(axis=axes)
        mn = (wpos * lo + wneg * hi).sum(axis=axes)
        return int(max(np.abs(mx + self.b).max(), np.abs(mn + self.b).max()))

    def acc_bits(self) -> int:
        """Signed accumulator width that provably holds every reachable value."""
        return int(self.acc_bound()).bit_length() + 1

    # -- arithmetic -----------------------------------------------------------------------
    def _patches(self, x: np.ndarray) -> np.ndarray:
        kh, kw, cin, _ = self.w.shape
        oh, ow = self.out_hw
        sh, sw = self.stride
        s = x.strides
        view = np.lib.stride_tricks.as_strided(
            x, shape=(oh, ow, kh, kw, cin), strides=(s[0] * sh, s[1] * sw, s[0], s[1], s[2]), writeable=False
        )
        return view.reshape(oh * ow, kh * kw * cin)

    def matvec(self, x: np.ndarray) -> np.ndarray:
        """``W (*) x`` without bias, exact int64; x has ``in_shape``."""
        x = np.ascontiguousarray(np.asarray(x, dtype=np.int64).reshape(self.in_shape))
        if self.kind == "dense":
            return x.reshape(-1) @ self.w
        oh, ow = self.out_hw
        return (self._patches(x) @ self.w.reshape(-1, self.n_out)).reshape(oh, ow, self.n_out)

    def requantize(self, acc: np.ndarray) -> np.ndarray:
        y = np.clip(round_shift(acc, self.shift), self.out_fmt.qmin, self.out_fmt.qmax)
        if self.activation == "relu":
            y = np.maximum(y, 0)
        return y

    def fanout_nnz(self) -> np.ndarray:
        """Nonzero weights per (tap, input channel): dense (n_in,), conv (kh, kw, c_in)."""
        return np.count_nonzero(self.w, axis=-1)

    def significant(self, changed: np.ndarray) -> int:
        """(nonzero weight, changed input) pairs actually used; ``changed`` is a bool mask."""
        changed = np.asarray(changed, dtype=bool).reshape(self.in_shape)
        nnz = self.fanout_nnz()
        if self.kind == "dense":
            return int(nnz[changed.reshape(-1)].sum())
        kh, kw, _, _ = self.w.shape
        oh, ow = self.out_hw
        sh, sw = self.stride
        c = changed.astype(np.int64)
        total = 0
        for i in range(kh):
            for j in range(kw):
                sub = c[i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw, :]
                total += int(sub.sum(axis=(0, 1)) @ nnz[i, j, :])
        return total


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


class GoldenModel:
    """A chain of :class:`GoldenLayer` with delta state."""

    def __init__(self, layers: list[GoldenLayer], meta: dict[str, Any] | None = None):
        if not layers:
            raise Rl2fpgaError("golden model has no layers")
        for a, b in zip(layers, layers[1:], strict=False):
            if int(np.prod(a.out_shape)) != int(np.prod(b.in_shape)):
                raise Rl2fpgaError(f"layer {b.name} expects {b.in_shape} but {a.name} gives {a.out_shape}")
            if a.out_fmt != b.in_fmt:
                raise Rl2fpgaError(f"layer {b.name} input format {b.in_fmt} != {a.name} output format {a.out_fmt}")
        self.layers = layers
        self.meta = dict(meta or {})
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
            d = x - self.x_hat[k]
            changed = np.abs(d) > layer.threshold
            delta = np.where(changed, d, 0)
            self.x_hat[k] = self.x_hat[k] + delta
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
        layers = []
        for layer in self.layers:
            layers.append(
                {
                    "name": layer.name,
                    "kind": layer.kind,
                    "activation": layer.activation,
                    "in_shape": list(layer.in_shape),
                    "out_shape": list(layer.out_shape),
                    "w_shape": list(layer.w.shape),
                    "stride": list(layer.stride),
                    "w_fmt": layer.w_fmt.to_json(),
                    "in_fmt": layer.in_fmt.to_json(),
                    "out_fmt": layer.out_fmt.to_json(),
                    "acc_frac": layer.acc_frac,
                    "acc_bits": layer.acc_bits(),
                    "threshold": layer.threshold,
                    "nnz": layer.nnz(),
                    "dense_mults": layer.dense_mults(),
                }
            )
        return {"format_version": FORMAT_VERSION, "meta": self.meta, "layers": layers}

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
        layers = []
        try:
            for d in spec["layers"]:
                layers.append(
                    GoldenLayer(
                        name=d["name"],
                        kind=d["kind"],
                        w=arrays[f"{d['name']}.w"],
                        b=arrays[f"{d['name']}.b"],
                        w_fmt=Fmt.from_json(d["w_fmt"]),
                        in_fmt=Fmt.from_json(d["in_fmt"]),
                        out_fmt=Fmt.from_json(d["out_fmt"]),
                        activation=d["activation"],
                        in_shape=tuple(d["in_shape"]),
                        stride=tuple(d["stride"]),
                        threshold=int(d["threshold"]),
                    )
                )
        except KeyError as e:
            raise Rl2fpgaError(f"golden model in {folder} is corrupt (missing {e}); rerun `rl2fpga quantize`") from None
        return cls(layers, spec.get("meta"))

    def copy(self) -> GoldenModel:
        return GoldenModel([dataclasses.replace(layer) for layer in self.layers], self.meta)


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
) -> GoldenModel:
    """A random integer model for tests: ``specs`` items are ("dense", n_out) or
    ("conv2d", filters, k, stride). The last layer is linear into ``out_fmt``. ``flatten``
    gives a dense layer after a convolution the 1-D input shape a Keras Flatten produces (as
    the QKeras extraction does) instead of the feature map's (h, w, c)."""
    layers = []
    shape = tuple(in_shape)
    fmt_in = in_fmt
    w_fmt = Fmt(w_bits, 1, True)
    for i, spec in enumerate(specs):
        last = i == len(specs) - 1
        o_fmt = out_fmt if last else act
        if spec[0] == "dense":
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
        acc_frac = fmt_in.frac + w_fmt.frac
        b = rng.integers(-(1 << (acc_frac - 1)), 1 << (acc_frac - 1), size=w.shape[-1])
        layer = GoldenLayer(f"l{i}", spec[0], w, b, w_fmt, fmt_in, o_fmt, "linear" if last else "relu",
                            shape, stride, threshold)
        layers.append(layer)
        shape = layer.out_shape
        fmt_in = o_fmt
    return GoldenModel(layers)
