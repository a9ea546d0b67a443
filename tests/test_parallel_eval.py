"""env.eval_workers: seeded evaluations played by forked workers give the returns, lengths,
per-step statistics and input saturation of one process, in episode order."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rl2fpga.config import EnvConfig, RunConfig, apply_overrides
from rl2fpga.core.fixedpoint import Fmt
from rl2fpga.core.golden import random_model
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.quantize.quantizer import GoldenPolicy, run_stateful
from rl2fpga.validate import validate_config


def _cartpole_policy() -> GoldenPolicy:
    # a 3-bit-integer input format so that CartPole's velocities saturate now and then
    gm = random_model(np.random.default_rng(3), (4,), [("dense", 16), ("dense", 2)], sparsity=0.5,
                      in_fmt=Fmt(6, 2, True), threshold=1)
    return GoldenPolicy(gm, discrete=True)


def _play(policy: GoldenPolicy, env: EnvConfig, episodes: int, workers: int, max_steps: int | None = None) -> dict:
    res = run_stateful(policy, env, 100, episodes, max_steps=max_steps, workers=workers)
    res["macs"] = [s.macs for s in policy.stats]
    res["events"] = [s.events for s in policy.stats]
    res["saturation"] = dataclasses.asdict(policy.gm.saturation)
    return res


def test_forked_workers_play_the_episodes_of_one_process() -> None:
    env = EnvConfig(id="CartPole-v1")
    one = _play(_cartpole_policy(), env, 7, workers=1)
    assert len(set(one["returns"])) > 1 and one["saturation"]["saturated"] > 0  # episodes differ, some inputs saturate
    for workers in (2, 3, 7, 12):  # 12 > episodes: one worker per episode
        many = _play(_cartpole_policy(), env, 7, workers=workers)
        assert many["returns"] == one["returns"] and many["lengths"] == one["lengths"], workers
        assert many["macs"] == one["macs"] and many["events"] == one["events"], workers
        assert many["saturation"] == one["saturation"], workers


def test_workers_default_to_the_env_config_and_a_policy_without_state() -> None:
    class Counting:
        """A stateful policy without worker hooks: its own counters stay in the workers."""

        def __init__(self) -> None:
            self.t = 0

        def reset(self) -> None:
            self.t = 0

        def __call__(self, obs: np.ndarray) -> int:
            self.t += 1
            return int(self.t % 3 == 0)

    here, forked = Counting(), Counting()
    one = run_stateful(here, EnvConfig(id="CartPole-v1"), 5, 4)
    two = run_stateful(forked, EnvConfig(id="CartPole-v1", eval_workers=2), 5, 4)
    assert one["returns"] == two["returns"] and one["lengths"] == two["lengths"]
    # env.eval_workers=2 played the episodes in workers: this process's copy never stepped
    assert here.t == one["lengths"][-1] and forked.t == 0


def test_eval_workers_below_one_is_refused() -> None:
    validate_config(apply_overrides(RunConfig(), ["env.eval_workers=4"]), check_env=False)
    with pytest.raises(Rl2fpgaError, match=r"'env.eval_workers' = 0 is out of range; it must be >= 1"):
        validate_config(apply_overrides(RunConfig(), ["env.eval_workers=0"]), check_env=False)


@pytest.mark.slow
def test_forked_workers_on_atari_frames() -> None:
    """Breakout (sticky actions, no-op starts): the same episodes from workers as from one process."""
    gm = random_model(np.random.default_rng(1), (84, 84, 4), [("conv2d", 8, 8, 4), ("dense", 16), ("dense", 4)],
                      sparsity=0.9, threshold=2, flatten=True)
    env = EnvConfig(id="ALE/Breakout-v5")
    one = _play(GoldenPolicy(gm.copy(), discrete=True), env, 3, workers=1, max_steps=300)
    two = _play(GoldenPolicy(gm.copy(), discrete=True), env, 3, workers=2, max_steps=300)
    assert one["lengths"] == two["lengths"] and one["returns"] == two["returns"] and one["macs"] == two["macs"]
