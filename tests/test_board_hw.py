"""On a PYNQ-Z2 with a deploy bundle: the real driver against the golden model.

Run on the board: RL2FPGA_BUNDLE=~/rl2fpga/bundle python3 -m pytest -m board tests/test_board_hw.py
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest


def _board_present() -> bool:
    try:
        import pynq
    except ImportError:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bool(pynq.Device.devices)


pytestmark = [
    pytest.mark.board,
    pytest.mark.skipif(not _board_present(), reason="no PYNQ board present (pynq finds no device on this machine)"),
    pytest.mark.skipif(not os.environ.get("RL2FPGA_BUNDLE"), reason="RL2FPGA_BUNDLE (a deploy bundle folder) is not set"),
]


def test_board_engine_matches_golden():
    from rl2fpga.board.bundle import check_bundle, require_bitstream
    from rl2fpga.board.driver import EngineDriver
    from rl2fpga.core.golden import GoldenModel

    bundle = Path(os.environ["RL2FPGA_BUNDLE"]).expanduser()
    golden = GoldenModel.load(bundle / "golden")
    check_bundle(bundle, golden)
    drv = EngineDriver(require_bitstream(bundle), bundle / "manifest.json")
    rng = np.random.default_rng(0)
    fmt = golden.in_fmt
    x = rng.integers(fmt.qmin, fmt.qmax + 1, golden.in_shape)
    for _ in range(50):
        x = np.where(rng.random(x.shape) < 0.05, rng.integers(fmt.qmin, fmt.qmax + 1, x.shape), x)
        values, action = drv.infer(x)
        y, stats = golden.step(x)
        assert values.tolist() == y.reshape(-1).tolist() and action == golden.action(y)
        assert drv.counters()["macs"] == stats.macs
