"""Pruning during training (prune.method=during_training): the cubic schedule, ERK / uniform /
global allocation, the masks the DQN and SAC loops keep, bad values, the prune stage's levels.

Expected values are worked out by hand in the comments (not by the code under test); the
training runs are a few hundred steps on tiny networks (plumbing and exactness, not learning)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from rl2fpga.config import RunConfig, apply_overrides
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.quantize import sparsity as S
from rl2fpga.quantize.prune import level_schedules, load_level, magnitude_masks
from rl2fpga.train.networks import mlp
from rl2fpga.validate import validate_config

SHAPES = {"a": (4, 64), "b": (64, 64), "c": (64, 2)}  # CartPole's 4-64-64-2 Q-network, 4480 weights


def _cfg(**sets: object) -> RunConfig:
    return apply_overrides(RunConfig(), [f"{k}={v}" for k, v in sets.items()])


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg and msg
    return msg


# ----------------------------------------------------------------------------- schedule


def test_cubic_schedule_before_begin_middle_end_after():
    # begin 100, end 300, s_f 0.8: p = (t - 100) / 200, s = 0.8 - 0.8 (1 - p)^3
    expect = {0: 0.0, 99: 0.0, 100: 0.0, 150: 0.8 - 0.8 * 0.75**3, 200: 0.7, 300: 0.8, 301: 0.8, 10_000: 0.8}
    for t, s in expect.items():
        assert S.cubic_sparsity(t, 300, 0.8, begin=100) == pytest.approx(s, abs=1e-12), t
    # the old signature (begin 0) of gradual pruning: t = n / 2 -> s_f (1 - 1/8)
    assert S.cubic_sparsity(5, 10, 0.9) == pytest.approx(0.9 * 7 / 8)


def test_cubic_schedule_equals_tfmot_polynomial_decay():
    import tensorflow_model_optimization as tfmot

    sched = tfmot.sparsity.keras.PolynomialDecay(0.0, 0.9, begin_step=40, end_step=240, power=3, frequency=1)
    for t in (40, 41, 90, 140, 200, 239, 240):
        assert S.cubic_sparsity(t, 240, 0.9, begin=40) == pytest.approx(float(sched(tf.constant(t, tf.int64))[1]), abs=1e-6)


def test_mask_updates_every_frequency_steps_and_at_the_end():
    s = S.PruneSchedule(0.5, begin=100, end=300, frequency=60)
    due = [t for t in range(1, 1000) if s.due(t - 1, t)]
    assert due == [100, 160, 220, 280, 300]
    assert s.due(0, 1000) and not s.due(300, 1000) and not s.due(101, 159) and s.due(159, 161)


# ----------------------------------------------------------------------------- allocation


def test_erk_no_layer_capped():
    # raw ERK = sum/prod: a 68/256, b 128/4096, c 66/128; raw * size = 68 + 128 + 66 = 262.
    # sparsity 0.9: 448 weights kept, eps = 448 / 262; c gets 0.515625 * 448/262 = 231/262 < 1.
    d = S.erk_densities(SHAPES, 0.1)
    assert d == pytest.approx({"a": 119 / 262, "b": 14 / 262, "c": 231 / 262}, abs=1e-12)
    assert sum(d[n] * np.prod(SHAPES[n]) for n in SHAPES) == pytest.approx(448.0)


def test_erk_caps_a_dense_layer_and_redistributes():
    # sparsity 0.85: 672 kept; eps = 672/262 would give c density 1.32 -> c dense (128 weights);
    # the other 544 over a, b: eps = 544 / (68 + 128), a = 0.265625 * 544/196, b = 0.03125 * 544/196.
    d = S.erk_densities(SHAPES, 0.15)
    assert d == pytest.approx({"a": 144.5 / 196, "b": 17 / 196, "c": 1.0}, abs=1e-12)
    assert sum(d[n] * np.prod(SHAPES[n]) for n in SHAPES) == pytest.approx(672.0)
    # sparsity 0.8: 896 kept; c capped, then a (0.265625 * 768/196 > 1) too; b keeps 896 - 384 = 512
    d = S.erk_densities(SHAPES, 0.2)
    assert d == pytest.approx({"a": 1.0, "b": 0.125, "c": 1.0}, abs=1e-12)
    s = S.allocate(SHAPES, 0.8, "erk")
    assert s == pytest.approx({"a": 0.0, "b": 0.875, "c": 0.0}, abs=1e-12)


def test_erk_of_a_conv_kernel_counts_the_kernel_dims():
    # conv (3, 3, 2, 4): raw (3+3+2+4)/72 = 1/6; dense (72, 8): raw 80/576 = 5/36.
    # 50 % of 648 = 324 kept: eps = 324 / (12 + 80) -> conv 324/92/6, dense 324/92 * 5/36
    d = S.erk_densities({"conv": (3, 3, 2, 4), "fc": (72, 8)}, 0.5)
    assert d == pytest.approx({"conv": 324 / 92 / 6, "fc": 324 / 92 * 5 / 36}, abs=1e-12)


def _model(seed: int = 0) -> tf.keras.Model:
    tf.keras.utils.set_random_seed(seed)
    return mlp(4, 2, [32, 16], name="q_network")  # fc1 128, fc2 512, out 32 weights


def test_uniform_allocation_prunes_each_layer_to_the_target():
    m = _model(0)
    pr = S.MaskPruner(S.PruneSchedule(0.75, begin=0, end=10, allocation="uniform"), m, 10)
    pr.update(10)
    masks = pr.masks()
    assert {n: int((~v).sum()) for n, v in masks.items()} == {"fc1": 96, "fc2": 384, "out": 24}
    for la in m.layers[1:]:
        w, mk = np.abs(la.kernel.numpy()), masks[la.name]
        assert (w[~mk] == 0).all() and (w[mk] > 0).all()
    # per layer: every pruned weight was no larger than every kept one of that layer
    m0 = _model(0)
    for la in m0.layers[1:]:
        w, mk = np.abs(la.kernel.numpy()), masks[la.name]
        assert w[~mk].max() <= w[mk].min()


def test_global_allocation_uses_one_threshold_over_all_layers():
    m0 = _model(1)
    m = _model(1)
    pr = S.MaskPruner(S.PruneSchedule(0.75, begin=0, end=10, allocation="global"), m, 10)
    pr.update(10)
    masks = pr.masks()
    assert sum(int((~v).sum()) for v in masks.values()) == 504  # 0.75 * 672
    w = {la.name: np.abs(la.kernel.numpy()) for la in m0.layers[1:]}
    gone = np.concatenate([w[n][~masks[n]] for n in masks])
    kept = np.concatenate([w[n][masks[n]] for n in masks])
    assert gone.max() <= kept.min()
    per = [float((~masks[n]).mean()) for n in masks]
    assert max(per) - min(per) > 0.05  # not the uniform allocation


def test_masks_only_grow_and_mirrors_and_kernels_follow():
    m, target = _model(2), _model(2)
    pr = S.MaskPruner(S.PruneSchedule(0.9, begin=0, end=100, frequency=10, allocation="erk"), m, 100, mirrors=(target,))
    prev = None
    for t in range(0, 101, 10):
        for la in m.layers[1:]:  # training moves the weights between updates
            la.kernel.assign(la.kernel + tf.random.stateless_normal(la.kernel.shape, (t, 1)) * 0.01)
        pr.update(t)
        masks = pr.masks()
        if prev is not None:
            assert all(not (masks[n] & ~prev[n]).any() for n in masks)  # pruned weights never come back
        for n, mk in masks.items():
            assert (m.get_layer(n).kernel.numpy()[~mk] == 0.0).all()
            assert (target.get_layer(n).kernel.numpy()[~mk] == 0.0).all()
            assert (pr.vars[n].numpy() == mk.astype(np.float32)).all()
        prev = masks
    total = sum(v.size for v in prev.values())
    assert sum(int((~v).sum()) for v in prev.values()) == pytest.approx(0.9 * total, abs=3)


def test_magnitude_masks_still_prune_the_smallest_of_the_alive():
    """quantize/prune.py's IMP masks now go through the same drop_smallest helpers."""
    m = _model(3)
    masks = magnitude_masks(m, 0.5, None, "layer")
    assert {n: int((~v).sum()) for n, v in masks.items()} == {"fc1": 64, "fc2": 256, "out": 16}
    again = magnitude_masks(m, 0.5, masks, "global")
    assert sum(int((~v).sum()) for v in again.values()) == 336 + 168  # half of the 336 alive more
    assert all(not (again[n] & ~masks[n]).any() for n in masks)


