"""Lanes table of the sparse delta engine on the Breakout CNN: cycles per frame (co-simulation
of real frames, as-built 8-byte input beats, frame stack in fabric) and yosys LUT / FF / DSP /
BRAM36 for each lane count, with the fastest that fits the xc7z020.

Each lane count is one Verilator build + run and one yosys synth_xilinx, one after the other
(slow on a small machine: minutes each). Results accumulate in build/bench/lanes_atari.json, so
an interrupted run keeps the rows it finished; --reuse skips rows already there."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any


def _row(lanes: int, args: argparse.Namespace, row: dict[str, Any]) -> dict[str, Any]:
    """Fill ``row`` (cosim figures unless already there, then yosys); kept on failure."""
    from rl2fpga.hls.cosim.harness import BUILD_ROOT, run_engine
    from rl2fpga.hls.cosim.latency import latency_stats
    from rl2fpga.hls.engine.generator import generate
    from rl2fpga.hls.engine.resources import estimate
    from rl2fpga.rtl_tests.test_engine import atari_model
    from rl2fpga.train.frames import record

    root = BUILD_ROOT / "bench" / f"lanes_atari_l{lanes}_b{args.beat_bytes}"
    g = atari_model(sparsity=args.sparsity, threshold=args.threshold)
    g.save(root / "golden")
    design = generate(g, root / "rtl", lanes=lanes, input_bytes_per_beat=args.beat_bytes, frame_stack=True)
    row["lanes"] = lanes
    if args.frames and "cycles_median" not in row:
        frames, starts = record(args.frames, seed=0)
        t0 = time.perf_counter()
        res = run_engine(design, root / "golden", frames, root / "work", resets=starts[1:])
        s = latency_stats(res["per_frame"], g.dense_mults(), lanes, args.clock_mhz, args.beat_bytes)
        row.update({
            "frames": res["frames"], "mismatches": res["mismatches"],
            "mac_counters_equal_golden": all(f["macs"] == f["golden_macs"] for f in res["per_frame"]),
            "cycles_median": s["cycles"]["median"], "cycles_p99": s["cycles"]["p99"],
            "mac_bound_median": s["lower_bound_cycles"]["median"], "roofline_median": s["roofline_cycles"]["median"],
            "median_over_roofline": s["median_over_roofline"], "cosim_s": round(time.perf_counter() - t0, 1),
        })
    if args.synth and "lut" not in row:
        t0 = time.perf_counter()
        est = estimate(design.sv_files, design.top, design.out_dir, design.out_dir / "yosys.log")
        row.update({k: est[k] for k in ("lut", "ff", "dsp", "bram36", "fits_xc7z020", "bram_inferred")})
        row["yosys_s"] = round(time.perf_counter() - t0, 1)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lanes", default="4,8,16,32", help="comma-separated lane counts")
    ap.add_argument("--frames", type=int, default=200, help="real Breakout frames per lane count (0: no cosim)")
    ap.add_argument("--beat-bytes", type=int, default=8)
    ap.add_argument("--sparsity", type=float, default=0.9)
    ap.add_argument("--threshold", type=int, default=2)
    ap.add_argument("--clock-mhz", type=float, default=100.0)
    ap.add_argument("--no-synth", dest="synth", action="store_false", help="skip yosys")
    ap.add_argument("--reuse", action="store_true", help="keep the figures already in the results file (fill the rest)")
    args = ap.parse_args()

    from rl2fpga.fsutil import atomic_write_json
    from rl2fpga.hls.cosim.harness import BUILD_ROOT

    out = BUILD_ROOT / "bench" / "lanes_atari.json"
    rows: dict[str, Any] = json.loads(out.read_text()) if args.reuse and out.exists() else {}
    for lanes in [int(v) for v in args.lanes.split(",")]:
        row = rows.setdefault(str(lanes), {"lanes": lanes})
        try:
            _row(lanes, args, row)
        except Exception as e:  # keep what was measured (e.g. the cosim when yosys fails)
            row["error"] = f"{type(e).__name__}: {e}"
        atomic_write_json(out, rows)
        print(json.dumps(row), flush=True)
    _print_table(rows, out)


def _print_table(rows: dict[str, Any], out: Path) -> None:
    cols = ["lanes", "cycles_median", "median_over_roofline", "mismatches", "lut", "ff", "dsp", "bram36", "fits_xc7z020"]
    print(" | ".join(cols))
    for r in sorted(rows.values(), key=lambda r: r["lanes"]):
        print(" | ".join(str(round(r[c], 2) if isinstance(r.get(c), float) else r.get(c, "-")) for c in cols))
    fitting = [r for r in rows.values() if r.get("fits_xc7z020") and "cycles_median" in r and r.get("mismatches") == 0]
    if fitting:
        best = min(fitting, key=lambda r: r["cycles_median"])
        print(f"fastest that fits the xc7z020: {best['lanes']} lanes, median {best['cycles_median']:.0f} cycles ({out})")


if __name__ == "__main__":
    main()
