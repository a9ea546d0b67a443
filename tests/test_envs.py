"""Environment wrappers: Atari observations, episodic life only in training, specs, bad ids."""

from __future__ import annotations

import numpy as np
import pytest

from rl2fpga.config import EnvConfig
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.train.envs import check_algo, env_spec, make_env

BREAKOUT = EnvConfig(id="ALE/Breakout-v5")


def test_atari_obs_is_uint8_channels_last_stack():
    env = make_env(BREAKOUT, seed=0, training=False)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (84, 84, 4) and obs.dtype == np.uint8
    # at reset the four stacked frames are the same frame
    for c in range(1, 4):
        assert np.array_equal(obs[..., c], obs[..., 0])
    prev = obs
    for _ in range(8):
        obs, *_ = env.step(env.action_space.sample())
        # channels-last stack: the new obs is the old one shifted by one frame
        assert np.array_equal(obs[..., :3], prev[..., 1:])
        prev = obs
    assert obs.max() > 0  # real pixels, not a blank screen
    env.close()


def _lives_lost_before_done(training: bool, max_steps: int = 3000) -> tuple[int, bool]:
    """Play random actions; return (lives when the episode ended, whether it ended)."""
    env = make_env(BREAKOUT, seed=1, training=training)
    env.reset(seed=1)
    rng = np.random.default_rng(1)
    for _ in range(max_steps):
        _, _, terminated, truncated, _ = env.step(int(rng.integers(4)))
        if terminated or truncated:
            lives = env.unwrapped.ale.lives()
            env.close()
            return lives, True
    env.close()
    return -1, False


def test_episodic_life_only_in_training():
    lives, ended = _lives_lost_before_done(training=True)
    assert ended and lives == 4  # the first lost life ends the training episode
    lives, ended = _lives_lost_before_done(training=False)
    assert ended and lives == 0  # evaluation plays the whole game


def test_training_env_reports_whole_games():
    env = make_env(BREAKOUT, seed=2, training=True)
    env.reset(seed=2)
    rng = np.random.default_rng(2)
    life_ends, clipped_sum = 0, 0.0
    for _ in range(5000):
        _, r, term, trunc, info = env.step(int(rng.integers(4)))
        clipped_sum += r
        if term or trunc:
            if "episode" in info:  # only when the game is over, not at every lost life
                assert env.unwrapped.ale.lives() == 0 and life_ends == 4
                assert float(info["episode"]["r"]) >= clipped_sum  # unclipped score
                break
            life_ends += 1
            env.reset()
    else:
        raise AssertionError("no game ended in 5000 random steps")
    env.close()


def test_reward_clipping_only_in_training():
    rewards = {}
    for training in (True, False):
        env = make_env(EnvConfig(id="ALE/Pong-v5"), seed=0, training=training)
        env.reset(seed=0)
        seen = set()
        for _ in range(400):
            _, r, term, trunc, _ = env.step(env.action_space.sample())
            seen.add(float(r))
            if term or trunc:
                env.reset()
        rewards[training] = seen
        env.close()
    assert rewards[True] <= {-1.0, 0.0, 1.0}
    assert -1.0 in rewards[False]  # Pong's opponent scores quickly against random play


def test_env_specs():
    s = env_spec(EnvConfig(id="CartPole-v1"))
    assert s.discrete and s.n_actions == 2 and s.obs_shape == (4,) and not s.is_atari
    s = env_spec(EnvConfig(id="Pendulum-v1"))
    assert not s.discrete and s.n_actions == 1 and s.action_low == [-2.0] and s.action_high == [2.0]
    s = env_spec(BREAKOUT)
    assert s.is_atari and s.obs_shape == (84, 84, 4) and s.obs_dtype == "uint8" and s.n_actions == 4
    s = env_spec(EnvConfig(id="Hopper-v5"))
    assert not s.discrete and s.n_actions == 3 and s.obs_shape == (11,)