# ----------------------------------------------------------------------------- bad values


@pytest.mark.parametrize("kw, words", [
    ({"final": 1.0}, "prune.sparsities"),
    ({"final": -0.1}, "prune.sparsities"),
    ({"begin": 500, "end": 500}, "prune.end_step"),
    ({"begin": 600, "end": 500}, "prune.end_step"),
    ({"frequency": 0}, "prune.frequency"),
    ({"allocation": "random"}, "prune.allocation"),
])
def test_bad_schedules_are_one_line_errors(kw, words):
    args = {"final": 0.9, "begin": 100, "end": 500, "frequency": 10, "allocation": "erk", **kw}
    with pytest.raises(Rl2fpgaError) as e:
        S.PruneSchedule(**args)
    assert words in _one_line(e)


def test_a_schedule_ending_after_the_run_is_a_one_line_error():
    with pytest.raises(Rl2fpgaError) as e:
        S.MaskPruner(S.PruneSchedule(0.5, 0, 200), _model(0), 100)
    assert "prune.end_step 200" in _one_line(e) and "train.total_steps 100" in _one_line(e)


def test_bad_config_values_are_one_line_errors():
    with pytest.raises(Rl2fpgaError) as e:
        _cfg(**{"prune.allocation": "random"})
    assert "prune.allocation" in _one_line(e)
    with pytest.raises(Rl2fpgaError) as e:
        level_schedules(_cfg(**{"prune.sparsities": "[0.5,1.0]"}))
    assert "prune.sparsities" in _one_line(e)
    with pytest.raises(Rl2fpgaError) as e:
        level_schedules(_cfg(**{"prune.end_step": 200_000}))
    assert "train.total_steps" in _one_line(e)
    with pytest.raises(Rl2fpgaError) as e:
        level_schedules(_cfg(**{"prune.sparsities": "[]"}))
    assert "prune.sparsities" in _one_line(e)
    with pytest.raises(Rl2fpgaError) as e:
        validate_config(_cfg(**{"prune.distill_dagger_rounds": -1}), check_env=False)
    assert "prune.distill_dagger_rounds" in _one_line(e)
    # defaults: 20 % and 80 % of train.total_steps
    s = level_schedules(_cfg(**{"train.total_steps": 1000, "prune.sparsities": "[0.5]"}))[0]
    assert (s.begin, s.end, s.final) == (200, 800, 0.5)


