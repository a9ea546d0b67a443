"""The wheel carries everything the code opens (templates, SystemVerilog, C++ headers, the
co-simulation wrapper, configs), and an installed wheel runs a co-simulation on its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
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


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One wheel of the checkout for the module (building it is the slow part of each test)."""
    return _build_wheel(tmp_path_factory.mktemp("dist"))


@pytest.mark.slow
def test_wheel_carries_every_data_file(wheel: Path) -> None:
    whl = wheel
    names = set(zipfile.ZipFile(whl).namelist())
    missing = sorted(_expected_files() - names)
    assert not missing, f"not in the wheel: {missing}"
    # the files the code opens by path, named explicitly
    for f in ("rl2fpga/hls/cosim/sim/rl2fpga_engine_sim.sv", "rl2fpga/templates/report.html.j2",
              "rl2fpga/hls/hls4ml/templates/rl2fpga_delta.h", "rl2fpga/hls/engine/templates/rl2fpga_engine_top.sv.j2",
              "rl2fpga/board/templates/engine_shim.cpp.j2", "rl2fpga/configs/hopper.yaml", "rl2fpga/importers/onnx_import.py"):
        assert f in names, f


# rl2fpga's own requirements, checked against what the fresh venv imports (pip check would also
# judge pynq, which the Makefile installs with --no-deps on purpose)
_DEPS_MET = """
import importlib.metadata as md
from packaging.requirements import Requirement
bad = []
for r in map(Requirement, md.requires("rl2fpga") or []):
    if r.marker is not None and not r.marker.evaluate({"extra": ""}):
        continue
    try:
        v = md.version(r.name)
    except md.PackageNotFoundError:
        bad.append(f"{r} (missing)")
        continue
    if not r.specifier.contains(v, prereleases=True):
        bad.append(f"{r} (have {v})")
print("\\n".join(bad) or "ok")
"""


@pytest.mark.slow
@pytest.mark.verilator
def test_installed_wheel_runs_a_cosim(wheel: Path, tmp_path: Path) -> None:
    """Build the wheel, install it into a fresh venv whose dependencies are the exact versions the
    tests ran with (those of constraints.txt: the venv reaches this venv's site-packages through a
    ``.pth`` path line, which imports them but runs none of their ``.pth`` files, so the editable
    install of the checkout stays out), and run the engine co-simulation test from the installed
    package, outside the checkout (so nothing is imported from the source tree)."""
    if shutil.which("verilator") is None:
        pytest.skip("verilator not on PATH")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    assert site.startswith(str(venv))
    (Path(site) / "_rl2fpga_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    # --ignore-installed: the checkout's editable rl2fpga is visible through the path line; pip
    # must install beside it (into the venv, which comes first on sys.path), never uninstall it
    res = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed",
                          "-c", str(REPO / "constraints.txt"), str(wheel)], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert any(Path(site).glob("rl2fpga-*.dist-info")) and (Path(site) / "rl2fpga" / "__init__.py").exists()
    work = tmp_path / "elsewhere"
    work.mkdir()
    env["RL2FPGA_BUILD_DIR"] = str(tmp_path / "build")
    deps = subprocess.run([str(py), "-c", _DEPS_MET], cwd=work, capture_output=True, text=True, env=env)
    assert deps.returncode == 0 and deps.stdout.strip() == "ok", deps.stdout + deps.stderr[-2000:]
    probe = subprocess.run([str(py), "-c", "import rl2fpga, rl2fpga.hls.cosim.harness as h, rl2fpga.rtl_tests.test_engine as t;"
                            " print(rl2fpga.__file__); print(t.__file__); print(h.SIM_WRAPPER.exists())"],
                           cwd=work, capture_output=True, text=True, env=env)
    assert probe.returncode == 0, probe.stderr[-2000:]
    where, test_file, wrapper = probe.stdout.split()
    assert where.startswith(site) and test_file.startswith(site) and wrapper == "True", probe.stdout
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
