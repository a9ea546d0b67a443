"""Short DQN and SAC trainings: artifacts, determinism, pruning masks, the Atari path.

These train for a few hundred to a few thousand steps: they check plumbing and exactness, not
learning (benchmarks/train_*.py measure returns)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from rl2fpga.config import RunConfig, apply_overrides
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.run import Run
from rl2fpga.stages.train import train_step
from rl2fpga.train.dqn import train_dqn
from rl2fpga.train.evaluate import evaluate, greedy_policy, record_episode
from rl2fpga.train.networks import weight_layers
from rl2fpga.train.sac import train_sac
from rl2fpga.train.trainer import load_trained

pytestmark = pytest.mark.slow


def tiny_dqn(**sets) -> RunConfig:
    base = {
        "train.total_steps": 1200, "train.eval_every": 0, "train.eval_episodes": 2,
        "train.dqn.learning_starts": 300, "train.dqn.train_freq": 100, "train.dqn.gradient_steps": 10,
        "train.dqn.target_update_interval": 200, "train.dqn.exploration_steps": 600,
        "train.dqn.buffer_size": 5000, "env.max_episode_steps": 100,
    }
    base.update(sets)
    return apply_overrides(RunConfig(), [f"{k}={v}" for k, v in base.items()])


def tiny_sac(**sets) -> RunConfig:
    base = {
        "env.id": "Pendulum-v1", "train.algo": "sac", "train.hidden": "[16,16]",
        "train.total_steps": 400, "train.eval_every": 0, "train.eval_episodes": 1,
        "train.sac.learning_starts": 200, "train.sac.batch_size": 32, "train.sac.critic_hidden": "[32,32]",
        "env.max_episode_steps": 100,
    }
    base.update(sets)
    return apply_overrides(RunConfig(), [f"{k}={v}" for k, v in base.items()])


def weights_equal(a: tf.keras.Model, b: tf.keras.Model) -> bool:
    wa, wb = a.get_weights(), b.get_weights()
    return len(wa) == len(wb) and all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(wa, wb))


def test_train_step_writes_every_artifact(tmp_path: Path):
    cfg = tiny_dqn(**{"train.eval_every": 600, "train.checkpoint_every": 600})
    run = Run.create(cfg, path=tmp_path / "run")
    train_step(run, cfg)
    d = tmp_path / "run" / "train"
    for name in ("model.keras", "init_model.keras", "metrics.json", "eval.json", "env.json", "summary.json"):
        assert (d / name).is_file(), name
    ckpts = sorted(p.name for p in (d / "checkpoints").iterdir())
    assert ckpts == ["step_00000120.keras", "step_00000600.keras", "step_00001200.keras"]  # 10 % + every 600
    assert any((d / "tb").rglob("events.out.tfevents.*"))
    summary = json.loads((d / "summary.json").read_text())
    assert summary["steps"] == 1200 and summary["seconds"] > 0
    ev = json.loads((d / "eval.json").read_text())
    assert len(ev["returns"]) == 2 and summary["eval_return_mean"] == pytest.approx(np.mean(ev["returns"]))
    assert summary["eval_return_std"] == pytest.approx(np.std(ev["returns"]))
    episodes = json.loads((d / "metrics.json").read_text())["episodes"]
    assert len(episodes) >= 10 and all(1 <= e["return"] <= 100 for e in episodes)  # capped at 100 steps
    model, spec = load_trained(run)
    assert [layer.name for layer in weight_layers(model)] == ["fc1", "fc2", "out"]
    assert spec.n_actions == 2 and spec.discrete
    init = tf.keras.models.load_model(d / "init_model.keras", compile=False)
    assert not weights_equal(model, init)  # training moved the weights
    # the saved model reproduces the reported evaluation
    res = evaluate(greedy_policy(model), cfg.env, ev["seed"], 2)
    assert res.returns == ev["returns"]


def test_dqn_same_seed_same_weights():
    a = train_dqn(tiny_dqn(), None, progress=False)
    b = train_dqn(tiny_dqn(), None, progress=False)
    c = train_dqn(tiny_dqn(seed=1), None, progress=False)
    assert weights_equal(a.model, b.model)
    assert not weights_equal(a.model, c.model)


def test_dqn_masks_keep_pruned_weights_zero_and_rewound_model_is_used():
    cfg = tiny_dqn()
    start = train_dqn(cfg, None, total_steps=400, progress=False).model  # a "rewound" model
    rng = np.random.default_rng(0)
    masks = {layer.name: (rng.random(layer.kernel.shape) < 0.5).astype(np.float32) for layer in weight_layers(start)}
    res = train_dqn(cfg, None, model=start, masks=masks, progress=False)
    for layer in weight_layers(res.model):
        k = layer.kernel.numpy()
        assert np.all(k[masks[layer.name] == 0] == 0.0)
        assert np.count_nonzero(k[masks[layer.name] == 1]) == int(masks[layer.name].sum())
    with pytest.raises(Rl2fpgaError, match="pruning mask"):
        train_dqn(cfg, None, masks={"fc1": np.ones((3, 3))}, total_steps=10, progress=False)


def test_dqn_atari_path_runs_and_records_real_frames():
    cfg = tiny_dqn(**{
        "env.id": "ALE/Breakout-v5", "train.network": "atari", "train.total_steps": 200,
        "train.dqn.learning_starts": 100, "train.dqn.train_freq": 50, "train.dqn.gradient_steps": 2,
        "train.dqn.batch_size": 8, "train.dqn.buffer_size": 1000, "train.eval_episodes": 1,
        "env.max_episode_steps": 60,
    })
    res = train_dqn(cfg, None, progress=False)
    assert weights_equal(res.model, train_dqn(cfg, None, progress=False).model)  # CNN training is seeded too
    assert [layer.name for layer in weight_layers(res.model)] == ["conv1", "conv2", "conv3", "fc1", "out"]
    assert res.model.input_shape == (None, 84, 84, 4)
    policy = greedy_policy(res.model)
    ep = record_episode(policy, cfg.env, seed=7, max_steps=40)
    assert ep.observations.shape == (len(ep.actions), 84, 84, 4) and ep.observations.dtype == np.uint8
    again = record_episode(policy, cfg.env, seed=7, max_steps=40)
    assert np.array_equal(ep.observations, again.observations) and np.array_equal(ep.actions, again.actions)
    # the actions are the greedy actions of the recorded frames (p * 2^-8 input)
    q = res.model(ep.observations.astype(np.float32) * 2.0**-8).numpy()
    assert np.array_equal(np.argmax(q, axis=1), ep.actions)


def test_sac_deployed_actor_masks_and_determinism(tmp_path: Path):
    cfg = tiny_sac()
    a = train_sac(cfg, tmp_path / "a", progress=False)
    b = train_sac(cfg, None, progress=False)
    assert weights_equal(a.model, b.model)
    assert [layer.name for layer in a.model.layers[1:]] == ["fc1", "fc2", "out"]  # plain chain
    assert (tmp_path / "a" / "agent" / "q1.keras").is_file() and (tmp_path / "a" / "model.keras").is_file()
    rng = np.random.default_rng(0)
    masks = {layer.name: (rng.random(layer.kernel.shape) < 0.5).astype(np.float32) for layer in weight_layers(a.model)}
    res = train_sac(cfg, None, model=a.model, masks=masks, total_steps=300, progress=False)
    for layer in weight_layers(res.model):
        k, m = layer.kernel.numpy(), masks[layer.name]
        assert np.all(k[m == 0] == 0.0) and np.count_nonzero(k[m == 1]) == int(m.sum())
        start = a.model.get_layer(layer.name).kernel.numpy()
        assert not np.array_equal(k[m == 1], start[m == 1])  # kept weights were trained from the given model
    ep = record_episode(lambda o: np.tanh(a.model(o[None].astype(np.float32)).numpy()[0]) * 2.0, cfg.env, 3, 20)
    assert ep.actions.shape == (20, 1) and np.all(np.abs(ep.actions) <= 2.0)
