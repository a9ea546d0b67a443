"""Evaluation helpers: seeded episodes, the NumPy fast path, recorded episodes."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from rl2fpga.config import EnvConfig
from rl2fpga.train.envs import env_spec
from rl2fpga.train.evaluate import (
    deterministic_actor,
    evaluate,
    greedy_policy,
    numpy_greedy_policy,
    record_episode,
)
from rl2fpga.train.networks import cnn, mlp

CARTPOLE = EnvConfig(id="CartPole-v1")


def test_numpy_greedy_matches_tf_greedy():
    tf.keras.utils.set_random_seed(0)
    model = mlp(4, 3, [16, 8])
    obs = np.random.default_rng(0).normal(size=(200, 4)).astype(np.float32) * 3
    fast, slow = numpy_greedy_policy(model), greedy_policy(model)
    expected = np.argmax(model(obs).numpy(), axis=1)
    assert [fast(o) for o in obs] == expected.tolist() == [slow(o) for o in obs]


def test_numpy_policy_refuses_non_dense_models():
    try:
        numpy_greedy_policy(cnn(4, input_shape=(36, 36, 4)))
    except ValueError:
        return
    raise AssertionError("a CNN must not take the NumPy path")


def test_evaluate_is_seeded_per_episode():
    def policy(obs):
        return int(obs[2] + 0.3 * obs[3] > 0)  # a decent hand-written CartPole controller

    a = evaluate(policy, CARTPOLE, seed=5, episodes=3)
    b = evaluate(policy, CARTPOLE, seed=5, episodes=3)
    c = evaluate(policy, CARTPOLE, seed=6, episodes=2)
    assert a.returns == b.returns
    assert c.returns == a.returns[1:]  # episode i uses seed + i
    assert a.mean == np.mean(a.returns) and a.std == np.std(a.returns)
    assert evaluate(policy, CARTPOLE, seed=5, episodes=2, max_steps=10).returns == [10.0, 10.0]


def test_record_episode_matches_evaluate_and_replays():
    def policy(obs):
        return int(obs[2] > 0)

    ep = record_episode(policy, CARTPOLE, seed=11)
    assert ep.total_return == evaluate(policy, CARTPOLE, seed=11, episodes=1).returns[0]
    assert ep.observations.shape == (len(ep.actions), 4) and len(ep.rewards) == len(ep.actions)
    assert [policy(o) for o in ep.observations] == ep.actions.tolist()


def test_deterministic_actor_is_scaled_tanh_of_mean():
    spec = env_spec(EnvConfig(id="Pendulum-v1"))
    tf.keras.utils.set_random_seed(1)
    model = mlp(3, 1, [8])
    obs = np.array([0.3, -0.2, 1.5], np.float32)
    a = deterministic_actor(model, spec)(obs)
    mean = model(obs[None]).numpy()[0]
    assert a.shape == (1,) and np.allclose(a, np.tanh(mean) * 2.0, atol=1e-6)
