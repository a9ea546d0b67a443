"""Attacks on run folders, configs and concurrent commands (issue 14). Each test plays one
attack and checks the tool refuses it on one line (exit 2) and that nothing ran or was lost:
payloads touch a marker file, which must never appear."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from run_fixtures import fake_train

import rl2fpga
from rl2fpga.cli import main
from rl2fpga.config import RunConfig
from rl2fpga.core.golden import Fmt, random_model
from rl2fpga.run import Run
from rl2fpga.train.networks import mlp

PKG_ROOT = Path(rl2fpga.__file__).resolve().parent.parent  # where the rl2fpga under test is imported from


def _errors(capsys: pytest.CaptureFixture) -> list[str]:
    return [line for line in capsys.readouterr().err.strip().splitlines() if line.startswith("error:")]


def _one_error(rc: int, capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2, err
    errs = [line for line in err if line.startswith("error:")]
    assert len(errs) == 1, err
    return errs[0]


def _fake_train(run: Run) -> None:
    fake_train(run, mark_done=True)


def _lambda_model(marker: Path) -> tf.keras.Model:
    """A model whose Lambda layer creates ``marker`` whenever its code runs (at load time the
    functional API calls it to rebuild the graph)."""
    path = str(marker)
    inp = tf.keras.Input(shape=(4,), name="obs")
    x = tf.keras.layers.Dense(16, activation="relu", name="fc1")(inp)
    x = tf.keras.layers.Lambda(lambda t: (open(path, "w").close(), t)[1], name="payload")(x)  # noqa: SIM115
    return tf.keras.Model(inp, tf.keras.layers.Dense(2, name="out")(x), name="q_network")


def _save_h5(marker: Path, dest: Path) -> None:
    tmp = dest.with_name("payload_tmp.h5")
    _lambda_model(marker).save(tmp, save_format="h5")
    os.replace(tmp, dest)
    marker.unlink()  # building the model ran the payload once (so it works): start clean


def _golden_run(tmp_path: Path, name: str = "g") -> Run:
    """A run whose quantize step is done (a small random golden MLP)."""
    run = Run.create(RunConfig(name=name), runs_dir=tmp_path / "runs")
    _fake_train(run)
    rng = np.random.default_rng(0)
    gm = random_model(rng, (4,), [("dense", 16), ("dense", 2)], sparsity=0.5, in_fmt=Fmt(8, 3, True), threshold=1)
    gm.save(run.dir("quantize") / "golden")
    run.mark_done("quantize", 1.0)
    return run


# ---------------------------------------------------------------- nothing from a run executes


def test_hdf5_disguised_as_keras_with_lambda_never_runs(tmp_path, capsys):
    """train/model.keras that is really HDF5 (tf-keras would read it as HDF5, where safe_mode
    does not apply) with a Lambda layer: `rl2fpga prune` must refuse it unread."""
    marker = tmp_path / "MARKER"
    run = Run.create(RunConfig(name="h5k"), runs_dir=tmp_path / "runs")
    _fake_train(run)
    _save_h5(marker, run.path / "train" / "model.keras")
    assert not marker.exists()
    rc = main(["prune", str(run.path)])
    assert not marker.exists()
    err = _one_error(rc, capsys)
    assert "model.keras" in err and "zip" in err


def test_qmodel_h5_with_lambda_never_runs(tmp_path, capsys):
    """quantize/qmodel.h5 with a Lambda layer: `rl2fpga hls` refuses it before deserialising."""
    marker = tmp_path / "MARKER"
    run = _golden_run(tmp_path)
    _save_h5(marker, run.path / "quantize" / "qmodel.h5")
    assert not marker.exists()
    rc = main(["hls", str(run.path)])
    assert not marker.exists()
    err = _one_error(rc, capsys)
    assert "qmodel.h5" in err and "Lambda" in err


def test_h5_with_unknown_class_refused(tmp_path):
    from rl2fpga.errors import Rl2fpgaError
    from rl2fpga.safety import load_keras_model

    m = mlp(4, 2, [8], name="p")
    p = tmp_path / "m.h5"
    m.save(p, save_format="h5")
    import h5py

    with h5py.File(p, "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        cfg["config"]["layers"][1]["class_name"] = "EvilLayer"
        f.attrs["model_config"] = json.dumps(cfg)
    with pytest.raises(Rl2fpgaError, match="unknown class 'EvilLayer'"):
        load_keras_model(p)


def test_zip_keras_importing_a_module_never_runs(tmp_path, capsys, monkeypatch):
    """A zip .keras whose config.json names a module: tf-keras imports it even with safe_mode.
    The module is importable here (as `python -m` makes the current folder importable)."""
    marker = tmp_path / "MARKER"
    mod = f"evil_{os.getpid()}_zip"
    (tmp_path / f"{mod}.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    run = Run.create(RunConfig(name="zipk"), runs_dir=tmp_path / "runs")
    _fake_train(run)
    path = run.path / "train" / "model.keras"
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    cfg = json.loads(members["config.json"])
    cfg.update(module=mod, class_name="Evil", registered_name="Evil")
    members["config.json"] = json.dumps(cfg).encode()
    with zipfile.ZipFile(path, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
    rc = main(["prune", str(run.path)])
    assert not marker.exists() and mod not in sys.modules
    err = _one_error(rc, capsys)
    assert "model.keras" in err and mod in err


@pytest.mark.parametrize("env_id", ["{mod}:Evil-v0", "nosuchmod_{pid}:Foo-v0"])
def test_module_env_id_never_imported(tmp_path, env_id):
    """env.id `module:Env` made gymnasium import `module` from the current folder."""
    marker = tmp_path / "MARKER"
    mod = f"evil_{os.getpid()}_env"
    (tmp_path / f"{mod}.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    env_id = env_id.format(mod=mod, pid=os.getpid())
    r = subprocess.run([sys.executable, "-m", "rl2fpga.cli", "train", "--runs-dir", str(tmp_path / "runs"),
                        "--set", f"env.id={env_id}", "--steps", "10"],
                       cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(PKG_ROOT)})
    lines = r.stderr.strip().splitlines()
    assert not marker.exists()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:") and "env.id" in lines[0], r.stderr
    assert not marker.exists()
    assert not (tmp_path / "runs").exists()  # nothing written for a refused config


# ----------------------------------------------------------------------- names, overwrites


@pytest.mark.parametrize("how", ["absolute", "dotdot", "slash"])
def test_run_name_must_be_plain(tmp_path, capsys, how):
    victim = tmp_path / "victim"
    (victim / "train").mkdir(parents=True)
    (victim / "train" / "keep.txt").write_text("precious")
    name = {"absolute": str(victim), "dotdot": "../victim", "slash": "a/../../victim"}[how]
    runs = tmp_path / "runs"
    err = _one_error(main(["train", "--runs-dir", str(runs), "--set", f"name={name}", "--steps", "10"]), capsys)
    assert "plain name" in err
    assert (victim / "train" / "keep.txt").read_text() == "precious"
    assert sorted(p.name for p in victim.iterdir()) == ["train"]
    err = _one_error(main(["run", "--runs-dir", str(runs), "--name", name, "--to", "train"]), capsys)
    assert "plain name" in err
    assert sorted(p.name for p in victim.iterdir()) == ["train"] and not runs.exists()


def test_name_of_a_finished_run_needs_force(tmp_path, capsys):
    runs = tmp_path / "runs"
    run = Run.create(RunConfig(name="done"), runs_dir=runs)
    _fake_train(run)
    before = (run.path / "train" / "model.keras").read_bytes()
    cfg_before = (run.path / "config.yaml").read_text()
    for argv in (["run", "--runs-dir", str(runs), "--name", "done", "--set", "train.total_steps=50", "--to", "train"],
                 ["train", "--runs-dir", str(runs), "--name", "done", "--steps", "50"]):
        err = _one_error(main(argv), capsys)
        assert "--force" in err and "already holds a finished run" in err
        assert (run.path / "train" / "model.keras").read_bytes() == before
        assert (run.path / "config.yaml").read_text() == cfg_before
        assert run.done("train")


# ------------------------------------------------------------------- validation before writes


@pytest.mark.parametrize("argv_tail, needle", [
    (["quantize", "{run}", "--bits", "40"], "quantize.weight_bits"),
    (["rtl", "{run}", "--lanes=65"], "rtl.lanes"),
    (["rtl", "{run}", "--set", "rtl.layer_lanes=[4, 0]"], "rtl.layer_lanes[1]"),
    (["rtl", "{run}", "--set", "rtl.layer_lanes=[4, 4, 4, 4, 4, 4, 4, 4, 4]"], "rtl.layer_lanes has 9 entries for"),
    (["run", "{run}", "--set", "quantize.weight_bits=6", "--from", "bogus"], "unknown step 'bogus'"),
    (["run", "{run}", "--from", "rtl", "--to", "quantize"], "comes after"),
    (["train", "--runs-dir", "{runs}", "--name", "g", "--steps", "-5"], "train.total_steps"),
    (["quantize", "{run}", "--set", "quantize.output_bits=0"], "quantize.output_bits"),
])
def test_failed_override_changes_nothing(tmp_path, capsys, argv_tail, needle):
    run = _golden_run(tmp_path)
    files = {p: p.read_bytes() for p in run.path.rglob("*") if p.is_file()}
    argv = [a.format(run=run.path, runs=run.path.parent) for a in argv_tail]
    err = _one_error(main(argv), capsys)
    assert needle in err
    assert {p: p.read_bytes() for p in run.path.rglob("*") if p.is_file() and p.name != ".lock"} == files
    assert run.done("quantize") and run.done("train")


def test_binary_config_is_one_line(tmp_path, capsys):
    p = tmp_path / "bin.yaml"
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    err = _one_error(main(["run", str(p), "--runs-dir", str(tmp_path / "runs")]), capsys)
    assert "bin.yaml" in err and "binary" in err
    run = _golden_run(tmp_path)
    (run.path / "config.yaml").write_bytes(b"name: g\n\xff\xfe\xfa")
    err = _one_error(main(["rtl", str(run.path)]), capsys)
    assert "config.yaml" in err and "UTF-8" in err


@pytest.mark.parametrize("damage", ["empty", "truncated"])
def test_bad_npz_is_one_line(tmp_path, capsys, damage):
    run = _golden_run(tmp_path)
    wz = run.path / "quantize" / "golden" / "weights.npz"
    data = wz.read_bytes()
    wz.write_bytes(b"" if damage == "empty" else data[: len(data) // 2])
    err = _one_error(main(["rtl", str(run.path), "--set", "rtl.synth=false"]), capsys)
    assert "weights.npz" in err and ("corrupt" in err or "truncated" in err)


# ----------------------------------------------------------------------- concurrent commands


def test_second_command_on_a_busy_run_is_refused(tmp_path, capsys):
    run = _golden_run(tmp_path)
    (run.path / "rtl").mkdir()
    busy = textwrap.dedent(f"""
        import sys, time
        import rl2fpga.stages.report as r
        def slow(run, cfg):
            print("in-step", flush=True)
            sys.stdin.read()  # until the test closes stdin
        r.report_step = slow
        from rl2fpga.cli import main
        sys.exit(main(["report", {str(run.path)!r}]))
    """)
    p = subprocess.Popen([sys.executable, "-c", busy], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(PKG_ROOT)})
    try:
        assert "in-step" in p.stdout.readline()  # blocks until the step runs (or the process ends)
        cfg_before = (run.path / "config.yaml").read_bytes()
        err = _one_error(main(["rtl", str(run.path), "--lanes", "1"]), capsys)
        assert f"in use by pid {p.pid}" in err and "report" in err
        assert (run.path / "config.yaml").read_bytes() == cfg_before
        assert not (run.path / "rtl" / "design.json").exists()
    finally:
        p.stdin.close()
        p.wait()
    assert p.returncode == 0
    assert main(["report", str(run.path)]) == 0  # the lock is free again


# --------------------------------------------------------------------------- stale results


def test_rerunning_a_step_invalidates_later_results(tmp_path, monkeypatch):
    """After quantize is rerun, the report must not show the old cosim/board results."""
    from rl2fpga import pipeline as steps_mod
    from rl2fpga.pipeline import run_pipeline
    from rl2fpga.report import build_summary

    def fake(name):
        def step(run, cfg):
            d = run.dir(name)
            (d / "out.txt").write_text(f"{name} {cfg.quantize.weight_bits}")
            if name == "cosim":
                (d / "summary.json").write_text(json.dumps({"frames": 200, "mismatches": 0}))
            if name == "board":
                (d / "summary.json").write_text(json.dumps({"target": "emulator", "engine": "verilator",
                                                             "steps": 99, "action_mismatches": 0}))
        return step

    table = {n: fake(n) for n in steps_mod.STEP_ORDER if n != "report"}
    monkeypatch.setattr(steps_mod, "available_steps", lambda: list(table))
    monkeypatch.setattr(steps_mod, "get_step", lambda n: table[n])
    cfg = RunConfig(name="st")
    run = Run.create(cfg, runs_dir=tmp_path)
    run_pipeline(run, cfg, stop="board")
    s = build_summary(run, cfg)
    assert s["rtl"]["cosim_frames"] == 200 and s["board"]["steps"] == 99
    cosim_done = (run.path / "cosim" / ".done").read_text()
    cosim_summary = (run.path / "cosim" / "summary.json").read_text()

    cfg.quantize.weight_bits = 4
    run_pipeline(run, cfg, start="quantize", stop="quantize")
    for later in ("analyze", "hls", "rtl", "cosim", "board"):
        assert not run.done(later), later
    s = build_summary(run, cfg)
    assert s["rtl"]["cosim_frames"] is None and s["board"]["steps"] is None

    # markers copied back by hand still do not make the old results current
    (run.path / "cosim" / ".done").write_text(cosim_done)
    (run.path / "cosim" / "summary.json").write_text(cosim_summary)
    s = build_summary(run, cfg)
    assert s["rtl"]["cosim_frames"] is None
