"""cocotb testbench of the whole sparse delta engine (``rl2fpga_engine_top``) against the
golden model, cocotbext style: an AXI4-Lite master, an AXI4-Stream frame driver and output
monitor with random idle / back-pressure, the golden model as reference, a scoreboard, and a
TB class with ``reset()``.

The test is configured by a JSON file named in ``RL2FPGA_TB_CONFIG`` (written by
:mod:`rl2fpga.hls.cosim.harness`): golden model folder, frames (.npy), seed, stall
probabilities, frames before which the state is reset, threshold writes, result path, and the
register map the design was built with (``regs``, :class:`~rl2fpga.hls.engine.contract.RegisterMap`).
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from rl2fpga.core.golden import GoldenModel
from rl2fpga.hls.engine import contract as hw
from rl2fpga.hls.engine.contract import RegisterMap


# ------------------------------------------------------------------------------ drivers
class AxiLiteMaster:
    """Single-beat AXI4-Lite reads and writes (one at a time).

    Every bus model here drives at the falling clock edge and samples in the ReadOnly phase
    of that same (mid-cycle) time step, so a handshake seen there happens at the next rising
    edge; this is independent of whether the clock comes from cocotb or from the simulator."""

    def __init__(self, dut: Any, clk: Any):
        self.dut, self.clk = dut, clk
        dut.s_axil_awvalid.value = 0
        dut.s_axil_wvalid.value = 0
        dut.s_axil_bready.value = 0
        dut.s_axil_arvalid.value = 0
        dut.s_axil_rready.value = 0
        dut.s_axil_wstrb.value = 0xF

    async def _until(self, signal: Any) -> None:
        """Wait (from a falling edge) until ``signal`` is high in the ReadOnly phase."""
        while True:
            await ReadOnly()
            if signal.value:
                return
            await FallingEdge(self.clk)

    async def write(self, addr: int, data: int) -> None:
        d = self.dut
        await FallingEdge(self.clk)
        d.s_axil_awaddr.value = addr
        d.s_axil_wdata.value = data & 0xFFFFFFFF
        d.s_axil_awvalid.value = 1
        d.s_axil_wvalid.value = 1
        await self._until(d.s_axil_awready)
        await FallingEdge(self.clk)
        d.s_axil_awvalid.value = 0
        d.s_axil_wvalid.value = 0
        d.s_axil_bready.value = 1
        await self._until(d.s_axil_bvalid)
        await FallingEdge(self.clk)
        d.s_axil_bready.value = 0

    async def read(self, addr: int) -> int:
        d = self.dut
        await FallingEdge(self.clk)
        d.s_axil_araddr.value = addr
        d.s_axil_arvalid.value = 1
        await self._until(d.s_axil_arready)
        await FallingEdge(self.clk)
        d.s_axil_arvalid.value = 0
        d.s_axil_rready.value = 1
        await self._until(d.s_axil_rvalid)
        v = int(d.s_axil_rdata.value)
        await FallingEdge(self.clk)
        d.s_axil_rready.value = 0
        return v


class FrameDriver:
    """Sends one frame as AXI4-Stream beats, idling at random (probability ``idle``)."""

    def __init__(self, dut: Any, clk: Any, rng: random.Random, idle: float):
        self.dut, self.clk, self.rng, self.idle = dut, clk, rng, idle
        dut.s_axis_tvalid.value = 0
        dut.s_axis_tlast.value = 0
        dut.s_axis_tdata.value = 0

    async def send(self, beats: list[int]) -> None:
        d = self.dut
        i = 0
        while i < len(beats):
            await FallingEdge(self.clk)
            valid = not (self.idle and self.rng.random() < self.idle)
            d.s_axis_tvalid.value = int(valid)
            if valid:
                d.s_axis_tdata.value = beats[i]
                d.s_axis_tlast.value = int(i == len(beats) - 1)
            await ReadOnly()
            if valid and d.s_axis_tready.value:
                i += 1
        await FallingEdge(self.clk)
        d.s_axis_tvalid.value = 0
        d.s_axis_tlast.value = 0


class OutputMonitor:
    """Collects output beats up to TLAST, stalling TREADY at random (probability ``stall``)."""

    def __init__(self, dut: Any, clk: Any, rng: random.Random, stall: float):
        self.dut, self.clk, self.rng, self.stall = dut, clk, rng, stall
        dut.m_axis_tready.value = 0

    async def receive(self) -> list[int]:
        d = self.dut
        out: list[int] = []
        while True:
            await FallingEdge(self.clk)
            if not d.m_axis_tvalid.value:
                # nothing to take: sleep until the engine has output (no per-cycle wakeups)
                d.m_axis_tready.value = 0
                await RisingEdge(d.m_axis_tvalid)
                continue
            ready = not (self.stall and self.rng.random() < self.stall)
            d.m_axis_tready.value = int(ready)
            await ReadOnly()
            if ready and d.m_axis_tvalid.value:
                v = int(d.m_axis_tdata.value)
                out.append(v - (1 << 32) if v & (1 << 31) else v)
                if d.m_axis_tlast.value:
                    await FallingEdge(self.clk)
                    d.m_axis_tready.value = 0
                    return out


def pack_frame(x: np.ndarray, bits: int, signed: bool, beat_bytes: int) -> list[int]:
    """A frame (integers on the input grid) as beats, in the contract's stream format."""
    return hw.beats(hw.pack_frame(x, bits, signed, beat_bytes), beat_bytes)


