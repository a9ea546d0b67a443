"""A simulated PYNQ-Z2 for tests: a ``pynq.Device`` that the unmodified pynq stack (Overlay,
DefaultIP, ``pynq.lib.dma.DMA``, ``pynq.allocate``) drives exactly as it drives a board.

* metadata: the ``.hwh`` next to the "bitstream" is parsed by pynq's own parser, so IP binding
  (by VLNV), addresses and the DMA's parameters come from the same place as on hardware;
* registers: ``REGISTER_RW`` capability; MMIO reads/writes land in :meth:`read_registers` /
  :meth:`write_registers`, routed by address to the AXI DMA register model, the engine's
  AXI4-Lite port, or a plain register file (the PS's SLCR, which pynq's clock code touches);
* memory: :meth:`allocate` returns real ``PynqBuffer`` arrays with physical addresses from a
  bump allocator; the DMA model reads and writes them by address;
* data path: MM2S packets go into an :class:`~rl2fpga.board.engine_models.EngineModel`, S2MM drains
  its output stream.

The AXI DMA model follows PG021 (direct register mode): DMACR RS/Reset, DMASR
Halted/Idle/IOC and the error bits DMAIntErr (0x10: zero length, S2MM packet longer than the
buffer), DMASlvErr (0x20), DMADecErr (0x40: address outside any buffer). An error halts the
channel until a soft reset. :meth:`inject_dma_error` forces an error on the next transfer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pynq.buffer import PynqBuffer
from pynq.pl_server.device import Device

from rl2fpga.board import block_design as design
from rl2fpga.board.engine_models import EngineModel

# AXI DMA register offsets (PG021), per channel: MM2S at 0x00, S2MM at 0x30
DMACR, DMASR, ADDR, ADDR_MSB, LENGTH = 0x00, 0x04, 0x18, 0x1C, 0x28
S2MM = 0x30
CR_RS, CR_RESET = 0x1, 0x4
SR_HALTED, SR_IDLE, SR_INTERR, SR_SLVERR, SR_DECERR = 0x1, 0x2, 0x10, 0x20, 0x40
SR_IOC_IRQ, SR_ERR_IRQ = 0x1000, 0x4000
SLCR_BASE = 0xF8000000
SLCR_RESET = {0x100: 40 << 12, 0x104: 32 << 12, 0x108: 30 << 12}  # ARM/DDR/IO PLL FDIV (33.3 MHz ref)


@dataclass
class _Channel:
    cr: int = 0x00010000
    sr: int = SR_HALTED
    addr: int = 0
    length: int = 0
    busy: bool = False
    written: int = 0
    inject: int = 0  # error bits forced on the next transfer

    def fail(self, bits: int) -> None:
        self.sr = (self.sr | bits | SR_ERR_IRQ | SR_HALTED) & ~SR_IDLE
        self.cr &= ~CR_RS
        self.busy = False

    def finish(self) -> None:
        self.sr |= SR_IDLE | SR_IOC_IRQ
        self.busy = False


@dataclass
class _Region:
    base: int
    size: int
    name: str
    regs: dict[int, int] = field(default_factory=dict)


class SimDevice(Device):
    """A PYNQ device whose programmable logic is a Python/Verilator model."""

    def __init__(self, engine: EngineModel, tag: str = "sim_pynq_z2"):
        super().__init__(tag)
        self.name = "Pynq-Z2 (simulated)"
        self.arch = "armv7l"
        self.capabilities = {"REGISTER_RW": True}
        self.engine = engine
        self.timestamp = ""
        self.bitfile_name = ""
        self.dma_base: int | None = None
        self.engine_base: int | None = None
        self.slcr = dict(SLCR_RESET)
        self.other: dict[int, int] = {}
        self._buffers: list[PynqBuffer] = []
        self._next_addr = 0x16000000
        self.register_accesses = 0
        self._reset_dma()

    # -- metadata and bitstream -----------------------------------------------------------
    def get_bitfile_metadata(self, bitfile_name: str, partial: bool = False):  # noqa: ANN201
        from pynq.pl_server.embedded_device import RuntimeMetadataParser
        from pynqmetadata.frontends import Metadata

        hwh = Path(bitfile_name).with_suffix(".hwh")
        if not hwh.exists():
            raise RuntimeError(f"Unable to find metadata for bitstream ({hwh} missing)")
        parser = RuntimeMetadataParser(Metadata(input=hwh))
        parser.refresh_hierarchy_dict()
        for ip in parser.ip_dict.values():
            if ip["type"] == design.ENGINE_VLNV:
                self.engine_base = int(ip["phys_addr"])
            elif str(ip["type"]).startswith("xilinx.com:ip:axi_dma:"):
                self.dma_base = int(ip["phys_addr"])
        return parser

    def download(self, bitstream, parser=None) -> None:  # noqa: ANN001
        """Program the PL: reset the engine and the DMA, as a fresh bitstream would."""
        self.engine.hw_reset()
        self._reset_dma()
        self.post_download(bitstream, parser)

    def _reset_dma(self) -> None:
        self.mm2s = _Channel()
        self.s2mm = _Channel()

    def inject_dma_error(self, channel: str, bits: int) -> None:
        """Force DMASR error ``bits`` on the next ``channel`` ('mm2s' or 's2mm') transfer."""
        getattr(self, channel).inject = bits

    # -- memory ---------------------------------------------------------------------------
    def allocate(self, shape, dtype, **kwargs) -> PynqBuffer:  # noqa: ANN001
        buf = PynqBuffer(shape, dtype, device=self, device_address=self._next_addr, coherent=True)
        buf[...] = 0
        self._next_addr += (buf.nbytes + 4095) // 4096 * 4096
        self._buffers.append(buf)
        return buf

    def _memory(self, addr: int, nbytes: int) -> np.ndarray | None:
        """A byte view of [addr, addr + nbytes) inside one allocated buffer, else None."""
        for buf in self._buffers:
            start = int(buf.device_address)
            if start <= addr and addr + nbytes <= start + buf.nbytes:
                flat = buf.reshape(-1).view(np.uint8)
                return flat[addr - start : addr - start + nbytes]
        return None

    def flush(self, *args) -> None:  # noqa: ANN002
        pass

    def invalidate(self, *args) -> None:  # noqa: ANN002
        pass

    # -- registers ------------------------------------------------------------------------
    def read_registers(self, address: int, length: int) -> bytes:
        words = [self._read_word(address + 4 * i) for i in range(max(1, length // 4))]
        return b"".join(w.to_bytes(4, "little") for w in words)[:length]

    def write_registers(self, address: int, data: bytes) -> None:
        for i in range(0, len(data), 4):
            self._write_word(address + i, int.from_bytes(data[i : i + 4].ljust(4, b"\x00"), "little"))

    def _where(self, address: int) -> tuple[str, int]:
        for name, base in (("dma", self.dma_base), ("engine", self.engine_base)):
            if base is not None and base <= address < base + design.RANGE_BYTES:
                return name, address - base
        if SLCR_BASE <= address < SLCR_BASE + 0x1000:
            return "slcr", address - SLCR_BASE
        return "other", address

    def _read_word(self, address: int) -> int:
        self.register_accesses += 1
        where, off = self._where(address)
        if where == "engine":
            return self.engine.axil_read(off) & 0xFFFFFFFF
        if where == "dma":
            return self._dma_read(off)
        if where == "slcr":
            return self.slcr.get(off, 0)
        return self.other.get(off, 0)

    def _write_word(self, address: int, value: int) -> None:
        self.register_accesses += 1
        where, off = self._where(address)
        if where == "engine":
            self.engine.axil_write(off, value)
        elif where == "dma":
            self._dma_write(off, value)
        elif where == "slcr":
            self.slcr[off] = value
        else:
            self.other[off] = value

    # -- AXI DMA --------------------------------------------------------------------------
    def _channel(self, off: int) -> tuple[_Channel, int]:
        return (self.s2mm, off - S2MM) if off >= S2MM else (self.mm2s, off)

    def _dma_read(self, off: int) -> int:
        ch, reg = self._channel(off)
        return {DMACR: ch.cr, DMASR: ch.sr, ADDR: ch.addr & 0xFFFFFFFF, ADDR_MSB: ch.addr >> 32,
                LENGTH: ch.written if ch is self.s2mm else ch.length}.get(reg, 0)

    def _dma_write(self, off: int, value: int) -> None:
        ch, reg = self._channel(off)
        if reg == DMACR:
            if value & CR_RESET:  # soft reset: both channels back to their reset state
                self._reset_dma()
                return
            ch.cr = value
            if value & CR_RS:
                if not ch.sr & (SR_INTERR | SR_SLVERR | SR_DECERR):
                    ch.sr &= ~SR_HALTED
            else:
                ch.sr |= SR_HALTED
        elif reg == DMASR:
            ch.sr &= ~(value & (SR_IOC_IRQ | SR_ERR_IRQ | 0x2000))  # W1C interrupt bits
        elif reg == ADDR:
            ch.addr = (ch.addr & ~0xFFFFFFFF) | value
        elif reg == ADDR_MSB:
            ch.addr = (ch.addr & 0xFFFFFFFF) | (value << 32)
        elif reg == LENGTH:
            self._start(ch, value)

    def _start(self, ch: _Channel, length: int) -> None:
        """Writing LENGTH starts a transfer (direct register mode)."""
        if ch.sr & SR_HALTED:
            return  # a halted channel ignores LENGTH writes
        ch.length, ch.written, ch.busy = length, 0, True
        ch.sr &= ~SR_IDLE
        if ch.inject:
            bits, ch.inject = ch.inject, 0
            ch.fail(bits)
            return
        if length == 0:
            ch.fail(SR_INTERR)
            return
        if self._memory(ch.addr, length) is None:
            ch.fail(SR_DECERR)
            return
        if ch is self.mm2s:
            data = bytes(self._memory(ch.addr, length))
            self.engine.send(data)
            ch.finish()
        self._pump_s2mm()

    def _pump_s2mm(self) -> None:
        """Move queued engine output into the armed S2MM buffer until TLAST."""
        ch = self.s2mm
        if not ch.busy:
            return
        data, last = self.engine.recv(ch.length - ch.written)
        if data:
            self._memory(ch.addr + ch.written, len(data))[:] = np.frombuffer(data, np.uint8)
            ch.written += len(data)
        if last:
            ch.finish()
        elif ch.written >= ch.length:
            more, _ = self.engine.recv(4)
            if more:  # packet longer than the buffer
                ch.fail(SR_INTERR)