def test_max_episode_steps_override():
    env = make_env(EnvConfig(id="CartPole-v1", max_episode_steps=7), seed=0, training=False)
    env.reset(seed=0)
    n = 0
    while True:
        n += 1
        _, _, term, trunc, _ = env.step(n % 2)
        if term or trunc:
            break
    assert n <= 7 and (trunc or term)


def test_unknown_env_is_one_line_error():
    with pytest.raises(Rl2fpgaError) as e:
        make_env(EnvConfig(id="Nope-v0"), seed=0, training=False)
    msg = str(e.value)
    assert "unknown environment id 'Nope-v0'" in msg and "\n" not in msg


def test_algo_action_space_mismatch():
    with pytest.raises(Rl2fpgaError, match="DQN needs discrete actions"):
        check_algo("dqn", env_spec(EnvConfig(id="Pendulum-v1")))
    with pytest.raises(Rl2fpgaError, match="SAC needs continuous actions"):
        check_algo("sac", env_spec(EnvConfig(id="CartPole-v1")))


def test_env_kwargs_reach_the_constructor():
    """env.kwargs: Ant-v5 without its contact forces has 27 observations instead of 105."""
    full = env_spec(EnvConfig(id="Ant-v5"))
    body = env_spec(EnvConfig(id="Ant-v5", kwargs={"include_cfrc_ext_in_observation": False}))
    assert full.obs_shape == (105,) and body.obs_shape == (27,)


def test_env_kwargs_unknown_name_is_one_line_error():
    with pytest.raises(Rl2fpgaError, match="refused env.kwargs") as e:
        make_env(EnvConfig(id="Hopper-v5", kwargs={"no_such_option": 1}), seed=0, training=False)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("key,value,why", [
    ("xml_file", "/etc/passwd", "refused"), ("render_mode", "human", "refused"),
    ("frameskip", 2, "env.frame_skip"), ("max_episode_steps", 5, "env.max_episode_steps"),
    ("bad key", 1, "not a plain name"),
])
def test_env_kwargs_untrusted_options_are_refused(key: str, value: object, why: str) -> None:
    from rl2fpga.config import RunConfig
    from rl2fpga.validate import validate_config

    cfg = RunConfig()
    cfg.env.kwargs = {key: value}
    with pytest.raises(Rl2fpgaError, match=why):
        validate_config(cfg)


def test_env_kwargs_from_yaml_and_set(tmp_path):
    from rl2fpga.config import apply_overrides, load_config

    p = tmp_path / "c.yaml"
    p.write_text("name: a\nenv:\n  id: Ant-v5\n  kwargs: {include_cfrc_ext_in_observation: false}\n")
    cfg = load_config(p)
    assert cfg.env.kwargs == {"include_cfrc_ext_in_observation": False}
    cfg = apply_overrides(cfg, ["env.kwargs.ctrl_cost_weight=0.25"])
    assert cfg.env.kwargs == {"include_cfrc_ext_in_observation": False, "ctrl_cost_weight": 0.25}
    p.write_text("name: a\nenv:\n  kwargs: {a: [1, 2]}\n")
    with pytest.raises(Rl2fpgaError, match="must be a scalar"):
        load_config(p)


def test_random_policy_is_seeded_and_within_bounds():
    from rl2fpga.train.evaluate import evaluate_random, random_policy

    cfg = EnvConfig(id="Pendulum-v1")
    spec = env_spec(cfg)
    pol = random_policy(spec, 3)
    acts = np.stack([pol(None) for _ in range(200)])
    assert acts.min() >= -2.0 and acts.max() <= 2.0 and acts.std() > 0.5
    a, b = evaluate_random(spec, cfg, 5, 2), evaluate_random(spec, cfg, 5, 2)
    assert a.returns == b.returns  # same seed, same episodes, same actions
    c = evaluate_random(env_spec(EnvConfig()), EnvConfig(), 0, 5)
    assert 5 <= c.mean <= 60  # CartPole under random actions: ~22 steps, far from 500
