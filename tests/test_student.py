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


def _const_model(value: float, n_out: int = 2) -> tf.keras.Model:
    """A 3-input Dense model whose every output is ``value`` (zero kernel)."""
    m = mlp(3, n_out, [2])
    w = m.get_weights()
    m.set_weights([np.zeros_like(a) for a in w[:-1]] + [np.full_like(w[-1], value)])
    return m


def test_action_loss_judges_actions_not_saturated_means():
    """squash=True (SAC students' action loss) compares tanh of the means: a student whose mean is
    20 where the teacher's is 10 takes the same action (~0 error); the plain loss sees 100 / 100."""
    x = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    from rl2fpga.quantize.quantizer import distill

    plain = distill(_const_model(20.0), _const_model(10.0), x, {}, 1, 0, lr=0.0)
    squashed = distill(_const_model(20.0), _const_model(10.0), x, {}, 1, 0, lr=0.0, squash=True)
    assert plain[0] == pytest.approx(1.0, rel=1e-3)
    assert squashed[0] < 1e-6
    # unsaturated means: both losses see the difference
    assert distill(_const_model(0.5), _const_model(0.0), x, {}, 1, 0, lr=0.0, squash=True)[0] > 0.1


def test_best_round_is_kept_on_validation_returns():
    m = _teacher()
    scores = iter([1.0, 5.0, 3.0])
    logs: list[str] = []
    best = S._Best(m, lambda: next(scores), logs.append)  # round 0 scores 1
    m.set_weights([w + 1 for w in m.get_weights()])
    best.offer(1)  # 5: the best
    kept = [w.copy() for w in m.get_weights()]
    m.set_weights([w + 1 for w in m.get_weights()])
    best.offer(2)  # 3
    best.restore()
    assert best.round == 1 and all(np.array_equal(a, b) for a, b in zip(m.get_weights(), kept, strict=True))
    assert "kept round 1" in logs[-1]
    # off (no score): the last round's weights stay
    last = [w.copy() for w in m.get_weights()]
    off = S._Best(m, None, logs.append)
    m.set_weights([w + 1 for w in m.get_weights()])
    off.offer(1)
    off.restore()
    assert not all(np.array_equal(a, b) for a, b in zip(m.get_weights(), last, strict=True))


def test_negative_select_episodes_is_one_line_error():
    with pytest.raises(Rl2fpgaError, match="student_select_episodes"):
        validate(_cfg(student_select_episodes=-1))


def test_visit_noise_is_seeded_bounded_and_off_for_discrete_actions():
    from rl2fpga.config import EnvConfig

    spec = env_spec(EnvConfig(id="Pendulum-v1"))  # actions in [-2, 2]: half-range 2
    clean = lambda obs: np.array([1.9], np.float32)  # noqa: E731
    a = [S._noisy(clean, spec, 0.1, 7)(None) for _ in range(1)]
    pol1, pol2 = S._noisy(clean, spec, 0.1, 7), S._noisy(clean, spec, 0.1, 7)
    x1 = np.array([pol1(None)[0] for _ in range(2000)])
    x2 = np.array([pol2(None)[0] for _ in range(2000)])
    assert np.array_equal(x1, x2) and a[0].shape == (1,)  # same seed, same noise
    assert x1.max() <= 2.0 and (x1 == 2.0).any()  # clipped to the bound the noise crosses
    mid = S._noisy(lambda obs: np.array([0.0], np.float32), spec, 0.1, 8)
    x0 = np.array([mid(None)[0] for _ in range(2000)])
    assert abs(np.std(x0) - 0.2) < 0.02 and abs(np.mean(x0)) < 0.02  # std 0.1 x half-range 2, unbiased
    assert S._noisy(clean, spec, 0.0, 7) is clean
    cart = env_spec(EnvConfig(id="CartPole-v1"))
    assert S._noisy(clean, cart, 0.3, 7) is clean  # discrete actions: never
    cfg = RunConfig()
    cfg.prune.student_visit_noise = -0.1
    with pytest.raises(Rl2fpgaError, match="student_visit_noise"):
        validate(cfg)
