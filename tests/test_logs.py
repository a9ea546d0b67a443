"""Logs that read well in a file: run.log beside the run, no progress-bar redraws, no wrapping."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from rl2fpga.config import RunConfig
from rl2fpga.logs import Tee, run_log
from rl2fpga.pipeline import run_pipeline
from rl2fpga.run import Run


def test_run_pipeline_writes_run_log(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = Run.create(RunConfig(name="logged"), runs_dir=tmp_path)
    run_pipeline(run, run.config(), start="report", stop="report")
    log = (run.path / "run.log").read_text()
    assert "done report" in log
    assert log.startswith("=== ")
    assert "done report" in capsys.readouterr().err  # the console still gets it


def test_tee_skips_redraws_and_keeps_tty_answer(tmp_path: Path) -> None:
    class FakeTTY(io.StringIO):
        def isatty(self) -> bool:
            return True

    console, log = FakeTTY(), io.StringIO()
    t = Tee(console, log)
    t.write("line one\n")
    t.write("\r 45%|####      | 45/100")
    t.write("line two\n")
    assert t.isatty()
    assert console.getvalue().count("45%") == 1
    assert log.getvalue() == "line one\nline two\n"


def test_run_log_records_an_error_and_restores_streams(tmp_path: Path) -> None:
    out, err = sys.stdout, sys.stderr
    with pytest.raises(ValueError), run_log(tmp_path):
        print("before the failure")
        raise ValueError("bad thing")
    assert sys.stdout is out and sys.stderr is err
    text = (tmp_path / "run.log").read_text()
    assert "before the failure" in text and "error: ValueError: bad thing" in text


def test_progress_bar_is_off_without_a_terminal() -> None:
    from rl2fpga.train.training import progress_bar

    assert not sys.stderr.isatty()  # pytest captures stderr
    bar = progress_bar(100, True, "x")
    assert bar.disable
    bar.close()


def test_rich_does_not_wrap_at_80_columns_in_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    monkeypatch.delenv("COLUMNS", raising=False)
    line = "cosim: 200 frames bit-exact; median 142 cycles (0.1268 of dense, 2.51x the bound) " + "x" * 200
    with run_log(tmp_path):
        Console(stderr=True).print(line)
    logged = (tmp_path / "run.log").read_text()
    assert line in logged
