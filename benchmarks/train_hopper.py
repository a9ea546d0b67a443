"""Hopper-v5 SAC (configs/hopper.yaml networks): agent steps/s including one update per step."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "hopper.yaml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default=str(CONFIG))
    ap.add_argument("--steps", type=int, default=1000, help="agent steps timed while learning")
    args = ap.parse_args()

    from benchmarks._train_util import learning_rate_steps_per_s
    from rl2fpga.config import load_config

    cfg = load_config(args.config)
    learning, _ = learning_rate_steps_per_s(cfg, warmup=1000, steps=args.steps)
    sc = cfg.train.sac
    print(f"sac while learning (actor {cfg.train.hidden}, critics {sc.critic_hidden}, batch {sc.batch_size}, "
          f"{sc.gradient_steps} update(s) per {sc.train_freq} step(s)): {learning:.0f} agent steps/s; "
          f"{cfg.train.total_steps // 1000}k steps ~ {cfg.train.total_steps / learning / 60:.0f} min "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
