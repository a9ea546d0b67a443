"""Attacks that go through the simulators and external tools (issue 14): edited generated RTL,
truncated cached builds, run paths with spaces, missing tools, saturated inputs. Payloads touch
a marker file, which must never appear."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from board_models import balancer

import rl2fpga
from rl2fpga.cli import main
from rl2fpga.config import RunConfig, apply_overrides
from rl2fpga.core.golden import Fmt, random_model
from rl2fpga.run import Run

PKG_ROOT = Path(rl2fpga.__file__).resolve().parent.parent
needs_verilator = pytest.mark.skipif(shutil.which("verilator") is None, reason="verilator is not on PATH")


def _errors(rc: int, capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2, err
    errs = [line for line in err if line.startswith("error:")]
    assert len(errs) == 1, err
    return errs[0]


def _run(path: Path, sets: list[str] | None = None, model=None) -> Run:
    """A run whose quantize step is done (a small random golden MLP for CartPole)."""
    cfg = apply_overrides(RunConfig(name="s"), ["rtl.synth=false", "rtl.input_bytes_per_beat=4", "cosim.frames=30",
                                                *(sets or [])])
    run = Run.create(cfg, path=path)
    g = model or random_model(np.random.default_rng(0), (4,), [("dense", 16), ("dense", 2)], sparsity=0.7,
                              in_fmt=Fmt(16, 5, True), threshold=3)
    g.save(run.dir("quantize") / "golden")
    run.mark_done("quantize", 0.0)
    return run


def _cli(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    """The command in its own process (a crash there, e.g. a bus error, fails the test only);
    ``cwd`` outside the repository, so that `-m` imports the rl2fpga under test."""
    return subprocess.run([sys.executable, "-m", "rl2fpga.cli", *argv], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(PKG_ROOT), "OBJCACHE": "ccache"})


# ------------------------------------------------------------------------ generated RTL


@pytest.mark.verilator
@pytest.mark.slow
@needs_verilator
def test_system_call_added_to_generated_sv_never_runs(tmp_path, capsys):
    marker = tmp_path / "MARKER"
    run = _run(tmp_path / "run")
    assert main(["rtl", str(run.path)]) == 0
    top = run.path / "rtl" / "rl2fpga_engine_top.sv"
    text = top.read_text()
    cut = text.rindex("endmodule")
    top.write_text(text[:cut] + f'  initial begin $system("touch {marker}"); end\n' + text[cut:])
    rc = main(["cosim", str(run.path)])
    assert not marker.exists()
    err = _errors(rc, capsys)
    assert "rl2fpga_engine_top.sv" in err and "edited" in err
    assert not run.done("cosim")


@pytest.mark.verilator
@pytest.mark.slow
@needs_verilator
def test_cosim_in_a_run_path_with_spaces(tmp_path, capsys):
    run = _run(tmp_path / "my runs" / "run one")
    assert main(["rtl", str(run.path)]) == 0
    capsys.readouterr()
    assert main(["cosim", str(run.path)]) == 0, capsys.readouterr().err
    s = json.loads((run.path / "cosim" / "summary.json").read_text())
    assert s["frames"] == 30 and s["mismatches"] == 0


@pytest.mark.verilator
@pytest.mark.slow
@needs_verilator
def test_truncated_cached_simulation_binary_is_rebuilt(tmp_path):
    run = _run(tmp_path / "run")
    r = _cli("rtl", str(run.path), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = _cli("cosim", str(run.path), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    first = json.loads((run.path / "cosim" / "frames.json").read_text())
    binary = run.path / "cosim" / "obj" / "rl2fpga_engine_sim"
    data = binary.read_bytes()
    binary.write_bytes(data[: len(data) // 3])
    r = _cli("cosim", str(run.path), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert binary.stat().st_size == len(data) or binary.read_bytes()[:4] == b"\x7fELF"
    assert json.loads((run.path / "cosim" / "frames.json").read_text()) == first


@pytest.mark.verilator
@pytest.mark.slow
@needs_verilator
def test_truncated_cached_board_library_is_rebuilt(tmp_path):
    """The board's Verilator model (.so, loaded with ctypes): truncated, it gave a bus error on
    every rerun; now it is rebuilt and the closed loop matches the golden policy again."""
    run = _run(tmp_path / "run", ["board.emulator_engine=verilator", "board.max_steps=60", "rtl.input_bytes_per_beat=8"],
               model=balancer())
    assert _cli("rtl", str(run.path), cwd=tmp_path).returncode == 0
    r = _cli("board", str(run.path), "--target", "emulator", "--episodes", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    libs = list((run.path / "board" / "verilator").glob("*/lib*.so"))
    assert len(libs) == 1
    size = libs[0].stat().st_size
    libs[0].write_bytes(libs[0].read_bytes()[:4096])
    r = _cli("board", str(run.path), "--target", "emulator", "--episodes", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert libs[0].stat().st_size == size
    s = json.loads((run.path / "board" / "summary.json").read_text())
    assert s["engine"] == "verilator" and s["hardware_check"] is True and s["action_mismatches"] == 0


# -------------------------------------------------------------------------- missing tools


def test_board_without_verilator_is_an_error_not_golden_vs_golden(tmp_path, capsys, monkeypatch):
    run = _run(tmp_path / "run", ["board.max_steps=20"], model=balancer())
    (run.path / "rtl").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    rc = main(["board", str(run.path), "--target", "emulator", "--episodes", "1"])
    err = _errors(rc, capsys)
    assert "verilator" in err and "board.emulator_engine=golden" in err
    assert not (run.path / "board" / "summary.json").exists()
    # turned off explicitly: it runs, and says which engine it used and that it checks no hardware
    assert main(["board", str(run.path), "--target", "emulator", "--episodes", "1", "--engine", "golden"]) == 0
    s = json.loads((run.path / "board" / "summary.json").read_text())
    assert s["engine"] == "golden" and s["hardware_check"] is False
    assert main(["report", str(run.path)]) == 0
    html = (run.path / "report.html").read_text()
    assert "golden vs golden" in html and "bit-exact" not in html.split("closed loop")[1].split("</tr>")[0]


@pytest.mark.parametrize("tool", ["verilator", "yosys"])
def test_rtl_without_tools_keeps_the_last_figures(tmp_path, capsys, monkeypatch, tool):
    run = _run(tmp_path / "run", ["rtl.synth=true"])
    rtl = run.dir("rtl")
    (rtl / "summary.json").write_text(json.dumps({"lanes": 4, "resources": {"lut": 1234}}))
    before = (rtl / "summary.json").read_bytes()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    other = "yosys" if tool == "verilator" else "verilator"
    if shutil.which(other):
        (bin_dir / other).symlink_to(shutil.which(other))
    monkeypatch.setenv("PATH", str(bin_dir))
    err = _errors(main(["rtl", str(run.path)]), capsys)
    assert tool in err and "not on PATH" in err
    assert (rtl / "summary.json").read_bytes() == before


# ------------------------------------------------------------------------------ saturation


def test_saturated_inputs_are_counted_and_warned(tmp_path):
    """CartPole's velocities leave a narrow input format (4 integer bits of 8: +-8): the golden
    model counts the saturated elements per frame, the summary reports them, the report warns."""
    from rl2fpga.core.golden import GoldenModel

    g = balancer()
    narrow = Fmt(6, 0, True)  # about +-0.5: CartPole's velocities leave it
    layers = [dataclasses.replace(la, in_fmt=narrow) if i == 0 else la for i, la in enumerate(g.layers)]
    run = _run(tmp_path / "run", ["board.max_steps=200", "seed=1"], model=GoldenModel(layers))
    # the count, computed here independently of the golden model
    import gymnasium as gym

    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=1)
    assert main(["board", str(run.path), "--target", "reference", "--episodes", "1"]) == 0
    s = json.loads((run.path / "board" / "summary.json").read_text())
    sat = s["input_saturation"]
    expected, frames = 0, 0
    gm = GoldenModel(layers)
    done = False
    while not done and frames < 200:
        q = np.round(np.asarray(obs, np.float64) * 2.0**narrow.frac)
        expected += int(((q < narrow.qmin) | (q > narrow.qmax)).sum())
        y, _ = gm.step(np.clip(q, narrow.qmin, narrow.qmax).astype(np.int64))
        obs, _, term, trunc, _ = env.step(int(np.argmax(y)))
        frames += 1
        done = term or trunc
    assert sat["frames"] == frames and sat["saturated"] == expected and expected > 0
    assert sat["elements"] == 4 * frames
    assert main(["report", str(run.path)]) == 0
    summary = json.loads((run.path / "summary.json").read_text())
    assert summary["input_saturation"]["saturated"] == expected
    assert any("saturated" in w for w in summary["warnings"])
    assert "fell outside the input format" in (run.path / "report.html").read_text()


def test_driver_counts_saturation_on_the_board_path(tmp_path):
    """The board path quantizes with the standalone PYNQ driver (board/driver.py), not the golden
    model: its own saturation count equals the golden count, its input integers equal golden's,
    and the summary reports both; a driver that quantizes differently is caught."""
    from rl2fpga.board import driver as drv
    from rl2fpga.core.golden import GoldenModel

    g = balancer()
    narrow = Fmt(6, 0, True)  # about +-0.5: CartPole's velocities leave it
    layers = [dataclasses.replace(la, in_fmt=narrow) if i == 0 else la for i, la in enumerate(g.layers)]
    sets = ["board.max_steps=200", "seed=1", "board.emulator_engine=golden"]
    run = _run(tmp_path / "run", sets, model=GoldenModel(layers))
    assert main(["board", str(run.path), "--target", "emulator", "--episodes", "1"]) == 0
    s = json.loads((run.path / "board" / "summary.json").read_text())
    gold, mine = s["input_saturation"], s["driver_input_saturation"]
    assert mine["saturated"] > 0 and mine["frames"] > 0
    assert {k: mine[k] for k in ("frames", "elements", "saturated")} == {k: gold[k] for k in ("frames", "elements", "saturated")}
    assert s["input_mismatches"] == 0 and s["action_mismatches"] == 0
    assert main(["report", str(run.path)]) == 0
    summary = json.loads((run.path / "summary.json").read_text())
    assert summary["board"]["driver_input_saturation"]["saturated"] == mine["saturated"]
    assert any("the driver saturated" in w for w in summary["warnings"])

    # a driver whose rounding is off (floor instead of half to even) differs from golden: counted
    real = drv.grid_input

    def floor_grid(obs, fmt, shape, standardize=None):
        x, n = real(obs, fmt, shape, standardize)
        q = np.floor(np.asarray(obs, np.float64) * 2.0 ** (int(fmt["bits"]) - int(fmt["integer"])))
        lo, hi = -(1 << (int(fmt["bits"]) - 1)), (1 << (int(fmt["bits"]) - 1)) - 1
        return np.clip(q, lo, hi).astype(np.int64).reshape(shape), n

    run2 = _run(tmp_path / "run2", sets, model=GoldenModel(layers))
    drv.grid_input = floor_grid
    try:
        assert main(["board", str(run2.path), "--target", "emulator", "--episodes", "1"]) == 0
    finally:
        drv.grid_input = real
    assert json.loads((run2.path / "board" / "summary.json").read_text())["input_mismatches"] > 0


# ------------------------------------------------------------------ children, leftovers, modes


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1].split()[0] != "Z"
    except OSError:
        return False


@needs_verilator
def test_sigkill_leaves_no_orphan(tmp_path):
    """`rl2fpga rtl` killed with SIGKILL while yosys runs: yosys must die with it. A stand-in
    yosys on PATH records its pid and runs until killed, so the test does not depend on how long
    a real synthesis takes."""
    import signal
    import time

    run = _run(tmp_path / "run", ["rtl.synth=true"])
    fake = tmp_path / "fakebin"
    fake.mkdir()
    pidfile = tmp_path / "yosys.pid"
    (fake / "yosys").write_text(f"#!/bin/sh\necho $$ > {pidfile}.tmp && mv {pidfile}.tmp {pidfile}\nexec sleep 100000\n")
    (fake / "yosys").chmod(0o755)
    env = {**os.environ, "PYTHONPATH": str(PKG_ROOT), "PATH": f"{fake}:{os.environ['PATH']}"}
    p = subprocess.Popen([sys.executable, "-m", "rl2fpga.cli", "rtl", str(run.path)], env=env, cwd=tmp_path,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    child = None
    try:
        while not pidfile.exists():  # condition: the child tool is running
            if p.poll() is not None:
                pytest.fail(f"rtl ended before it started yosys: {p.stderr.read()}")
            time.sleep(0.05)
        child = int(pidfile.read_text())
        assert _alive(child)
        p.send_signal(signal.SIGKILL)
        p.wait()
        waited = 0.0
        while _alive(child) and waited < 300:  # hang guard only: it dies within a second
            time.sleep(0.1)
            waited += 0.1
        assert not _alive(child), "yosys kept running after its command was killed"
    finally:
        if p.poll() is None:
            p.kill()
        if child is not None and _alive(child):
            os.kill(child, signal.SIGKILL)
    # the next command on the run cleans what the killed one left and finds the folder free
    leftovers = [q for q in run.path.iterdir() if q.name.startswith(".rtl.") and q.name.endswith(".tmp")]
    assert leftovers, "the killed rtl step should have left its temp folder"
    (fake / "yosys").unlink()
    assert main(["rtl", str(run.path), "--set", "rtl.synth=false"]) == 0
    assert not [q for q in run.path.iterdir() if q.name.endswith(".tmp")]


def test_files_and_folders_respect_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        run = _run(tmp_path / "run")
        assert main(["report", str(run.path)]) == 0
        from rl2fpga.fsutil import atomic_dir, atomic_write_text

        with atomic_dir(run.path / "folder") as d:
            atomic_write_text(d / "x.txt", "x")
    finally:
        os.umask(old)
    for f in (run.path / "report.html", run.path / "summary.json", run.path / "config.yaml", run.path / "folder" / "x.txt"):
        assert f.stat().st_mode & 0o777 == 0o644, f
    assert (run.path / "folder").stat().st_mode & 0o777 == 0o755
