"""The sparse delta engine's hardware contract, defined once: the AXI4-Lite register map, the
stream formats, the widths of the memory images, the top level's name and ports, and the depths
of the engine's internal FIFOs.

Everything else reads it: the generator renders the SystemVerilog package
``rl2fpga_pkg.sv`` (``templates/rl2fpga_pkg.sv.j2``) and the top level's port list from it, the
testbench and the PYNQ driver address registers through a :class:`RegisterMap`, and the
generator, the resource estimate and the driver compute widths and pack streams with the
functions here. The generated ``design.json`` records the contract a design was built with
(:meth:`Contract.to_dict`), so a design built with a moved register is driven at the moved
address.

This file depends on the standard library and numpy only: the deploy bundle copies it verbatim
next to ``driver.py`` (a PYNQ board has no rl2fpga). The SV and C++ renderers import jinja2
and rl2fpga lazily.

Registers are 32 bits at byte addresses. Counters describe the *last finished frame* unless
named TOTAL. Writes to read-only registers are ignored.

Input stream (AXI4-Stream, ``8 * input_bytes_per_beat`` bits): the frame's elements in C order
of the network input (h, w, c for images), each element in :func:`elem_bytes` bytes
little-endian (1 byte for inputs of <= 8 bits, 2 for <= 16 bits, two's complement when signed);
elements packed densely across beats; TLAST on the frame's last beat; unused bytes of the last
beat are zero. Frame-stack engines (INFO bit 24; input (h, w, K) = the K newest frames, oldest
first) take only the newest frame: its h * w pixels, one byte each, padded to whole beats;
after a state reset or a CTRL_FULL_FRAME write the next frame is the whole stack as K such
planes, oldest first (rl2fpga_stack_encoder.sv). Output stream (32-bit beats): the n_out output
integers sign-extended, then the greedy action; TLAST on the action beat.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

TOP = "rl2fpga_engine_top"
PACKAGE = "rl2fpga_pkg"  # the generated SV package (file rl2fpga_pkg.sv)
ENGINE_ID = 0x524C3246  # "RL2F"

# bit fields (fixed: the RTL decodes them by bit position, the map only moves whole registers)
CTRL_RESET_STATE = 0x1  # self-clearing: x_hat, accumulators -> bias
CTRL_RESET_COUNTERS = 0x2
CTRL_FULL_FRAME = 0x4  # frame-stack engines: the next frame is a full stack (K planes)
STATUS_BUSY = 0x1
STATUS_DONE = 0x2  # a frame finished since the last read of STATUS
STATUS_ERROR = 0x4  # stream error (TLAST misplaced) since the last read of STATUS
INFO_FRAME_STACK = 1 << 24  # INFO: bits 7:0 layers, 15:8 lanes, 23:16 input bytes per beat
INFO_BOTTOM_UP = 1 << 25  # INFO: the host sends each plane's rows bottom up (rtl.row_order)

# event links between stages: field widths of the packed payload {y, x, c, value}
EVENT_Y_BITS = 8  # row coordinate: feature maps up to 255 high
EVENT_X_BITS = 8  # column coordinate
EVENT_C_BITS = 16  # channel / vector index
EVENT_V_BITS = 18  # signed delta (or output value): holds any (16+1)-bit difference
MAX_DIM = (1 << EVENT_Y_BITS) - 1
MAX_CHANNELS = (1 << EVENT_C_BITS) - 1


@dataclass(frozen=True)
class RegisterMap:
    """Byte offsets of the AXI4-Lite registers. ``threshold_base + 4 k`` holds T_int of layer
    k (RW); ``events_base + 8 k`` and ``macs_base + 8 k`` its changed inputs and MACs of the
    last frame (R)."""

    ctrl: int = 0x00  # W: CTRL_* bits
    status: int = 0x04  # R: STATUS_* bits (DONE and ERROR clear on read)
    id: int = 0x08  # R: ENGINE_ID
    info: int = 0x0C  # R: layers, lanes, input bytes per beat, INFO_FRAME_STACK
    frames: int = 0x10  # R: frames finished since counter reset
    cycles: int = 0x14  # R: cycles of the last frame, first input beat accepted -> action beat sent
    total_cycles_lo: int = 0x18  # R
    total_cycles_hi: int = 0x1C  # R
    action: int = 0x20  # R: greedy action of the last frame
    threshold_base: int = 0x40
    events_base: int = 0x80
    macs_base: int = 0x84
    max_layers: int = 16
    addr_width: int = 8

    THRESHOLD_STRIDE = 4
    COUNTER_STRIDE = 8  # EVENTS[k] and MACS[k] interleave

    def __post_init__(self) -> None:
        self.validate()

    def threshold_reg(self, k: int) -> int:
        return self.threshold_base + self.THRESHOLD_STRIDE * k

    def events_reg(self, k: int) -> int:
        return self.events_base + self.COUNTER_STRIDE * k

    def macs_reg(self, k: int) -> int:
        return self.macs_base + self.COUNTER_STRIDE * k

    def scalars(self) -> dict[str, int]:
        """The single registers by upper-case name (as the SV package names them)."""
        names = ("ctrl", "status", "id", "info", "frames", "cycles", "total_cycles_lo", "total_cycles_hi", "action")
        return {n.upper(): getattr(self, n) for n in names}

    def addresses(self) -> dict[int, str]:
        """Every mapped byte address -> register name; raises on an overlap."""
        regs = [(n, a) for n, a in self.scalars().items()]
        for k in range(self.max_layers):
            regs += [(f"THRESHOLD[{k}]", self.threshold_reg(k)), (f"EVENTS[{k}]", self.events_reg(k)),
                     (f"MACS[{k}]", self.macs_reg(k))]
        out: dict[int, str] = {}
        for name, addr in regs:
            if addr in out:
                raise ValueError(f"register map: {name} and {out[addr]} both sit at {addr:#x}; move one of them")
            out[addr] = name
        return out

    def validate(self) -> None:
        if not 1 <= self.max_layers <= 255:
            raise ValueError(f"register map: max_layers = {self.max_layers} must be 1..255 (INFO holds 8 bits)")
        for addr, name in self.addresses().items():
            if addr % 4 or not 0 <= addr < (1 << self.addr_width):
                raise ValueError(
                    f"register map: {name} at {addr:#x} is not a 4-byte aligned address below 2^{self.addr_width}; "
                    "fix its offset or raise addr_width")

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RegisterMap:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"register map: unknown fields {sorted(unknown)}; regenerate the design")
        return cls(**{k: int(v) for k, v in d.items()})


@dataclass(frozen=True)
class Contract:
    """The register map plus the engine's build-time constants that the RTL and Python share."""

    regs: RegisterMap = field(default_factory=RegisterMap)
    list_fifo_depth: int = 8  # per lane: lists waiting to be walked (rl2fpga_lane)
    set_fifo_depth: int = 4  # per layer: sets of changed outputs waiting for the serializer

    def __post_init__(self) -> None:
        for name in ("list_fifo_depth", "set_fifo_depth"):
            if getattr(self, name) < 2:
                raise ValueError(f"contract: {name} = {getattr(self, name)} must be >= 2 (the FIFO takes any depth >= 2)")

    def to_dict(self) -> dict[str, Any]:
        return {"regs": self.regs.to_dict(), "list_fifo_depth": self.list_fifo_depth,
                "set_fifo_depth": self.set_fifo_depth}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Contract:
        """``design.json``'s ``contract``; a design written before it existed had the defaults."""
        if not d:
            return cls()
        return cls(regs=RegisterMap.from_dict(d.get("regs", {})), list_fifo_depth=int(d["list_fifo_depth"]),
                   set_fifo_depth=int(d["set_fifo_depth"]))


