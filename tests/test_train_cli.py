"""Bad training input through the CLI: one-line ``error: ...`` and exit status 2, nothing lost."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rl2fpga.cli import main


@pytest.mark.slow  # starts a fresh interpreter with TF (~10 s)
def test_unknown_env_exits_2_through_console(tmp_path: Path):
    exe = Path(sys.executable).with_name("rl2fpga")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "rl2fpga.cli"]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    p = subprocess.run(
        [*cmd, "train", "--env", "Nope-v0", "--runs-dir", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert p.returncode == 2
    errors = [line for line in p.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "unknown environment id 'Nope-v0'" in errors[0]
    assert "Traceback" not in p.stderr


def _cli_error(capsys, argv: list[str]) -> str:
    rc = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    errors = [line for line in err if line.startswith("error:")]
    assert len(errors) == 1 and err[-1] == errors[0]  # one line, the last thing printed
    assert "Traceback" not in "\n".join(err)
    return errors[0]


def test_dqn_on_continuous_actions(tmp_path: Path, capsys):
    msg = _cli_error(capsys, ["train", "--env", "Pendulum-v1", "--runs-dir", str(tmp_path)])
    assert "DQN needs discrete actions" in msg and "train.algo=sac" in msg


def test_sac_on_discrete_actions(tmp_path: Path, capsys):
    msg = _cli_error(capsys, ["train", "--set", "train.algo=sac", "--runs-dir", str(tmp_path)])
    assert "SAC needs continuous actions" in msg and "train.algo=dqn" in msg


def test_failed_train_keeps_earlier_artifacts(tmp_path: Path, capsys):
    run_dir = tmp_path / "cartpole"
    (run_dir / "train").mkdir(parents=True)
    (run_dir / "train" / "model.keras").write_bytes(b"earlier model")
    _cli_error(capsys, ["train", "--env", "Nope-v0", "--runs-dir", str(tmp_path), "--name", "cartpole"])
    assert (run_dir / "train" / "model.keras").read_bytes() == b"earlier model"
