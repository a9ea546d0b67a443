"""The wheel carries everything the code opens (templates, SystemVerilog, C++ headers, the
co-simulation wrapper, configs), and an installed wheel runs a co-simulation on its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _build_wheel(out: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
                   check=True, capture_output=True, text=True, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    wheels = list(out.glob("rl2fpga-*.whl"))
    assert len(wheels) == 1
    return wheels[0]


def _expected_files() -> set[str]:
    """Every file git tracks in a folder that pyproject maps into the rl2fpga namespace, at its
    installed path (what the code can open at run time)."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs a git checkout")
    py = tomllib.loads((REPO / "pyproject.toml").read_text())
    dirs = py["tool"]["setuptools"]["package-dir"]
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, check=True, capture_output=True, text=True).stdout.split()
    want = set()
    for pkg, folder in dirs.items():
        prefix = folder.rstrip("/") + "/"
        for f in tracked:
            if not f.startswith(prefix):
                continue
            rel = f[len(prefix):]
            if rel.startswith("test_") or "/test_" in rel or rel.endswith("conftest.py"):
                continue  # pytest files of rtl_tests travel as modules too, checked below
            want.add(pkg.replace(".", "/") + "/" + rel)
    return want


@pytest.mark.slow
def test_wheel_carries_every_data_file(tmp_path: Path) -> None:
    whl = _build_wheel(tmp_path)
    names = set(zipfile.ZipFile(whl).namelist())
    missing = sorted(_expected_files() - names)
    assert not missing, f"not in the wheel: {missing}"
    # the files the code opens by path, named explicitly
    for f in ("rl2fpga/hls/cosim/sim/rl2fpga_engine_sim.sv", "rl2fpga/templates/report.html.j2",
              "rl2fpga/hls/hls4ml/templates/rl2fpga_delta.h", "rl2fpga/hls/engine/templates/rl2fpga_engine_top.sv.j2",
              "rl2fpga/board/templates/engine_shim.cpp.j2", "rl2fpga/configs/hopper.yaml", "rl2fpga/importers/onnx_import.py"):
        assert f in names, f


@pytest.mark.slow
@pytest.mark.verilator
def test_installed_wheel_runs_a_cosim(tmp_path: Path) -> None:
    """Build the wheel, install it into a fresh venv with constraints.txt (the exact versions the
    tests ran with), and run the engine co-simulation test from the installed package, outside
    the checkout (so nothing is imported from the source tree)."""
    if shutil.which("verilator") is None:
        pytest.skip("verilator not on PATH")
    whl = _build_wheel(tmp_path / "dist")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    res = subprocess.run([str(py), "-m", "pip", "install", "-q", "-c", str(REPO / "constraints.txt"), str(whl), "pytest"],
                         capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    env["RL2FPGA_BUILD_DIR"] = str(tmp_path / "build")
    probe = subprocess.run([str(py), "-c", "import rl2fpga, rl2fpga.hls.cosim.harness as h; print(rl2fpga.__file__); print(h.SIM_WRAPPER.exists())"],
                           cwd=work, capture_output=True, text=True, env=env)
    assert probe.returncode == 0, probe.stderr[-2000:]
    where, wrapper = probe.stdout.split()
    assert str(venv) in where and wrapper == "True"
    res = subprocess.run([str(py), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--pyargs", "rl2fpga.rtl_tests.test_engine",
                          "-k", "test_cartpole_mlp_real_episodes"], cwd=work, capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "1 passed" in res.stdout


def test_missing_pynq_is_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without pynq the emulator target says how to install it (no ModuleNotFoundError traceback)."""
    from rl2fpga.board.play import _emulator_backend
    from rl2fpga.config import RunConfig
    from rl2fpga.errors import Rl2fpgaError
    from rl2fpga.run import Run

    monkeypatch.setitem(sys.modules, "pynq", None)  # import pynq -> ImportError
    run = Run.create(RunConfig(name="nopynq"), runs_dir=tmp_path)
    with pytest.raises(Rl2fpgaError) as e:
        _emulator_backend(run, run.config(), None)  # type: ignore[arg-type]
    msg = str(e.value)
    assert "\n" not in msg and "pip install --no-deps pynq==4.0.0" in msg and "pynq" in msg