DEFAULT = Contract()
REGS = DEFAULT.regs


# ------------------------------------------------------------------------------ ports
def axi_ports(addr_width: int, tdata_bits: int) -> list[tuple[str, str, str]]:
    """The engine top level's ports after clk and rst_n, as (direction, SV range, name), Xilinx
    naming so Vivado infers the interfaces: AXI4-Lite slave, AXI4-Stream in, AXI4-Stream out."""
    a, t = f"[{addr_width - 1}:0]", f"[{tdata_bits - 1}:0]"
    axil = [("input", a, "awaddr"), ("input", "", "awvalid"), ("output", "", "awready"),
            ("input", "[31:0]", "wdata"), ("input", "[3:0]", "wstrb"), ("input", "", "wvalid"),
            ("output", "", "wready"), ("output", "[1:0]", "bresp"), ("output", "", "bvalid"),
            ("input", "", "bready"), ("input", a, "araddr"), ("input", "", "arvalid"),
            ("output", "", "arready"), ("output", "[31:0]", "rdata"), ("output", "[1:0]", "rresp"),
            ("output", "", "rvalid"), ("input", "", "rready")]
    axis_in = [("input", t, "tdata"), ("input", "", "tvalid"), ("output", "", "tready"), ("input", "", "tlast")]
    axis_out = [("output", "[31:0]", "tdata"), ("output", "", "tvalid"), ("input", "", "tready"), ("output", "", "tlast")]
    return ([(d, r, f"s_axil_{n}") for d, r, n in axil] + [(d, r, f"s_axis_{n}") for d, r, n in axis_in]
            + [(d, r, f"m_axis_{n}") for d, r, n in axis_out])


