"""prune.finetune=distill for DQN agents: the pruned Q-network learns the dense teacher's
Q-values (or its softmax at a temperature) on the states the teacher and then the student visit;
an optional short RL fine-tuning follows. CartPole is fast; Breakout runs on a few real frames."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from rl2fpga.config import RunConfig, apply_overrides
from rl2fpga.quantize import prune as P
from rl2fpga.train.envs import env_spec
from rl2fpga.train.evaluate import greedy_policy, network_input, record_episode
from rl2fpga.train.networks import build_network

pytestmark = pytest.mark.slow


def _cfg(**sets) -> RunConfig:
    base = {"prune.finetune": "distill", "prune.distill_steps": 300, "prune.distill_episodes": 3,
            "train.eval_episodes": 2, "env.max_episode_steps": 200}
    base.update(sets)
    return apply_overrides(RunConfig(), [f"{k}={v}" for k, v in base.items()])


def _teacher_and_pruned(cfg: RunConfig, seed: int = 3) -> tuple[tf.keras.Model, tf.keras.Model, dict[str, np.ndarray]]:
    spec = env_spec(cfg.env)
    tf.keras.utils.set_random_seed(seed)
    teacher = build_network(cfg.train.network, spec.obs_shape, spec.n_actions, cfg.train.hidden, name="q_network")
    if not spec.is_atari:  # centre the Q-values: both actions near the states it may visit
        rng = np.random.default_rng(seed)
        x = np.concatenate([record_episode(lambda o: int(rng.integers(2)), cfg.env, 900 + i).observations
                            for i in range(5)]).astype(np.float32)
        kernel, bias = teacher.get_layer("out").get_weights()
        teacher.get_layer("out").set_weights([kernel, bias - np.asarray(teacher(x)).mean(axis=0)])
    masks = P.magnitude_masks(teacher, 0.7, None, "layer", True)
    pruned = tf.keras.models.clone_model(teacher)
    pruned.set_weights(teacher.get_weights())
    P.apply_masks(pruned, masks)
    return teacher, pruned, masks


def _teacher_states(cfg: RunConfig, teacher: tf.keras.Model, seed: int = 777) -> np.ndarray:
    """States of episodes the distiller does not see (other seeds)."""
    return np.concatenate([record_episode(greedy_policy(teacher), cfg.env, seed + i, cfg.prune.distill_max_steps).observations
                           for i in range(2)])


def _q(model: tf.keras.Model, obs: np.ndarray) -> np.ndarray:
    return np.asarray(model(network_input(tf.constant(obs)), training=False))


def _zeros_kept(model: tf.keras.Model, masks: dict[str, np.ndarray]) -> None:
    for name, m in masks.items():
        k = np.asarray(model.get_layer(name).kernel)
        assert not k[~m].any(), name  # pruned weights exactly 0
        assert np.count_nonzero(k[m]) == int(m.sum()), name  # the survivors are still weights


def test_dqn_distill_moves_pruned_q_values_to_the_teacher():
    cfg = _cfg()
    teacher, pruned, masks = _teacher_and_pruned(cfg)
    x = _teacher_states(cfg, teacher)
    before = float(np.mean((_q(pruned, x) - _q(teacher, x)) ** 2))
    student, ev = P.distiller(cfg, teacher, env_spec(cfg.env))(pruned, masks, 0)
    after = float(np.mean((_q(student, x) - _q(teacher, x)) ** 2))
    assert after < 0.3 * before, (before, after)
    _zeros_kept(student, masks)
    assert ev["distill_states"] > 0 and len(ev["returns"]) == cfg.train.eval_episodes
    # the given pruned model is not modified (the student is a copy)
    assert all(np.array_equal(a, b) for a, b in zip(pruned.get_weights(), _teacher_and_pruned(cfg)[1].get_weights()))


def test_dqn_distill_softmax_temperature_pulls_the_policy_to_the_teacher_then_rl_finetunes():
    T = 0.1
    cfg = _cfg(**{"prune.distill_temperature": T})
    teacher, pruned, masks = _teacher_and_pruned(cfg, seed=5)
    x = _teacher_states(cfg, teacher)

    def kl(m: tf.keras.Model) -> float:  # KL(teacher's softmax(Q/T) || the model's), mean over states
        p, q = (tf.nn.log_softmax(_q(mm, x) / T, axis=1).numpy() for mm in (teacher, m))
        return float(np.mean(np.sum(np.exp(p) * (p - q), axis=1)))

    student, ev = P.distiller(cfg, teacher, env_spec(cfg.env))(pruned, masks, 0)
    assert kl(student) < 0.3 * kl(pruned), (kl(pruned), kl(student))
    _zeros_kept(student, masks)
    # optional RL fine-tuning after the distillation: runs with the masks, changes the weights
    rl_cfg = _cfg(**{"prune.distill_temperature": 0.05, "prune.distill_rl_steps": 300,
                     "train.dqn.batch_size": 32, "train.dqn.train_freq": 10, "train.dqn.gradient_steps": 5})
    tuned, ev2 = P.distiller(rl_cfg, teacher, env_spec(rl_cfg.env))(pruned, masks, 0)
    assert ev2["rl_steps"] == 300
    _zeros_kept(tuned, masks)
    assert not all(np.array_equal(a, b) for a, b in zip(student.get_weights(), tuned.get_weights()))


def test_dqn_distill_on_atari_frames():
    cfg = _cfg(**{"env.id": "ALE/Breakout-v5", "train.network": "atari", "prune.distill_steps": 60,
                  "prune.distill_episodes": 1, "prune.distill_max_steps": 40, "train.eval_episodes": 1,
                  "env.max_episode_steps": 40})
    teacher, pruned, masks = _teacher_and_pruned(cfg)
    x = _teacher_states(cfg, teacher)
    assert x.dtype == np.uint8 and x.shape[1:] == (84, 84, 4)
    before = float(np.mean((_q(pruned, x) - _q(teacher, x)) ** 2))
    student, ev = P.distiller(cfg, teacher, env_spec(cfg.env))(pruned, masks, 0)
    after = float(np.mean((_q(student, x) - _q(teacher, x)) ** 2))
    assert after < 0.5 * before, (before, after)
    assert 40 < ev["distill_states"] <= 80  # 40 teacher states + the student's own (DAgger)
    _zeros_kept(student, masks)
    # more DAgger rounds: each adds the student's states of that round and more Adam steps
    cfg3 = apply_overrides(cfg, ["prune.distill_dagger_rounds=3", "prune.distill_steps=20"])
    student3, ev3 = P.distiller(cfg3, teacher, env_spec(cfg3.env))(pruned, masks, 0)
    _zeros_kept(student3, masks)
    cfg0 = apply_overrides(cfg, ["prune.distill_dagger_rounds=0", "prune.distill_steps=20"])
    ev0 = P.distiller(cfg0, teacher, env_spec(cfg0.env))(pruned, masks, 0)[1]
    n0 = ev0["distill_states"]  # the teacher's states only (an episode may end before 40 steps)
    assert ev0["steps"] == 20 and 0 < n0 <= 40 and n0 < ev["distill_states"] <= n0 + 40
    assert ev3["steps"] == 4 * 20 and ev["distill_states"] < ev3["distill_states"] <= n0 + 3 * 40
