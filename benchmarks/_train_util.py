"""Shared helper of the training benchmarks (not a benchmark itself)."""

from __future__ import annotations

import resource
import time

from rl2fpga.config import RunConfig, apply_overrides


def _cpu_seconds() -> float:
    """CPU time of this process and its waited-for children (async env workers), user + system."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def learning_rate_steps_per_s(cfg: RunConfig, warmup: int, steps: int, cpu: dict[str, float] | None = None) -> tuple[float, float]:
    """Agent steps/s while learning, including action selection, env, replay and updates:
    train ``warmup`` (random play only) and ``warmup + steps`` steps from the same seed and divide
    the extra steps by the extra time. Returns (steps/s while learning, overall steps/s); ``cpu``
    (if given) receives ``ms_per_step``: the extra CPU milliseconds per agent step (all threads
    and worker processes; less sensitive than wall time to other jobs on a shared machine)."""
    from rl2fpga.train.trainer import train

    algo = cfg.train.algo
    sets = [f"train.{algo}.learning_starts={warmup}", "train.eval_every=0", "train.eval_episodes=1",
            "train.early_stop_return=null", "env.max_episode_steps=1000"]
    short = apply_overrides(cfg, [*sets, f"train.total_steps={warmup}"])
    full = apply_overrides(cfg, [*sets, f"train.total_steps={warmup + steps}"])
    times, cpus = [], []
    for c in (short, full):
        t0, c0 = time.perf_counter(), _cpu_seconds()
        train(c, None, progress=False)
        times.append(time.perf_counter() - t0)
        cpus.append(_cpu_seconds() - c0)
    if cpu is not None:
        cpu["ms_per_step"] = 1e3 * (cpus[1] - cpus[0]) / steps
    return steps / max(times[1] - times[0], 1e-9), (warmup + steps) / times[1]
