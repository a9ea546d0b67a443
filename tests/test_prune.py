"""Pruning: magnitude masks, the cubic schedule, tfmot masks, IMP with rewinding, level files."""

import json

import numpy as np
import pytest
import tensorflow as tf

from rl2fpga.config import RunConfig
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.quantize import prune as P
from rl2fpga.train.networks import mlp


def _model(seed: int = 0) -> tf.keras.Model:
    tf.keras.utils.set_random_seed(seed)
    return mlp(4, 2, [32, 16])


def test_layer_masks_prune_smallest_of_the_alive():
    m = _model()
    masks = None
    for _ in range(1, 11):
        new = P.magnitude_masks(m, 0.2, masks, "layer")
        for la in P.prunable_layers(m):
            w = np.abs(la.get_weights()[0])
            alive_before = masks[la.name] if masks else np.ones(w.shape, bool)
            pruned_now = alive_before & ~new[la.name]
            assert not (new[la.name] & ~alive_before).any()  # nothing comes back
            assert pruned_now.sum() == round(0.2 * alive_before.sum())
            if pruned_now.any() and new[la.name].any():
                assert w[pruned_now].max() <= w[new[la.name]].min()
        masks = new
        # apply: the trained weights of the next round are the masked ones
        P.apply_masks(m, masks)
    total = sum(v.size for v in masks.values())
    alive = sum(int(v.sum()) for v in masks.values())
    assert abs((1 - alive / total) - (1 - 0.8**10)) < 0.01  # 89.3 %
    assert P.measured_sparsity(m)[0] >= 0.89 - 0.01


def test_global_masks_use_one_threshold():
    m = _model(1)
    masks = P.magnitude_masks(m, 0.5, None, "global")
    kept = np.concatenate([np.abs(la.get_weights()[0])[masks[la.name]] for la in P.prunable_layers(m)])
    gone = np.concatenate([np.abs(la.get_weights()[0])[~masks[la.name]] for la in P.prunable_layers(m)])
    assert gone.max() <= kept.min()
    assert abs(gone.size / (gone.size + kept.size) - 0.5) < 0.01
    # per-layer sparsities differ (a global ranking is not a per-layer one)
    per = [1 - masks[n].mean() for n in masks]
    assert max(per) - min(per) > 0.05


def test_output_layer_can_be_kept_dense():
    m = _model()
    masks = P.magnitude_masks(m, 0.5, None, "layer", include_output=False)
    assert "out" not in masks and set(masks) == {"fc1", "fc2"}


def test_bad_rate_and_scope():
    m = _model()
    with pytest.raises(Rl2fpgaError, match="rate"):
        P.magnitude_masks(m, 1.0)
    with pytest.raises(Rl2fpgaError, match="scope"):
        P.magnitude_masks(m, 0.2, scope="nope")


def test_cubic_schedule_matches_formula():
    for n, sf in ((10, 0.9), (7, 0.95)):
        for t in range(n + 1):
            expect = sf - sf * (1 - t / n) ** 3
            assert abs(P.cubic_sparsity(t, n, sf) - expect) < 1e-6


def test_tfmot_masks_hit_the_target_per_layer():
    m = _model(2)
    masks = P.tfmot_masks(m, 0.7)
    for la in P.prunable_layers(m):
        w = np.abs(la.get_weights()[0])
        mk = masks[la.name]
        assert abs((1 - mk.mean()) - 0.7) < 1.5 / w.size + 1e-9
        assert w[~mk].max() <= w[mk].min()


