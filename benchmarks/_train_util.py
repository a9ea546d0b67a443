"""Shared helper of the training benchmarks (not a benchmark itself)."""

from __future__ import annotations

import time

from benchmarks._marks import StepMarks
from benchmarks._marks import cpu_seconds as _cpu_seconds
from rl2fpga.config import RunConfig, apply_overrides


def bench_sets(algo: str, warmup: int) -> list[str]:
    """Overrides of every timed run: learning from step ``warmup + 1``, no evaluations but the
    final one-episode selection, episodes capped at 1,000 agent steps."""
    return [f"train.{algo}.learning_starts={warmup}", "train.eval_every=0", "train.eval_episodes=1",
            "train.early_stop_return=null", "env.max_episode_steps=1000"]


def learning_rate_steps_per_s(cfg: RunConfig, warmup: int, steps: int, cpu: dict[str, float] | None = None) -> tuple[float, float]:
    """Agent steps/s while learning, including action selection, env, replay and updates:
    train ``warmup`` (random play only) and ``warmup + steps`` steps from the same seed and divide
    the extra steps by the extra time. Returns (steps/s while learning, overall steps/s); ``cpu``
    (if given) receives ``ms_per_step``: the extra CPU milliseconds per agent step (all threads
    and worker processes; less sensitive than wall time to other jobs on a shared machine)."""
    from rl2fpga.train.trainer import train

    sets = bench_sets(cfg.train.algo, warmup)
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


def in_run_rate(cfg: RunConfig, warmup: int, first: int, last: int) -> tuple[float, float]:
    """(agent steps/s, CPU ms per agent step) between learning steps ``first`` and ``last`` of one
    run of ``warmup + last`` steps (learning from step ``warmup + 1``), read at the run's own
    progress-bar updates (:class:`benchmarks._marks.StepMarks`)."""
    from rl2fpga.train.trainer import train

    total = warmup + last
    run = apply_overrides(cfg, [*bench_sets(cfg.train.algo, warmup), f"train.total_steps={total}"])
    with StepMarks(total, [warmup + first, total]) as marks:
        train(run, None, progress=False)
    return marks.rate(warmup + first, total), marks.cpu_ms(warmup + first, total)
