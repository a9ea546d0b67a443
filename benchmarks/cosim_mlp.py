"""Sparse delta engine on a tiny dense MLP (the CartPole demo's 4-8-8-2 student, or a run's
golden model): cycles per frame on real CartPole observations vs the MAC bound and the
roofline, bit-exact, with the per-layer MACs and events that set the bound.

Default network: a random 4-8-8-2 dense MLP shaped like `make demo`'s student (4-bit weights,
12-bit signed input, 8-bit hidden activations, 10 % of the weights zero); `--golden DIR` takes
a run's quantize/golden folder instead (e.g. runs/cartpole/quantize/golden)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def demo_mlp(seed: int = 0) -> Any:
    """A random 4-8-8-2 dense MLP shaped like the demo's student (a GoldenModel)."""
    import numpy as np

    from rl2fpga.core.golden import Fmt, random_model

    return random_model(np.random.default_rng(seed), (4,), [("dense", 8), ("dense", 8), ("dense", 2)],
                        sparsity=0.1, w_bits=4, in_fmt=Fmt(12, 5, True), threshold=2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--golden", type=Path, default=None, help="a golden model folder (default: the random demo-shaped MLP)")
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--lanes", type=int, default=4)
    ap.add_argument("--beat-bytes", type=int, default=8)
    ap.add_argument("--format", default="auto", help="weight storage format of every layer (auto: smallest)")
    ap.add_argument("--backpressure", type=float, default=0.0)
    ap.add_argument("--clock-mhz", type=float, default=100.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-short-path", action="store_true",
                    help="every layer on the general rl2fpga_layer (default: small dense-format layers take the short path)")
    args = ap.parse_args()

    import numpy as np

    from rl2fpga.core.golden import GoldenModel
    from rl2fpga.hls.cosim.harness import BUILD_ROOT, run_engine
    from rl2fpga.hls.cosim.latency import latency_stats
    from rl2fpga.hls.engine.generator import generate
    from rl2fpga.train.frames import record_cartpole

    if args.golden is not None:
        g = GoldenModel.load(args.golden)
        tag = "golden"
    else:
        g = demo_mlp(args.seed)
        tag = f"random{args.seed}"
    root = BUILD_ROOT / "bench" / f"mlp_{tag}_l{args.lanes}_b{args.beat_bytes}_{args.format}{'_general' if args.no_short_path else ''}"
    g.save(root / "golden")
    design = generate(g, root / "rtl", lanes=args.lanes, input_bytes_per_beat=args.beat_bytes, fmt=args.format,
                      short_path=not args.no_short_path)
    frames, starts = record_cartpole(args.frames, seed=args.seed)
    res = run_engine(design, root / "golden", frames, root / "work", idle=args.backpressure,
                     stall=args.backpressure, resets=starts[1:])
    s = latency_stats(res["per_frame"], g.dense_mults(), args.lanes, args.clock_mhz, args.beat_bytes)
    s["mismatches"] = res["mismatches"]
    s["mac_counters_equal_golden"] = all(f["macs"] == f["golden_macs"] for f in res["per_frame"])
    s["formats"] = {p.name: p.format for p in design.layers}
    s["modules"] = {p.name: p.module for p in design.layers}  # rl2fpga_dense_layer: the short path
    s["rq_all"] = {p.name: p.rq_all for p in design.layers}  # short path: all words requantized in one step
    per_layer = np.array([f["golden_macs"] for f in res["per_frame"]])
    s["macs_per_layer_median"] = [float(v) for v in np.median(per_layer, axis=0)]
    print(json.dumps(s, indent=1))
    print(f"median {s['cycles']['median']:.1f} cycles (p99 {s['cycles']['p99']:.1f}); MAC bound median "
          f"{s['lower_bound_cycles']['median']:.0f}, roofline median {s['roofline_cycles']['median']:.0f}: "
          f"{s['median_over_lower_bound']:.2f}x the bound, {s['median_over_roofline']:.2f}x the roofline; "
          f"{args.lanes} lanes, formats {'/'.join(s['formats'].values())}; mismatches {res['mismatches']}")


if __name__ == "__main__":
    main()
