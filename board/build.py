"""``rl2fpga board RUN_DIR --action build``: the Vivado project and the deploy bundle.

1. copy the generated RTL and memory images (``runs/<name>/rtl``) into ``board/vivado/src``;
2. render ``board/vivado/build.tcl`` from ``templates/vivado_project.tcl.j2`` (engine packaged
   as IP, PS7, AXI DMA, AXI4-Lite interconnect, bitstream + .hwh export);
3. run Vivado when it is on PATH, else print the exact commands;
4. write ``board/bundle`` (driver, regmap, manifest, golden model, run_policy.py and the
   bitstream + .hwh when the build produced them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from rl2fpga.board import block_design as design
from rl2fpga.board.bundle import write_bundle
from rl2fpga.config import RunConfig
from rl2fpga.core.golden import GoldenModel
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.fsutil import atomic_dir, atomic_write_json, atomic_write_text
from rl2fpga.run import Run


def render_tcl(params: design.DesignParams, rtl_files: list[str], mem_files: list[str], jobs: int = 2) -> str:
    dma_config = [(name.lower(), value) for name, value in params.dma_params() if name != "C_MICRO_DMA"]
    return design.render(
        "vivado_project.tcl.j2",
        part=design.PART,
        board_part=design.BOARD_PART,
        design=design.DESIGN,
        engine=design.ENGINE_INSTANCE,
        dma=design.DMA_INSTANCE,
        vlnv=design.ENGINE_VLNV,
        vendor=design.ENGINE_VLNV.split(":")[0],
        library=design.ENGINE_VLNV.split(":")[1],
        version=design.ENGINE_VLNV.split(":")[3],
        top=design.ENGINE_TOP,
        rtl_files=rtl_files,
        mem_files=mem_files,
        dma_config=dma_config,
        mm2s_bits=8 * params.input_bytes_per_beat,
        fclk_mhz=params.fclk_mhz,
        dma_base=design.DMA_BASE,
        engine_base=design.ENGINE_BASE,
        jobs=jobs,
    )


def record_check_frames(cfg: RunConfig, model: GoldenModel, n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Inputs for the bundle's self-check: ``n`` real observations of the run's environment
    (seeded random policy) on the input grid, and the episode-start flags."""
    from rl2fpga.train.frames import record_env

    frames, starts = record_env(cfg.env, n, cfg.seed)
    x = np.stack([model.quantize_input(f) for f in frames])
    flags = np.zeros(len(x), dtype=bool)
    flags[starts] = True
    return x, flags


def design_params(src: design.RtlSources, cfg: RunConfig) -> design.DesignParams:
    """The generated RTL's lanes and beat width (design.json) win over the config's."""
    return design.DesignParams(src.lanes or cfg.rtl.lanes, src.input_bytes_per_beat or cfg.rtl.input_bytes_per_beat,
                               cfg.rtl.clock_mhz)


def write_project(run: Run, cfg: RunConfig) -> Path:
    """board/vivado/{src/, build.tcl}; a previous out/ (bitstream) is kept."""
    src = design.rtl_sources(run.path / "rtl")
    hdl, mems = src.hdl, src.mems
    vivado_dir = run.dir("board") / "vivado"
    rtl_root = run.path / "rtl"
    with atomic_dir(vivado_dir / "src") as tmp:
        for p in hdl + mems:
            dst = tmp / p.relative_to(rtl_root)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, dst)
    rel = [str(Path("src") / p.relative_to(rtl_root)) for p in hdl]
    rel_mem = [str(Path("src") / p.relative_to(rtl_root)) for p in mems]
    params = design_params(src, cfg)
    atomic_write_text(vivado_dir / "build.tcl", render_tcl(params, rel, rel_mem, jobs=max(1, os.cpu_count() or 1)))
    return vivado_dir


def vivado_commands(vivado_dir: Path) -> list[str]:
    return [f"cd {vivado_dir}", "vivado -mode batch -source build.tcl -nojournal -log vivado.log"]


def build(run: Run, cfg: RunConfig, model: GoldenModel, console: Any) -> None:
    vivado_dir = write_project(run, cfg)
    vivado = shutil.which("vivado")
    ran = False
    if vivado:
        console.print(f"running Vivado ({vivado}); this takes 10-30 minutes, log: {vivado_dir / 'vivado.log'}")
        proc = subprocess.run([vivado, "-mode", "batch", "-source", "build.tcl", "-nojournal", "-log", "vivado.log"],
                              cwd=vivado_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise Rl2fpgaError(f"Vivado failed (exit {proc.returncode}); see {vivado_dir / 'vivado.log'}")
        ran = True
    bit = vivado_dir / "out" / "rl2fpga.bit"
    src = design.rtl_sources(run.path / "rtl")
    params = design_params(src, cfg)
    bundle = write_bundle(run.path / "board" / "bundle", model, params.lanes, params.input_bytes_per_beat,
                          params.fclk_mhz, cfg.env.id, bitstream=bit, frame_stack=src.frame_stack,
                          check_frames=record_check_frames(cfg, model), regs=src.regs)
    info = {
        "vivado": vivado,
        "ran_vivado": ran,
        "tcl": str(vivado_dir / "build.tcl"),
        "commands": vivado_commands(vivado_dir),
        "bitstream": str(bit) if bit.exists() else None,
        "bundle": str(bundle),
    }
    atomic_write_json(run.path / "board" / "build.json", info)
    if bit.exists():
        console.print(f"bundle with bitstream: {bundle}")
    else:
        console.print("Vivado is not on PATH; the project is written. Build the bitstream with:")
        for c in info["commands"]:
            console.print(f"    {c}", soft_wrap=True)
        console.print(f"then rerun `rl2fpga board {run.path} --action build` to put it into {bundle}", soft_wrap=True)