def test_validate_config_refuses_a_bad_schedule_before_any_step():
    from rl2fpga.validate import validate_config

    base = {"prune.method": "during_training", "train.total_steps": 1000}
    for sets, key in (({"prune.sparsities": "[0.9,1.0]"}, "prune.sparsities[1]"),
                      ({"prune.begin_step": 500, "prune.end_step": 400}, "prune.end_step"),
                      ({"prune.end_step": 2000}, "prune.end_step"),
                      ({"prune.frequency": 0}, "prune.frequency")):
        with pytest.raises(Rl2fpgaError) as e:
            validate_config(_cfg(**base, **sets), check_env=False)
        assert key in _one_line(e)
    validate_config(_cfg(**base), check_env=False)


# ----------------------------------------------------------------------------- training runs


def tiny_dqn(**sets: object) -> RunConfig:
    base = {
        "train.hidden": "[16,16]", "train.total_steps": 600, "train.eval_every": 0, "train.eval_episodes": 2,
        "train.dqn.learning_starts": 100, "train.dqn.train_freq": 50, "train.dqn.gradient_steps": 5,
        "train.dqn.target_update_interval": 100, "train.dqn.exploration_steps": 300, "train.dqn.batch_size": 32,
        "train.dqn.buffer_size": 2000, "env.max_episode_steps": 100, "train.early_stop_return": "null",
        "prune.begin_step": 150, "prune.end_step": 450, "prune.frequency": 50,
    }
    base.update(sets)
    return _cfg(**base)


