"""CartPole-v1 DQN with the embedded default config: wall time and greedy eval return per seed
(target: mean >= 475 over 20 episodes in <= 180 s, every seed)."""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args()

    from rl2fpga.config import RunConfig
    from rl2fpga.train.trainer import train

    ok = True
    for seed in args.seeds:
        cfg = RunConfig(seed=seed)
        t0 = time.perf_counter()
        res = train(cfg, None, progress=args.progress)
        wall = time.perf_counter() - t0
        passed = res.eval.mean >= 475 and wall <= 180
        ok &= passed
        print(
            f"seed {seed}: {wall:6.1f} s wall, {res.steps} env steps (model from step {res.selected_step}), "
            f"eval return {res.eval.mean:.1f} +- {res.eval.std:.1f} over {len(res.eval.returns)} episodes "
            f"[{'PASS' if passed else 'FAIL'}]",
            flush=True,
        )
    print(f"cartpole: {'PASS' if ok else 'FAIL'} (target: >= 475 in <= 180 s for every seed; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
