"""yosys resource estimate of the engine."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from rl2fpga.core.golden import Fmt, random_model
from rl2fpga.hls.engine.generator import generate
from rl2fpga.hls.engine.resources import (
    XC7Z020,
    estimate,
    estimate_by_module,
    hierarchy_totals,
    parse_stat,
)

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


# yosys 0.23 `stat -top top` after a hierarchical synth_xilinx (trimmed): per-module sections,
# then the design hierarchy with the cells summed by instance count (sub W=4 twice, W=8 once)
HIER_STAT = r"""
=== $paramod\sub\W=s32'00000000000000000000000000000100 ===

   Number of cells:                  9
     CARRY4                          1
     FDRE                            4
     LUT2                            4

=== $paramod\sub\W=s32'00000000000000000000000000001000 ===

   Number of cells:                 18
     CARRY4                          2
     FDRE                            8
     LUT2                            8

=== top ===

   Number of cells:                 25
     $paramod\sub\W=s32'00000000000000000000000000000100      2
     $paramod\sub\W=s32'00000000000000000000000000001000      1
     BUFG                            1

=== design hierarchy ===

   top                               1
     $paramod\sub\W=s32'00000000000000000000000000000100      2
     $paramod\sub\W=s32'00000000000000000000000000001000      1

   Number of wires:                 29
   Number of cells:                 58
     BUFG                            1
     CARRY4                          4
     FDRE                           16
     LUT2                           16
"""


def test_hierarchical_stat_counts_the_totals_only() -> None:
    e = parse_stat(hierarchy_totals(HIER_STAT))
    assert e["ff"] == 2 * 4 + 8  # by instance count, the per-module sections not added again
    assert e["lut"] == 2 * 4 + 8
    assert e["cells"]["CARRY4"] == 4
    assert parse_stat(hierarchy_totals(STAT))["ff"] == 11  # a flat stat is read whole


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


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys not installed")
def test_by_module_estimate_matches_the_flat_one(tmp_path) -> None:
    """The by-module method (lanes synthesised once, summed by instance count) against the
    whole-design run on a design small enough for both: the same block RAM and DSPs, LUTs and
    FFs not below the flat figures and within 50 % above them (no optimisation across module
    boundaries; measured on the demo-shaped MLP: LUT +39 %, FF +25 %). The design is built on
    the general path (short_path=False), the one whose lanes the method synthesises once (the
    Breakout lanes table); on the short path the same MLP reads LUT +60 %."""
    g = random_model(np.random.default_rng(0), (4,), [("dense", 8), ("dense", 8), ("dense", 2)], sparsity=0.1,
                     w_bits=4, in_fmt=Fmt(12, 5, True), threshold=2)  # benchmarks/cosim_mlp.py's demo_mlp
    d = generate(g, tmp_path, lanes=4, input_bytes_per_beat=8, short_path=False)
    assert {p.module for p in d.layers} == {"rl2fpga_layer"}
    flat = estimate(d.sv_files, d.top, tmp_path, tmp_path / "flat.log", timeout_s=900)
    by_module = estimate_by_module(d.sv_files, d.top, tmp_path, tmp_path / "by_module.log", timeout_s=900)
    assert by_module["dsp"] == flat["dsp"] > 0
    assert by_module["bram36"] == flat["bram36"]
    for k in ("lut", "ff"):
        assert flat[k] * 0.97 <= by_module[k] <= flat[k] * 1.5, (k, flat[k], by_module[k])
    assert "by module" in by_module["method"] and "flatten" in flat["method"]
