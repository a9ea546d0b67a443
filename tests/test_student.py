"""Small students (prune.method = student): folding the input standardisation, seeded
distillation into narrower MLPs, selection by nonzero weights, config checks."""

import json

import numpy as np
import pytest
import tensorflow as tf

from rl2fpga.artifacts import PruneSelected
from rl2fpga.config import RunConfig
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.quantize import prune as P
from rl2fpga.quantize import student as S
from rl2fpga.stages.quantize import _candidates
from rl2fpga.train.envs import env_spec
from rl2fpga.train.networks import mlp
from rl2fpga.validate import validate_config as validate


def _teacher(seed: int = 0) -> tf.keras.Model:
    tf.keras.utils.set_random_seed(seed)
    return mlp(4, 2, [32, 32])


def test_fold_input_affine_reads_raw_inputs_as_the_model_read_standardised_ones():
    m = _teacher()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 4)) * [2.0, 1.0, 0.1, 3.0] + [0.5, -0.2, 0.01, 0.0]
    mean, scale = S.standardisation(x)
    z = (x - mean) * scale
    assert np.allclose(z.mean(0), 0, atol=1e-9) and np.allclose(z.std(0), 1, atol=1e-9)
    folded = S.fold_input_affine(m, mean, scale)
    np.testing.assert_allclose(folded(x.astype(np.float32)).numpy(), m(z.astype(np.float32)).numpy(), rtol=1e-4, atol=1e-4)
    # and the inverse map takes it back
    back = S.fold_input_affine(folded, -mean * scale, 1.0 / scale)
    np.testing.assert_allclose(back(z.astype(np.float32)).numpy(), m(z.astype(np.float32)).numpy(), rtol=1e-4, atol=1e-4)
    # a zero weight stays zero (masks survive folding)
    w = m.layers[1].get_weights()
    w[0][2, :5] = 0
    m.layers[1].set_weights(w)
    assert (S.fold_input_affine(m, mean, scale).layers[1].get_weights()[0][2, :5] == 0).all()


def _cfg(**prune) -> RunConfig:
    cfg = RunConfig()
    cfg.train.eval_episodes = 2
    p = cfg.prune
    p.method, p.student_hidden, p.student_dagger_rounds = "student", [[4, 4]], 1
    p.distill_steps, p.distill_episodes, p.distill_max_steps = 30, 1, 40
    for k, v in prune.items():
        setattr(p, k, v)
    return cfg


def test_students_are_levels_seeded_and_pruned(tmp_path):
    teacher = _teacher()
    spec = env_spec(RunConfig().env)
    dense_eval = {"mean": 9.0, "std": 0.0, "returns": [9.0, 9.0]}
    cfg = _cfg(student_prune_rounds=1, rate=0.5)
    lv = S.students(teacher, dense_eval, spec, cfg, tmp_path / "a", log=lambda _: None)
    assert [x.index for x in lv] == [0, 1, 2]
    assert lv[0].nonzero == 4 * 32 + 32 * 32 + 32 * 2
    assert lv[1].nonzero == 4 * 4 + 4 * 4 + 4 * 2 and lv[1].sparsity == 0
    assert lv[2].nonzero == 20 and lv[2].extra["student_hidden"] == [4, 4]
    rec = json.loads((tmp_path / "a" / "level_02" / "eval.json").read_text())
    assert rec["distill_states"] >= 2  # teacher states + the student's own (DAgger)
    again = S.students(teacher, dense_eval, spec, cfg, tmp_path / "b", log=lambda _: None)
    from rl2fpga.safety import load_keras_model

    for i in (1, 2):
        wa = load_keras_model(tmp_path / "a" / P.level_name(i) / "model.keras").get_weights()
        wb = load_keras_model(tmp_path / "b" / P.level_name(i) / "model.keras").get_weights()
        assert all(np.array_equal(a, b) for a, b in zip(wa, wb, strict=True))
    assert again[2].eval_return_mean == lv[2].eval_return_mean


def test_selection_keeps_the_fewest_nonzero_weights_that_keep_the_return():
    lv = [P.Level(0, 0, 0.0, {}, 500, 0, 0, nonzero=4480), P.Level(1, 0, 0.0, {}, 480, 0, 0, nonzero=112),
          P.Level(2, 0, 0.0, {}, 500, 0, 0, nonzero=352), P.Level(3, 1, 0.5, {}, 400, 0, 0.5, nonzero=56)]
    assert P.select_level(lv, 0.95).index == 1
    assert P.select_level(lv, 0.99).index == 2
    levels = [x.to_json() for x in lv]
    sel = PruneSelected(levels[1])
    assert _candidates(levels, sel, 0.95, 2) == [1, 2, 0]
    assert _candidates(levels, sel, 0.95, 1) == [1, 2]


@pytest.mark.parametrize("key,value,needle", [
    ("student_hidden", [], "student_hidden"),
    ("student_hidden", [[8, 0]], "student_hidden"),
    ("student_dagger_rounds", -1, "student_dagger_rounds"),
    ("student_temperature", 0.0, "student_temperature"),
])
def test_bad_student_config_is_one_line_error(key, value, needle):
    cfg = _cfg(**{key: value})
    with pytest.raises(Rl2fpgaError, match=needle):
        validate(cfg)


def test_student_needs_an_mlp():
    cfg = _cfg()
    cfg.train.network = "atari"
    with pytest.raises(Rl2fpgaError, match="train.network"):
        validate(cfg)


def test_student_refuses_image_observations_before_any_work(tmp_path):
    """An imported image policy (train.network is not consulted for imports) under the default
    student method: one line naming the fix, before any episode is played or file written."""
    cfg = _cfg()
    cfg.env.id = "ALE/Breakout-v5"
    spec = env_spec(cfg.env)
    assert spec.obs_shape == (84, 84, 4)
    with pytest.raises(Rl2fpgaError, match="prune.method=gradual") as e:
        S.students(tf.keras.Sequential(), {}, spec, cfg, tmp_path / "prune")
    assert "\n" not in str(e.value) and not (tmp_path / "prune").exists()