# ------------------------------------------------------------------------------ stream format
def elem_bytes(bits: int) -> int:
    """Bytes of one input element on the stream."""
    if bits <= 8:
        return 1
    if bits <= 16:
        return 2
    raise ValueError(f"input elements of {bits} bits are not supported; quantize the input to <= 16 bits")


def elem_dtype(bits: int, signed: bool) -> np.dtype:
    """Little-endian numpy dtype of one input element on the stream."""
    return np.dtype(f"<{'i' if signed else 'u'}{elem_bytes(bits)}")


def pack_frame(x: np.ndarray, bits: int, signed: bool, beat_bytes: int) -> bytes:
    """A frame (integers on the input grid) as input-stream bytes, zero-padded to whole beats."""
    raw = np.asarray(x).reshape(-1).astype(elem_dtype(bits, signed)).tobytes()
    return raw + bytes((-len(raw)) % beat_bytes)


def unpack_frame(data: bytes, bits: int, signed: bool, n_elems: int) -> np.ndarray:
    """Input-stream bytes -> the first ``n_elems`` integers (sign-extended when signed)."""
    dt = elem_dtype(bits, signed)
    return np.frombuffer(data[: n_elems * dt.itemsize], dtype=dt).astype(np.int64)


def stack_packet(x: np.ndarray, beat_bytes: int, full: bool, bottom_up: bool = False) -> bytes:
    """A frame-stacked input (h, w, K) for a frame-stack engine: the newest frame (channel
    K - 1), or (``full``) all K frames oldest first, one byte per pixel, each plane zero-padded
    to whole beats; ``bottom_up`` (INFO_BOTTOM_UP): each plane's rows last to first."""
    x = np.asarray(x)
    if bottom_up:
        x = x[::-1]
    planes = range(x.shape[-1]) if full else [x.shape[-1] - 1]
    return b"".join(pack_frame(np.ascontiguousarray(x[..., k]), 8, False, beat_bytes) for k in planes)


def beats(data: bytes, beat_bytes: int) -> list[int]:
    """Stream bytes as little-endian beat integers (what a testbench drives onto tdata)."""
    return [int.from_bytes(data[i : i + beat_bytes], "little") for i in range(0, len(data), beat_bytes)]


