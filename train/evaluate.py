"""Evaluation and episode recording on the real (training=False) environment.

A *policy* is a plain function ``obs -> action`` on one unbatched observation. Episode ``i`` of an
evaluation with ``seed`` resets the environment with ``seed + i``, so evaluations are repeatable
and comparable across models (dense, pruned, quantized, hardware).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf

from rl2fpga.config import EnvConfig
from rl2fpga.train.envs import EnvSpec, make_env
from rl2fpga.train.networks import PIXEL_SCALE
from rl2fpga.train.rollout import EpisodeRecord, rollout

Policy = Callable[[np.ndarray], "int | np.ndarray"]


@dataclass
class EvalResult:
    returns: list[float]
    mean: float
    std: float
    lengths: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"returns": self.returns, "mean": self.mean, "std": self.std, "lengths": self.lengths}


@dataclass
class Episode:
    observations: np.ndarray  # (T, *obs_shape): the observation each action was chosen from
    actions: np.ndarray  # (T,) or (T, action_dim)
    rewards: np.ndarray  # (T,) float64, unclipped
    total_return: float


def network_input(obs: np.ndarray) -> tf.Tensor:
    """Network input from observations, inside TF: uint8 pixels p -> p * 2^-8 (exact), else float32."""
    if obs.dtype == tf.uint8:
        return tf.cast(obs, tf.float32) * PIXEL_SCALE
    return tf.cast(obs, tf.float32)


def greedy_policy(model: tf.keras.Model) -> Policy:
    """argmax_a Q(obs, a), one observation at a time through a tf.function (never model.predict)."""

    @tf.function(reduce_retracing=True)
    def act(obs: tf.Tensor) -> tf.Tensor:
        q = model(network_input(obs)[None], training=False)
        return tf.argmax(q[0], output_type=tf.int32)

    def policy(obs: np.ndarray) -> int:
        return int(act(tf.convert_to_tensor(obs)))

    return policy


def dense_chain(model: tf.keras.Model) -> list[tuple[np.ndarray, np.ndarray, bool]] | None:
    """[(kernel, bias, relu)] of a plain Dense chain with relu/linear activations, else None."""
    layers = []
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.InputLayer):
            continue
        act = getattr(layer, "activation", None)
        if type(layer) is not tf.keras.layers.Dense or act not in (tf.keras.activations.relu, tf.keras.activations.linear):
            return None
        kernel, bias = layer.get_weights()
        layers.append((kernel, bias, act is tf.keras.activations.relu))
    return layers


def numpy_greedy_policy(model: tf.keras.Model) -> Policy:
    """greedy_policy for a Dense chain in NumPy on a snapshot of the weights (~10x faster per
    step than a tf.function; float32 sums may round differently from TF in the last bit)."""
    layers = dense_chain(model)
    if layers is None:
        raise ValueError(f"model {model.name} is not a plain Dense chain")

    def policy(obs: np.ndarray) -> int:
        h = np.asarray(obs, np.float32)
        for kernel, bias, relu in layers:
            h = h @ kernel + bias
            if relu:
                h = np.maximum(h, 0.0)
        return int(np.argmax(h))

    return policy


def deterministic_actor(model: tf.keras.Model, spec: EnvSpec) -> Policy:
    """SAC's deployed actor: tanh(mean(obs)) * scale + offset."""
    low = np.asarray(spec.action_low, np.float32)
    high = np.asarray(spec.action_high, np.float32)
    scale, offset = tf.constant((high - low) / 2), tf.constant((high + low) / 2)

    @tf.function(reduce_retracing=True)
    def act(obs: tf.Tensor) -> tf.Tensor:
        mean = model(network_input(obs)[None], training=False)[0]
        return tf.tanh(mean) * scale + offset

    def policy(obs: np.ndarray) -> np.ndarray:
        return act(tf.convert_to_tensor(obs)).numpy()

    return policy


def _episode(rec: EpisodeRecord, record: bool) -> Episode:
    rew = np.asarray(rec.rewards, np.float64)
    if record:
        return Episode(np.stack(rec.observations), np.asarray(rec.actions), rew, float(rew.sum()))
    return Episode(np.empty(0), np.empty(0), rew, float(rew.sum()))


def run_episode(policy_fn: Policy, env: Any, seed: int, max_steps: int | None, record: bool) -> Episode:
    """One episode of ``env`` reset with ``seed`` (:func:`rl2fpga.train.rollout.rollout`)."""
    return _episode(rollout(env, policy_fn, seed=seed, episodes=1, max_steps=max_steps, record=record)[0], record)


def evaluate(policy_fn: Policy, env_cfg: EnvConfig, seed: int, episodes: int, max_steps: int | None = None) -> EvalResult:
    """Undiscounted returns of ``episodes`` seeded episodes (episode i uses seed + i)."""
    env = make_env(env_cfg, seed, training=False)
    try:
        eps = [_episode(r, False) for r in rollout(env, policy_fn, seed=seed, episodes=episodes, max_steps=max_steps)]
    finally:
        env.close()
    returns = [e.total_return for e in eps]
    return EvalResult(returns, float(np.mean(returns)), float(np.std(returns)), [len(e.rewards) for e in eps])


def random_policy(spec: EnvSpec, seed: int) -> Policy:
    """Uniform random actions from a seeded generator (the baseline a trained agent must beat)."""
    rng = np.random.default_rng(seed)
    if spec.discrete:
        return lambda obs: int(rng.integers(spec.n_actions))
    low, high = np.asarray(spec.action_low, np.float32), np.asarray(spec.action_high, np.float32)
    return lambda obs: rng.uniform(low, high).astype(np.float32)


def evaluate_random(spec: EnvSpec, env_cfg: EnvConfig, seed: int, episodes: int) -> EvalResult:
    """:func:`evaluate` of :func:`random_policy` on the same seeded episodes as the agent."""
    return evaluate(random_policy(spec, seed), env_cfg, seed, episodes)


def record_episode(policy_fn: Policy, env_cfg: EnvConfig, seed: int, max_steps: int | None = None) -> Episode:
    """One seeded episode with every observation, action and reward (real frames for Atari)."""
    env = make_env(env_cfg, seed, training=False)
    try:
        return run_episode(policy_fn, env, seed, max_steps, record=True)
    finally:
        env.close()