def tiny_sac(**sets: object) -> RunConfig:
    base = {
        "env.id": "Pendulum-v1", "train.algo": "sac", "train.hidden": "[16,16]",
        "train.total_steps": 300, "train.eval_every": 0, "train.eval_episodes": 1,
        "train.sac.learning_starts": 100, "train.sac.batch_size": 32, "train.sac.critic_hidden": "[16,16]",
        "env.max_episode_steps": 50, "prune.begin_step": 120, "prune.end_step": 240, "prune.frequency": 40,
        "prune.allocation": "uniform",
    }
    base.update(sets)
    return _cfg(**base)


def _zeros(model: tf.keras.Model) -> dict[str, int]:
    return {la.name: int((la.kernel.numpy() == 0).sum()) for la in S.prunable_layers(model)}


def _check_masks_hold(model: tf.keras.Model, masks: dict[str, np.ndarray]) -> None:
    for n, mk in masks.items():
        k = model.get_layer(n).kernel.numpy()
        assert (k[~mk] == 0.0).all() and (k[mk] != 0.0).all(), n


@pytest.fixture(scope="module")
def dqn_runs():
    from rl2fpga.train.dqn import train_dqn

    cfg = tiny_dqn(**{"train.eval_every": 200})
    sched = S.PruneSchedule.from_config(cfg, 0.75)  # begin 150, end 450, every 50, erk
    a = train_dqn(cfg, None, schedule=sched, progress=False)
    b = train_dqn(cfg, None, schedule=sched, progress=False)
    return cfg, sched, a, b


def test_dqn_prunes_the_q_network_to_the_erk_counts(dqn_runs):
    cfg, sched, a, _ = dqn_runs
    # ERK at 0.75 on 4-16-16-2: raw*size = 20 + 32 + 18 = 70, 88 of 352 weights kept,
    # layer zeros = size - (sum of dims) * 88 / 70: fc1 64 - 25.14, fc2 256 - 40.23, out 32 - 22.63
    assert {n: int((~m).sum()) for n, m in a.masks.items()} == {"fc1": 39, "fc2": 216, "out": 9}
    assert _zeros(a.model) == {"fc1": 39, "fc2": 216, "out": 9}
    _check_masks_hold(a.model, a.masks)
    info = a.metrics["prune"]
    assert [u["step"] for u in info["updates"]] == list(range(150, 451, 50))
    assert info["updates"][0]["sparsity"] == 0.0 and info["updates"][-1]["sparsity"] == pytest.approx(264 / 352)
    assert a.selected_step >= sched.end  # the selected model is one with the final masks
    assert all(e["step"] >= sched.end for e in a.metrics["evals"])


def test_dqn_with_the_same_seed_gives_identical_weights(dqn_runs):
    _, _, a, b = dqn_runs
    assert all(np.array_equal(x, y) for x, y in zip(a.model.get_weights(), b.model.get_weights(), strict=True))
    assert all(np.array_equal(a.masks[n], b.masks[n]) for n in a.masks)
    assert a.eval.returns == b.eval.returns


