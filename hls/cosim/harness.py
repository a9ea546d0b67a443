"""Build and run the engine co-simulation with cocotb's runner (Verilator).

Used by the pytest runners in this folder, by ``rl2fpga cosim`` and by the benchmarks. Build
folders live under the git-ignored ``build/``; ccache is used when present (``OBJCACHE``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from rl2fpga.core.golden import GoldenModel
from rl2fpga.errors import Rl2fpgaError, ToolMissing
from rl2fpga.fsutil import atomic_write_json
from rl2fpga.hls.engine.generator import RtlDesign
from rl2fpga.manifest import build_trusted, record_build
from rl2fpga.paths import build_root

REPO = Path(__file__).resolve().parents[2]
BUILD_ROOT = build_root()  # build/ in a checkout; ~/.cache/rl2fpga/build when installed
SIM_WRAPPER = Path(__file__).resolve().parent / "sim" / "rl2fpga_engine_sim.sv"
SIM_TOP = "rl2fpga_engine_sim"


def have_verilator() -> bool:
    return shutil.which("verilator") is not None


def _sim_env() -> None:
    if shutil.which("ccache") and "OBJCACHE" not in os.environ:
        os.environ["OBJCACHE"] = "ccache"
    os.environ.setdefault("MAKEFLAGS", "-j2")


def verilate(runner: Any, sources: list[Path], build_dir: Path, what: str, parameters: dict[str, Any],
             build_args: list[str]) -> None:
    """Build ``SIM_TOP`` from ``sources`` in ``build_dir`` with cocotb's runner. The simulation
    binary is reused only when it is byte for byte what this user built there (a truncated,
    swapped or foreign build folder is removed and rebuilt); Verilator and g++ output go to
    ``build.log``, the runner's command echo to ``commands.log``."""
    binary = build_dir / SIM_TOP
    trusted = binary.is_file() and build_trusted(binary)
    if not trusted and build_dir.exists():
        shutil.rmtree(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    build_log = build_dir / "build.log"
    try:
        with open(build_dir / "commands.log", "a") as cmds, contextlib.redirect_stdout(cmds):
            runner.build(sources=[str(p) for p in sources], hdl_toplevel=SIM_TOP, build_dir=str(build_dir),
                         parameters=parameters, build_args=build_args, always=not trusted, log_file=str(build_log))
    except SystemExit as e:  # cocotb's runner exits on a failed tool
        raise Rl2fpgaError(f"the Verilator build of {what} failed ({e}); see {build_log}") from None
    if not trusted:
        if not binary.is_file():
            raise Rl2fpgaError(f"Verilator build in {build_dir} produced no {SIM_TOP}; see {build_log}")
        record_build(binary)


def build_engine(design: RtlDesign, build_dir: Path | None = None) -> tuple[Any, Path]:
    """Verilate the design (incremental: an unchanged design is not rebuilt)."""
    import warnings

    with warnings.catch_warnings():  # "Python runners ... are an experimental feature": once per run, not news
        warnings.simplefilter("ignore", UserWarning)
        from cocotb.runner import get_runner

    if not have_verilator():
        raise ToolMissing("verilator is not on PATH; install it (apt install verilator) for co-simulation")
    _sim_env()
    digest = hashlib.sha1()
    for p in sorted(design.sv_files + design.mem_files) + [SIM_WRAPPER]:
        digest.update(p.name.encode() + p.read_bytes())
    digest.update(str(design.out_dir.absolute()).encode())  # MEM_DIR is compiled in
    build_dir = build_dir or BUILD_ROOT / "sim" / f"engine_{digest.hexdigest()[:12]}"
    runner = get_runner("verilator")
    verilate(runner, [*design.sv_files, SIM_WRAPPER], build_dir, "the engine",
             parameters={"MEM_DIR": f'"{design.out_dir.absolute()}/"', "BYTES": design.input_bytes_per_beat,
                         "ADDR_WIDTH": design.contract.regs.addr_width},
             build_args=["--timing", "--timescale", "1ns/1ps", "-Wno-fatal", "-O3", "--x-assign", "fast", "--x-initial", "fast"])
    return runner, build_dir


def run_engine(
    design: RtlDesign,
    golden_dir: Path,
    frames: np.ndarray,
    work: Path,
    seed: int = 0,
    idle: float = 0.0,
    stall: float = 0.0,
    resets: list[int] | None = None,
    threshold_writes: dict[int, list[tuple[int, int]]] | None = None,
    build_dir: Path | None = None,
) -> dict[str, Any]:
    """Run ``frames`` through the engine in order; returns the TB result (per-frame cycles,
    counters, mismatches). Raises Rl2fpgaError when the simulation does not finish."""
    runner, build_dir = build_engine(design, build_dir)
    work.mkdir(parents=True, exist_ok=True)
    np.save(work / "frames.npy", np.asarray(frames))
    result = work / "tb_result.json"
    if result.exists():
        result.unlink()
    cfg = {
        "golden": str(Path(golden_dir).absolute()),
        "frames": str((work / "frames.npy").absolute()),
        "seed": seed,
        "idle": idle,
        "stall": stall,
        "resets": list(resets or []),
        "threshold_writes": {str(k): v for k, v in (threshold_writes or {}).items()},
        "result": str(result.absolute()),
        "regs": design.contract.regs.to_dict(),  # the register map the design was built with
    }
    return run_testbench(runner, build_dir, work, "rl2fpga.hls.cosim.engine_tb", cfg, "co-simulation")


def run_testbench(runner: Any, build_dir: Path, work: Path, test_module: str, cfg: dict[str, Any],
                  what: str) -> dict[str, Any]:
    """Run the cocotb ``test_module`` on a built design with ``cfg`` (written to
    ``work/tb_config.json``; ``cfg["result"]`` names the file the testbench writes) and return
    that result. Simulator output goes to ``work/sim.log``; shared by every RTL back end."""
    result = Path(cfg["result"])
    atomic_write_json(work / "tb_config.json", cfg)
    env_before = os.environ.pop("PYTEST_CURRENT_TEST", None)
    sim_log = work / "sim.log"  # the simulator's and cocotb's output: a file, not the console
    try:
        # the runner checks results itself only under pytest; we read the result file instead
        with open(work / "commands.log", "a") as cmds, contextlib.redirect_stdout(cmds):  # the runner's command echo
            runner.test(
                test_module=test_module,
                hdl_toplevel=SIM_TOP,
                build_dir=str(build_dir),
                test_dir=str(work),
                extra_env={"RL2FPGA_TB_CONFIG": str((work / "tb_config.json").absolute())},
                results_xml="results.xml",
                log_file=str(sim_log),
            )
    except SystemExit as e:
        raise Rl2fpgaError(f"the {what} failed ({e}); see {sim_log}") from None
    finally:
        if env_before is not None:
            os.environ["PYTEST_CURRENT_TEST"] = env_before
    if not result.exists():
        raise Rl2fpgaError(f"{what} in {work} produced no result; see {sim_log}")
    return json.loads(result.read_text())


def save_golden(golden: GoldenModel, folder: Path) -> Path:
    golden.save(folder)
    return folder
