"""yosys resource estimate of the engine."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from rl2fpga.core.golden import random_model
from rl2fpga.hls.engine.generator import generate
from rl2fpga.hls.engine.resources import XC7Z020, estimate, parse_stat

STAT = """
=== design hierarchy ===

   Number of cells:              12
     DSP48E1                         2
     FDRE                           10
     FDSE                            1
     INV                             3
     LUT2                            4
     LUT6                            5
     MUXF7                           2
     RAM64M                          1
     RAMB18E1                        3
     RAMB36E1                        2
"""


def test_parse_stat_counts() -> None:
    e = parse_stat(STAT)
    assert e["lut"] == 3 + 4 + 5 + 1  # INV as LUT1, LUT RAM counted, MUXF not
    assert e["ff"] == 11
    assert e["dsp"] == 2
    assert e["bram36"] == 3.5


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys not installed")
def test_yosys_estimate_tiny_engine(tmp_path) -> None:
    g = random_model(np.random.default_rng(0), (4,), [("dense", 8), ("dense", 2)], sparsity=0.5)
    d = generate(g, tmp_path, lanes=2, input_bytes_per_beat=4)
    est = estimate(d.sv_files, d.top, tmp_path, tmp_path / "yosys.log", timeout_s=900)
    assert est["dsp"] >= 2  # the lanes multiply in DSP48E1s
    assert 0 < est["lut"] < XC7Z020["lut"] and est["ff"] > 0
    assert est["unmapped_memories"] == 0
    assert est["fits_xc7z020"]