def test_dqn_without_a_schedule_prunes_nothing():
    from rl2fpga.train.dqn import train_dqn

    res = train_dqn(tiny_dqn(**{"train.total_steps": 300}), None, progress=False)
    assert res.masks is None and "prune" not in res.metrics
    assert all(v == 0 for v in _zeros(res.model).values())


def test_vector_dqn_prunes_too():
    from rl2fpga.train.dqn import train_dqn

    cfg = tiny_dqn(**{"train.dqn.num_envs": 2})
    res = train_dqn(cfg, None, schedule=S.PruneSchedule(0.5, 150, 450, 50, "global"), progress=False)
    assert sum(int((~m).sum()) for m in res.masks.values()) == 176  # half of 352
    _check_masks_hold(res.model, res.masks)


def test_sac_prunes_the_actor_and_keeps_the_critics_dense(tmp_path: Path):
    from rl2fpga.safety import load_keras_model
    from rl2fpga.train.sac import train_sac

    cfg = tiny_sac()
    sched = S.PruneSchedule(0.5, 120, 240, 40, "uniform")
    res = train_sac(cfg, tmp_path / "a", schedule=sched, progress=False)
    # uniform 0.5 on 3-16-16-1: fc1 48 -> 24, fc2 256 -> 128, out 16 -> 8
    assert {n: int((~m).sum()) for n, m in res.masks.items()} == {"fc1": 24, "fc2": 128, "out": 8}
    _check_masks_hold(res.model, res.masks)
    saved = load_keras_model(tmp_path / "a" / "model.keras")
    assert _zeros(saved) == {"fc1": 24, "fc2": 128, "out": 8}
    for name in ("q1", "q2", "q1_target", "q2_target"):
        q = load_keras_model(tmp_path / "a" / "agent" / f"{name}.keras")
        assert all((w != 0).all() for w in q.get_weights()[::2]), name  # kernels dense
    actor = load_keras_model(tmp_path / "a" / "agent" / "actor.keras")
    assert (actor.get_layer("log_std").kernel.numpy() != 0).all()  # not deployed: not pruned
    again = train_sac(cfg, None, schedule=sched, progress=False)
    assert all(np.array_equal(x, y) for x, y in zip(res.model.get_weights(), again.model.get_weights(), strict=True))


# ----------------------------------------------------------------------------- the prune stage


def test_prune_stage_during_training_writes_levels(tmp_path: Path):
    from rl2fpga.run import Run
    from rl2fpga.stages.prune import prune_step
    from rl2fpga.stages.train import train_step

    cfg = tiny_dqn(**{"prune.method": "during_training", "prune.sparsities": "[0.5,0.9]",
                      "prune.allocation": "uniform", "prune.prune_output_layer": "false"})
    run = Run.create(cfg, path=tmp_path / "run")
    train_step(run, cfg)
    prune_step(run, cfg)
    d = tmp_path / "run" / "prune"
    levels = json.loads((d / "levels.json").read_text())
    assert levels["method"] == "during_training" and [lv["level"] for lv in levels["levels"]] == [0, 1, 2]
    dense_eval = json.loads((tmp_path / "run" / "train" / "eval.json").read_text())
    for lv, s in zip(levels["levels"][1:], (0.5, 0.9), strict=True):
        model, masks, rec = load_level(tmp_path / "run", lv["level"])
        # uniform, output layer dense: fc1 64 and fc2 256 weights at s, out untouched
        assert set(masks) == {"fc1", "fc2"}
        assert _zeros(model) == {"fc1": round(64 * s), "fc2": round(256 * s), "out": 0}
        _check_masks_hold(model, masks)
        assert rec["target_sparsity"] == s and rec["seconds"] > 0 and rec["allocation"] == "uniform"
        ev = json.loads((d / lv["dir"] / "eval.json").read_text())
        assert len(ev["returns"]) == len(dense_eval["returns"]) == cfg.train.eval_episodes
    sel = json.loads((d / "selected.json").read_text())
    assert sel["level"] in (0, 1, 2) and sel["keep_return_fraction"] == cfg.prune.keep_return_fraction
