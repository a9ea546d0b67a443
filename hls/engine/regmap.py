"""The default register map as module constants, for code that addresses an engine built with
the default contract (the da4ml top, its testbench and board driver, the reference engine
models). Derived from :mod:`rl2fpga.hls.engine.contract`, which defines the map and the stream
format once; nothing here is kept by hand. Code that drives a generated design reads the map
the design was built with (``RtlDesign.contract`` / ``design.json``) instead."""

from __future__ import annotations

from rl2fpga.hls.engine.contract import (  # noqa: F401  (re-exported names)
    CTRL_FULL_FRAME,
    CTRL_RESET_COUNTERS,
    CTRL_RESET_STATE,
    ENGINE_ID,
    INFO_BOTTOM_UP,
    INFO_FRAME_STACK,
    REGS,
    STATUS_BUSY,
    STATUS_DONE,
    STATUS_ERROR,
    elem_bytes,
)

CTRL = REGS.ctrl
STATUS = REGS.status
ID = REGS.id
INFO = REGS.info
FRAMES = REGS.frames
CYCLES = REGS.cycles
TOTAL_CYCLES_LO = REGS.total_cycles_lo
TOTAL_CYCLES_HI = REGS.total_cycles_hi
ACTION = REGS.action
THRESHOLD_BASE = REGS.threshold_base
EVENTS_BASE = REGS.events_base
MACS_BASE = REGS.macs_base
MAX_LAYERS = REGS.max_layers
ADDR_WIDTH = REGS.addr_width
threshold_reg = REGS.threshold_reg
events_reg = REGS.events_reg
macs_reg = REGS.macs_reg
