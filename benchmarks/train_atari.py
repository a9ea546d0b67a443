"""Breakout DQN with the papers' CNN: agent steps/s including learning, replay bytes for 1M
transitions (target <= 8 GB) and the random-policy baseline return.

The loop is timed side by side in one run: today's loop (one env, float32 learner, per-step
action selection: ``--baseline-set`` overrides) and the config's default (e.g. 8 envs, bfloat16
learner), alternating ``--repeats`` times, with the load average beside each figure (the machine
is shared: compare the two columns of one run, not figures of different runs)."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "breakout.yaml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default=str(CONFIG))
    ap.add_argument("--steps", type=int, default=2000, help="agent steps timed while learning")
    ap.add_argument("--random-episodes", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=2, help="alternating timings of each loop")
    ap.add_argument("--baseline-set", action="append",
                    default=["train.dqn.num_envs=1", "train.dqn.learner_dtype=float32"],
                    help="overrides that give today's loop")
    ap.add_argument("--set", action="append", default=[], help="overrides of the new default")
    ap.add_argument("--skip-env", action="store_true", help="only time the training loops")
    args = ap.parse_args()

    import numpy as np

    from rl2fpga.config import apply_overrides, load_config
    from rl2fpga.train.envs import env_spec, make_env
    from rl2fpga.train.evaluate import evaluate
    from rl2fpga.train.replay import ReplayBuffer, atari_bytes_per_transition

    cfg = apply_overrides(load_config(args.config), args.set)
    if args.skip_env:
        return time_loops(cfg, args)

    # -- replay memory: measured on real buffers, extrapolated to 1M transitions ------------------
    per = atari_bytes_per_transition()
    small, large = (ReplayBuffer(n, (84, 84, 4), np.uint8, (), np.int32, stack=4) for n in (1000, 2000))
    assert large.nbytes() - small.nbytes() == 1000 * per
    print(f"replay: {per} bytes per transition -> {per * 1e6 / 1e9:.3f} GB for 1M transitions "
          f"({'PASS' if per * 1e6 <= 8e9 else 'FAIL'} <= 8 GB); frames stored 4x would need "
          f"{(2 * 4 * 84 * 84) * 1e6 / 1e9:.1f} GB")

    # -- random-policy baseline on the evaluation env --------------------------------------------
    n_actions = env_spec(cfg.env).n_actions
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    res = evaluate(lambda obs: int(rng.integers(n_actions)), cfg.env, seed=10_000, episodes=args.random_episodes)
    print(f"random policy: return {res.mean:.2f} +- {res.std:.2f} over {len(res.returns)} episodes "
          f"(seeds 10000.., {sum(res.lengths) / (time.perf_counter() - t0):.0f} env steps/s)")

    # -- env alone -------------------------------------------------------------------------------
    env = make_env(cfg.env, 0, training=True)
    env.reset(seed=0)
    t0 = time.perf_counter()
    for _ in range(2000):
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            env.reset()
    print(f"env alone (training wrappers): {2000 / (time.perf_counter() - t0):.0f} agent steps/s")
    env.close()

    time_loops(cfg, args)


def time_loops(cfg, args: argparse.Namespace) -> None:  # noqa: ANN001
    """Today's loop and the new default, alternating, while learning."""
    import numpy as np

    from benchmarks._train_util import learning_rate_steps_per_s
    from rl2fpga.config import apply_overrides

    dc = cfg.train.dqn
    base = apply_overrides(cfg, args.baseline_set)
    rows: dict[str, list[tuple[float, float, float]]] = {"today": [], "new": []}
    for r in range(args.repeats):
        for name, c in (("today", base), ("new", cfg)):
            load0, cpu = os.getloadavg()[0], {}
            learning, _ = learning_rate_steps_per_s(c, warmup=1000, steps=args.steps, cpu=cpu)
            rows[name].append((learning, cpu["ms_per_step"], (load0 + os.getloadavg()[0]) / 2))
            print(f"  repeat {r + 1}: {name:5s} {learning:6.1f} agent steps/s, {cpu['ms_per_step']:.2f} CPU ms per "
                  f"agent step (load average {rows[name][-1][2]:.1f})", flush=True)
    med = {k: float(np.median([v[0] for v in rows[k]])) for k in rows}
    cpu_med = {k: float(np.median([v[1] for v in rows[k]])) for k in rows}
    bd = base.train.dqn
    print(f"dqn while learning (train_freq {dc.train_freq}, batch {dc.batch_size}, {cfg.train.network} CNN), "
          f"median of {args.repeats}:\n"
          f"  today: num_envs {bd.num_envs}, learner {bd.learner_dtype}: {med['today']:.0f} agent steps/s, "
          f"{cpu_med['today']:.2f} CPU ms per agent step\n"
          f"  new:   num_envs {dc.num_envs} ({dc.vector_mode}), learner {dc.learner_dtype}: {med['new']:.0f} agent steps/s "
          f"= {med['new'] / med['today']:.2f}x, {cpu_med['new']:.2f} CPU ms per agent step "
          f"= {cpu_med['today'] / cpu_med['new']:.2f}x less; 200k agent steps ~ {200_000 / med['new'] / 60:.0f} min "
          f"(today ~ {200_000 / med['today'] / 60:.0f} min)\n"
          f"  load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

if __name__ == "__main__":
    main()
