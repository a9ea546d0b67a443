"""cocotb unit test of ``rl2fpga_delta_encoder`` (with its serializer) against a Python model
of the delta rule: beats with random idle, events taken with random back-pressure, state reset
(and a frame taken in the first cycle after it), a misplaced TLAST. Parameters come from the runner (see test_units.py)."""

from __future__ import annotations

import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly

H, W, C = (int(os.environ.get(k, d)) for k, d in (("ENC_H", 3), ("ENC_W", 5), ("ENC_C", 3)))
BYTES = int(os.environ.get("ENC_BYTES", 8))
YW, XW, CW, VW = 8, 8, 16, 18


def model_events(x: np.ndarray, x_hat: np.ndarray, t: int) -> list[tuple[int, int, int, int]]:
    """(y, x, c, delta) of every element with |x - x_hat| > t, in C order; updates x_hat."""
    out = []
    for i, (v, h) in enumerate(zip(x.reshape(-1), x_hat.reshape(-1))):
        d = int(v) - int(h)
        if abs(d) > t:
            out.append((i // (W * C), (i // C) % W, i % C, d))
            x_hat.reshape(-1)[i] = v
    return out


class EncoderTB:
    def __init__(self, dut, seed: int):
        self.dut, self.rng = dut, random.Random(seed)
        cocotb.start_soon(Clock(dut.clk, 10, units="ns").start())
        for s in ("state_reset", "s_axis_tvalid", "s_axis_tlast", "ev_ready", "start_ok"):
            getattr(dut, s).value = 0
        dut.threshold.value = 0
        self.errors = 0

    async def reset(self) -> None:
        await FallingEdge(self.dut.clk)
        self.dut.rst_n.value = 0
        for _ in range(2):
            await FallingEdge(self.dut.clk)
        self.dut.rst_n.value = 1
        await self.state_reset()

    async def state_reset(self, eager: bool = False) -> None:
        """One state_reset pulse; returns once the sweep is over, or (``eager``) at once, so
        a frame sent next is offered while the encoder sweeps and taken in the first cycle
        after it."""
        await FallingEdge(self.dut.clk)
        self.dut.state_reset.value = 1
        await FallingEdge(self.dut.clk)
        self.dut.state_reset.value = 0
        while not eager:
            await ReadOnly()
            if not self.dut.busy.value:
                await FallingEdge(self.dut.clk)
                break
            await FallingEdge(self.dut.clk)

    async def send(self, x: np.ndarray, bad_last: bool = False, eager: bool = False) -> None:
        """The frame's beats with random idle cycles (none before the first beat: ``eager``)."""
        d = self.dut
        raw = x.reshape(-1).astype(np.uint8).tobytes()
        raw += bytes((-len(raw)) % BYTES)
        beats = [int.from_bytes(raw[i : i + BYTES], "little") for i in range(0, len(raw), BYTES)]
        i = 0
        while i < len(beats):
            await FallingEdge(d.clk)
            valid = (eager and i == 0) or self.rng.random() > 0.3
            d.s_axis_tvalid.value = int(valid)
            d.s_axis_tdata.value = beats[i]
            last = i == len(beats) - 1
            # a bad TLAST: on the first beat of several, or missing on a one-beat frame
            d.s_axis_tlast.value = int(i == 0 and len(beats) > 1) if bad_last else int(last)
            await ReadOnly()
            if valid and d.s_axis_tready.value:
                i += 1
            if d.stream_error.value:
                self.errors += 1
        await FallingEdge(d.clk)
        d.s_axis_tvalid.value = 0

    async def receive(self) -> list[tuple[int, int, int, int]]:
        d = self.dut
        out = []
        while True:
            await FallingEdge(d.clk)
            ready = self.rng.random() > 0.3
            d.ev_ready.value = int(ready)
            await ReadOnly()
            if d.stream_error.value:
                self.errors += 1
            if ready and d.ev_valid.value:
                if d.ev_last.value:
                    return out
                p = int(d.ev_payload.value)
                v = p & ((1 << VW) - 1)
                v = v - (1 << VW) if v >> (VW - 1) else v
                c = (p >> VW) & ((1 << CW) - 1)
                xx = (p >> (VW + CW)) & ((1 << XW) - 1)
                y = p >> (VW + CW + XW)
                out.append((y, xx, c, v))


@cocotb.test()
async def encoder_vs_model(dut) -> None:
    tb = EncoderTB(dut, seed=1)
    await tb.reset()
    rng = np.random.default_rng(0)
    x_hat = np.zeros((H, W, C), dtype=np.int64)
    x = rng.integers(0, 256, size=(H, W, C))
    for frame in range(12):
        await FallingEdge(dut.clk)  # leave the ReadOnly phase before driving
        t = [0, 3, 10][frame % 3]
        dut.threshold.value = t
        if frame in (7, 9):  # frame 9: its first beat in the first cycle after the sweep
            await tb.state_reset(eager=frame == 9)
            x_hat[:] = 0
        m = rng.random(x.shape) < 0.3
        x = np.where(m, np.clip(x + rng.integers(-20, 21, size=x.shape), 0, 255), x)
        expect = model_events(x, x_hat, t)
        dut.start_ok.value = 1
        send = cocotb.start_soon(tb.send(x, eager=frame == 9))
        got = await tb.receive()
        await send
        assert got == expect, f"frame {frame}: {got} != {expect}"
    assert tb.errors == 0
    # a frame whose TLAST is misplaced is flagged
    await FallingEdge(dut.clk)
    send = cocotb.start_soon(tb.send(x, bad_last=True))
    await tb.receive()
    await send
    assert tb.errors >= 1
