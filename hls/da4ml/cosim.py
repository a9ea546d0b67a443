"""Co-simulation of a da4ml design with cocotb 1.9's runner and Verilator (the pattern of
:mod:`rl2fpga.hls.cosim.harness`, whose simulation wrapper it reuses: the same
``rl2fpga_engine_sim`` clocks ``rl2fpga_engine_top``, here the da4ml top)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from rl2fpga.errors import ToolMissing
from rl2fpga.hls.cosim.harness import SIM_WRAPPER, have_verilator, run_testbench, verilate
from rl2fpga.hls.da4ml.lowering import Da4mlDesign
from rl2fpga.paths import build_dir_for


def build(design: Da4mlDesign, build_dir: Path | None = None) -> tuple[Any, Path]:
    """Verilate the design (an unchanged design is not rebuilt)."""
    from cocotb.runner import get_runner

    if not have_verilator():
        raise ToolMissing("verilator is not on PATH; install it (apt install verilator) for co-simulation")
    if "OBJCACHE" not in os.environ and __import__("shutil").which("ccache"):
        os.environ["OBJCACHE"] = "ccache"
    os.environ.setdefault("MAKEFLAGS", "-j2")
    digest = hashlib.sha1()
    for p in [*design.sv_files, SIM_WRAPPER]:
        digest.update(p.name.encode() + p.read_bytes())
    key = digest.hexdigest()[:12]
    build_dir = Path(build_dir) if build_dir else design.out_dir.parent / "obj"
    build_dir = build_dir_for(build_dir / key)  # make cannot build in a path with spaces
    runner = get_runner("verilator")
    verilate(runner, [*design.sv_files, SIM_WRAPPER], build_dir, "the da4ml design",
             parameters={"BYTES": design.input_bytes_per_beat},
             build_args=["--timing", "--timescale", "1ns/1ps", "-Wno-fatal", "-Wno-lint", "-Wno-style", "-O3",
                         "--x-assign", "fast", "--x-initial", "fast"])
    return runner, build_dir


def run(design: Da4mlDesign, golden_dir: Path, frames: np.ndarray, work: Path, seed: int = 0, idle: float = 0.0,
        stall: float = 0.0, sequential: int | None = None, error_check: bool = True,
        build_dir: Path | None = None) -> dict[str, Any]:
    """``frames`` (observations) through the design: the first ``sequential`` one at a time,
    the rest back to back; returns the testbench's result (mismatches, per-frame outputs)."""
    runner, build_dir = build(design, build_dir)
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    np.save(work / "frames.npy", np.asarray(frames))
    result = work / "tb_result.json"
    if result.exists():
        result.unlink()
    cfg = {
        "golden": str(Path(golden_dir).resolve()),
        "frames": str((work / "frames.npy").resolve()),
        "seed": seed, "idle": idle, "stall": stall,
        "sequential": len(frames) // 2 if sequential is None else int(sequential),
        "error_check": error_check,
        "result": str(result.resolve()),
    }
    return run_testbench(runner, build_dir, work, "rl2fpga.hls.da4ml.da4ml_tb", cfg, "da4ml co-simulation")
