"""Sparse delta engine on real Breakout frames: cycles per frame (input transfer included)
vs dense-equivalent, the significant-MAC lower bound and the roofline max(significant MACs /
lanes, input bytes / bytes per beat), bit-exact. Default: the as-built PYNQ-Z2 input, 8-byte
beats (the DMA's 64-bit HP port, 0.8 GB/s at 100 MHz), frame stack kept in fabric (the host
sends the newest 84x84 frame, 7,056 bytes; the whole stack after an episode start).

The Atari CNN of the 2023 paper (84x84x4 -> conv 32 8x8/4 -> conv 32 4x4/2 -> conv 64 3x3/2 ->
dense 512 -> dense 4) with pruned random integer weights, T_int on every layer; ``--golden DIR``
takes a run's quantize/golden folder instead (e.g. runs/breakout/quantize/golden).
``--layer-lanes 16,16,16,32,4``: lanes per layer (rtl.layer_lanes) instead of ``--lanes`` for
all. ``--schedule rows --row-order bottom_up``: the row schedule (each conv layer walks an
output row once the input rows it reads are in) with each frame's rows sent bottom up (the
rows that change least in Breakout, the score and bricks, come last). Prints where the cycles go: the input transfer, then what each layer still does after its
input ended (the stage the frame waits on)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=220)
    ap.add_argument("--lanes", type=int, default=4)
    ap.add_argument("--beat-bytes", type=int, default=8, help="input stream bytes per beat (HP port: 8)")
    ap.add_argument("--no-frame-stack", action="store_true", help="stream all 4 stacked frames every step")
    ap.add_argument("--sparsity", type=float, default=0.9)
    ap.add_argument("--threshold", type=int, default=2)
    ap.add_argument("--backpressure", type=float, default=0.0)
    ap.add_argument("--clock-mhz", type=float, default=100.0)
    ap.add_argument("--golden", type=Path, default=None, help="a golden model folder (default: the random 90 %%-pruned CNN)")
    ap.add_argument("--layer-lanes", default="", help="lanes per layer, comma-separated (default: --lanes for every layer)")
    ap.add_argument("--schedule", default="frame", choices=["frame", "rows"], help="rtl.schedule")
    ap.add_argument("--row-order", default="top_down", choices=["top_down", "bottom_up"], help="rtl.row_order")
    ap.add_argument("--synth", action="store_true", help="also the by-module yosys estimate (hls/engine/resources.py, ~2 min)")
    args = ap.parse_args()

    from rl2fpga.core.golden import GoldenModel
    from rl2fpga.hls.cosim.harness import BUILD_ROOT, run_engine
    from rl2fpga.hls.cosim.latency import latency_stats, stage_times
    from rl2fpga.hls.engine.generator import generate
    from rl2fpga.rtl_tests.test_engine import atari_model
    from rl2fpga.train.frames import record

    stack = not args.no_frame_stack
    lanes: int | list[int] = [int(v) for v in args.layer_lanes.split(",")] if args.layer_lanes else args.lanes
    tag = f"{'golden' if args.golden else f's{args.sparsity}_t{args.threshold}'}"
    root = BUILD_ROOT / "bench" / f"atari_{tag}_l{str(lanes).replace(', ', '-')}_b{args.beat_bytes}_fs{int(stack)}_{args.schedule}_{args.row_order}"
    g = GoldenModel.load(args.golden) if args.golden else atari_model(sparsity=args.sparsity, threshold=args.threshold)
    g.save(root / "golden")
    design = generate(g, root / "rtl", lanes=lanes, input_bytes_per_beat=args.beat_bytes, frame_stack=stack,
                      schedule=args.schedule, row_order=args.row_order)
    frames, starts = record(args.frames, seed=0)
    res = run_engine(design, root / "golden", frames, root / "work", idle=args.backpressure,
                     stall=args.backpressure, resets=starts[1:])
    s = latency_stats(res["per_frame"], g.dense_mults(), design.layer_lanes, args.clock_mhz, args.beat_bytes)
    s["mismatches"] = res["mismatches"]
    s["mac_counters_equal_golden"] = all(f["macs"] == f["golden_macs"] for f in res["per_frame"])
    s["input_bytes_per_beat"] = args.beat_bytes
    s["frame_stack"] = stack
    s["schedule"], s["row_order"] = args.schedule, args.row_order
    s["weight_sparsity"] = 1 - sum(layer.nnz() for layer in g.layers) / sum(layer.w.size for layer in g.layers)
    s["stages"] = stage_times(res["per_frame"], [layer.name for layer in g.layers])
    s["stored_bits"] = design.stored_bits
    if args.synth:
        from rl2fpga.hls.engine.resources import estimate_by_module

        est = estimate_by_module(design.sv_files, design.top, design.out_dir, design.out_dir / "yosys_by_module.log")
        s["resources_by_module"] = {k: est[k] for k in ("lut", "ff", "dsp", "bram36", "fits_xc7z020")}
    print(json.dumps(s, indent=1))
    print(f"median {s['cycles']['median']:.0f} cycles = {s['microseconds']['median']:.1f} us; "
          f"dense-equivalent {s['dense_equivalent_cycles']:.0f} -> ratio 1/{1 / s['median_over_dense']:.0f}; "
          f"{s['median_over_lower_bound']:.2f}x the MAC bound, {s['median_over_roofline']:.2f}x the roofline "
          f"(median {s['roofline_cycles']['median']:.0f}); {args.beat_bytes}-byte beats, frame stack "
          f"{'in fabric' if stack else 'streamed'}, schedule {args.schedule}, rows {args.row_order}; mismatches {res['mismatches']}")
    print(f"lanes {' / '.join(map(str, design.layer_lanes))}; stored bits {design.stored_bits:,}"
          + (f"; by-module yosys {s['resources_by_module']}" if args.synth else ""))
    if s["stages"]:
        print("where the cycles go (median / mean per frame): " + ", ".join(
            f"{n} {a:.0f}/{b:.0f}" for n, a, b in zip(s["stages"]["stages"], s["stages"]["median"], s["stages"]["mean"], strict=True)))


if __name__ == "__main__":
    main()