def frame_beats(n_elems: int, bits: int, beat_bytes: int) -> int:
    """Beats of one dense input frame."""
    return -(-n_elems // (beat_bytes // elem_bytes(bits)))


def stack_geometry(in_shape: tuple[int, ...], beat_bytes: int) -> tuple[int, int]:
    """(beats of a newest-frame transfer, beats of a full-stack transfer) of a frame-stacked
    input (h, w, K): one plane is h * w pixels, one byte each, padded to whole beats."""
    h, w, k = in_shape
    plane = -(-(h * w) // beat_bytes)
    return plane, k * plane


# ------------------------------------------------------------------------------ memory layout
def bits_for(n: int) -> int:
    """Bits to hold 0..n (at least 1): list lengths and pointers."""
    return max(1, int(n).bit_length())


def shift_bits(max_shift: int) -> int:
    """Bits of one per-output-channel requantize shift in ``<layer>_shift.mem`` (0..max_shift)."""
    return bits_for(max_shift)


def shift_mem_file(layer_name: str) -> str:
    """The per-channel shift image of a layer with per-output-channel weight scales."""
    return f"{layer_name}_shift.mem"


def clog2(n: int) -> int:
    """Address bits of n words, at least 1 (SV: ``n > 1 ? $clog2(n) : 1``)."""
    return max(1, math.ceil(math.log2(n))) if n > 1 else 1


def tap_bits(n_taps: int) -> int:
    """Bits of the tap index in a list entry (none for one tap)."""
    return math.ceil(math.log2(n_taps)) if n_taps > 1 else 0


def fb_bits(n_out: int, lanes: int) -> int:
    """Bits of the accumulator-word index fb of output f = fb * lanes + lane."""
    return clog2(-(-n_out // lanes))


def entry_bits(n_taps: int, fbw: int, w_bits: int) -> int:
    """One lane-memory word: ``tap << (fbw + w_bits) | fb << w_bits | w``."""
    return tap_bits(n_taps) + fbw + w_bits


def lane_mem_file(prefix: str, lane: int) -> str:
    """Weight image of one lane: the RTL appends two letters ("aa" + lane) and ".mem"."""
    return f"{prefix}{chr(97 + lane // 26)}{chr(97 + lane % 26)}.mem"


# ------------------------------------------------------------------------------ renderers
def _env() -> Any:
    import jinja2

    templates = Path(__file__).resolve().parent / "templates"  # beside this file in the package
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates)), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True)


def render_sv_package(contract: Contract = DEFAULT) -> str:
    """``rl2fpga_pkg.sv``: the register map, event widths and FIFO depths as SV localparams."""
    from rl2fpga import GENERATED_HEADER

    r = contract.regs
    return _env().get_template("rl2fpga_pkg.sv.j2").render(
        header=GENERATED_HEADER, package=PACKAGE, regs=r.scalars(), r=r, engine_id=ENGINE_ID,
        bits={name: value.bit_length() - 1 for name, value in (
            ("CTRL_RESET_STATE", CTRL_RESET_STATE), ("CTRL_RESET_COUNTERS", CTRL_RESET_COUNTERS),
            ("CTRL_FULL_FRAME", CTRL_FULL_FRAME), ("STATUS_BUSY", STATUS_BUSY), ("STATUS_DONE", STATUS_DONE),
            ("STATUS_ERROR", STATUS_ERROR), ("INFO_FRAME_STACK", INFO_FRAME_STACK),
            ("INFO_BOTTOM_UP", INFO_BOTTOM_UP))},
        ev={"YW": EVENT_Y_BITS, "XW": EVENT_X_BITS, "CW": EVENT_C_BITS, "VW": EVENT_V_BITS},
        list_fifo_depth=contract.list_fifo_depth, set_fifo_depth=contract.set_fifo_depth)