def pack_stack(x: np.ndarray, beat_bytes: int, full: bool, bottom_up: bool = False) -> list[int]:
    """A frame-stacked input (h, w, K) as beats: the newest plane, or (``full``) all K."""
    return hw.beats(hw.stack_packet(x, beat_bytes, full, bottom_up), beat_bytes)


# ------------------------------------------------------------------------------ TB
@dataclass
class FrameResult:
    index: int
    ok: bool
    cycles: int
    events: list[int]
    macs: list[int]
    golden_macs: list[int]
    golden_events: list[int]
    action: int
    golden_action: int
    pad: int
    input_bytes: int = 0  # bytes streamed in for this frame
    # frame cycle of the last input beat, then of each event link's end-of-frame marker (link 0
    # leaves the input encoder, link k + 1 layer k): where the cycles go; empty for a top
    # without these probes (rl2fpga_engine_top's mark_input / mark_links)
    marks: list[int] = field(default_factory=list)


class EngineTB:
    def __init__(self, dut: Any, cfg: dict[str, Any]):
        self.dut = dut
        self.cfg = cfg
        self.rng = random.Random(int(cfg.get("seed", 0)))
        self.clk = dut.clk
        self.golden = GoldenModel.load(cfg["golden"])
        self.regs = RegisterMap.from_dict(cfg["regs"]) if "regs" in cfg else hw.REGS
        self.n_layers = len(self.golden.layers)
        self.beat_bytes = len(dut.s_axis_tdata) // 8
        self.axil = AxiLiteMaster(dut, self.clk)
        self.driver = FrameDriver(dut, self.clk, self.rng, float(cfg.get("idle", 0.0)))
        self.monitor = OutputMonitor(dut, self.clk, self.rng, float(cfg.get("stall", 0.0)))
        # the simulation wrapper clocks itself (fast); the bare top needs a cocotb clock
        self.engine = dut.dut if dut._name == "rl2fpga_engine_sim" else dut
        if self.engine is dut:
            cocotb.start_soon(Clock(self.clk, 10, units="ns").start())
        self.stack = False  # frame-stack engine (INFO bit 24), read after reset
        self.bottom_up = False  # rows sent last to first (INFO bit 25)
        self.need_full = True

    async def reset(self) -> None:
        """rst_n pulse; the engine then sweeps its state to the golden reset state."""
        await FallingEdge(self.clk)
        self.dut.rst_n.value = 0
        for _ in range(3):
            await FallingEdge(self.clk)
        self.dut.rst_n.value = 1
        self.golden.reset()
        self.need_full = True
        await self.wait_idle()
        info = await self.axil.read(self.regs.info)
        self.stack = bool(info & hw.INFO_FRAME_STACK)
        self.bottom_up = bool(info & hw.INFO_BOTTOM_UP)

    async def wait_idle(self) -> None:
        while (await self.axil.read(self.regs.status)) & hw.STATUS_BUSY:
            pass

    async def reset_state(self) -> None:
        await self.axil.write(self.regs.ctrl, hw.CTRL_RESET_STATE)
        self.golden.reset()
        self.need_full = True
        await self.wait_idle()

    async def set_threshold(self, layer: int, value: int) -> None:
        await self.axil.write(self.regs.threshold_reg(layer), value)
        ts = self.golden.thresholds
        ts[layer] = value
        self.golden.set_thresholds(ts)

    async def frame(self, index: int, x: np.ndarray) -> FrameResult:
        g = self.golden
        if self.stack:
            beats = pack_stack(x, self.beat_bytes, self.need_full, self.bottom_up)
            self.need_full = False
        else:
            beats = pack_frame(x, g.in_fmt.bits, g.in_fmt.signed, self.beat_bytes)
        send = cocotb.start_soon(self.driver.send(beats))
        out = await self.monitor.receive()
        await send
        y, stats = g.step(x)
        expect = [int(v) for v in np.asarray(y).reshape(-1)] + [g.action(y)]
        events = [await self.axil.read(self.regs.events_reg(k)) for k in range(self.n_layers)]
        macs = [await self.axil.read(self.regs.macs_reg(k)) for k in range(self.n_layers)]
        cycles = await self.axil.read(self.regs.cycles)
        action_reg = await self.axil.read(self.regs.action)
        pad = int(self.engine.pad_total.value)
        marks: list[int] = []
        if hasattr(self.engine, "mark_links"):
            links = int(self.engine.mark_links.value)
            marks = [int(self.engine.mark_input.value)] + [(links >> (32 * k)) & 0xFFFFFFFF for k in range(self.n_layers + 1)]
        ok = out == expect and events == stats.events and macs == stats.macs and action_reg == expect[-1]
        if not ok:
            self.dut._log.error(
                "frame %d mismatch: out %s expect %s events %s/%s macs %s/%s ACTION register %d",
                index, out, expect, events, stats.events, macs, stats.macs, action_reg,
            )
        return FrameResult(index, ok, cycles, events, macs, stats.macs, stats.events, out[-1], expect[-1], pad,
                           len(beats) * self.beat_bytes, marks)