def test_allocated_masks_erk_and_global_for_gradual_pruning():
    m = _model(4)  # kernels 4x32, 32x16, 16x2
    kernels = {la.name: np.abs(la.get_weights()[0]) for la in P.prunable_layers(m)}
    total = sum(w.size for w in kernels.values())
    # erk: the per-layer counts of the ERK densities (worked out here from the formula:
    # density_l = eps * sum(shape_l) / size_l, eps so that the alive weights are 10 % of all)
    raw = {n: sum(w.shape) / w.size for n, w in kernels.items()}
    eps = 0.1 * total / sum(raw[n] * w.size for n, w in kernels.items())
    assert all(eps * r <= 1.0 for r in raw.values())  # no layer capped at this density
    erk = P.allocated_masks(m, {}, 0.9, "erk")
    for n, w in kernels.items():
        assert int(erk[n].sum()) == w.size - int(round((1 - eps * raw[n]) * w.size)), n
        assert w[~erk[n]].max() <= w[erk[n]].min()  # the smallest of each layer went
    # denser where the ERK ratio is larger (the small output layer) than uniform pruning leaves it
    assert erk["out"].mean() > 0.1 > erk[max(kernels, key=lambda n: kernels[n].size)].mean()
    # a further step keeps every pruned weight pruned and reaches the new target
    erk2 = P.allocated_masks(m, erk, 0.95, "erk")
    assert all(not (erk2[n] & ~erk[n]).any() for n in kernels)
    assert abs(sum(int((~a).sum()) for a in erk2.values()) / total - 0.95) < 0.01
    # global: one threshold over every layer, the count exact
    g = P.allocated_masks(m, {}, 0.6, "global")
    assert sum(int((~a).sum()) for a in g.values()) == int(round(0.6 * total))
    alive = np.concatenate([kernels[n][g[n]] for n in kernels])
    dead = np.concatenate([kernels[n][~g[n]] for n in kernels])
    assert dead.max() <= alive.min()
    # uniform: every layer the target
    u = P.allocated_masks(m, {}, 0.5, "uniform")
    assert all(int((~u[n]).sum()) == int(round(0.5 * w.size)) for n, w in kernels.items())
    # the output layer left out: no mask for it
    assert "out" not in P.allocated_masks(m, {}, 0.5, "erk", include_output=False)


def test_select_level_sparsest_that_keeps_return():
    lv = [P.Level(i, i, s, {}, r, 0.0, s) for i, (s, r) in enumerate([(0, 500), (0.2, 480), (0.5, 476), (0.8, 300), (0.9, 490)])]
    assert P.select_level(lv, 0.95).index == 4
    lv[4].eval_return_mean = 100
    assert P.select_level(lv, 0.95).index == 2


def test_imp_rewinds_and_writes_levels(tmp_path):
    cfg = RunConfig()
    cfg.prune.rounds = 3
    trained = _model(0)
    init = _model(1)
    calls = []

    def fake_retrain(model, masks, steps, attempt=0):
        calls.append((model.get_weights(), {k: v.copy() for k, v in masks.items()}, steps))
        return model, {"mean": 100.0 - len(calls), "std": 0.0, "returns": [100.0]}

    pdir = tmp_path / "prune"
    pdir.mkdir()
    levels = P.imp(trained, {"mean": 100.0, "std": 0.0}, init, fake_retrain, cfg, pdir, log=lambda s: None)
    assert [lv.index for lv in levels] == [0, 1, 2, 3]
    for rnd, (weights, masks, steps) in enumerate(calls, start=1):
        assert steps == cfg.prune.retrain_steps
        # rewound: survivors carry the initial weights, pruned ones are exactly zero
        for la, w in zip(init.layers[1:], weights[::2]):
            w0 = la.get_weights()[0]
            mk = masks[la.name]
            assert np.array_equal(w[mk], w0[mk]) and (w[~mk] == 0).all()
        assert abs(levels[rnd].sparsity - (1 - 0.8**rnd)) < 0.01
    sel = P.write_levels(pdir, levels, 0.95, "imp")
    assert sel.index == 3  # 99, 98, 97 all keep >= 95 % of 100: the sparsest wins
    data = json.loads((pdir / "levels.json").read_text())
    assert [d["level"] for d in data["levels"]] == [0, 1, 2, 3]
    model, masks, rec = P.load_level(tmp_path, 3)
    assert rec["level"] == 3 and P.measured_sparsity(model)[0] == pytest.approx(levels[3].sparsity)
    assert set(masks) == {"fc1", "fc2", "out"}


