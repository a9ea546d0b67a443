"""The layer model of the golden integer model: one class per layer kind, with the geometry and
the arithmetic that differ between kinds, and the one registry that turns the ``kind`` string
stored in ``formats.json`` into a class.

Every layer (valid padding, channels-last) holds integer weights ``w`` (dense ``(n_in, n_out)``,
conv ``(kh, kw, c_in, c_out)``) in ``w_fmt``, integer biases ``b`` already in accumulator LSBs
(``acc_frac = in_fmt.frac + w_fmt.frac``), its input and output formats, an activation and a
delta threshold ``threshold`` (T_int, in input LSBs) of its :class:`DeltaInput`.

Per-output-channel power-of-two scales: ``w_frac`` (one entry per output channel, or ``None`` for
one format per layer) gives channel j's weights the value ``w[..., j] * 2^-w_frac[j]``; every
channel keeps ``w_fmt.bits`` bits and ``w_fmt.frac == max(w_frac)`` (the finest channel). Channel
j accumulates on its own grid ``acc_frac_j = in_fmt.frac + w_frac[j]`` (its bias ``b[j]`` in those
LSBs) and requantizes with its own ``shift_j = acc_frac_j - out_fmt.frac``. :meth:`Layer.widened`
gives the per-layer layer that computes the same integers (weights and biases shifted onto the
finest grid: exact, the rounding sees the same value), for back ends with one weight type per layer.

* :class:`Dense` reads its input flattened in C order (h, w, c) whatever shape the producer
  gave (the Keras Flatten rule): a Flatten is therefore not a layer of the chain, the Dense
  layer's :meth:`Layer.reads_flattened` says where a back end must insert one.
* :class:`Conv2D` is a valid-padding, strided 2-D convolution on an (h, w, c) input.
* :class:`DeltaInput` is the input stage every layer has: ``x_hat_i <- x_i`` when
  ``|x_i - x_hat_i| > T``, else unchanged.

Back ends lower a layer by its class through one table each (:func:`lowering`); nothing outside
this module compares a layer's ``kind`` string (tests/test_architecture.py checks it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

import numpy as np

from rl2fpga.core.fixedpoint import Fmt, round_shift
from rl2fpga.errors import Rl2fpgaError

T = TypeVar("T")

# integers of magnitude below 2^53 are exact in float64, and so is every sum that stays below it
FLOAT_EXACT = 2**53


@dataclass(frozen=True)
class DeltaInput:
    """The delta input stage of a layer: an input is transmitted again (and its weights used)
    only when it moved by more than ``threshold`` since it was last transmitted."""

    threshold: float

    def update(self, x: np.ndarray, x_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(new x_hat, changed mask, transmitted delta) for input ``x`` and kept ``x_hat``; the
        dtype of ``x`` is kept (exact for integers)."""
        d = x - x_hat
        changed = np.abs(d) > self.threshold
        # x itself, not x_hat + d: equal for integers, and exact for the float DeltaNetwork
        return np.where(changed, x, x_hat), changed, np.where(changed, d, 0)