@cocotb.test()
async def engine_vs_golden(dut: Any) -> None:
    """Whole-network co-simulation over consecutive frames vs the golden model."""
    cfg = json.loads(Path(os.environ["RL2FPGA_TB_CONFIG"]).read_text())
    tb = EngineTB(dut, cfg)
    frames = np.load(cfg["frames"])
    resets = set(int(i) for i in cfg.get("resets", []))
    thr_writes = {int(k): v for k, v in cfg.get("threshold_writes", {}).items()}
    await tb.reset()
    assert await tb.axil.read(tb.regs.id) == hw.ENGINE_ID
    info = await tb.axil.read(tb.regs.info)
    assert info & 0xFF == tb.n_layers
    results: list[FrameResult] = []
    for i, frame in enumerate(frames):
        if i in resets:
            await tb.reset_state()
        for layer, value in thr_writes.get(i, []):
            await tb.set_threshold(int(layer), int(value))
        x = tb.golden.quantize_input(frame)
        results.append(await tb.frame(i, x))
    assert await tb.axil.read(tb.regs.frames) == len(frames)
    out = {
        "frames": len(results),
        "mismatches": sum(not r.ok for r in results),
        "beat_bytes": tb.beat_bytes,
        "per_frame": [r.__dict__ for r in results],
    }
    Path(cfg["result"]).write_text(json.dumps(out))
    assert out["mismatches"] == 0, f"{out['mismatches']} of {len(results)} frames differ from the golden model"