@pytest.mark.parametrize("allocation", ["uniform", "erk"])
def test_gradual_levels_follow_the_allocation(tmp_path, allocation):
    cfg = RunConfig()
    cfg.prune.rounds, cfg.prune.final_sparsity, cfg.prune.allocation = 3, 0.9, allocation
    dense = _model(6)
    seen = []

    def fake_retrain(model, masks, steps, attempt=0):
        seen.append({k: v.copy() for k, v in masks.items()})
        return model, {"mean": 1.0, "std": 0.0, "returns": [1.0]}

    pdir = tmp_path / "prune"
    pdir.mkdir()
    levels = P.gradual(dense, {"mean": 1.0, "std": 0.0}, fake_retrain, cfg, pdir, log=lambda s: None)
    shapes = {la.name: la.get_weights()[0].shape for la in P.prunable_layers(dense)}
    for t, masks in enumerate(seen, start=1):
        target = P.cubic_sparsity(t, 3, 0.9)
        per = P.allocate(shapes, target, allocation)
        for n, mk in masks.items():
            size = int(np.prod(shapes[n]))
            assert abs(int((~mk).sum()) - per[n] * size) <= 1.5, (t, n)  # each layer at its own target
        if t > 1:
            assert all(not (masks[n] & ~seen[t - 2][n]).any() for n in masks)  # never regrown
        assert levels[t].sparsity == pytest.approx(sum(int((~m).sum()) for m in masks.values())
                                                   / sum(m.size for m in masks.values()))
    if allocation == "erk":  # the small output layer stays denser than the target
        assert seen[-1]["out"].mean() > 0.1 + 0.05


def test_gradual_resumes_after_its_last_finished_level(tmp_path):
    cfg = RunConfig()
    cfg.prune.rounds, cfg.prune.final_sparsity, cfg.prune.allocation = 3, 0.9, "erk"
    dense = _model(7)
    dense_eval = {"mean": 1.0, "std": 0.0}
    partial = tmp_path / ".prune.partial"
    calls = []

    def retrain(model, masks, steps, attempt=0):  # changes the weights, so levels differ
        calls.append(len(calls))
        out = tf.keras.models.clone_model(model)
        out.set_weights([w * 0.5 if w.ndim > 1 else w + 1.0 for w in model.get_weights()])
        P.apply_masks(out, masks)
        return out, {"mean": 10.0 - len(calls), "std": 0.5, "returns": [1.0]}

    def killed_at_third(model, masks, steps, attempt=0):
        if len(calls) == 2:
            raise KeyboardInterrupt  # as a kill part-way through the step
        return retrain(model, masks, steps, attempt)

    (tmp_path / "a").mkdir()
    with pytest.raises(KeyboardInterrupt):
        P.gradual(dense, dense_eval, killed_at_third, cfg, tmp_path / "a", log=lambda s: None, partial=partial)
    assert calls == [0, 1] and (partial / "partial.json").is_file()
    # started again with the same inputs: levels 1 and 2 come from the partial folder
    (tmp_path / "b").mkdir()
    resumed = P.gradual(dense, dense_eval, retrain, cfg, tmp_path / "b", log=lambda s: None, partial=partial)
    assert calls == [0, 1, 2]
    # the same levels as a run never killed
    calls.clear()
    (tmp_path / "c").mkdir()
    whole = P.gradual(dense, dense_eval, retrain, cfg, tmp_path / "c", log=lambda s: None)
    assert calls == [0, 1, 2]
    assert [lv.to_json() for lv in resumed] == [lv.to_json() for lv in whole]
    for t in (1, 2, 3):
        wb = np.load(tmp_path / "b" / P.level_name(t) / "masks.npz")
        wc = np.load(tmp_path / "c" / P.level_name(t) / "masks.npz")
        assert all(np.array_equal(wb[k], wc[k]) for k in wc.files)
        kb, kc = (tf.keras.models.load_model(tmp_path / x / P.level_name(t) / "model.keras").get_weights() for x in "bc")
        assert all(np.array_equal(u, v) for u, v in zip(kb, kc))
    # other inputs (a changed schedule): the partial levels are not used, and are replaced
    cfg.prune.final_sparsity = 0.8
    calls.clear()
    (tmp_path / "d").mkdir()
    P.gradual(dense, dense_eval, retrain, cfg, tmp_path / "d", log=lambda s: None, partial=partial)
    assert calls == [0, 1, 2]
    # a corrupt level file: that level and the ones after it are computed again
    (partial / P.level_name(2) / "masks.npz").write_bytes(b"not a zip")
    calls.clear()
    (tmp_path / "e").mkdir()
    P.gradual(dense, dense_eval, retrain, cfg, tmp_path / "e", log=lambda s: None, partial=partial)
    assert calls == [0, 1]
    # masks of another shape (an edited folder): recomputed, not a numpy error
    np.savez(partial / P.level_name(1) / "masks.npz", fc1=np.ones((3, 3), bool), fc2=np.ones((2, 2), bool), out=np.ones((1, 1), bool))
    calls.clear()
    (tmp_path / "f").mkdir()
    P.gradual(dense, dense_eval, retrain, cfg, tmp_path / "f", log=lambda s: None, partial=partial)
    assert calls == [0, 1, 2]


