"""The ``cosim`` pipeline step: the generated engine in Verilator (cocotb) vs the golden model on
real episodes, with the latency distribution.

``rl2fpga cosim RUN_DIR --frames N`` reads ``rtl/`` and ``quantize/golden/`` and writes
``cosim/``:

  latency.json       cycles per frame (min / median / p99 / max) in cycles and microseconds,
                     beside the dense-equivalent engine at the same lanes (every multiplication
                     of the dense network / lanes) and the lower bound (significant MACs /
                     lanes) of each frame; their ratios
  frames.json        per frame: cycles, events and MACs per layer (engine and golden)
  latency_hist.png   histogram of cycles per frame with the dense and bound lines
  latency_stages.png where the cycles of a frame go: input transfer, then the tail of each layer
                     after its input ended (latency.json "stages": median and mean per stage)
  summary.json       frames, mismatches (must be 0), headline figures

Frames come from seeded episodes of the run's environment (random policy); the engine state is
reset at every episode start, as the golden model is. The cycles are those of the frames streamed
without stalls (as the board's DMA streams them); with cfg.cosim.backpressure > 0 the same frames
run a second time with random idle beats and output stalls, and both runs must match the golden
model (outputs, actions, MAC counters).
"""

from __future__ import annotations

from rl2fpga.artifacts import CosimFrames, CosimLatency, CosimSummary
from rl2fpga.config import RunConfig
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.hls.cosim.latency import latency_stats, plot_histogram, plot_stages, stage_times
from rl2fpga.run import Run
from rl2fpga.train.frames import record_frames


def cosim_step(run: Run, cfg: RunConfig) -> None:
    from rich.console import Console

    from rl2fpga.core.golden import GoldenModel
    from rl2fpga.hls.cosim.harness import run_engine
    from rl2fpga.hls.engine.generator import RtlDesign
    from rl2fpga.manifest import verify_files
    from rl2fpga.paths import build_dir_for

    console = Console(stderr=True)
    # the generated RTL goes into the simulator only as the rtl step wrote it (hashes.json)
    verify_files(run.require("rtl"), "rtl", run.path)
    run.require("quantize")
    frames, starts = record_frames(cfg.env, cfg.cosim.frames, cfg.seed)
    design = RtlDesign.load(run.path / "rtl")
    golden_dir = run.layout.quantize_golden
    golden = GoldenModel.load(golden_dir)
    out = run.dir("cosim")
    console.print(f"co-simulating {len(frames)} frames ({len(starts)} episode starts) in Verilator ...")
    bp = cfg.cosim.backpressure
    # the latency figures come from the frames streamed as the board's DMA streams them (no random
    # stalls); with back-pressure > 0 the same frames run again with random idle input beats and
    # output stalls, a check of the handshakes (its cycles count the testbench's stalls too)
    res = run_engine(design, golden_dir, frames, out / "sim", seed=cfg.seed, idle=0.0, stall=0.0,
                     resets=starts[1:], build_dir=build_dir_for(out / "obj"))  # make cannot build in a path with spaces
    stressed = None
    if bp > 0:
        stressed = run_engine(design, golden_dir, frames, out / "sim_backpressure", seed=cfg.seed, idle=bp, stall=bp,
                              resets=starts[1:], build_dir=build_dir_for(out / "obj"))
        bad = [i for i, (a, b) in enumerate(zip(res["per_frame"], stressed["per_frame"], strict=True))
               if a.get("macs") != b.get("macs")]
        res = {**res, "mismatches": res["mismatches"] + stressed["mismatches"] + len(bad)}
    stats = latency_stats(res["per_frame"], golden.dense_mults(), design.layer_lanes, cfg.rtl.clock_mhz,
                          design.input_bytes_per_beat)
    stages = stage_times(res["per_frame"], [layer.name for layer in golden.layers])
    if stages is not None:
        stats["stages"] = stages
    CosimFrames(res["per_frame"]).save_in(out)
    CosimLatency(stats).save_in(out)
    plot_histogram(res["per_frame"], stats, out / "latency_hist.png")
    if stages is not None:
        plot_stages(stages, out / "latency_stages.png")
    summary = {
        "frames": res["frames"],
        "mismatches": res["mismatches"],
        "episodes": len(starts),
        "cycles_median": stats["cycles"]["median"],
        "us_median": stats["microseconds"]["median"],
        "median_over_dense": stats["median_over_dense"],
        "median_over_lower_bound": stats["median_over_lower_bound"],
        "median_over_roofline": stats["median_over_roofline"],
        "input_bytes_per_beat": design.input_bytes_per_beat,
        "frame_stack": design.frame_stack,
        "backpressure": bp,
        "backpressure_mismatches": None if stressed is None else stressed["mismatches"],
        "backpressure_cycles_median": None if stressed is None else latency_stats(
            stressed["per_frame"], golden.dense_mults(), design.layer_lanes, cfg.rtl.clock_mhz,
            design.input_bytes_per_beat)["cycles"]["median"],
    }
    CosimSummary(summary).save_in(out)
    if res["mismatches"]:
        raise Rl2fpgaError(f"co-simulation: {res['mismatches']} of {res['frames']} frames differ from the golden model; see {run.layout.cosim_frames}")
    console.print(f"cosim: {res['frames']} frames bit-exact; median {stats['cycles']['median']:.0f} cycles "
                  f"({stats['median_over_dense']:.4f} of dense, {stats['median_over_lower_bound']:.2f}x the bound)"
                  + (f"; again with {bp:g} random stalls per beat: bit-exact, median {summary['backpressure_cycles_median']:.0f} cycles"
                     if stressed is not None else ""))
