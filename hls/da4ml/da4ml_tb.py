"""cocotb testbench of the da4ml design (``rl2fpga_engine_top`` from ``hls/da4ml``) against the
golden model with delta off (``GoldenModel.forward``: stateless, every T_int = 0).

It drives the design with the engine testbench's own bus models (AXI4-Lite master, AXI4-Stream
frame driver and output monitor from :mod:`rl2fpga.hls.cosim.engine_tb`, imported, not
copied). Two phases over the real frames of the config file (``RL2FPGA_TB_CONFIG``):

* one frame at a time with random idle input cycles and output back-pressure; outputs, action
  and the ACTION / CYCLES / FRAMES registers are checked per frame;
* the remaining frames streamed back to back (no idle on the input), so several frames are in
  the pipeline at once: a wrong pipeline latency or lost frame shows as a mismatch here.

Then a packet with a misplaced TLAST must set STATUS.error and produce no output, and the
next frame must still be right.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly

from rl2fpga.core.golden import GoldenModel
from rl2fpga.hls.cosim.engine_tb import AxiLiteMaster, FrameDriver, OutputMonitor, pack_frame
from rl2fpga.hls.engine import regmap


class Da4mlTB:
    def __init__(self, dut: Any, cfg: dict[str, Any]):
        self.dut, self.cfg = dut, cfg
        self.rng = random.Random(int(cfg.get("seed", 0)))
        self.clk = dut.clk
        self.golden = GoldenModel.load(cfg["golden"])
        self.beat_bytes = len(dut.s_axis_tdata) // 8
        self.axil = AxiLiteMaster(dut, self.clk)
        self.driver = FrameDriver(dut, self.clk, self.rng, float(cfg.get("idle", 0.0)))
        self.monitor = OutputMonitor(dut, self.clk, self.rng, float(cfg.get("stall", 0.0)))
        if dut._name != "rl2fpga_engine_sim":  # the simulation wrapper clocks itself
            cocotb.start_soon(Clock(self.clk, 10, units="ns").start())

    async def reset(self) -> None:
        await FallingEdge(self.clk)
        self.dut.rst_n.value = 0
        for _ in range(3):
            await FallingEdge(self.clk)
        self.dut.rst_n.value = 1

    def expect(self, x: np.ndarray) -> list[int]:
        y = self.golden.forward(x).reshape(-1)
        return [int(v) for v in y] + [GoldenModel.action(y)]

    def beats(self, x: np.ndarray) -> list[int]:
        g = self.golden
        return pack_frame(x, g.in_fmt.bits, g.in_fmt.signed, self.beat_bytes)


    async def sequential(self, xs: list[np.ndarray], n_seq: int) -> list[dict[str, Any]]:
        """Phase 1: one frame at a time, random idle / back-pressure, registers checked."""
        per_frame: list[dict[str, Any]] = []
        for i in range(n_seq):
            send = cocotb.start_soon(self.driver.send(self.beats(xs[i])))
            out = await self.monitor.receive()
            await send
            exp = self.expect(xs[i])
            cycles = await self.axil.read(regmap.CYCLES)
            action_reg = await self.axil.read(regmap.ACTION)
            ok = out == exp and action_reg == exp[-1]
            per_frame.append({"index": i, "ok": ok, "out": out, "expect": exp, "cycles": cycles, "phase": "sequential"})
            if not ok:
                self.dut._log.error("frame %d: out %s expect %s (ACTION reg %d)", i, out, exp, action_reg)
        return per_frame

    async def send_train(self, frames: list[list[int]]) -> None:
        """One continuous packet train (no idle cycle between frames, unlike FrameDriver.send
        per frame), so that frames enter the core on consecutive cycles."""
        stream = [beat for b in frames for beat in b]
        ends = set(np.cumsum([len(b) for b in frames]) - 1)
        d, k = self.dut, 0
        while k < len(stream):
            await FallingEdge(self.clk)
            d.s_axis_tvalid.value = 1
            d.s_axis_tdata.value = stream[k]
            d.s_axis_tlast.value = int(k in ends)
            await ReadOnly()
            if d.s_axis_tready.value:
                k += 1
        await FallingEdge(self.clk)
        d.s_axis_tvalid.value = 0
        d.s_axis_tlast.value = 0

    async def streamed(self, xs: list[np.ndarray], rest: list[int]) -> list[dict[str, Any]]:
        """Phase 2: the frames ``rest`` back to back, several frames in flight."""
        per_frame: list[dict[str, Any]] = []
        if not rest:
            return per_frame
        self.driver.idle = 0.0
        send = cocotb.start_soon(self.send_train([self.beats(xs[i]) for i in rest]))
        for i in rest:
            out = await self.monitor.receive()
            exp = self.expect(xs[i])
            ok = out == exp
            per_frame.append({"index": i, "ok": ok, "out": out, "expect": exp, "cycles": None, "phase": "streamed"})
            if not ok:
                self.dut._log.error("streamed frame %d: out %s expect %s", i, out, exp)
        await send
        return per_frame

    async def bad_packet(self, xs: list[np.ndarray]) -> None:
        """A misplaced TLAST: STATUS.error, no output, the next frame still right."""
        bad = self.beats(xs[0])
        await self.axil.read(regmap.STATUS)  # clear the sticky flags
        extra = [0] * (len(bad) + 1)  # one beat too many: TLAST comes late
        await self.driver.send(extra)
        status = await self.axil.read(regmap.STATUS)
        assert status & regmap.STATUS_ERROR, f"STATUS {status:#x}: a packet with a late TLAST was not flagged"
        send = cocotb.start_soon(self.driver.send(self.beats(xs[-1])))
        out = await self.monitor.receive()
        await send
        assert out == self.expect(xs[-1]), "the frame after a bad packet is wrong (or the bad packet produced output)"


@cocotb.test()
async def da4ml_vs_golden(dut: Any) -> None:
    cfg = json.loads(Path(os.environ["RL2FPGA_TB_CONFIG"]).read_text())
    tb = Da4mlTB(dut, cfg)
    frames = np.load(cfg["frames"])
    xs = [tb.golden.quantize_input(f) for f in frames]
    n_seq = min(len(xs), int(cfg.get("sequential", len(xs) // 2)))
    await tb.reset()
    assert await tb.axil.read(regmap.ID) == regmap.ENGINE_ID
    info = await tb.axil.read(regmap.INFO)
    assert info & 0xFF == len(tb.golden.layers) and (info >> 8) & 0xFF == 0

    per_frame = await tb.sequential(xs, n_seq)
    assert await tb.axil.read(regmap.FRAMES) == n_seq
    rest = list(range(n_seq, len(xs)))
    per_frame += await tb.streamed(xs, rest)
    frames_reg = await tb.axil.read(regmap.FRAMES)
    error_checked = bool(cfg.get("error_check", True))
    if error_checked:
        await tb.bad_packet(xs)

    mism = sum(not f["ok"] for f in per_frame)
    res = {"frames": len(per_frame), "mismatches": mism, "sequential": n_seq, "streamed": len(rest),
           "frames_register": frames_reg, "error_checked": error_checked, "per_frame": per_frame}
    Path(cfg["result"]).write_text(json.dumps(res))
    assert frames_reg == len(xs), f"FRAMES reads {frames_reg}, {len(xs)} frames were sent"
    assert mism == 0, f"{mism} of {len(per_frame)} frames differ from the golden model"
