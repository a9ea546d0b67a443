"""Seeded evaluation with ``env.eval_workers``: agent steps per second of the golden agent with
delta updates on Breakout (the papers' CNN, pruned random integer weights, as quantize and
analyze play it) in one process and in N forked workers, side by side in one run, with NumPy's
BLAS on one thread as in the pipeline's steps; the returns, episode lengths and per-step
multiplication counts of the two are compared with ``==``. The speed-up is bounded by the free
cores: on a busy machine it shrinks."""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--episodes", type=int, default=4)
    ap.add_argument("--max-steps", type=int, default=400, help="agent steps per episode at most")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--sparsity", type=float, default=0.9)
    args = ap.parse_args()

    from rl2fpga.config import EnvConfig
    from rl2fpga.pipeline import blas_one_thread
    from rl2fpga.quantize.quantizer import GoldenPolicy, run_stateful
    from rl2fpga.rtl_tests.test_engine import atari_model

    g = atari_model(sparsity=args.sparsity)
    env = EnvConfig(id="ALE/Breakout-v5")
    rows = {}
    with blas_one_thread():
        for workers in (1, args.workers):
            pol = GoldenPolicy(g.copy(), discrete=True)
            t = time.perf_counter()
            res = run_stateful(pol, env, 10000, args.episodes, max_steps=args.max_steps, workers=workers)
            secs = time.perf_counter() - t
            steps = sum(res["lengths"])
            rows[workers] = (steps / secs, res, [s.macs for s in pol.stats])
            print(f"workers {workers}: {steps} agent steps in {secs:.1f} s = {steps / secs:.0f} agent steps/s")
    (one, r1, m1), (many, rn, mn) = rows[1], rows[args.workers]
    equal = r1["returns"] == rn["returns"] and r1["lengths"] == rn["lengths"] and m1 == mn
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"speed-up {many / one:.2f}x with {args.workers} workers on {os.cpu_count()} cores (load average {load:.1f}); "
          f"returns, lengths and counts equal: {equal} (returns {np.round(r1['returns'], 1).tolist()})")
    if not equal:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
