"""Shared helper of the training benchmarks (not a benchmark itself)."""

from __future__ import annotations

import time

from rl2fpga.config import RunConfig, apply_overrides


def learning_rate_steps_per_s(cfg: RunConfig, warmup: int, steps: int) -> tuple[float, float]:
    """Agent steps/s while learning, including action selection, env, replay and updates:
    train ``warmup`` (random play only) and ``warmup + steps`` steps from the same seed and divide
    the extra steps by the extra time. Returns (steps/s while learning, overall steps/s)."""
    from rl2fpga.train.steps import train

    algo = cfg.train.algo
    sets = [f"train.{algo}.learning_starts={warmup}", "train.eval_every=0", "train.eval_episodes=1",
            "train.early_stop_return=null", "env.max_episode_steps=1000"]
    short = apply_overrides(cfg, [*sets, f"train.total_steps={warmup}"])
    full = apply_overrides(cfg, [*sets, f"train.total_steps={warmup + steps}"])
    times = []
    for c in (short, full):
        t0 = time.perf_counter()
        train(c, None, progress=False)
        times.append(time.perf_counter() - t0)
    return steps / max(times[1] - times[0], 1e-9), (warmup + steps) / times[1]