def test_load_level_errors(tmp_path):
    (tmp_path / "prune").mkdir()
    with pytest.raises(Rl2fpgaError, match="missing"):
        P.load_level(tmp_path)
    (tmp_path / "prune" / "levels.json").write_text("{not json")
    with pytest.raises(Rl2fpgaError, match="corrupt"):
        P.load_level(tmp_path, 0)


def test_finetune_config_learns_within_short_calls():
    cfg = RunConfig()
    cfg.train.dqn.learning_starts = 10_000
    c = P.finetune_config(cfg, 5000)
    assert c.train.dqn.learning_starts == 500 < 5000
    assert c.train.dqn.exploration_initial_eps == cfg.train.dqn.exploration_final_eps
    assert cfg.train.dqn.learning_starts == 10_000  # the run's config is untouched


def test_imp_retries_a_failed_round_and_keeps_the_better(tmp_path):
    cfg = RunConfig()
    cfg.prune.rounds = 1
    cfg.prune.retrain_retries = 1
    attempts = []

    def fake_retrain(model, masks, steps, attempt=0):
        attempts.append(attempt)
        return model, {"mean": [10.0, 60.0][attempt], "std": 0.0}

    levels = P.imp(_model(0), {"mean": 100.0, "std": 0.0}, _model(1), fake_retrain, cfg, tmp_path, log=lambda s: None)
    assert attempts == [0, 1] and levels[1].eval_return_mean == 60.0


def test_distill_pulls_a_float_pruned_student_to_the_teacher_and_keeps_zeros():
    """prune.finetune=distill runs the QAT distillation loop on a float (not QKeras) student."""
    from rl2fpga.quantize.quantizer import distill

    tf.keras.utils.set_random_seed(3)
    teacher = mlp(4, 2, [32, 32], name="q_network")
    masks = P.magnitude_masks(teacher, 0.6, None, "layer", True)
    student = tf.keras.models.clone_model(teacher)
    student.set_weights(teacher.get_weights())
    P.apply_masks(student, masks)
    x = np.random.default_rng(0).normal(size=(512, 4)).astype(np.float32)

    def err() -> float:
        return float(np.mean((np.asarray(student(x)) - np.asarray(teacher(x))) ** 2))

    before = err()
    distill(student, teacher, x, masks, steps=300, seed=0, lr=1e-3)
    assert err() < 0.5 * before
    for name, m in masks.items():
        assert not np.asarray(student.get_layer(name).kernel)[~m].any(), name


def test_partial_key_ignores_eval_workers_only():
    """env.eval_workers plays the same episodes in more processes: finished levels stay valid."""
    dense, ev = _model(7), {"mean": 1.0, "std": 0.0}
    cfg = RunConfig()
    key = P.partial_key(cfg, dense, ev)
    cfg.env.eval_workers = 2
    assert P.partial_key(cfg, dense, ev) == key
    cfg.env.sticky_actions = 0.0
    assert P.partial_key(cfg, dense, ev) != key
