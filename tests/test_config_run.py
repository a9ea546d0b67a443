"""Config schema, run directories and CLI error handling."""

import subprocess
import sys

import pytest

from rl2fpga.cli import main
from rl2fpga.config import RunConfig, apply_overrides, describe, dump_yaml, load_config
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.fsutil import atomic_dir, atomic_write_text
from rl2fpga.run import Run


def test_yaml_roundtrip(tmp_path):
    cfg = apply_overrides(RunConfig(), ["train.total_steps=123", "prune.rounds=3", "analyze.thresholds=[0.1, 0.2]"])
    p = tmp_path / "c.yaml"
    p.write_text(dump_yaml(cfg))
    back = load_config(p)
    assert back == cfg
    assert back.train.total_steps == 123 and back.analyze.thresholds == [0.1, 0.2]


def test_every_field_documented():
    missing = [k for k, _, doc in describe() if not doc]
    assert missing == []


@pytest.mark.parametrize(
    "text, needle",
    [
        ("train: {total_steps: [1, 2]}", "must be an integer"),
        ("train: {algo: ppo}", "must be one of"),
        ("trian: {}", "unknown config key 'trian'"),
        ("train: {total_steps: 5", "not valid YAML"),
        ("- 1\n- 2\n", "must be a YAML mapping"),
    ],
)
def test_bad_config(tmp_path, text, needle):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(Rl2fpgaError, match=needle):
        load_config(p)


def test_cli_corrupt_config_one_line(tmp_path, capsys):
    p = tmp_path / "bad.yaml"
    p.write_text("train: {total_steps: 5")
    rc = main(["run", str(p), "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error:") and "YAML" in err[0]


def test_cli_unwritable_output(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")  # a file where a directory must go: not writable as a folder
    rc = main(["train", "--runs-dir", str(blocker / "sub"), "--steps", "10"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "cannot write the run directory" in err[0]


def test_cli_missing_run_dir(tmp_path, capsys):
    rc = main(["prune", str(tmp_path / "nope")])
    assert rc == 2 and "not a run directory" in capsys.readouterr().err


def test_console_script_exit_code(tmp_path):
    r = subprocess.run([sys.executable, "-m", "rl2fpga.cli", "run", str(tmp_path / "missing.yaml")], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "not found" in r.stderr


def test_atomic_write_keeps_old_on_failure(tmp_path):
    p = tmp_path / "a.txt"
    atomic_write_text(p, "old")
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "d") as d:
        (d / "x").write_text("half")
        raise RuntimeError("boom")
    assert p.read_text() == "old" and not (tmp_path / "d").exists()
    assert [q.name for q in tmp_path.iterdir() if q.name.startswith(".")] == []


def test_run_create_and_require(tmp_path):
    run = Run.create(RunConfig(name="x"), runs_dir=tmp_path)
    assert (run.path / "config.yaml").exists()
    with pytest.raises(Rl2fpgaError, match="has not finished"):
        run.require("train")
    run.dir("train")
    run.mark_done("train", 1.5)
    assert run.require("train").name == "train" and run.timings() == {"train": 1.5}


def test_shipped_configs_load():
    from pathlib import Path

    files = sorted(Path(__file__).parent.parent.joinpath("configs").glob("*.yaml"))
    assert len(files) >= 2
    for f in files:
        cfg = load_config(f)
        assert cfg.name and cfg.env.id
