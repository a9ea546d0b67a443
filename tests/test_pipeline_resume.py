"""The pipeline driver: a step killed half-way leaves the earlier steps intact, and
``--from`` that step finishes without redoing them."""

import json
import signal
import subprocess
import sys
import textwrap

import pytest

from rl2fpga import pipeline as steps_mod
from rl2fpga.cli import main
from rl2fpga.config import RunConfig
from rl2fpga.pipeline import run_pipeline
from rl2fpga.run import Run

CALLS: list[str] = []


def _make_step(name):
    def step(run, cfg):
        CALLS.append(name)
        (run.dir(name) / "out.txt").write_text(name)
        if name == "cosim" and getattr(cfg, "_kill", False):
            raise KeyboardInterrupt  # what Ctrl-C / SIGINT raises in the middle of a step

    return step


@pytest.fixture
def fake_steps(monkeypatch):
    table = {n: _make_step(n) for n in steps_mod.STEP_ORDER}
    monkeypatch.setattr(steps_mod, "available_steps", lambda: list(steps_mod.STEP_ORDER))
    monkeypatch.setattr(steps_mod, "get_step", lambda n: table[n])
    CALLS.clear()
    return table


def test_kill_late_step_then_resume_from_it(tmp_path, fake_steps):
    cfg = RunConfig(name="r")
    run = Run.create(cfg, runs_dir=tmp_path)
    cfg._kill = True
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(run, cfg)
    assert CALLS == ["train", "prune", "quantize", "analyze", "hls", "rtl", "cosim"]
    assert all(run.done(n) for n in CALLS[:-1]) and not run.done("cosim")
    marks = {n: (run.path / n / ".done").read_text() for n in CALLS[:-1]}
    CALLS.clear()
    cfg._kill = False
    run_pipeline(run, cfg, start="cosim")
    assert CALLS == ["cosim", "board", "da4ml", "report"]
    assert {n: (run.path / n / ".done").read_text() for n in marks} == marks  # earlier steps untouched
    assert all(run.done(n) for n in steps_mod.STEP_ORDER)


def test_unknown_step_name_is_one_line_error(tmp_path, capsys):
    rc = main(["run", "--runs-dir", str(tmp_path), "--from", "synthesis"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "unknown step 'synthesis'" in err[0]


@pytest.mark.slow
def test_sigint_during_a_real_step_then_resume(tmp_path):
    """A real process interrupted in the report step by SIGINT: exit 130, earlier steps kept;
    rerunning --from report finishes it without touching them."""
    run = Run.create(RunConfig(name="k"), runs_dir=tmp_path)
    for n in ("train", "prune"):
        run.dir(n)
        run.mark_done(n, 1.0)
    before = {n: (run.path / n / ".done").read_text() for n in ("train", "prune")}
    slow_report = textwrap.dedent(f"""
        import signal, sys, time
        # a command started from a background job inherits SIGINT ignored; a user's Ctrl-C is not
        signal.signal(signal.SIGINT, signal.default_int_handler)
        import rl2fpga.stages.report as r
        def slow(run, cfg):
            print("in-step", flush=True)
            time.sleep(3600)  # interrupted by the test's SIGINT
        r.report_step = slow
        from rl2fpga.cli import main
        sys.exit(main(["run", "{run.path}", "--from", "report"]))
    """)
    p = subprocess.Popen([sys.executable, "-c", slow_report], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # wait for the condition (the step is running), however long a loaded machine takes to get
    # there; readline returns "" only if the process ended first
    for line in p.stdout:
        if "in-step" in line:
            break
    else:
        pytest.fail(f"the command ended before the step started: {p.stderr.read()}")
    p.send_signal(signal.SIGINT)
    _, err = p.communicate()  # the interrupted sleep ends the process at once
    assert p.returncode == 130 and "resume with --from" in err
    assert not run.done("report")
    assert main(["run", str(run.path), "--from", "report"]) == 0
    assert run.done("report") and (run.path / "summary.json").exists()
    assert {n: (run.path / n / ".done").read_text() for n in before} == before
    assert json.loads((run.path / "summary.json").read_text())["timings_s"] == {"train": 1.0, "prune": 1.0}


def test_steps_run_with_numpy_blas_on_one_thread(tmp_path, fake_steps):
    """Every step runs with NumPy's BLAS limited to one thread (the golden model's small
    products: a second OpenBLAS thread costs more than it gives), and the limit ends with it."""
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads() -> list[int]:
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    seen: list[list[int]] = []
    fake_steps["prune"] = lambda run, cfg: seen.append(blas_threads())
    cfg = RunConfig(name="r")
    with threadpool_limits(limits=2, user_api="blas"):  # whatever the test session set
        before = blas_threads()
        assert before and max(before) == 2, f"NumPy's BLAS threads: {before}"
        run_pipeline(Run.create(cfg, runs_dir=tmp_path), cfg, start="prune", stop="prune")
        assert blas_threads() == before
    assert seen == [[1] * len(before)]
