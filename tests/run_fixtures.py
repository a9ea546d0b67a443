"""Shared test helper: a run's ``train/`` folder as the train step writes it, without training."""

from __future__ import annotations

import json

import tensorflow as tf

from rl2fpga.run import Run
from rl2fpga.train.envs import EnvSpec
from rl2fpga.train.networks import mlp


def fake_train(run: Run, seed: int = 0, mark_done: bool = False) -> None:
    """An untrained 4-16-16-2 CartPole Q-network (seeded) with a made-up evaluation in
    ``run``'s train folder; ``mark_done`` also stamps the step finished."""
    tf.keras.utils.set_random_seed(seed)
    d = run.dir("train")
    mlp(4, 2, [16, 16], name="q_network").save(d / "model.keras")
    mlp(4, 2, [16, 16], name="q_network").save(d / "init_model.keras")
    spec = EnvSpec("CartPole-v1", (4,), "float32", True, 2, None, None, False)
    (d / "env.json").write_text(json.dumps(spec.to_dict()))
    (d / "eval.json").write_text(json.dumps({"mean": 20.0, "std": 1.0, "returns": [20.0]}))
    if mark_done:
        run.mark_done("train", 1.0)
