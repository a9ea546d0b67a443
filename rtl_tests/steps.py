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
  summary.json       frames, mismatches (must be 0), headline figures

Frames come from seeded episodes of the run's environment (random policy); the engine state is
reset at every episode start, as the golden model is. Back-pressure: cfg.cosim.backpressure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rl2fpga.config import EnvConfig, RunConfig
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.fsutil import atomic_write_bytes, atomic_write_json
from rl2fpga.run import Run


def record_frames(env_cfg: EnvConfig, n: int, seed: int) -> tuple[np.ndarray, list[int]]:
    """``n`` consecutive observations of the run's environment (seeded random policy) and the
    episode starts."""
    from rl2fpga.rtl_tests.frames import record_env

    return record_env(env_cfg, n, seed)


def latency_stats(per_frame: list[dict[str, Any]], dense_mults: list[int], lanes: int,
                  clock_mhz: float, bytes_per_cycle: int = 0) -> dict[str, Any]:
    """Cycle distribution vs the dense-equivalent engine, the significant-MAC lower bound and
    the roofline max(significant MACs / lanes, input bytes / bytes per cycle) of each frame
    (``bytes_per_cycle``: the input stream's bytes per beat at one beat per cycle)."""
    cycles = np.array([f["cycles"] for f in per_frame], dtype=np.float64)
    bound = np.array([np.ceil(sum(f["golden_macs"]) / lanes) for f in per_frame], dtype=np.float64)
    in_cycles = np.array([np.ceil(f.get("input_bytes", 0) / bytes_per_cycle) if bytes_per_cycle else 0.0
                          for f in per_frame], dtype=np.float64)
    roof = np.maximum(bound, in_cycles)
    dense = float(np.ceil(sum(dense_mults) / lanes))

    def dist(x: np.ndarray) -> dict[str, float]:
        return {"min": float(x.min()), "median": float(np.median(x)), "p99": float(np.percentile(x, 99)),
                "max": float(x.max()), "mean": float(x.mean())}

    us = 1.0 / clock_mhz
    med = float(np.median(cycles))
    return {
        "frames": len(per_frame),
        "lanes": lanes,
        "clock_mhz": clock_mhz,
        "cycles": dist(cycles),
        "microseconds": {k: v * us for k, v in dist(cycles).items()},
        "dense_equivalent_cycles": dense,
        "dense_equivalent_us": dense * us,
        "lower_bound_cycles": dist(bound),
        "median_over_dense": med / dense,
        "median_over_lower_bound": med / max(float(np.median(bound)), 1.0),
        "median_ratio_to_own_bound": float(np.median(cycles / np.maximum(bound, 1.0))),
        "bytes_per_cycle": bytes_per_cycle,
        "input_cycles": dist(in_cycles),
        "roofline_cycles": dist(roof),
        "median_over_roofline": med / max(float(np.median(roof)), 1.0),
        "median_ratio_to_own_roofline": float(np.median(cycles / np.maximum(roof, 1.0))),
        "significant_macs_total": int(sum(sum(f["golden_macs"]) for f in per_frame)),
        "padding_slots_total": int(sum(f.get("pad", 0) for f in per_frame)),
    }


def plot_histogram(per_frame: list[dict[str, Any]], stats: dict[str, Any], path: Path) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cycles = [f["cycles"] for f in per_frame]
    fig, ax = plt.subplots(figsize=(7, 4))
    lo, hi = max(min(cycles), 1), max(max(cycles), 2, stats["dense_equivalent_cycles"])
    ax.hist(cycles, bins=np.geomspace(lo, hi, 60), color="#4477aa", label="engine, cycles per frame")
    ax.axvline(stats["lower_bound_cycles"]["median"], color="#228833", ls="--", label="lower bound (median)")
    ax.axvline(stats["dense_equivalent_cycles"], color="#cc3311", ls=":", label="dense equivalent")
    ax.set_xscale("log")
    ax.set_xlabel(f"cycles per frame ({stats['lanes']} lanes)")
    ax.set_ylabel("frames")
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def cosim_step(run: Run, cfg: RunConfig) -> None:
    from rich.console import Console

    from rl2fpga.hls.rtlgen import RtlDesign
    from rl2fpga.manifest import verify_files
    from rl2fpga.paths import build_dir_for
    from rl2fpga.quantize.golden import GoldenModel
    from rl2fpga.rtl_tests.harness import run_engine

    console = Console(stderr=True)
    # the generated RTL goes into the simulator only as the rtl step wrote it (hashes.json)
    verify_files(run.require("rtl"), "rtl", run.path)
    run.require("quantize")
    frames, starts = record_frames(cfg.env, cfg.cosim.frames, cfg.seed)
    design = RtlDesign.load(run.path / "rtl")
    golden_dir = run.path / "quantize" / "golden"
    golden = GoldenModel.load(golden_dir)
    out = run.dir("cosim")
    console.print(f"co-simulating {len(frames)} frames ({len(starts)} episode starts) in Verilator ...")
    res = run_engine(design, golden_dir, frames, out / "sim", seed=cfg.seed, idle=cfg.cosim.backpressure,
                     stall=cfg.cosim.backpressure, resets=starts[1:], build_dir=build_dir_for(out / "obj"))  # make cannot build in a path with spaces
    stats = latency_stats(res["per_frame"], golden.dense_mults(), design.lanes, cfg.rtl.clock_mhz,
                          design.input_bytes_per_beat)
    atomic_write_json(out / "frames.json", res["per_frame"])
    atomic_write_json(out / "latency.json", stats)
    plot_histogram(res["per_frame"], stats, out / "latency_hist.png")
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
    }
    atomic_write_json(out / "summary.json", summary)
    if res["mismatches"]:
        raise Rl2fpgaError(f"co-simulation: {res['mismatches']} of {res['frames']} frames differ from the golden model; see {out / 'frames.json'}")
    console.print(f"cosim: {res['frames']} frames bit-exact; median {stats['cycles']['median']:.0f} cycles "
                  f"({stats['median_over_dense']:.4f} of dense, {stats['median_over_lower_bound']:.2f}x the bound)")
