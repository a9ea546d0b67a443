"""The da4ml back end's decisions and checks: whether a policy suits it, the stateless (delta
off) golden model it must equal, resources by yosys, closed-loop episodes on the simulated
board. Used by the ``da4ml`` stage (:mod:`rl2fpga.stages.da4ml`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from rl2fpga.config import RunConfig, apply_overrides
from rl2fpga.core.golden import GoldenModel
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.fsutil import atomic_write_json
from rl2fpga.run import Run

DELTA_NOTE = ("delta off: the fully parallel circuit is stateless and recomputes every output from every "
              "input each frame (golden forward pass, every T_int = 0); delta thresholds do not apply")


def decide(model: GoldenModel, cfg: RunConfig) -> tuple[bool, str]:
    """Whether the step runs, and why."""
    from rl2fpga.hls.da4ml.lowering import have_da4ml, lowers_model

    mode = cfg.da4ml.enabled
    if mode == "never":
        return False, "da4ml.enabled=never"
    dense = lowers_model(model)
    nnz = sum(layer.nnz() for layer in model.layers)
    if mode == "always":
        if not dense:
            raise Rl2fpgaError("da4ml.enabled=always but the policy has convolutions; the da4ml back end lowers dense layers only")
        return True, "da4ml.enabled=always"
    if not dense:
        return False, "auto: convolutional policy (dense layers only)"
    if nnz > cfg.da4ml.max_nonzero_weights:
        return False, f"auto: {nnz:,} nonzero weights > da4ml.max_nonzero_weights {cfg.da4ml.max_nonzero_weights:,}"
    if not have_da4ml():
        return False, "auto: the da4ml environment .venv-da4ml is missing (make setup creates it)"
    return True, f"auto: dense policy with {nnz:,} nonzero weights"


def stateless(model: GoldenModel) -> GoldenModel:
    m = model.copy()
    m.set_thresholds(0)
    return m


def resources(design: Any, log_dir: Any) -> dict[str, Any]:
    from rl2fpga.hls.da4ml.lowering import CORE, TOP
    from rl2fpga.hls.engine.resources import estimate

    out: dict[str, Any] = {}
    for name, top in (("top", TOP), ("core", CORE)):
        files = design.sv_files if name == "top" else [p for p in design.sv_files if p.suffix == ".v"]
        est = estimate(files, top, design.out_dir, log_dir / f"yosys_{name}.log")
        out[name] = {k: est[k] for k in ("lut", "ff", "dsp", "bram36", "fits_xc7z020", "utilisation")}
    return out


def play_board(run: Run, cfg: RunConfig, model: GoldenModel, design: Any) -> dict[str, Any]:
    """Episodes through the PYNQ driver and the simulated PYNQ-Z2 backed by the da4ml RTL in
    Verilator; the golden policy (delta off) in lockstep."""
    from rl2fpga.board import block_design as bd
    from rl2fpga.board.bundle import make_manifest
    from rl2fpga.board.play import play
    from rl2fpga.board.simdevice import SimDevice
    from rl2fpga.board.verilator_engine import VerilatorEngine
    from rl2fpga.fsutil import atomic_write_text
    from rl2fpga.hls.da4ml.board import Da4mlDriver

    out = run.dir("da4ml")
    bpb = design.input_bytes_per_beat
    engine = VerilatorEngine(design.out_dir, out / "board_obj", model, 0, bpb)
    sim_dir = out / "emulator"
    atomic_write_text(sim_dir / "rl2fpga.bit", "simulated bitstream slot (board/simdevice.py)\n")
    atomic_write_text(sim_dir / "rl2fpga.hwh", bd.sim_hwh(bd.DesignParams(0, bpb, cfg.rtl.clock_mhz)))
    atomic_write_json(sim_dir / "manifest.json", make_manifest(model, 0, bpb, cfg.rtl.clock_mhz, cfg.env.id))
    drv = Da4mlDriver(sim_dir / "rl2fpga.bit", sim_dir / "manifest.json", device=SimDevice(engine))
    pcfg = apply_overrides(cfg, [f"board.episodes={cfg.da4ml.episodes}"])
    log = play(pcfg, model, drv)
    ref = play(pcfg, model, None)
    cyc = np.asarray(log.cycles, dtype=np.float64)
    return {
        "target": "emulator", "engine": "verilator (da4ml design)", "episodes": len(log.returns),
        "steps": int(sum(log.steps)), "returns": log.returns, "golden_returns": ref.returns,
        "returns_equal": log.returns == ref.returns,
        "action_mismatches": log.action_mismatches, "output_mismatches": log.output_mismatches,
        "first_mismatch": log.first_mismatch,
        "cycles_per_step": None if not len(cyc) else {"min": float(cyc.min()), "median": float(np.median(cyc)),
                                                       "max": float(cyc.max())},
        "host_latency_us_median": float(np.median(log.latency_us)) if log.latency_us else None,
    }


