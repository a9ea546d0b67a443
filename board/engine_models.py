"""Engine models behind the simulated PYNQ device: what sits between the AXI DMA's streams and
the AXI4-Lite control port of the sparse delta engine.

One small interface (:class:`EngineModel`), two implementations:

* :class:`GoldenEngine` — the Python reference: the register and stream semantics of
  :mod:`rl2fpga.hls.engine.regmap` implemented on top of the golden integer model. Its cycle counts
  are a documented estimate (the golden model has no clock).
* :class:`rl2fpga.board.verilator_engine.VerilatorEngine` — the generated RTL compiled with
  Verilator and clocked cycle by cycle; its counters are the hardware's own.

Streams follow regmap: the input packet is the frame's elements in C order, ``elem_bytes``
each, little-endian, densely packed, zero-padded to whole beats, TLAST on the last beat; the
output packet is ``n_out`` sign-extended 32-bit outputs then the action, TLAST on the action.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np

from rl2fpga.core.golden import Fmt, GoldenModel
from rl2fpga.hls.engine import contract as hw
from rl2fpga.hls.engine import regmap


def elem_dtype(fmt: Fmt) -> np.dtype:
    """Little-endian numpy dtype of one input element on the stream (the contract's)."""
    return hw.elem_dtype(fmt.bits, fmt.signed)


def pack_frame(x: np.ndarray, fmt: Fmt, bytes_per_beat: int) -> bytes:
    """Integer frame -> input-stream bytes (zero-padded to whole beats)."""
    return hw.pack_frame(x, fmt.bits, fmt.signed, bytes_per_beat)


def unpack_frame(data: bytes, fmt: Fmt, n_elems: int) -> np.ndarray:
    """Input-stream bytes -> the first ``n_elems`` integers (sign-extended when signed)."""
    return hw.unpack_frame(data, fmt.bits, fmt.signed, n_elems)


stack_packet = hw.stack_packet


def frame_bytes(model: GoldenModel, bytes_per_beat: int) -> int:
    """Length of one input packet in bytes (whole beats)."""
    n = int(np.prod(model.in_shape)) * regmap.elem_bytes(model.in_fmt.bits)
    return math.ceil(n / bytes_per_beat) * bytes_per_beat


class EngineModel(ABC):
    """The sparse delta engine as seen from the AXI side of a PYNQ design."""

    lanes: int
    input_bytes_per_beat: int

    @abstractmethod
    def hw_reset(self) -> None:
        """Assert rst_n (power-on / bitstream download)."""

    @abstractmethod
    def axil_write(self, addr: int, value: int) -> None:
        """One AXI4-Lite write of a 32-bit word at byte address ``addr``."""

    @abstractmethod
    def axil_read(self, addr: int) -> int:
        """One AXI4-Lite read of a 32-bit word at byte address ``addr``."""

    @abstractmethod
    def send(self, data: bytes) -> None:
        """One input packet (AXI DMA MM2S: TLAST on its last beat). Output is queued."""

    @abstractmethod
    def recv(self, max_bytes: int) -> tuple[bytes, bool]:
        """Pop up to ``max_bytes`` of queued output (AXI DMA S2MM); stops after TLAST.
        Returns the bytes and whether TLAST was among them."""

    @property
    @abstractmethod
    def sim_cycles(self) -> int:
        """Clock cycles simulated since construction (0 where there is no clock)."""


class _OutputQueue:
    """32-bit output words with TLAST marks, drained by the S2MM channel."""

    def __init__(self) -> None:
        self.words: list[tuple[int, bool]] = []

    def push(self, word: int, last: bool) -> None:
        self.words.append((word & 0xFFFFFFFF, last))

    def pop(self, max_bytes: int) -> tuple[bytes, bool]:
        out = bytearray()
        while self.words and len(out) + 4 <= max_bytes:
            word, last = self.words.pop(0)
            out += word.to_bytes(4, "little")
            if last:
                return bytes(out), True
        return bytes(out), False


class GoldenEngine(EngineModel):
    """regmap semantics on the golden model (the Python reference engine).

    A packet whose TLAST is misplaced (length != one frame) sets STATUS.error, is dropped and
    produces no output, as a hardware engine that resynchronises on TLAST would do.
    CYCLES is an estimate: input beats + ceil(MACs / lanes) per layer + output beats.
    ``frame_stack``: the input (h, w, K) is a frame stack kept in the engine; a packet is the
    newest frame, or the whole stack after a state reset or CTRL_FULL_FRAME (regmap).
    """

    def __init__(self, model: GoldenModel, lanes: int = 4, input_bytes_per_beat: int = 8,
                 frame_stack: bool = False):
        self.model = model.copy()
        self.frame_stack = frame_stack
        self.reset_thresholds = list(self.model.thresholds)  # generated per model
        self.lanes = lanes
        self.input_bytes_per_beat = input_bytes_per_beat
        self.frame_len = frame_bytes(self.model, input_bytes_per_beat)
        self.n_elems = int(np.prod(self.model.in_shape))
        self.out = _OutputQueue()
        self.hw_reset()

    def hw_reset(self) -> None:
        self.model.reset()
        self.model.set_thresholds(self.reset_thresholds)
        self.out = _OutputQueue()
        self.done = False
        self.error = False
        self.frames = 0
        self.cycles = 0
        self.total_cycles = 0
        self.action = 0
        self.events = [0] * len(self.model.layers)
        self.macs = [0] * len(self.model.layers)
        self.thresholds = self.reset_thresholds + [0] * (regmap.MAX_LAYERS - len(self.reset_thresholds))
        self.need_full = True
        self.kept: np.ndarray | None = None  # frame stack: the last frame's (h, w, K) input

    # -- AXI4-Lite ------------------------------------------------------------------------
    def axil_write(self, addr: int, value: int) -> None:
        value &= 0xFFFFFFFF
        if addr == regmap.CTRL:
            if value & regmap.CTRL_RESET_STATE:
                self.model.reset()
                self.need_full = True
            if value & regmap.CTRL_FULL_FRAME:
                self.need_full = True
            if value & regmap.CTRL_RESET_COUNTERS:
                self.frames = self.total_cycles = self.cycles = 0
                self.events = [0] * len(self.model.layers)
                self.macs = [0] * len(self.model.layers)
                self.error = False
        elif regmap.THRESHOLD_BASE <= addr < regmap.threshold_reg(regmap.MAX_LAYERS):
            k = (addr - regmap.THRESHOLD_BASE) // 4
            self.thresholds[k] = value
            if k < len(self.model.layers):
                self.model.layers[k].threshold = value
        # writes to read-only registers are ignored

    def axil_read(self, addr: int) -> int:
        n = len(self.model.layers)
        if addr == regmap.STATUS:
            v = (regmap.STATUS_DONE if self.done else 0) | (regmap.STATUS_ERROR if self.error else 0)
            self.done = False
            return v
        if addr == regmap.ID:
            return regmap.ENGINE_ID
        if addr == regmap.INFO:
            return (n | (self.lanes << 8) | (self.input_bytes_per_beat << 16)
                    | (regmap.INFO_FRAME_STACK if self.frame_stack else 0))
        if addr == regmap.FRAMES:
            return self.frames & 0xFFFFFFFF
        if addr == regmap.CYCLES:
            return self.cycles & 0xFFFFFFFF
        if addr == regmap.TOTAL_CYCLES_LO:
            return self.total_cycles & 0xFFFFFFFF
        if addr == regmap.TOTAL_CYCLES_HI:
            return (self.total_cycles >> 32) & 0xFFFFFFFF
        if addr == regmap.ACTION:
            return self.action
        if regmap.THRESHOLD_BASE <= addr < regmap.threshold_reg(regmap.MAX_LAYERS):
            return self.thresholds[(addr - regmap.THRESHOLD_BASE) // 4]
        if regmap.EVENTS_BASE <= addr < regmap.events_reg(regmap.MAX_LAYERS):
            k, reg = divmod(addr - regmap.EVENTS_BASE, 8)
            if k < n:
                return (self.events if reg == 0 else self.macs)[k] & 0xFFFFFFFF
        return 0

    # -- streams --------------------------------------------------------------------------
    def _stacked_input(self, data: bytes) -> np.ndarray | None:
        """The (h, w, K) input a frame-stack packet stands for (None: wrong length)."""
        h, w, k = self.model.in_shape
        plane = -(-(h * w) // self.input_bytes_per_beat) * self.input_bytes_per_beat
        n = k if self.need_full else 1
        if len(data) != n * plane:
            return None
        planes = [np.frombuffer(data[i * plane : i * plane + h * w], dtype=np.uint8).astype(np.int64).reshape(h, w)
                  for i in range(n)]
        if not self.need_full:
            assert self.kept is not None
            planes = [self.kept[..., i] for i in range(1, k)] + planes
        self.need_full = False
        self.kept = np.stack(planes, axis=-1)
        return self.kept

    def send(self, data: bytes) -> None:
        if self.frame_stack:
            x = self._stacked_input(data)
            if x is None:
                self.error = True
                return
        elif len(data) != self.frame_len:
            self.error = True
            return
        else:
            x = unpack_frame(data, self.model.in_fmt, self.n_elems)
        y, stats = self.model.step(x.reshape(self.model.in_shape))
        y = y.reshape(-1)
        self.action = GoldenModel.action(y)
        self.events, self.macs = list(stats.events), list(stats.macs)
        beats = len(data) // self.input_bytes_per_beat
        self.cycles = beats + sum(math.ceil(m / self.lanes) for m in stats.macs) + len(y) + 1
        self.total_cycles += self.cycles
        self.frames += 1
        self.done = True
        for v in y:
            self.out.push(int(v), False)
        self.out.push(self.action, True)

    def recv(self, max_bytes: int) -> tuple[bytes, bool]:
        return self.out.pop(max_bytes)

    @property
    def sim_cycles(self) -> int:
        return 0


class HlsStreamEngine(EngineModel):
    """hls4ml's VivadoAccelerator IP (``axi_stream`` interface, float32 I/O) on the golden
    model: the episode-reset flag then ``n_in`` float32 beats in (values on the input grid;
    a nonzero flag clears the delta state first, hls/delta_layer.py), ``n_out`` float32 beats
    out, TLAST on the last. The delta state persists between frames (static in the HLS code);
    no AXI4-Lite port (reads 0, writes ignored)."""

    def __init__(self, model: GoldenModel):
        self.model = model.copy()
        self.lanes = 1
        self.input_bytes_per_beat = 4
        self.n_in = int(np.prod(self.model.in_shape))
        self.out = _OutputQueue()

    def hw_reset(self) -> None:
        self.model.reset()
        self.out = _OutputQueue()

    def axil_write(self, addr: int, value: int) -> None:
        pass

    def axil_read(self, addr: int) -> int:
        return 0

    def send(self, data: bytes) -> None:
        if len(data) != 4 * (self.n_in + 1):
            return  # a misplaced TLAST: hls4ml's IP produces nothing
        f = np.frombuffer(data, dtype="<f4").astype(np.float64)
        if f[0] != 0:
            self.model.reset()
        f = f[1:]
        x = np.round(f / self.model.in_fmt.lsb).astype(np.int64)
        y, _ = self.model.step(x.reshape(self.model.in_shape))
        out = (y.reshape(-1) * self.model.layers[-1].out_fmt.lsb).astype("<f4")
        words = out.view("<u4")
        for i, w in enumerate(words):
            self.out.push(int(w), i == len(words) - 1)

    def recv(self, max_bytes: int) -> tuple[bytes, bool]:
        return self.out.pop(max_bytes)

    @property
    def sim_cycles(self) -> int:
        return 0