@dataclass
class Layer:
    """What every layer kind shares; the subclasses say how its weights meet its input."""

    kind: ClassVar[str] = ""  # the name in formats.json (serialisation only)
    engine_kind_id: ClassVar[int] = -1  # the KIND parameter of the engine's rl2fpga_layer.sv
    fan_in_axes: ClassVar[tuple[int, ...]] = ()  # the axes of w one output sums over

    name: str
    w: np.ndarray
    b: np.ndarray
    w_fmt: Fmt
    in_fmt: Fmt
    out_fmt: Fmt
    activation: Literal["relu", "linear"]
    in_shape: tuple[int, ...]
    stride: tuple[int, int] = (1, 1)
    threshold: int = 0
    w_frac: tuple[int, ...] | None = None  # per-output-channel weight fractional bits

    def __post_init__(self) -> None:
        if type(self) is Layer:
            raise Rl2fpgaError(f"layer {self.name}: Layer is abstract; build a {' or '.join(LAYER_CLASSES)} layer")
        self.w = np.array(self.w, dtype=np.int64)  # its own copy: frozen once used (_derived)
        self.b = np.asarray(self.b, dtype=np.int64)
        self.in_shape = tuple(int(s) for s in self.in_shape)
        self.stride = (int(self.stride[0]), int(self.stride[1]))
        self._check_shapes()
        if self.b.shape != (self.n_out,):
            raise Rl2fpgaError(f"layer {self.name}: bias shape {self.b.shape} != ({self.n_out},)")
        if self.threshold < 0:
            raise Rl2fpgaError(f"layer {self.name}: negative delta threshold {self.threshold}")
        self._check_w_frac()
        low = int(self.acc_frac_ch.min())
        if self.out_fmt.frac > low:
            raise Rl2fpgaError(
                f"layer {self.name}: output format has {self.out_fmt.frac} fractional bits, more than the accumulator's {low}; use fewer output fractional bits"
            )

    def _check_w_frac(self) -> None:
        if self.w_frac is None:
            return
        wf = tuple(int(f) for f in self.w_frac)
        if len(wf) != self.n_out:
            raise Rl2fpgaError(f"layer {self.name}: {len(wf)} per-channel weight scales for {self.n_out} output channels; give one per channel")
        if max(wf) != self.w_fmt.frac:
            raise Rl2fpgaError(
                f"layer {self.name}: weight format has {self.w_fmt.frac} fractional bits but the finest channel {max(wf)}; make w_fmt the finest channel's format"
            )
        self.w_frac = None if len(set(wf)) == 1 else wf

    # -- per kind (overridden) ------------------------------------------------------------
    def _check_shapes(self) -> None:
        raise NotImplementedError

    @property
    def out_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    def dense_mults(self) -> int:
        """Multiplications of the dense (no sparsity) layer: Table 1 of the 2023 paper."""
        raise NotImplementedError

    def apply(self, w: np.ndarray, x: np.ndarray) -> np.ndarray:
        """``w (*) x`` with this layer's geometry, no bias, in the dtype of the operands: ``w``
        has the shape of ``self.w`` and ``x`` the shape ``in_shape`` (the float DeltaNetwork
        reuses it with float weights)."""
        raise NotImplementedError

    def reads_flattened(self, prev_shape: tuple[int, ...]) -> bool:
        """Whether the layer reads a producer of shape ``prev_shape`` through a Flatten."""
        return False

    # -- shared ---------------------------------------------------------------------------
    @property
    def n_out(self) -> int:
        return int(self.w.shape[-1])

    @property
    def per_channel(self) -> bool:
        """Whether the output channels have different weight scales."""
        return self.w_frac is not None

    @property
    def w_frac_ch(self) -> np.ndarray:
        """Weight fractional bits per output channel, shape (n_out,)."""
        if self.w_frac is None:
            return np.full(self.n_out, self.w_fmt.frac, dtype=np.int64)
        return np.asarray(self.w_frac, dtype=np.int64)

    @property
    def acc_frac(self) -> int:
        """The accumulator's fractional bits (the finest channel's for a per-channel layer)."""
        return self.in_fmt.frac + self.w_fmt.frac

    @property
    def acc_frac_ch(self) -> np.ndarray:
        """Accumulator fractional bits per output channel (the grid of ``b[j]``)."""
        return self.in_fmt.frac + self.w_frac_ch

    @property
    def shifts(self) -> np.ndarray:
        """The requantize shift of every output channel, shape (n_out,)."""
        return self.acc_frac_ch - self.out_fmt.frac

    @property
    def shift(self) -> int:
        """The one requantize shift of a per-layer layer; a per-channel one has :attr:`shifts`."""
        if self.per_channel:
            raise Rl2fpgaError(f"layer {self.name} has per-channel scales: use its shifts (or widened()) instead of one shift")
        return self.acc_frac - self.out_fmt.frac

    def widened(self) -> Layer:
        """The per-layer layer computing the same integers: channel j's weights and bias shifted
        left by ``max(w_frac) - w_frac[j]`` onto the finest grid, the weight format widened to
        hold them (round_shift of ``acc << k`` by ``shift + k`` equals round_shift of ``acc`` by
        ``shift``). A per-layer layer is returned unchanged."""
        if not self.per_channel:
            return self
        up = self.w_fmt.frac - self.w_frac_ch
        bits = self.w_fmt.bits + int(up.max())
        return dataclasses.replace(self, w=self.w << up, b=self.b << up, w_fmt=Fmt(bits, bits - self.w_fmt.frac, self.w_fmt.signed),
                                   w_frac=None)

    @property
    def delta_input(self) -> DeltaInput:
        return DeltaInput(self.threshold)

    def nnz(self) -> int:
        return int(np.count_nonzero(self.w))

    def acc_bound(self) -> int:
        """Largest |acc| any input in ``in_fmt`` can produce (exact, from the weights)."""
        lo, hi = self.in_fmt.qmin, self.in_fmt.qmax
        wpos = np.clip(self.w, 0, None)
        wneg = np.clip(self.w, None, 0)
        # per output: max and min of sum w*x with x in [lo, hi]
        mx = (wpos * hi + wneg * lo).sum(axis=self.fan_in_axes)
        mn = (wpos * lo + wneg * hi).sum(axis=self.fan_in_axes)
        return int(max(np.abs(mx + self.b).max(), np.abs(mn + self.b).max()))

    def acc_bits(self) -> int:
        """Signed accumulator width that provably holds every reachable value."""
        return int(self.acc_bound()).bit_length() + 1

    def matvec(self, x: np.ndarray) -> np.ndarray:
        """``W (*) x`` without bias, exact int64; x has ``in_shape``.

        NumPy multiplies int64 matrices without BLAS (~10x slower than float64). When every
        partial sum provably stays below 2^53 (max |x| times the largest sum of |w| over one
        output's fan-in), the float64 product is the exact integer whatever order BLAS adds in,
        so that path is taken; otherwise the int64 one."""
        x = np.ascontiguousarray(np.asarray(x, dtype=np.int64).reshape(self.in_shape))
        x_max = int(np.abs(x).max(initial=0))
        if x_max * self._w_abs_fanin_max() < FLOAT_EXACT:
            return np.rint(self.apply(self._w_float(), x.astype(np.float64))).astype(np.int64)
        return self.apply(self.w, x)

    def _derived(self) -> dict[str, Any]:
        """Arrays derived from ``w`` (computed once, dropped when ``w`` is replaced). ``w`` is
        made read-only here, so that no in-place edit can leave them stale: assign a new array
        to ``w`` instead."""
        cache = self.__dict__.get("_w_cache")
        if cache is None or cache["w"] is not self.w:
            self.w.setflags(write=False)
            cache = {"w": self.w}
            self.__dict__["_w_cache"] = cache
        return cache

    def _w_abs_fanin_max(self) -> int:
        """max over outputs of sum |w| over the fan-in."""
        d = self._derived()
        if "wabs" not in d:
            d["wabs"] = int(np.abs(self.w).sum(axis=self.fan_in_axes).max(initial=0))
        return d["wabs"]

    def _w_float(self) -> np.ndarray:
        d = self._derived()
        if "wfloat" not in d:
            d["wfloat"] = self.w.astype(np.float64)
        return d["wfloat"]

    def fanout_map(self) -> np.ndarray:
        """Nonzero weights that one changed input element meets, per element of ``in_shape``
        (int64): :meth:`significant` sums it over the changed elements."""
        d = self._derived()
        if "fanout" not in d:
            d["fanout"] = self._fanout_map()
            d["fanout"].setflags(write=False)
        return d["fanout"]

    def _fanout_map(self) -> np.ndarray:
        raise NotImplementedError

    def significant(self, changed: np.ndarray) -> int:
        """(nonzero weight, changed input) pairs actually used; ``changed`` is a bool mask of
        ``in_shape`` (or as many elements, flattened)."""
        changed = np.asarray(changed, dtype=bool)
        fan = self.fanout_map()
        if changed.size != fan.size:
            raise Rl2fpgaError(f"layer {self.name}: change mask of {changed.size} inputs for {fan.size} inputs")
        return int(fan.reshape(-1)[changed.reshape(-1)].sum())

    def requantize(self, acc: np.ndarray) -> np.ndarray:
        """Output-format integers of accumulators ``acc`` (last axis = output channel)."""
        if self.per_channel:
            acc = np.asarray(acc, dtype=np.int64)
            r = np.empty_like(acc)
            shifts = self.shifts
            for s in np.unique(shifts):
                sel = shifts == s
                r[..., sel] = round_shift(acc[..., sel], int(s))
        else:
            r = round_shift(acc, self.shift)
        y = np.clip(r, self.out_fmt.qmin, self.out_fmt.qmax)
        if self.activation == "relu":
            y = np.maximum(y, 0)
        return y

    def fanout_nnz(self) -> np.ndarray:
        """Nonzero weights per (tap, input channel): dense (n_in,), conv (kh, kw, c_in)."""
        return np.count_nonzero(self.w, axis=-1)

    def to_json(self) -> dict[str, Any]:
        """The layer's entry in formats.json (everything but the arrays)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "activation": self.activation,
            "in_shape": list(self.in_shape),
            "out_shape": list(self.out_shape),
            "w_shape": list(self.w.shape),
            "stride": list(self.stride),
            "w_fmt": self.w_fmt.to_json(),
            **({"w_frac": list(self.w_frac)} if self.w_frac is not None else {}),
            "in_fmt": self.in_fmt.to_json(),
            "out_fmt": self.out_fmt.to_json(),
            "acc_frac": self.acc_frac,
            "acc_bits": self.acc_bits(),
            "threshold": self.threshold,
            "nnz": self.nnz(),
            "dense_mults": self.dense_mults(),
        }


@dataclass
class Dense(Layer):
    """A fully connected layer; its input is read flattened in C order (channels last)."""

    kind: ClassVar[str] = "dense"
    engine_kind_id: ClassVar[int] = 0
    fan_in_axes: ClassVar[tuple[int, ...]] = (0,)

    def _check_shapes(self) -> None:
        if self.w.ndim != 2 or int(np.prod(self.in_shape)) != self.w.shape[0]:
            raise Rl2fpgaError(f"layer {self.name}: dense weights {self.w.shape} do not fit input {self.in_shape}")

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (self.n_out,)

    def dense_mults(self) -> int:
        return int(self.w.shape[0] * self.w.shape[1])

    def apply(self, w: np.ndarray, x: np.ndarray) -> np.ndarray:
        return x.reshape(-1) @ w

    def _fanout_map(self) -> np.ndarray:
        return self.fanout_nnz().astype(np.int64).reshape(self.in_shape)

    def reads_flattened(self, prev_shape: tuple[int, ...]) -> bool:
        return len(prev_shape) > 1


@dataclass
class Conv2D(Layer):
    """A valid-padding, strided convolution on an (h, w, c) input."""

    kind: ClassVar[str] = "conv2d"
    engine_kind_id: ClassVar[int] = 1
    fan_in_axes: ClassVar[tuple[int, ...]] = (0, 1, 2)

    def _check_shapes(self) -> None:
        if self.w.ndim != 4 or len(self.in_shape) != 3 or self.in_shape[2] != self.w.shape[2]:
            raise Rl2fpgaError(f"layer {self.name}: conv weights {self.w.shape} do not fit input {self.in_shape}")
        if min(self.stride) < 1:
            raise Rl2fpgaError(f"layer {self.name}: stride {self.stride} must be >= 1")
        if self.out_hw[0] < 1 or self.out_hw[1] < 1:
            raise Rl2fpgaError(f"layer {self.name}: kernel {self.w.shape[:2]} larger than input {self.in_shape[:2]}")

    @property
    def out_hw(self) -> tuple[int, int]:
        kh, kw = self.w.shape[:2]
        h, w = self.in_shape[:2]
        return ((h - kh) // self.stride[0] + 1, (w - kw) // self.stride[1] + 1)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (*self.out_hw, self.n_out)

    def dense_mults(self) -> int:
        kh, kw, cin, cout = self.w.shape
        oh, ow = self.out_hw
        return int(oh * ow * cout * kh * kw * cin)

    def _patches(self, x: np.ndarray) -> np.ndarray:
        kh, kw, cin, _ = self.w.shape
        oh, ow = self.out_hw
        sh, sw = self.stride
        x = np.ascontiguousarray(x)
        s = x.strides
        view = np.lib.stride_tricks.as_strided(
            x, shape=(oh, ow, kh, kw, cin), strides=(s[0] * sh, s[1] * sw, s[0], s[1], s[2]), writeable=False
        )
        return view.reshape(oh * ow, kh * kw * cin)

    def apply(self, w: np.ndarray, x: np.ndarray) -> np.ndarray:
        oh, ow = self.out_hw
        x = np.asarray(x).reshape(self.in_shape)
        return (self._patches(x) @ w.reshape(-1, self.n_out)).reshape(oh, ow, self.n_out)

    def _fanout_map(self) -> np.ndarray:
        # each input element meets the nonzero taps of every output whose receptive field holds it
        nnz = self.fanout_nnz().astype(np.int64)
        kh, kw, _, _ = self.w.shape
        oh, ow = self.out_hw
        sh, sw = self.stride
        fan = np.zeros(self.in_shape, dtype=np.int64)
        for i in range(kh):
            for j in range(kw):
                fan[i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw, :] += nnz[i, j, :]
        return fan


# -- the one place a kind string becomes a class ----------------------------------------------
LAYER_CLASSES: dict[str, type[Layer]] = {cls.kind: cls for cls in (Dense, Conv2D)}


def layer_class(kind: str, where: str = "a layer") -> type[Layer]:
    """The class of a serialised ``kind``; an unknown one is a one-line error."""
    try:
        return LAYER_CLASSES[kind]
    except (KeyError, TypeError):
        raise Rl2fpgaError(
            f"{where}: unknown layer kind '{kind}' (this rl2fpga knows {', '.join(LAYER_CLASSES)}); rerun `rl2fpga quantize` with this version"
        ) from None


def layer_from_json(d: Mapping[str, Any], w: np.ndarray, b: np.ndarray) -> Layer:
    """A layer from its formats.json entry (:meth:`Layer.to_json`) and its arrays."""
    cls = layer_class(d["kind"], f"layer {d.get('name', '?')}")
    return cls(
        name=d["name"],
        w=w,
        b=b,
        w_fmt=Fmt.from_json(d["w_fmt"]),
        in_fmt=Fmt.from_json(d["in_fmt"]),
        out_fmt=Fmt.from_json(d["out_fmt"]),
        activation=d["activation"],
        in_shape=tuple(d["in_shape"]),
        stride=tuple(d["stride"]),
        threshold=int(d["threshold"]),
        w_frac=None if d.get("w_frac") is None else tuple(int(f) for f in d["w_frac"]),
    )


def lowers(table: Mapping[type[Layer], Any], layer: Layer) -> bool:
    """Whether a back end's lowering ``table`` has an entry for ``layer``'s class."""
    return any(cls in table for cls in type(layer).__mro__)


def lowering(table: Mapping[type[Layer], T], layer: Layer, backend: str) -> T:
    """A back end's entry for ``layer`` in its lowering ``table`` (keyed by layer class, the
    nearest base class wins); a class the back end does not lower is a one-line error."""
    for cls in type(layer).__mro__:
        if cls in table:
            return table[cls]
    kinds = ", ".join(c.kind for c in table)
    raise Rl2fpgaError(f"layer {layer.name}: the {backend} back end cannot lower a {layer.kind} layer (it lowers {kinds}); change the model or the back end")
