"""The ``train`` stage: train the agent the config names into ``train/`` (see
:mod:`rl2fpga.train.trainer` for the artifacts)."""

from __future__ import annotations

from rl2fpga.config import RunConfig
from rl2fpga.fsutil import atomic_dir
from rl2fpga.run import Run
from rl2fpga.train.envs import check_algo, env_spec
from rl2fpga.train.trainer import train


def train_step(run: Run, cfg: RunConfig) -> None:
    """Train into a fresh temp folder that replaces ``train/`` only on success (a failed or
    interrupted training leaves an earlier ``train/`` intact)."""
    check_algo(cfg.train.algo, env_spec(cfg.env))  # bad input fails before anything is touched
    with atomic_dir(run.layout.step("train")) as out:
        res = train(cfg, out)
    print(
        f"train: {cfg.env.id} {cfg.train.algo} {res.steps} steps in {res.seconds:.0f} s, "
        f"eval return {res.eval.mean:.1f} +- {res.eval.std:.1f} over {len(res.eval.returns)} episodes"
    )
