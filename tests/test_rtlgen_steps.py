"""``rl2fpga rtl`` and ``rl2fpga cosim`` on a run directory, and the latency statistics."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from rl2fpga.config import RunConfig
from rl2fpga.core.golden import Fmt, random_model
from rl2fpga.hls.cosim.latency import latency_stats
from rl2fpga.run import Run


def test_latency_stats_against_hand_computed() -> None:
    per_frame = [
        {"cycles": 100, "golden_macs": [40, 40]},
        {"cycles": 30, "golden_macs": [10, 6]},
        {"cycles": 50, "golden_macs": [20, 20]},
    ]
    s = latency_stats(per_frame, dense_mults=[800, 400], lanes=4, clock_mhz=100.0)
    assert s["cycles"]["median"] == 50
    assert s["cycles"]["min"] == 30 and s["cycles"]["max"] == 100
    assert s["dense_equivalent_cycles"] == 300  # 1200 / 4
    assert s["lower_bound_cycles"]["median"] == 10  # bounds 20, 4, 10
    assert s["median_over_dense"] == pytest.approx(50 / 300)
    assert s["median_over_lower_bound"] == pytest.approx(5.0)
    assert s["microseconds"]["median"] == pytest.approx(0.5)


def _run_with_golden(tmp_path, **cfg_kw) -> tuple[Run, RunConfig]:
    cfg = RunConfig(name="t", **cfg_kw)
    cfg.rtl.synth = False
    run = Run.create(cfg, path=tmp_path / "run")
    g = random_model(np.random.default_rng(0), (4,), [("dense", 16), ("dense", 2)], sparsity=0.7,
                     in_fmt=Fmt(16, 5, True), threshold=3)
    g.save(run.dir("quantize") / "golden")
    run.mark_done("quantize", 0.0)
    return run, cfg


def test_rtl_step_refuses_missing_golden(tmp_path) -> None:
    from rl2fpga.errors import Rl2fpgaError
    from rl2fpga.stages.rtl import rtl_step

    cfg = RunConfig(name="t")
    run = Run.create(cfg, path=tmp_path / "run")
    with pytest.raises(Rl2fpgaError, match="quantize"):
        rtl_step(run, cfg)


@pytest.mark.verilator
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("verilator") is None, reason="verilator not installed")
def test_rtl_and_cosim_steps_cartpole(tmp_path) -> None:
    from rl2fpga.stages.cosim import cosim_step
    from rl2fpga.stages.rtl import rtl_step

    run, cfg = _run_with_golden(tmp_path)
    cfg.cosim.frames = 40
    cfg.rtl.input_bytes_per_beat = 4
    rtl_step(run, cfg)
    run.mark_done("rtl", 0.0)  # what run_pipeline does after a step
    rtl = run.path / "rtl"
    assert (rtl / "rl2fpga_engine_top.sv").exists() and (rtl / "lint.log").exists()
    assert json.loads((rtl / "summary.json").read_text())["lint"] == "clean"
    cosim_step(run, cfg)
    lat = json.loads((run.path / "cosim" / "latency.json").read_text())
    summ = json.loads((run.path / "cosim" / "summary.json").read_text())
    assert summ["frames"] == 40 and summ["mismatches"] == 0
    assert lat["cycles"]["min"] <= lat["cycles"]["median"] <= lat["cycles"]["max"]
    # the latency comes from the stall-free stream; the back-pressure run (default 0.3) checks the
    # handshakes on the same frames, and its random stalls only add cycles
    assert summ["backpressure"] == cfg.cosim.backpressure > 0 and summ["backpressure_mismatches"] == 0
    assert summ["backpressure_cycles_median"] > summ["cycles_median"]
    assert (run.path / "cosim" / "latency_hist.png").stat().st_size > 1000
