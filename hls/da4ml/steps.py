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
from typing import Any

import numpy as np

from rl2fpga.config import RunConfig, apply_overrides
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.fsutil import atomic_write_json
from rl2fpga.quantize.golden import GoldenModel
from rl2fpga.run import Run

DELTA_NOTE = ("delta off: the fully parallel circuit is stateless and recomputes every output from every "
              "input each frame (golden forward pass, every T_int = 0); delta thresholds do not apply")


def decide(model: GoldenModel, cfg: RunConfig) -> tuple[bool, str]:
    """Whether the step runs, and why."""
    from rl2fpga.hls.da4ml.lowering import have_da4ml

    mode = cfg.da4ml.enabled
    if mode == "never":
        return False, "da4ml.enabled=never"
    dense = all(layer.kind == "dense" for layer in model.layers)
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
    from rl2fpga.hls.resources import estimate

    out: dict[str, Any] = {}
    for name, top in (("top", TOP), ("core", CORE)):
        files = design.sv_files if name == "top" else [p for p in design.sv_files if p.suffix == ".v"]
        est = estimate(files, top, design.out_dir, log_dir / f"yosys_{name}.log")
        out[name] = {k: est[k] for k in ("lut", "ff", "dsp", "bram36", "fits_xc7z020", "utilisation")}
    return out


def play_board(run: Run, cfg: RunConfig, model: GoldenModel, design: Any) -> dict[str, Any]:
    """Episodes through the PYNQ driver and the simulated PYNQ-Z2 backed by the da4ml RTL in
    Verilator; the golden policy (delta off) in lockstep."""
    from rl2fpga.board import design as bd
    from rl2fpga.board.bundle import make_manifest
    from rl2fpga.board.simdevice import SimDevice
    from rl2fpga.board.steps import play
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


def da4ml_step(run: Run, cfg: RunConfig) -> None:
    from rich.console import Console

    from rl2fpga.hls.da4ml import cosim
    from rl2fpga.hls.da4ml.lowering import generate, interpreter_outputs
    from rl2fpga.rtl_tests.steps import record_frames

    console = Console(stderr=True)
    out = run.dir("da4ml")
    golden_dir = run.require("quantize") / "golden"
    model = stateless(GoldenModel.load(golden_dir))
    ok, reason = decide(model, cfg)
    summary: dict[str, Any] = {"enabled": ok, "reason": reason, "delta": DELTA_NOTE}
    if not ok:
        console.print(f"da4ml back end skipped ({reason})")
        atomic_write_json(out / "summary.json", summary)
        return
    times: dict[str, float] = {}
    t = time.perf_counter()
    frames, starts = record_frames(cfg.env, cfg.da4ml.cosim_frames, cfg.seed)
    xs = np.stack([model.quantize_input(f) for f in frames])
    console.print(f"lowering the golden model (delta off) with da4ml, {len(model.layers)} dense layers ...")
    design = generate(model, out / "rtl", cfg.rtl.input_bytes_per_beat, latency_cutoff=cfg.da4ml.latency_cutoff,
                      check_inputs=xs)
    times["lower"] = time.perf_counter() - t
    ref = np.stack([model.forward(x).reshape(-1) for x in xs])
    interp = interpreter_outputs(design.out_dir)
    interp_mism = int((interp != ref).any(axis=1).sum()) if interp is not None else None
    rep = design.report
    summary.update({
        "da4ml_version": rep.get("da4ml_version"), "stages": design.stages, "latency_cycles": design.latency_cycles,
        "ii": 1, "latency_cutoff": cfg.da4ml.latency_cutoff, "cost_estimate": rep.get("cost"),
        "input_bytes_per_beat": design.input_bytes_per_beat, "clock_mhz": cfg.rtl.clock_mhz,
        "n_out": int(ref.shape[1]),
        "axi_ii_cycles": max(int(np.ceil(xs[0].size * (2 if model.in_fmt.bits > 8 else 1) / design.input_bytes_per_beat)),
                             int(ref.shape[1]) + 1),
        "interpreter_frames": len(xs), "interpreter_mismatches": interp_mism,
    })

    t = time.perf_counter()
    console.print(f"co-simulating {len(frames)} real states ({len(starts)} episodes) in Verilator ...")
    res = cosim.run(design, golden_dir, frames, out / "sim", seed=cfg.seed, idle=cfg.cosim.backpressure,
                    stall=cfg.cosim.backpressure, build_dir=out / "obj")
    times["cosim"] = time.perf_counter() - t
    atomic_write_json(out / "frames.json", res["per_frame"])
    summary.update({"cosim_frames": res["frames"], "cosim_mismatches": res["mismatches"],
                    "cosim_sequential": res["sequential"], "cosim_streamed": res["streamed"]})
    if res["mismatches"]:
        atomic_write_json(out / "summary.json", summary)
        raise Rl2fpgaError(f"da4ml co-simulation: {res['mismatches']} of {res['frames']} frames differ from the golden model; see {out / 'frames.json'}")

    if cfg.da4ml.synth and shutil.which("yosys"):
        t = time.perf_counter()
        console.print("yosys synth_xilinx -family xc7 (da4ml top and core) ...")
        est = resources(design, out)
        times["synth"] = time.perf_counter() - t
        atomic_write_json(out / "resources.json", est)
        summary["resources"] = est
    else:
        summary["resources"] = "skipped: da4ml.synth=false or yosys not on PATH"

    if cfg.da4ml.episodes > 0:
        t = time.perf_counter()
        console.print(f"{cfg.da4ml.episodes} episodes: PYNQ driver -> simulated PYNQ-Z2 -> da4ml RTL (Verilator) ...")
        brd = play_board(run, cfg, model, design)
        times["board"] = time.perf_counter() - t
        atomic_write_json(out / "board.json", brd)
        summary["board"] = {k: brd[k] for k in ("episodes", "steps", "returns", "golden_returns", "action_mismatches",
                                                "output_mismatches", "cycles_per_step")}
        if brd["cycles_per_step"]:
            summary["axi_latency_cycles"] = brd["cycles_per_step"]["median"]
    summary["seconds"] = {k: round(v, 1) for k, v in times.items()}
    atomic_write_json(out / "summary.json", summary)
    r = summary.get("resources")
    console.print(
        f"da4ml: {res['frames']} frames bit-exact; core {design.latency_cycles} cycles, II 1"
        + (f"; {r['top']['lut']:,} LUT, {r['top']['ff']:,} FF, {r['top']['dsp']} DSP (top)" if isinstance(r, dict) else "")
        + (f"; board {summary['board']['steps']} steps, {summary['board']['action_mismatches']} action mismatches" if "board" in summary else "")
    )
    if "board" in summary and (summary["board"]["action_mismatches"] or summary["board"]["output_mismatches"]):
        raise Rl2fpgaError(f"da4ml closed loop: {summary['board']['action_mismatches']} action mismatches vs the golden policy; see {out / 'board.json'}")
