"""Lanes table of the sparse delta engine on the Breakout CNN: cycles per frame (co-simulation
of real frames, as-built 8-byte input beats, frame stack in fabric; median and p99) and yosys LUT
/ FF / DSP / BRAM36 for each lane count, with the fastest that fits the xc7z020.

Fit: the resources come from the by-module method (hls/engine/resources.py METHOD_BY_MODULE,
printed with the table; ~1.5 min per lane count here): each distinct module is synthesised once
and the cells are summed by instance count. It errs high: the method is checked first on a design
small enough for both (the CartPole-shaped 4-8-8-2 MLP of `cosim_mlp`, 4 lanes: LUT +39 %, FF
+25 %), flat and by-module figures printed side by side; on this CNN at 16 lanes the flat run
(11 min, 2.2 GB here) gave 45.9k LUT against 55.4k by module (+21 %).

Each lane count is one Verilator build + run and one yosys run, one after the other (minutes
each on a small machine). Results accumulate in build/bench/lanes_atari.json, so an interrupted
run keeps the rows it finished; --reuse skips figures already there."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

RES_KEYS = ("lut", "ff", "dsp", "bram36", "fits_xc7z020", "bram_inferred")


def _row(lanes: int, args: argparse.Namespace, row: dict[str, Any]) -> dict[str, Any]:
    """Fill ``row`` (cosim figures unless already there, then yosys); kept on failure."""
    from rl2fpga.hls.cosim.harness import BUILD_ROOT, run_engine
    from rl2fpga.hls.cosim.latency import latency_stats
    from rl2fpga.hls.engine.generator import generate
    from rl2fpga.hls.engine.resources import estimate_by_module
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
        est = estimate_by_module(design.sv_files, design.top, design.out_dir, design.out_dir / "yosys_by_module.log")
        row.update({k: est[k] for k in RES_KEYS})
        row["yosys_s"] = round(time.perf_counter() - t0, 1)
    return row


def validate_method(rows: dict[str, Any]) -> dict[str, Any]:
    """Flat vs by-module yosys on the CartPole-shaped MLP (4 lanes): both estimates and the
    relative difference of each resource (by-module / flat - 1)."""
    if "validation" in rows:
        return rows["validation"]
    from benchmarks.cosim_mlp import demo_mlp
    from rl2fpga.hls.cosim.harness import BUILD_ROOT
    from rl2fpga.hls.engine.generator import generate
    from rl2fpga.hls.engine.resources import estimate, estimate_by_module

    root = BUILD_ROOT / "bench" / "lanes_validate_mlp"
    design = generate(demo_mlp(0), root / "rtl", lanes=4, input_bytes_per_beat=8)
    flat = estimate(design.sv_files, design.top, design.out_dir, root / "yosys_flat.log")
    by_module = estimate_by_module(design.sv_files, design.top, design.out_dir, root / "yosys_by_module.log")
    keys = ("lut", "ff", "dsp", "bram36")
    return {"design": "4-8-8-2 MLP, 4 lanes", "flat": {k: flat[k] for k in keys},
            "by_module": {k: by_module[k] for k in keys},
            "by_module_over_flat": {k: (by_module[k] / flat[k] - 1 if flat[k] else 0.0) for k in keys}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lanes", default="4,8,16,32", help="comma-separated lane counts")
    ap.add_argument("--frames", type=int, default=200, help="real Breakout frames per lane count (0: no cosim)")
    ap.add_argument("--beat-bytes", type=int, default=8)
    ap.add_argument("--sparsity", type=float, default=0.9)
    ap.add_argument("--threshold", type=int, default=2)
    ap.add_argument("--clock-mhz", type=float, default=100.0)
    ap.add_argument("--no-synth", dest="synth", action="store_false", help="skip yosys")
    ap.add_argument("--no-validate", dest="validate", action="store_false",
                    help="skip the flat vs by-module yosys comparison on the small MLP")
    ap.add_argument("--reuse", action="store_true", help="keep the figures already in the results file (fill the rest)")
    args = ap.parse_args()

    from rl2fpga.fsutil import atomic_write_json
    from rl2fpga.hls.cosim.harness import BUILD_ROOT
    from rl2fpga.hls.engine.resources import METHOD_BY_MODULE

    out = BUILD_ROOT / "bench" / "lanes_atari.json"
    rows: dict[str, Any] = json.loads(out.read_text()) if args.reuse and out.exists() else {}
    if args.synth and args.validate:
        rows["validation"] = validate_method(rows)
        atomic_write_json(out, rows)
        print(json.dumps({"validation": rows["validation"]}), flush=True)
    for lanes in [int(v) for v in args.lanes.split(",")]:
        row = rows.setdefault(str(lanes), {"lanes": lanes})
        row.pop("error", None)
        try:
            _row(lanes, args, row)
        except Exception as e:  # keep what was measured (e.g. the cosim when yosys fails)
            row["error"] = f"{type(e).__name__}: {e}"
        atomic_write_json(out, rows)
        print(json.dumps(row), flush=True)
    print(f"resources: {METHOD_BY_MODULE}")
    _print_table(rows, out)


def _print_table(rows: dict[str, Any], out: Path) -> None:
    v = rows.get("validation")
    if v:
        print(f"method check on {v['design']}: flat {v['flat']} vs by module {v['by_module']} "
              f"(by module / flat - 1: {', '.join(f'{k} {d:+.1%}' for k, d in v['by_module_over_flat'].items())})")
    cols = ["lanes", "cycles_median", "cycles_p99", "median_over_roofline", "mismatches", "lut", "ff", "dsp",
            "bram36", "fits_xc7z020"]
    print(" | ".join(cols))
    lane_rows = [r for k, r in rows.items() if k.isdigit()]
    for r in sorted(lane_rows, key=lambda r: r["lanes"]):
        print(" | ".join(str(round(r[c], 2) if isinstance(r.get(c), float) else r.get(c, "-")) for c in cols))
    fitting = [r for r in lane_rows if r.get("fits_xc7z020") and "cycles_median" in r and r.get("mismatches") == 0]
    if fitting:
        best = min(fitting, key=lambda r: r["cycles_median"])
        print(f"fastest that fits the xc7z020: {best['lanes']} lanes, median {best['cycles_median']:.0f} cycles ({out})")
    else:
        print(f"no lane count both fits the xc7z020 and co-simulated bit-exact ({out})")


if __name__ == "__main__":
    main()
