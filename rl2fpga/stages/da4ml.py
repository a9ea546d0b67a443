"""The ``da4ml`` pipeline step: the fully parallel back end beside the sparse delta engine.

``rl2fpga da4ml RUN_DIR`` reads ``quantize/golden`` and writes ``da4ml/``:

  rtl/            the da4ml core (Verilog, da4ml's own) + ``rl2fpga_engine_top.sv`` (the engine's
                  AXI contract around it), ``design.json`` (sources, hashes, latency), da4ml's
                  report, the spec it was made from
  sim/            cocotb + Verilator co-simulation vs the golden model (delta off) on real states
  resources.json  yosys ``synth_xilinx -family xc7``: the whole top and the core alone
  board.json      closed-loop episodes: PYNQ driver -> simulated PYNQ-Z2 -> Verilator model
  summary.json    headline figures (also read by the report's back-end table)

Delta off: the circuit is stateless (no x_hat, no kept accumulators), so every frame is
``GoldenModel.forward``; the golden model with every T_int = 0 gives the same integers.
``da4ml.enabled=auto`` runs it only for dense policies up to ``da4ml.max_nonzero_weights``.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from rl2fpga.artifacts import Da4mlBoard, Da4mlFrames, Da4mlResources, Da4mlSummary
from rl2fpga.config import RunConfig
from rl2fpga.core.golden import GoldenModel
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.hls.da4ml.flow import DELTA_NOTE, decide, play_board, resources, stateless
from rl2fpga.run import Run


def _lower(cfg: RunConfig, model: GoldenModel, out: Path, console: Any) -> tuple[Any, np.ndarray, list[int], dict[str, Any]]:
    """Real states, the da4ml design made from them, its expected outputs and what it is."""
    from rl2fpga.hls.da4ml.lowering import generate, interpreter_outputs
    from rl2fpga.train.frames import record_frames

    frames, starts = record_frames(cfg.env, cfg.da4ml.cosim_frames, cfg.seed)
    xs = np.stack([model.quantize_input(f) for f in frames])
    console.print(f"lowering the golden model (delta off) with da4ml, {len(model.layers)} dense layers ...")
    design = generate(model, out / "rtl", cfg.rtl.input_bytes_per_beat, latency_cutoff=cfg.da4ml.latency_cutoff,
                      check_inputs=xs)
    ref = np.stack([model.forward(x).reshape(-1) for x in xs])
    interp = interpreter_outputs(design.out_dir)
    rep = design.report
    facts = {
        "da4ml_version": rep.get("da4ml_version"), "stages": design.stages, "latency_cycles": design.latency_cycles,
        "ii": 1, "latency_cutoff": cfg.da4ml.latency_cutoff, "cost_estimate": rep.get("cost"),
        "input_bytes_per_beat": design.input_bytes_per_beat, "clock_mhz": cfg.rtl.clock_mhz,
        "n_out": int(ref.shape[1]),
        "axi_ii_cycles": max(int(np.ceil(xs[0].size * (2 if model.in_fmt.bits > 8 else 1) / design.input_bytes_per_beat)),
                             int(ref.shape[1]) + 1),
        "interpreter_frames": len(xs),
        "interpreter_mismatches": int((interp != ref).any(axis=1).sum()) if interp is not None else None,
    }
    return design, frames, starts, facts


def _cosim(cfg: RunConfig, design: Any, golden_dir: Path, frames: np.ndarray, starts: list[int], out: Path,
           summary: dict[str, Any], console: Any) -> dict[str, Any]:
    """Co-simulate in Verilator; the summary is written before a mismatch is reported."""
    from rl2fpga.hls.da4ml import cosim

    console.print(f"co-simulating {len(frames)} real states ({len(starts)} episodes) in Verilator ...")
    res = cosim.run(design, golden_dir, frames, out / "sim", seed=cfg.seed, idle=cfg.cosim.backpressure,
                    stall=cfg.cosim.backpressure, build_dir=out / "obj")
    Da4mlFrames(res["per_frame"]).save_in(out)
    summary.update({"cosim_frames": res["frames"], "cosim_mismatches": res["mismatches"],
                    "cosim_sequential": res["sequential"], "cosim_streamed": res["streamed"]})
    if res["mismatches"]:
        Da4mlSummary(summary).save_in(out)
        raise Rl2fpgaError(f"da4ml co-simulation: {res['mismatches']} of {res['frames']} frames differ from the golden model; "
                           f"see {out / Da4mlFrames.FILE}")
    return res


def _board(run: Run, cfg: RunConfig, model: GoldenModel, design: Any, out: Path, summary: dict[str, Any]) -> None:
    brd = play_board(run, cfg, model, design)
    Da4mlBoard(brd).save_in(out)
    summary["board"] = {k: brd[k] for k in ("episodes", "steps", "returns", "golden_returns", "action_mismatches",
                                            "output_mismatches", "cycles_per_step")}
    if brd["cycles_per_step"]:
        summary["axi_latency_cycles"] = brd["cycles_per_step"]["median"]


def da4ml_step(run: Run, cfg: RunConfig) -> None:
    from rich.console import Console

    console = Console(stderr=True)
    out = run.dir("da4ml")
    run.require("quantize")
    golden_dir = run.layout.quantize_golden
    model = stateless(GoldenModel.load(golden_dir))
    ok, reason = decide(model, cfg)
    summary: dict[str, Any] = {"enabled": ok, "reason": reason, "delta": DELTA_NOTE}
    if not ok:
        console.print(f"da4ml back end skipped ({reason})")
        Da4mlSummary(summary).save_in(out)
        return
    times: dict[str, float] = {}
    t = time.perf_counter()
    design, frames, starts, facts = _lower(cfg, model, out, console)
    summary.update(facts)
    times["lower"] = time.perf_counter() - t

    t = time.perf_counter()
    res = _cosim(cfg, design, golden_dir, frames, starts, out, summary, console)
    times["cosim"] = time.perf_counter() - t

    if cfg.da4ml.synth and shutil.which("yosys"):
        t = time.perf_counter()
        console.print("yosys synth_xilinx -family xc7 (da4ml top and core) ...")
        est = resources(design, out)
        times["synth"] = time.perf_counter() - t
        Da4mlResources(est).save_in(out)
        summary["resources"] = est
    else:
        summary["resources"] = "skipped: da4ml.synth=false or yosys not on PATH"

    if cfg.da4ml.episodes > 0:
        t = time.perf_counter()
        console.print(f"{cfg.da4ml.episodes} episodes: PYNQ driver -> simulated PYNQ-Z2 -> da4ml RTL (Verilator) ...")
        _board(run, cfg, model, design, out, summary)
        times["board"] = time.perf_counter() - t
    summary["seconds"] = {k: round(v, 1) for k, v in times.items()}
    Da4mlSummary(summary).save_in(out)
    r = summary.get("resources")
    console.print(
        f"da4ml: {res['frames']} frames bit-exact; core {design.latency_cycles} cycles, II 1"
        + (f"; {r['top']['lut']:,} LUT, {r['top']['ff']:,} FF, {r['top']['dsp']} DSP (top)" if isinstance(r, dict) else "")
        + (f"; board {summary['board']['steps']} steps, {summary['board']['action_mismatches']} action mismatches" if "board" in summary else "")
    )
    if "board" in summary and (summary["board"]["action_mismatches"] or summary["board"]["output_mismatches"]):
        raise Rl2fpgaError(f"da4ml closed loop: {summary['board']['action_mismatches']} action mismatches vs the golden policy; "
                           f"see {run.layout.da4ml_board}")
