"""prune / quantize / analyze steps: one-line CLI errors for missing or corrupt inputs, and a
small end-to-end pass (CartPole, no retraining: prune.method=none) through all three."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from run_fixtures import fake_train

from rl2fpga.cli import main
from rl2fpga.config import RunConfig
from rl2fpga.run import Run
from rl2fpga.train.networks import mlp


def _fake_train(run: Run, seed: int = 0) -> None:
    fake_train(run, seed)


def _run(tmp_path, **sets) -> Run:
    cfg = RunConfig()
    cfg.name = "t"
    cfg.quantize.weight_bits, cfg.quantize.threshold = 8, 0.01  # these tests' figures (the default is 4-bit, T=0.02)
    for k, v in sets.items():
        sec, field = k.split("__")
        setattr(getattr(cfg, sec), field, v)
    return Run.create(cfg, runs_dir=tmp_path)


def _cli(args, capsys):
    rc = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    return rc, [line for line in err if line.startswith("error:")]


def test_steps_without_inputs_fail_on_one_line(tmp_path, capsys):
    run = _run(tmp_path)
    for step, missing in (("prune", "train"), ("quantize", "train"), ("analyze", "train")):
        rc, errs = _cli([step, str(run.path)], capsys)
        assert rc == 2 and len(errs) == 1 and "rl2fpga " + missing in errs[0], (step, errs)
    _fake_train(run)
    rc, errs = _cli(["quantize", str(run.path)], capsys)
    assert rc == 2 and len(errs) == 1 and "prune" in errs[0] and "missing" in errs[0]
    rc, errs = _cli(["analyze", str(run.path)], capsys)
    assert rc == 2 and len(errs) == 1 and "prune" in errs[0]


def test_corrupt_inputs_fail_on_one_line(tmp_path, capsys):
    run = _run(tmp_path)
    _fake_train(run)
    (run.path / "train" / "model.keras").write_bytes(b"garbage")
    rc, errs = _cli(["prune", str(run.path)], capsys)
    assert rc == 2 and len(errs) == 1 and "corrupt" in errs[0]


@pytest.mark.slow
def test_prune_none_quantize_analyze_end_to_end(tmp_path, capsys):
    run = _run(tmp_path, prune__method="none", quantize__qat_steps=50, quantize__calib_episodes=2,
               quantize__delta_episodes=2, analyze__episodes=1, analyze__max_steps=50, quantize__check_states=40)
    _fake_train(run)
    for step in ("prune", "quantize", "analyze"):
        rc, errs = _cli([step, str(run.path)], capsys)
        assert rc == 0 and not errs, (step, errs)
    q = json.loads((run.path / "quantize" / "summary.json").read_text())
    assert q["golden_equals_qkeras_states"] > 0 and q["weight_bits"] == 8
    assert q["threshold_int"][0] == int(np.floor(0.01 * 2 ** (q["input_fmt"]["bits"] - q["input_fmt"]["integer"])))
    a = json.loads((run.path / "analyze" / "summary.json").read_text())
    m = a["multiplications"]
    assert m["dense"] == 4 * 16 + 16 * 16 + 16 * 2
    assert 0 < m["significant_mean"] <= m["dense"] and m["reduction"] == pytest.approx(m["dense"] / m["significant_mean"])
    rnd = a["random_policy"]  # the baseline "learned" is judged against: CartPole under random actions lasts ~22 steps
    assert rnd["episodes"] == run.config().train.eval_episodes and 5 <= rnd["return_mean"] <= 60
    assert (run.path / "analyze" / "fig6_reward_vs_sparsity.png").stat().st_size > 1000
    assert (run.path / "analyze" / "fig8_fraction_vs_sparsity.png").stat().st_size > 1000
    # the golden model the others consume loads back
    from rl2fpga.core.golden import GoldenModel

    gm = GoldenModel.load(run.path / "quantize" / "golden")
    assert gm.thresholds == q["threshold_int"]
    # corrupt golden -> one-line error on analyze
    (run.path / "quantize" / "golden" / "formats.json").write_text("{")
    rc, errs = _cli(["analyze", str(run.path)], capsys)
    assert rc == 2 and len(errs) == 1 and "corrupt" in errs[0]


@pytest.mark.slow
def test_compression_sweep_levels_times_bits(tmp_path, capsys):
    """analyze.sweep_bits: every kept level x width is quantized and played; the best is the
    largest compression among the points that keep the return; sizes count index bits."""
    run = _run(tmp_path, prune__method="none", prune__keep_return_fraction=0.0, quantize__qat_steps=30,
               quantize__calib_episodes=1, quantize__delta_episodes=1, analyze__episodes=1, analyze__max_steps=30,
               quantize__check_states=30, analyze__sweep_bits=[4, 8])
    _fake_train(run)
    for step in ("prune", "quantize", "analyze"):
        rc, errs = _cli([step, str(run.path)], capsys)
        assert rc == 0 and not errs, (step, errs)
    sw = json.loads((run.path / "analyze" / "sweep.json").read_text())
    assert [(r["level"], r["bits"]) for r in sw["rows"]] == [(0, 8), (0, 4)]
    dense_bits = (4 * 16 + 16 + 16 * 16 + 16 + 16 * 2 + 2) * 32  # fp32 weights and biases
    r8, r4 = sw["rows"]
    for r in (r8, r4):
        assert r["dense_fp32_bits"] == dense_bits and r["ratio"] == pytest.approx(dense_bits / r["stored_bits"])
        # index bits counted: the honest ratio is below the values-only one
        assert r["ratio"] < r["ratio_values_only"]
    assert r4["ratio"] > r8["ratio"]
    keeping = [r for r in sw["rows"] if r["keeps"]]
    assert sw["best_ratio"] == max(r["ratio"] for r in keeping)
    a = json.loads((run.path / "analyze" / "summary.json").read_text())
    assert a["compression_sweep"]["best_ratio"] == sw["best_ratio"]
    assert (run.path / "analyze" / "sweep.png").stat().st_size > 1000
    assert "Largest compression" in (run.path / "analyze" / "sweep.md").read_text()


@pytest.mark.slow
def test_cli_subprocess_error_is_one_line(tmp_path):
    run = _run(tmp_path)
    r = subprocess.run([sys.executable, "-m", "rl2fpga.cli", "quantize", str(run.path)], capture_output=True, text=True, timeout=120)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and "tensorflow" not in ln.lower()]
    assert r.returncode == 2 and lines[-1].startswith("error:") and "train" in lines[-1]


@pytest.mark.slow
def test_sac_actor_quantize_and_analyze(tmp_path, capsys):
    """Continuous actions (Pendulum): the golden actor acts through tanh(mean) * scale + offset."""
    from rl2fpga.train.envs import EnvSpec

    run = _run(tmp_path, prune__method="none", quantize__qat_steps=50, quantize__calib_episodes=1,
               quantize__delta_episodes=1, analyze__episodes=1, analyze__max_steps=40, quantize__check_states=40)
    cfg = run.config()
    cfg.env.id = "Pendulum-v1"
    cfg.train.algo = "sac"
    run = Run.create(cfg, path=run.path)
    tf.keras.utils.set_random_seed(0)
    d = run.dir("train")
    mlp(3, 1, [16, 16], name="actor").save(d / "model.keras")
    spec = EnvSpec("Pendulum-v1", (3,), "float32", False, 1, [-2.0], [2.0], False)
    (d / "env.json").write_text(json.dumps(spec.to_dict()))
    (d / "eval.json").write_text(json.dumps({"mean": -1200.0, "std": 1.0, "returns": [-1200.0]}))
    for step in ("prune", "quantize", "analyze"):
        rc, errs = _cli([step, str(run.path)], capsys)
        assert rc == 0 and not errs, (step, errs)
    q = json.loads((run.path / "quantize" / "summary.json").read_text())
    assert q["eval_return_mean"] < 0 and q["golden_equals_qkeras_states"] == 40


def test_keeps_return_fraction_for_positive_and_negative_returns():
    from rl2fpga.quantize.level import keeps_return

    assert keeps_return(475.0, 500.0, 0.95) and not keeps_return(474.0, 500.0, 0.95)
    # negative returns (Pendulum): at most 5 % worse
    assert keeps_return(-1050.0, -1000.0, 0.95) and not keeps_return(-1051.0, -1000.0, 0.95)


def test_quantize_level_overrides_the_prune_selection():
    """quantize.level deploys the named prune level alone; null keeps selection + fallback."""
    from rl2fpga.artifacts import PruneSelected
    from rl2fpga.config import QuantizeConfig
    from rl2fpga.errors import Rl2fpgaError
    from rl2fpga.stages.quantize import levels_to_try

    levels = [{"level": i, "sparsity": s, "eval_return_mean": r, "nonzero_weights": n}
              for i, (s, r, n) in enumerate([(0.0, 18.6, 1000), (0.53, 20.1, 470), (0.8, 17.0, 200), (0.9, 16.0, 100)])]
    sel = PruneSelected({"level": 3, "sparsity": 0.9})
    qc = QuantizeConfig(fallback_levels=2)
    assert levels_to_try(levels, sel, qc, 0.95) == [3, 1, 0]  # level 2 lost the return in float: skipped
    assert levels_to_try(levels, sel, QuantizeConfig(level=1, fallback_levels=2), 0.95) == [1]
    with pytest.raises(Rl2fpgaError, match=r"quantize.level=7 is not a prune level.*0, 1, 2, 3"):
        levels_to_try(levels, sel, QuantizeConfig(level=7), 0.95)


def test_quantize_level_missing_is_one_line_error(tmp_path, capsys):
    run = _run(tmp_path, prune__method="none")
    _fake_train(run)
    assert _cli(["prune", str(run.path)], capsys)[0] == 0
    rc, errs = _cli(["quantize", str(run.path), "--set", "quantize.level=2"], capsys)
    assert rc == 2 and len(errs) == 1 and "quantize.level=2" in errs[0] and "use one of 0" in errs[0], errs
    assert not (run.path / "quantize").exists()
    rc, errs = _cli(["quantize", str(run.path), "--set", "quantize.level=-1"], capsys)
    assert rc == 2 and len(errs) == 1 and "quantize.level" in errs[0], errs
