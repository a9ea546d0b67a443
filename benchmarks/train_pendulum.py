"""Pendulum-v1 SAC with configs/pendulum.yaml: wall time and deterministic eval return per seed
(target: mean >= -250 over 10 episodes)."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "pendulum.yaml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--config", default=str(CONFIG))
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args()

    from rl2fpga.config import apply_overrides, load_config
    from rl2fpga.train.trainer import train

    ok = True
    for seed in args.seeds:
        cfg = apply_overrides(load_config(args.config), [f"seed={seed}"])
        t0 = time.perf_counter()
        res = train(cfg, None, progress=args.progress)
        wall = time.perf_counter() - t0
        passed = res.eval.mean >= -250
        ok &= passed
        print(
            f"seed {seed}: {wall:6.1f} s wall, {res.steps} env steps (model from step {res.selected_step}), "
            f"eval return {res.eval.mean:.1f} +- {res.eval.std:.1f} over {len(res.eval.returns)} episodes "
            f"[{'PASS' if passed else 'FAIL'}]",
            flush=True,
        )
    print(f"pendulum: {'PASS' if ok else 'FAIL'} (target: >= -250)")


if __name__ == "__main__":
    main()
