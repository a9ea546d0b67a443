"""The PYNQ driver on a da4ml design: :class:`~rl2fpga.board.driver.EngineDriver` unchanged for
everything on the bus (overlay, AXI DMA, registers, frames); only what a stateless, fully
parallel circuit cannot have differs: delta thresholds must be 0 and there are no per-layer
event / MAC counters."""

from __future__ import annotations

from typing import Any

from rl2fpga.board.driver import EngineDriver
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.hls.engine import regmap


class Da4mlDriver(EngineDriver):
    def set_thresholds(self, thresholds: list[int]) -> None:
        if len(thresholds) != self.n_layers:
            raise Rl2fpgaError(f"{len(thresholds)} thresholds given for {self.n_layers} layers; give one per layer")
        if any(int(t) != 0 for t in thresholds):
            raise Rl2fpgaError(f"the da4ml design is stateless (delta off); thresholds {list(thresholds)} must all be 0")
        self.thresholds = [0] * self.n_layers

    def counters(self) -> dict[str, Any]:
        lo, hi = self.ip.read(regmap.TOTAL_CYCLES_LO), self.ip.read(regmap.TOTAL_CYCLES_HI)
        return {"cycles": self.ip.read(regmap.CYCLES), "frames": self.ip.read(regmap.FRAMES),
                "total_cycles": (hi << 32) | lo, "action": self.ip.read(regmap.ACTION), "events": [], "macs": []}
