"""RTL generator of the sparse delta engine: golden model -> top level + memory images.

The hand-written modules in ``hls/engine/rtl/*.sv`` are parameterised; this module only decides the
parameters and writes what depends on the weights:

* per layer a *compressed fan-out list* for every input index (dense: the nonzero rows of
  ``W[i, :]``; conv: the nonzero filters of ``W[i, j, c, :]`` per kernel tap and input channel),
  split by lane (lane ``l`` only holds output ``f = fb * lanes + l``, so the lanes hit distinct
  accumulator banks) and stored in the layer's storage format (:mod:`.formats`: csc, rel,
  bitmap or dense, the smallest by the bits of its images unless ``fmt`` forces one);
* the table ``{len, ptr}`` per list and lane (none for dense), the bias per accumulator word,
  every image with a header line declaring its width and depth (what the stored-bits figure
  reads back, :func:`.formats.measure_images`);
* per layer its SV module: ``rl2fpga_layer`` (block RAM accumulators, dirty lists, list
  FIFOs per lane), or the short path ``rl2fpga_dense_layer`` for a small dense layer stored in
  the dense format (register accumulators, LUT weights: no pipeline fill and drain, two events
  per cycle between short-path layers; :data:`SHORT_PATH_MAX_OUT`, :data:`SHORT_PATH_MAX_WORDS`;
  all accumulator words requantized in one step before a layer taking two events per cycle,
  :func:`rq_all_words`);
* the generated top level ``rl2fpga_engine_top`` (Jinja2 template) wiring the encoder, the
  layers and the output stage, and the SV package ``rl2fpga_pkg.sv`` rendered from the hardware
  contract (:mod:`rl2fpga.hls.engine.contract`: register map, event widths, FIFO depths), whose
  width functions also lay out the memory images here.

Models the engine cannot map are refused here with one line naming the problem and the fix.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rl2fpga import GENERATED_HEADER, __version__
from rl2fpga.core.golden import ACC_LIMIT_BITS, GoldenModel
from rl2fpga.core.layers import Conv2D, Dense, Layer
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.fsutil import atomic_write_json, atomic_write_text
from rl2fpga.hls.engine import contract as hw
from rl2fpga.hls.engine import formats as fm
from rl2fpga.hls.engine.contract import Contract, clog2, lane_mem_file

RTL_SRC = Path(__file__).resolve().parent / "rtl"
TEMPLATES = Path(__file__).resolve().parent / "templates"
PACKAGE_FILE = f"{hw.PACKAGE}.sv"  # rendered from the contract, not copied
# order matters for tools that want packages first (the generated package precedes these)
SV_MODULES = [
    "rl2fpga_serializer.sv",
    "rl2fpga_fifo.sv",
    "rl2fpga_delta_encoder.sv",
    "rl2fpga_list_lookup.sv",
    "rl2fpga_list_walker.sv",
    "rl2fpga_requant.sv",
    "rl2fpga_lane.sv",
    "rl2fpga_layer_ctrl.sv",
    "rl2fpga_layer.sv",
    "rl2fpga_dense_layer.sv",
    "rl2fpga_output.sv",
    "rl2fpga_frame_ctrl.sv",
    "rl2fpga_axil_regs.sv",
]
STACK_MODULE = "rl2fpga_stack_encoder.sv"  # frame-stacked inputs only
SET_QUEUE_MODULE = "rl2fpga_set_queue.sv"  # the frame-stack encoder's event-set queue
# short path (rl2fpga_dense_layer.sv): a dense layer stored in the dense format whose
# accumulators (lanes x fb words) and weights (words per lane) are small enough for registers
# and LUT memory; larger layers use rl2fpga_layer.sv (block RAM, dirty lists)
SHORT_PATH_MODULE = "rl2fpga_dense_layer"
SHORT_PATH_MAX_OUT = 64
SHORT_PATH_MAX_WORDS = 1024
# a short-path layer feeding one that takes two events per cycle requantizes all its words in
# one step (one requantizer per accumulator) when it has at most this many accumulators
SHORT_PATH_RQ_ALL_MAX = 16
TOP = hw.TOP
# xc7z020: 140 BRAM36 of 36 kbit
BRAM36_BITS = 36 * 1024
XC7Z020_BRAM36 = 140
MAX_DIM = hw.MAX_DIM  # event y/x fields (rl2fpga_pkg::YW/XW)
MAX_CHANNELS = hw.MAX_CHANNELS  # event c field


@dataclass
class LayerPlan:
    """Everything the template and the memory images need for one layer."""

    name: str
    kind: str
    kind_id: int
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    in_h: int
    in_w: int
    in_c: int
    kh: int
    kw: int
    sh: int
    sw: int
    out_h: int
    out_w: int
    n_out: int
    w_bits: int
    acc_bits: int
    out_bits: int
    out_signed: int
    shift: int
    relu: int
    last: int
    nnz: int
    words: int
    tab_depth: int
    ptr_bits: int
    len_bits: int
    wmem_depth: int
    fb: int
    wmem_file: str
    tab_file: str
    bias_file: str
    tap_bits: int = 0  # conv: tap index bits of a list entry
    fb_bits: int = 1  # accumulator-word index bits of a list entry
    shift_bits: int = 0  # > 0: per-output-channel shifts of this many bits in shift_file
    shift_file: str = ""
    mem_bits: dict[str, int] = field(default_factory=dict)
    # storage format (hls/engine/formats.py); the defaults read a design.json written before formats
    format: str = "csc"
    format_id: int = 0
    entry_bits: int = 0  # one stored word of the lane images (0: csc's tap + fb + w)
    run_bits: int = 0  # rel: relative index bits
    list_len: int = 0  # dense: words per list part
    fillers: int = 0  # rel: filler words
    stored_bits: int = 0  # bits of the layer's memory images (values, indices, pointers, biases, shifts)
    b_bits: int = 0  # bias image field per lane (sign-extended to acc_bits); 0: acc_bits (older designs)
    module: str = "rl2fpga_layer"  # the SV module of the layer (rl2fpga_dense_layer: the short path)
    rq_all: bool = False  # short path: every accumulator word requantized in one step (see rq_all_words)
    rows: bool = False  # row schedule: each output row walked once final (conv; see generate)
    mark_out: bool = False  # row schedule: a row marker after each output row (the next layer is a row-scheduled conv)
    lanes: int = 0  # MAC lanes of this layer (0: the design's lanes, a design.json written before per-layer lanes)

    @property
    def has_table(self) -> bool:
        return self.format in fm.TABLE_FORMATS


@dataclass
class PackedLists:
    """Compressed fan-out lists of one layer, split by lane: lane ``l`` holds the outputs
    ``f = fb * lanes + l`` of every list, as (fb, w) entries in its own memory."""

    entries: list[np.ndarray]  # per lane: (n_entries,) int64 fields fb << w_bits | (w & mask)
    ptr: np.ndarray  # (n_lists, lanes): first entry of each list's part in the lane memory
    length: np.ndarray  # (n_lists, lanes): entries of each list's part
    fbw: int

    @property
    def nwords(self) -> np.ndarray:
        """Cycles the lanes would need per list if they ran in lockstep (fullest lane)."""
        return self.length.max(axis=1) if self.length.size else np.zeros(0, dtype=np.int64)


@dataclass
class RtlDesign:
    """What :func:`generate` wrote."""

    out_dir: Path
    top: str
    lanes: int
    input_bytes_per_beat: int
    sv_files: list[Path]
    mem_files: list[Path]
    layers: list[LayerPlan]
    n_beats: int
    frame_stack: bool = False  # the host sends the newest frame; full_frame_beats after a reset
    full_frame_beats: int = 0
    schedule: str = "frame"  # frame: every layer walks after its input's end; rows: conv rows as they are final
    row_order: str = "top_down"  # bottom_up: the host sends each plane's rows bottom up
    contract: Contract = field(default_factory=Contract)  # register map and FIFO depths built in

    @property
    def layer_lanes(self) -> list[int]:
        """MAC lanes of each layer (``lanes``, the widest layer's, is what INFO reports)."""
        return [p.lanes or self.lanes for p in self.layers]

    @property
    def stored_bits(self) -> int:
        """Bits of the memory images the generator wrote (values, indices, pointers, biases)."""
        return int(sum(p.stored_bits for p in self.layers))

    @staticmethod
    def read_meta(folder: str | Path) -> dict[str, Any]:
        """``folder``/design.json as written by :func:`generate` (the one reader of that file;
        :meth:`load` builds the design from it, board/ takes the sources and parameters)."""
        from rl2fpga.fsutil import read_json

        path = Path(folder) / "design.json"
        try:
            d = read_json(path)
        except ValueError as e:
            raise Rl2fpgaError(f"{path} is corrupt ({e}); rerun `rl2fpga rtl`") from None
        if not isinstance(d, dict):
            raise Rl2fpgaError(f"{path} is corrupt (not an object); rerun `rl2fpga rtl`")
        return d

    @classmethod
    def load(cls, folder: str | Path) -> RtlDesign:
        """The design :func:`generate` wrote into ``folder`` (from its design.json)."""
        folder = Path(folder)
        d = cls.read_meta(folder)
        try:
            layers = [LayerPlan(**{**p, "in_shape": tuple(p["in_shape"]), "out_shape": tuple(p["out_shape"]),
                                   "wmem_file": f"{p['name']}_w", "tab_file": f"{p['name']}_tab.mem",
                                   "bias_file": f"{p['name']}_b.mem",
                                   "shift_file": hw.shift_mem_file(p["name"]) if p.get("shift_bits") else ""})
                      for p in d["layers"]]
            design = cls(out_dir=folder, top=d["top"], lanes=int(d["lanes"]),
                         input_bytes_per_beat=int(d["input_bytes_per_beat"]),
                         sv_files=[folder / n for n in d["sv_files"]],
                         mem_files=[folder / n for p in layers
                                    for n in ([p.tab_file] if p.has_table else []) + [p.bias_file]
                                    + ([p.shift_file] if p.shift_bits else [])
                                    + [lane_mem_file(p.wmem_file, lane) for lane in range(p.lanes or int(d["lanes"]))]],
                         layers=layers, n_beats=int(d["input_beats"]),
                         frame_stack=bool(d.get("frame_stack", False)),
                         full_frame_beats=int(d.get("full_frame_beats", d["input_beats"])),
                         schedule=str(d.get("schedule", "frame")), row_order=str(d.get("row_order", "top_down")),
                         contract=Contract.from_dict(d.get("contract")))
        except (KeyError, TypeError, ValueError) as e:
            raise Rl2fpgaError(f"{folder}/design.json is corrupt ({e}); rerun `rl2fpga rtl`") from None
        missing = [p for p in design.sv_files + design.mem_files if not p.exists()]
        if missing:
            raise Rl2fpgaError(f"{missing[0]} is missing; rerun `rl2fpga rtl`")
        return design

    def summary(self) -> dict[str, Any]:
        return {
            "top": self.top,
            "lanes": self.lanes,
            "input_bytes_per_beat": self.input_bytes_per_beat,
            "input_beats": self.n_beats,
            "frame_stack": self.frame_stack,
            "full_frame_beats": self.full_frame_beats or self.n_beats,
            "schedule": self.schedule,
            "row_order": self.row_order,
            "sv_files": [p.name for p in self.sv_files],
            "layers": [
                {k: v for k, v in dataclasses.asdict(p).items() if k not in ("wmem_file", "tab_file", "bias_file", "shift_file")}
                for p in self.layers
            ],
            "memory_bits": int(sum(sum(p.mem_bits.values()) for p in self.layers)),
            "stored_bits": self.stored_bits,
            "formats": {p.name: p.format for p in self.layers},
            "contract": self.contract.to_dict(),
        }


def pack_lists(w2: np.ndarray, lanes: int, w_bits: int) -> PackedLists:
    """Split the nonzeros of each list of ``w2`` by lane (``f % lanes``) and store each lane's
    parts back to back: no padding anywhere. ``w2`` is (lists, outputs), or (lists, taps,
    outputs) for convolutions, whose entries then also carry the tap index:
    ``tap << (fbw + w_bits) | fb << w_bits | w`` (the ``csc`` format, :mod:`.formats`)."""
    st = fm.store_csc(w2[:, None, :] if w2.ndim == 2 else w2, lanes, w_bits)
    return PackedLists(entries=st.entries, ptr=st.ptr, length=st.length, fbw=st.fbw)


def conv_lists(w: np.ndarray, stride: tuple[int, int]) -> np.ndarray:
    """A conv kernel (kh, kw, c, f) as one list per input class (y % sh, x % sw, c) holding
    every candidate tap (m, n): ``out[(ry * sw + rx) * c + ch, m * mw + n, f] = w[ry + sh * m,
    rx + sw * n, ch, f]`` (zero where the tap falls outside the kernel). An input at (y, x)
    feeds output (y // sh - m, x // sw - n) through tap (m, n)."""
    kh, kw, c, f = w.shape
    sh, sw = stride
    mh, mw = -(-kh // sh), -(-kw // sw)
    out = np.zeros((sh * sw * c, mh * mw, f), dtype=np.int64)
    for ry in range(sh):
        for rx in range(sw):
            for m in range(mh):
                for n in range(mw):
                    i, j = ry + sh * m, rx + sw * n
                    if i < kh and j < kw:
                        rows = (ry * sw + rx) * c + np.arange(c)
                        out[rows, m * mw + n, :] = w[i, j]
    return out


def check_lanes_count(n_given: int, names: list[str]) -> None:
    """One entry of rtl.layer_lanes per layer, or a one-line error naming the layers."""
    if n_given != len(names):
        raise Rl2fpgaError(f"rtl.layer_lanes has {n_given} entries for {len(names)} layers ({', '.join(names)}); give one per layer")


def layer_lanes(golden: GoldenModel, lanes: int | Sequence[int]) -> list[int]:
    """The MAC lanes of every layer: one count for all, or one per layer (``rtl.layer_lanes``);
    a count out of 1..64 or a list of the wrong length is a one-line error."""
    n = len(golden.layers)
    if isinstance(lanes, int | np.integer):
        per = [int(lanes)] * n
        where = "rtl.lanes"
    else:
        per = [int(v) for v in lanes]
        where = "rtl.layer_lanes"
        check_lanes_count(len(per), [la.name for la in golden.layers])
    for la, v in zip(golden.layers, per, strict=True):
        if not 1 <= v <= 64:
            raise Rl2fpgaError(f"rtl lanes = {v} (layer {la.name}) is out of range; use 1..64 ({where})")
    return per


def check_mappable(golden: GoldenModel, lanes: int | Sequence[int], input_bytes_per_beat: int) -> None:
    """Refuse what the engine cannot map, with one line naming problem and fix."""
    layer_lanes(golden, lanes)
    eb = hw.elem_bytes(golden.in_fmt.bits) if golden.in_fmt.bits <= 16 else 0
    if eb == 0:
        raise Rl2fpgaError(f"network input of {golden.in_fmt.bits} bits is too wide for the engine; quantize the input to <= 16 bits")
    if input_bytes_per_beat < eb or input_bytes_per_beat % eb or input_bytes_per_beat > 128:
        raise Rl2fpgaError(
            f"input_bytes_per_beat = {input_bytes_per_beat} must be a multiple of the {eb}-byte element and <= 128; set rtl.input_bytes_per_beat"
        )
    for k, layer in enumerate(golden.layers):
        where = f"layer {layer.name}"
        if layer.activation not in ("relu", "linear"):
            raise Rl2fpgaError(f"{where}: activation '{layer.activation}' is not supported by the rtl engine; use relu or linear")
        if isinstance(layer, Conv2D) and len(golden.layers[k - 1].out_shape if k else golden.in_shape) != 3:
            raise Rl2fpgaError(f"{where}: conv2d after a dense layer is not supported by the rtl engine; put convolutions first")
        if isinstance(layer, Conv2D) and len(layer.in_shape) != 3:
            raise Rl2fpgaError(f"{where}: conv2d input must be (h, w, c); reshape the model input")
        for fmt_name, fmt in (("input", layer.in_fmt), ("output", layer.out_fmt), ("weight", layer.w_fmt)):
            if fmt.bits > 16:
                raise Rl2fpgaError(f"{where}: {fmt_name} format has {fmt.bits} bits, the rtl engine takes <= 16; quantize to fewer bits")
        dims = layer.in_shape if len(layer.in_shape) == 3 else (1, 1, layer.in_shape[0])
        if max(dims[0], dims[1]) > MAX_DIM or (len(layer.out_shape) == 3 and max(layer.out_shape[:2]) > MAX_DIM):
            raise Rl2fpgaError(f"{where}: feature map {dims[:2]} is larger than {MAX_DIM} rows/columns; downscale the input")
        if dims[2] > MAX_CHANNELS or layer.n_out > MAX_CHANNELS:
            raise Rl2fpgaError(f"{where}: more than {MAX_CHANNELS} channels/units; use a smaller layer")
        need = layer.acc_bits()
        if need > ACC_LIMIT_BITS:
            raise Rl2fpgaError(f"{where}: accumulator needs {need} bits > {ACC_LIMIT_BITS}; use fewer weight or input bits")


def _event_shape(golden: GoldenModel, k: int) -> tuple[int, int, int]:
    """(h, w, c) of the coordinates carried by the events into layer ``k``: the producing
    layer's output shape (a conv feature map stays (oy, ox, f) even when layer ``k`` takes it
    flattened, channels last), or the network input's; a vector is (1, 1, n)."""
    shape = golden.layers[k - 1].out_shape if k else golden.in_shape
    if len(shape) != 3:
        shape = (1, 1, int(np.prod(shape)))
    return int(shape[0]), int(shape[1]), int(shape[2])


def _shift_images(layer: Layer, fb: int, lanes: int) -> tuple[fm.Image, ...]:
    """``<layer>_shift.mem`` of a layer with per-output-channel scales (part ``scale``): row fb
    holds the shifts of outputs ``fb * lanes + lane`` in fields of ``contract.shift_bits`` bits
    (padding channels 0), laid out like the bias image; none for a per-layer layer (its one
    shift is the SV ``SHIFT`` parameter)."""
    if not layer.per_channel:
        return ()
    sb = hw.shift_bits(int(layer.shifts.max()))
    shifts = np.zeros(fb * lanes, dtype=np.int64)
    shifts[: layer.n_out] = layer.shifts
    return (fm.Image(hw.shift_mem_file(layer.name), fm.join_lanes(shifts.reshape(fb, lanes), sb), lanes * sb, "scale"),)


def _plan_layer(golden: GoldenModel, k: int, lanes: int, fmt: str = "auto",
                run_bits: int | None = None) -> tuple[LayerPlan, fm.LayerImages]:
    """Layer ``k``'s parameters and memory images in storage format ``fmt`` (auto: smallest)."""
    layer, n_layers = golden.layers[k], len(golden.layers)
    conv = isinstance(layer, Conv2D)
    # dense: row (y * w + x) * c + ch, the channels-last flatten; conv: one list per input class
    w2 = conv_lists(layer.w, tuple(layer.stride)) if conv else layer.w.reshape(-1, layer.n_out)
    w3 = w2 if conv else w2[:, None, :]
    try:
        store = fm.choose(w3, lanes, layer.w_fmt.bits, fmt, run_bits)
    except Rl2fpgaError as e:
        raise Rl2fpgaError(f"layer {layer.name}: {e}") from None
    in_h, in_w, in_c = _event_shape(golden, k)
    kh, kw = layer.w.shape[:2] if conv else (1, 1)
    out_h, out_w = layer.out_hw if conv else (1, 1)
    fb = -(-layer.n_out // lanes)
    acc_bits = layer.acc_bits()
    out_bits = layer.out_fmt.bits
    last = k == n_layers - 1
    bias = np.zeros(fb * lanes, dtype=np.int64)
    bias[: layer.n_out] = layer.b
    b_bits = min(fm.signed_bits(bias), acc_bits)  # the bias image holds what the biases need
    images = fm.layer_images(layer.name, store, bias.reshape(fb, lanes), b_bits,
                             extra=_shift_images(layer, fb, lanes))
    plan = LayerPlan(
        name=layer.name,
        kind=layer.kind,
        kind_id=layer.engine_kind_id,
        in_shape=tuple(layer.in_shape),
        out_shape=tuple(layer.out_shape),
        in_h=in_h, in_w=in_w, in_c=in_c, kh=kh, kw=kw,
        sh=layer.stride[0] if conv else 1, sw=layer.stride[1] if conv else 1,
        out_h=out_h, out_w=out_w, n_out=layer.n_out,
        w_bits=layer.w_fmt.bits, acc_bits=acc_bits, out_bits=out_bits,
        out_signed=int(layer.out_fmt.signed), shift=int(layer.shifts.max()),
        shift_bits=hw.shift_bits(int(layer.shifts.max())) if layer.per_channel else 0,
        shift_file=hw.shift_mem_file(layer.name) if layer.per_channel else "",
        relu=int(layer.activation == "relu"), last=int(last),
        nnz=layer.nnz(), words=store.words, tab_depth=w3.shape[0], tap_bits=store.tap_bits,
        fb_bits=store.fbw, ptr_bits=store.ptr_bits, len_bits=store.len_bits,
        wmem_depth=store.words, fb=fb,
        wmem_file=f"{layer.name}_w", tab_file=f"{layer.name}_tab.mem", bias_file=f"{layer.name}_b.mem",
        format=store.fmt, format_id=fm.FORMAT_ID[store.fmt], entry_bits=store.entry_bits,
        run_bits=store.run_bits, list_len=store.list_len, fillers=store.fillers, stored_bits=images.bits(),
        b_bits=b_bits, lanes=lanes,
    )
    depth = out_h * out_w * fb
    xb = 1 if last else out_bits
    plan.mem_bits = {
        "weights": images.bits("weights"),
        "table": images.bits("table"),
        "accumulators": lanes * depth * (1 + xb + acc_bits),
        "dirty_lists": lanes * depth * (clog2(out_h) + clog2(out_w) + store.fbw),
        "shifts": images.bits("scale"),
    }
    return plan, images


def use_short_path(plan: LayerPlan) -> bool:
    """Whether a layer takes the short path (rl2fpga_dense_layer.sv): a dense layer stored in
    the dense format (the one without a table) with at most SHORT_PATH_MAX_OUT outputs and
    SHORT_PATH_MAX_WORDS weight words per lane."""
    return (plan.kind_id == Dense.engine_kind_id and not plan.has_table and plan.n_out <= SHORT_PATH_MAX_OUT
            and plan.wmem_depth <= SHORT_PATH_MAX_WORDS)


def takes_pairs(plan: LayerPlan) -> bool:
    """Whether a short-path layer takes two events per cycle (rl2fpga_dense_layer's PAIR: one
    accumulator word per lane and outputs filling at most half the lanes)."""
    return plan.module == SHORT_PATH_MODULE and 2 * plan.n_out <= plan.lanes


def rq_all_words(plan: LayerPlan, nxt: LayerPlan | None) -> bool:
    """Whether a short-path layer requantizes every accumulator word in one step (RQ_ALL): its
    next layer takes two events per cycle, so offering the changed outputs of all words at once
    (two per cycle) shortens the frame, and it has at most SHORT_PATH_RQ_ALL_MAX accumulators
    (the requantizers it costs). Otherwise one word per step (a consumer taking one event per
    cycle, or per word, keeps up with that anyway)."""
    words = -(-plan.n_out // plan.lanes)
    return (plan.module == SHORT_PATH_MODULE and nxt is not None and takes_pairs(nxt)
            and words * plan.lanes <= SHORT_PATH_RQ_ALL_MAX)


def plan_images(golden: GoldenModel, lanes: int | Sequence[int], fmt: str = "auto",
                run_bits: int | None = None) -> list[tuple[LayerPlan, fm.LayerImages]]:
    """Every layer's plan and memory images, as :func:`generate` writes them (the compression
    accounting sums the same images' bits); ``lanes``: one count for every layer or one each."""
    per = layer_lanes(golden, lanes)
    return [_plan_layer(golden, k, per[k], fmt, run_bits) for k in range(len(golden.layers))]


def can_stack(golden: GoldenModel) -> bool:
    """Whether the input can be a frame stack kept in fabric: (h, w, K >= 2) of <= 8-bit
    elements (the K channels are the K newest frames, oldest first)."""
    shape = golden.in_shape
    return len(shape) == 3 and shape[2] >= 2 and golden.in_fmt.bits <= 8


def use_frame_stack(cfg: Any, golden: GoldenModel) -> bool:
    """rtl.frame_stack for this run: on for Atari frame stacks (train/envs.py stacks the K
    newest frames, channels last), off for anything else (e.g. MinAtar's object channels)."""
    from rl2fpga.train.envs import is_atari

    return bool(getattr(cfg.rtl, "frame_stack", True)) and is_atari(cfg.env.id) and can_stack(golden)


stack_geometry = hw.stack_geometry


def _write_images(images: fm.LayerImages, out_dir: Path) -> list[Path]:
    """The layer's ``$readmemh`` images, each with its declared width and depth."""
    for im in images.images:
        atomic_write_text(out_dir / im.name, fm.image_text(im))
    return [out_dir / im.name for im in images.images]


def _check_budget(golden: GoldenModel, frame_stack: bool, ctr: Contract) -> None:
    """Refuse a frame stack the model cannot take, too many layers, or weights beyond the BRAM."""
    if frame_stack and not can_stack(golden):
        raise Rl2fpgaError(
            f"rtl.frame_stack needs an (h, w, frames) input of <= 8-bit pixels, this model takes {golden.in_shape} at {golden.in_fmt.bits} bits; set rtl.frame_stack=false"
        )
    weight_bits = sum(layer.nnz() * layer.w_fmt.bits for layer in golden.layers)
    if weight_bits > XC7Z020_BRAM36 * BRAM36_BITS:
        raise Rl2fpgaError(
            f"the nonzero weights alone need {weight_bits / 8 / 1024:.0f} KiB > the xc7z020's {XC7Z020_BRAM36 * BRAM36_BITS / 8 / 1024:.0f} KiB of BRAM; prune harder"
        )
    n = len(golden.layers)
    if n > ctr.regs.max_layers:
        raise Rl2fpgaError(f"{n} layers > {ctr.regs.max_layers} registers in the map; use fewer layers")


SCHEDULES = ("frame", "rows")
LINK0_FIFO_DEPTH = 32  # row schedule: events the encoder may send ahead while layer 0 walks a row
ENCODER_SET_QUEUE = 8  # row schedule: compared beats' event sets queued in the frame-stack encoder
ROW_ORDERS = ("top_down", "bottom_up")


def check_schedule(golden: GoldenModel, frame_stack: bool, schedule: str, row_order: str) -> None:
    """rtl.schedule and rtl.row_order fit this model and input stage (one-line errors)."""
    if schedule not in SCHEDULES:
        raise Rl2fpgaError(f"rtl.schedule = {schedule!r} is not one of {', '.join(SCHEDULES)}; set rtl.schedule")
    if row_order not in ROW_ORDERS:
        raise Rl2fpgaError(f"rtl.row_order = {row_order!r} is not one of {', '.join(ROW_ORDERS)}; set rtl.row_order")
    if (schedule == "rows" or row_order == "bottom_up") and not frame_stack:
        raise Rl2fpgaError(
            f"rtl.schedule = {schedule} with rtl.row_order = {row_order} needs the frame-stack input stage (rtl.frame_stack on an Atari frame stack); set rtl.schedule=frame and rtl.row_order=top_down"
        )
    if schedule == "rows" and golden.layers[0].w.ndim != 4:
        raise Rl2fpgaError("rtl.schedule = rows needs a convolution as the first layer; set rtl.schedule=frame")


def _input_geometry(golden: GoldenModel, beat_bytes: int, frame_stack: bool) -> tuple[int, int, int]:
    """(beats of a frame, beats of a full frame, bits the input stage keeps in fabric)."""
    in_bits = golden.in_fmt.bits
    if frame_stack:
        n_beats, full_beats = stack_geometry(golden.in_shape, beat_bytes)
        # x_hat of every element + the kept frames (all but the newest)
        return n_beats, full_beats, n_beats * beat_bytes * (2 * golden.in_shape[2] - 1) * in_bits
    n_beats = hw.frame_beats(int(np.prod(golden.in_shape)), in_bits, beat_bytes)
    return n_beats, n_beats, n_beats * (beat_bytes // hw.elem_bytes(in_bits)) * in_bits


def _render_top(golden: GoldenModel, plans: list[LayerPlan], lanes: int, beat_bytes: int, frame_stack: bool,
                ctr: Contract, row_order: str = "top_down") -> str:
    import jinja2

    in_shape = golden.in_shape if len(golden.in_shape) == 3 else (1, 1, int(np.prod(golden.in_shape)))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined, keep_trailing_newline=True
    )
    thresh_init = "{" + ", ".join(f"32'd{t}" for t in reversed(golden.thresholds)) + "}"
    desc = row_order == "bottom_up"
    info = (len(plans) | (lanes << 8) | (beat_bytes << 16) | (hw.INFO_FRAME_STACK if frame_stack else 0)
            | (hw.INFO_BOTTOM_UP if desc else 0))
    first = plans[0]
    return env.get_template("rl2fpga_engine_top.sv.j2").render(
        header=GENERATED_HEADER,
        model_name=str(golden.meta.get("name", "model")),
        top=TOP,
        ports=hw.axi_ports(ctr.regs.addr_width, 8 * beat_bytes),
        layers=plans,
        lanes=lanes,
        bytes=beat_bytes,
        info=info,
        thresh_init=thresh_init,
        short_module=SHORT_PATH_MODULE,
        enc={"eb": hw.elem_bytes(golden.in_fmt.bits), "in_bits": golden.in_fmt.bits,
             "in_signed": int(golden.in_fmt.signed), "stack": frame_stack,
             "h": in_shape[0], "w": in_shape[1], "c": in_shape[2],
             "mark": int(first.rows), "mark_sh": first.sh, "mark_ph": 0 if desc else (first.kh - 1) % first.sh,
             "setq": ENCODER_SET_QUEUE if first.rows else 0},
        desc=int(desc),
        link_fifo=LINK0_FIFO_DEPTH if first.rows else 0,
    )


def generate(golden: GoldenModel, out_dir: str | Path, lanes: int | Sequence[int] = 4, input_bytes_per_beat: int = 8,
             frame_stack: bool = False, contract: Contract | None = None, fmt: str = "auto",
             run_bits: int | None = None, short_path: bool = True, schedule: str = "frame",
             row_order: str = "top_down") -> RtlDesign:
    """Write the engine for ``golden`` into ``out_dir``: the SystemVerilog sources (the package
    rendered from ``contract``, copied modules, generated top), the ``$readmemh`` images and
    ``design.json``. ``lanes``: MAC lanes of every layer, or a list with one count per layer
    (``rtl.layer_lanes``: e.g. more for a layer whose fan-out lists are long, fewer for an
    output layer with a few units). ``frame_stack``: the input is a stack of frames (see :func:`can_stack`)
    kept in fabric; the host sends only the newest (rl2fpga_stack_encoder.sv). ``contract``:
    the register map and FIFO depths to build in (default :data:`contract.DEFAULT`). ``fmt``:
    the weight storage format of every layer (:mod:`.formats`; auto: the smallest per layer);
    ``run_bits``: rel's index width (default: the smallest layer). ``short_path``: small
    dense-format dense layers take rl2fpga_dense_layer (:func:`use_short_path`); False: every
    layer the general rl2fpga_layer (comparisons, the by-module resource check). ``schedule``:
    frame (every layer walks its dirty accumulators once its input's end marker has passed) or
    rows (a conv layer walks each output row as soon as the input rows it reads are in, while
    the frame still streams in; needs the frame stack). ``row_order``: bottom_up = the host sends
    each plane's rows bottom up (the rows that change least last: with rows, what is left after
    the last beat is their chain; needs the frame stack)."""
    ctr = contract or hw.DEFAULT
    check_mappable(golden, lanes, input_bytes_per_beat)
    check_schedule(golden, frame_stack, schedule, row_order)
    _check_budget(golden, frame_stack, ctr)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plans, mem_files = [], []
    for plan, images in plan_images(golden, lanes, fmt, run_bits):
        mem_files += _write_images(images, out_dir)
        if short_path and use_short_path(plan):
            plan.module = SHORT_PATH_MODULE
            plan.mem_bits["dirty_lists"] = 0  # registers, every word requantized: no dirty lists
        plans.append(plan)
    for k, plan in enumerate(plans):
        plan.rq_all = rq_all_words(plan, plans[k + 1] if k + 1 < len(plans) else None)
        plan.rows = schedule == "rows" and golden.layers[k].w.ndim == 4 and plan.module != SHORT_PATH_MODULE
    for k, plan in enumerate(plans):
        plan.mark_out = plan.rows and k + 1 < len(plans) and plans[k + 1].rows
    widest = max(p.lanes for p in plans)  # INFO's and design.json's lanes
    n_beats, full_beats, input_bits = _input_geometry(golden, input_bytes_per_beat, frame_stack)
    total_bits = sum(sum(p.mem_bits.values()) for p in plans) + input_bits
    if total_bits > XC7Z020_BRAM36 * BRAM36_BITS:
        raise Rl2fpgaError(
            f"engine memories need {total_bits / 8 / 1024:.0f} KiB > the xc7z020's {XC7Z020_BRAM36 * BRAM36_BITS / 8 / 1024:.0f} KiB of BRAM; prune harder, use fewer lanes or rtl.format=auto"
        )
    atomic_write_text(out_dir / PACKAGE_FILE, hw.render_sv_package(ctr))
    sv_files = [out_dir / PACKAGE_FILE]
    for name in SV_MODULES + ([STACK_MODULE, SET_QUEUE_MODULE] if frame_stack else []):
        atomic_write_text(out_dir / name, (RTL_SRC / name).read_text())
        sv_files.append(out_dir / name)
    sv_files.append(out_dir / f"{TOP}.sv")
    atomic_write_text(sv_files[-1], _render_top(golden, plans, widest, input_bytes_per_beat, frame_stack, ctr, row_order))
    design = RtlDesign(
        out_dir=out_dir, top=TOP, lanes=widest, input_bytes_per_beat=input_bytes_per_beat,
        sv_files=sv_files, mem_files=mem_files, layers=plans,
        n_beats=n_beats, frame_stack=frame_stack, full_frame_beats=full_beats, contract=ctr,
        schedule=schedule, row_order=row_order,
    )
    atomic_write_json(out_dir / "design.json", {"generator": f"rl2fpga {__version__}", **design.summary()})
    return design


def lint(design: RtlDesign, log_path: Path | None = None) -> str:
    """``verilator --lint-only -Wall`` on the design; returns the log, raises on any warning."""
    import shutil
    import subprocess

    from rl2fpga.errors import ToolMissing

    if shutil.which("verilator") is None:
        raise ToolMissing("verilator is not on PATH; install it (apt install verilator) to lint the engine")
    cmd = ["verilator", "--lint-only", "-Wall", "--top-module", design.top, *[p.name for p in design.sv_files]]
    res = subprocess.run(cmd, cwd=design.out_dir, capture_output=True, text=True)
    log = " ".join(cmd) + "\n" + res.stdout + res.stderr
    if log_path is not None:
        atomic_write_text(log_path, log)
    if res.returncode != 0:
        first = next((ln for ln in (res.stdout + res.stderr).splitlines() if ln.startswith("%")), "see the lint log")
        raise Rl2fpgaError(f"verilator lint of the engine failed: {first}; see {log_path or 'the log'}")
    return log
