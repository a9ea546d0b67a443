"""Latency figures of a co-simulation: per-frame cycle statistics, the MAC and roofline bounds, the histogram,
and where the cycles of a frame go (the stage each cycle waits on)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rl2fpga.fsutil import atomic_write_bytes


def latency_stats(per_frame: list[dict[str, Any]], dense_mults: list[int], lanes: int | list[int],
                  clock_mhz: float, bytes_per_cycle: int = 0) -> dict[str, Any]:
    """Cycle distribution vs the dense-equivalent engine, the significant-MAC lower bound and
    the roofline max(significant MACs / lanes, input bytes / bytes per cycle) of each frame
    (``bytes_per_cycle``: the input stream's bytes per beat at one beat per cycle). ``lanes``:
    of every layer, or one count per layer (then the MAC bound is the sum over layers of each
    layer's significant MACs over its lanes, the same figure when all layers have as many)."""
    cycles = np.array([f["cycles"] for f in per_frame], dtype=np.float64)
    uniform = isinstance(lanes, int | np.integer)
    per = [int(lanes)] if uniform else [int(v) for v in lanes]
    if not uniform and len(per) != len(dense_mults):
        raise ValueError(f"{len(per)} lane counts for {len(dense_mults)} layers")

    def over_lanes(macs: list[int]) -> float:
        if uniform:
            return float(np.ceil(sum(macs) / per[0]))
        return float(np.ceil(sum(m / n for m, n in zip(macs, per, strict=True)) - 1e-9))

    bound = np.array([over_lanes(f["golden_macs"]) for f in per_frame], dtype=np.float64)
    in_cycles = np.array([np.ceil(f.get("input_bytes", 0) / bytes_per_cycle) if bytes_per_cycle else 0.0
                          for f in per_frame], dtype=np.float64)
    roof = np.maximum(bound, in_cycles)
    dense = over_lanes(dense_mults)

    def dist(x: np.ndarray) -> dict[str, float]:
        return {"min": float(x.min()), "median": float(np.median(x)), "p99": float(np.percentile(x, 99)),
                "max": float(x.max()), "mean": float(x.mean())}

    us = 1.0 / clock_mhz
    med = float(np.median(cycles))
    return {
        "frames": len(per_frame),
        "lanes": per[0] if len(set(per)) == 1 else per,
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


def stage_times(per_frame: list[dict[str, Any]], layer_names: list[str]) -> dict[str, Any] | None:
    """Where a frame's cycles go, from the testbench's marks (the frame cycle of the last input
    beat, then of each event link's end-of-frame marker): ``input`` = cycles until the last input
    beat was accepted; ``encoder`` = from there until the encoder's end marker left; ``<layer>``
    = from its input's end marker until its own (what is left of its MACs after its input ended,
    its requantize walk and the events it sends: work the layers before it can no longer
    overlap); ``output`` = from the last layer's marker until the action beat. Per stage the
    median and the mean over frames (the means add up to the mean cycles per frame). None when
    the frames carry no marks (a top without the probes)."""
    frames = [f for f in per_frame if f.get("marks")]
    if not frames or len(frames) != len(per_frame):
        return None
    names = ["input", "encoder", *layer_names, "output"]
    rows = []
    for f in frames:
        m = [int(v) for v in f["marks"]]
        if len(m) != len(layer_names) + 2:
            raise ValueError(f"frame {f.get('index')}: {len(m)} stage marks for {len(layer_names)} layers")
        bounds = [0, *m, int(f["cycles"])]
        rows.append(np.diff(bounds))
    t = np.array(rows, dtype=np.float64)
    return {"stages": names,
            "median": [float(v) for v in np.median(t, axis=0)],
            "mean": [float(v) for v in t.mean(axis=0)],
            "mean_cycles": float(np.mean([f["cycles"] for f in frames]))}


def stages_figure(stages: dict[str, Any], title: str = "") -> Any:
    """One horizontal bar of the mean cycles per frame, split by the stage they wait on."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 2.6))
    left = 0.0
    colors = plt.get_cmap("tab10")
    for i, (name, v) in enumerate(zip(stages["stages"], stages["mean"], strict=True)):
        ax.barh(0, v, left=left, color=colors(i % 10), label=f"{name} {v:.0f}")
        left += v
    ax.set_yticks([])
    ax.set_xlabel(f"cycles (mean over frames: {stages['mean_cycles']:.0f})")
    ax.set_title(title or "where a frame's cycles go (the stage the frame waits on)")
    ax.legend(ncol=4, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.45), frameon=False)
    fig.tight_layout()
    return fig


def plot_stages(stages: dict[str, Any], path: Path) -> None:
    from rl2fpga.plots import png_bytes

    atomic_write_bytes(path, png_bytes(stages_figure(stages)))


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
    lanes = stats['lanes'] if isinstance(stats['lanes'], int) else '/'.join(map(str, stats['lanes']))
    ax.set_xlabel(f"cycles per frame ({lanes} lanes)")
    ax.set_ylabel("frames")
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
