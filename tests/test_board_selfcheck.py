"""The deploy bundle's on-board self-check, ``run_policy.py --check``: recorded frames through
the firmware (here the simulated PYNQ-Z2) and through the bundled NumPy-only golden model
(board/golden_ref.py); passes on the right firmware, fails on a corrupted weight image."""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rl2fpga.board import block_design as design
from rl2fpga.board.bundle import write_bundle
from rl2fpga.board.engine_models import GoldenEngine
from rl2fpga.board.golden_ref import GoldenRef
from rl2fpga.board.simdevice import SimDevice
from rl2fpga.core.golden import GoldenModel, random_model


def _cnn() -> GoldenModel:
    return random_model(np.random.default_rng(8), (10, 9, 3), [("conv2d", 5, 3, 2), ("conv2d", 4, 2, 1), ("dense", 6), ("dense", 3)],
                        sparsity=0.5, threshold=3)


def _frames(model: GoldenModel, n: int = 30) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, model.in_shape)
    out = []
    for _ in range(n):
        out.append(x.copy())
        x = np.where(rng.random(x.shape) < 0.15, rng.integers(0, 256, x.shape), x)
    starts = np.zeros(n, dtype=bool)
    starts[[0, 11, 20]] = True
    return np.stack(out), starts


def test_golden_ref_equals_golden_model(tmp_path):
    """The bundle's NumPy golden model is bit-exact with rl2fpga's, resets included."""
    model = _cnn()
    model.save(tmp_path / "golden")
    ref = GoldenRef(tmp_path / "golden")
    g = model.copy()
    frames, starts = _frames(model)
    for x, s in zip(frames, starts):
        if s:
            ref.reset()
            g.reset()
        assert ref.step(x).tolist() == g.step(x)[0].reshape(-1).tolist()


def _run_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine_model: GoldenModel, bundle_model: GoldenModel,
               capsys: pytest.CaptureFixture) -> tuple[int, str]:
    import pynq

    bundle = write_bundle(tmp_path / "bundle", bundle_model, 4, 8, 100.0, "CartPole-v1",
                          check_frames=_frames(bundle_model))
    (bundle / "rl2fpga.bit").write_text("simulated\n")
    (bundle / "rl2fpga.hwh").write_text(design.sim_hwh(design.DesignParams(4, 8)))
    monkeypatch.setattr(pynq.Device, "_active_device", SimDevice(GoldenEngine(engine_model, 4, 8)), raising=False)
    monkeypatch.syspath_prepend(str(bundle))
    for mod in ("driver", "golden_ref", "contract"):
        monkeypatch.delitem(sys.modules, mod, raising=False)
    monkeypatch.setattr(sys, "argv", ["run_policy.py", "--check"])
    with pytest.raises(SystemExit) as e:
        runpy.run_path(str(bundle / "run_policy.py"), run_name="__main__")
    return int(e.value.code), capsys.readouterr().out


def test_self_check_passes_on_the_right_firmware(tmp_path, monkeypatch, capsys):
    model = _cnn()
    code, out = _run_check(tmp_path, monkeypatch, model, model, capsys)
    assert code == 0 and "30 recorded frames, 0 mismatches" in out


def test_self_check_fails_on_a_corrupted_weight_image(tmp_path, monkeypatch, capsys):
    model = _cnn()
    bad = model.copy()
    k = len(bad.layers) - 1
    w = bad.layers[k].w.copy()
    for i in map(tuple, np.argwhere(w != 0)[:3]):
        w[i] = -w[i]  # a few sign bits of the firmware's weight image flipped
    bad.layers[k] = type(bad.layers[k])(**{**bad.layers[k].__dict__, "w": w})
    code, out = _run_check(tmp_path, monkeypatch, bad, model, capsys)
    assert code == 1 and "mismatch at frame" in out
    n = int(out.split("recorded frames, ")[1].split(" mismatches")[0])
    assert n > 0


def test_golden_ref_needs_only_numpy(tmp_path):
    """golden_ref.py imports with rl2fpga and TensorFlow unavailable (as on the board)."""
    model = _cnn()
    bundle = write_bundle(tmp_path / "bundle", model, 4, 8, 100.0, "CartPole-v1", check_frames=_frames(model))
    code = (
        "import sys; sys.modules['rl2fpga'] = None; sys.modules['tensorflow'] = None\n"
        "import numpy as np; from golden_ref import GoldenRef\n"
        "d = np.load('check_frames.npz'); r = GoldenRef('golden'); print(r.step(d['frames'][0]).tolist())\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=bundle, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(model.copy().step(_frames(model)[0][0])[0].reshape(-1).tolist())


def test_vivado_tcl_fails_on_a_missing_weight_image(tmp_path, monkeypatch):
    """The generated build.tcl stops with an error naming a missing memory image, associates
    rst_n with clk and takes its job count from the machine."""
    import shutil

    if shutil.which("tclsh") is None:
        pytest.skip("tclsh is not on PATH")
    from test_board import STUB_VIVADO, fake_rtl, make_run, mlp

    from rl2fpga.cli import main

    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    run = make_run(tmp_path, mlp())
    fake_rtl(run.path / "rtl")
    assert main(["board", str(run.path), "--action", "build"]) == 0
    vivado = run.path / "board" / "vivado"
    (vivado / "stub.tcl").write_text(STUB_VIVADO)
    monkeypatch.setenv("RL2FPGA_VIVADO_JOBS", "7")
    proc = subprocess.run(["tclsh", "stub.tcl"], cwd=vivado, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    calls = (vivado / "calls.txt").read_text().splitlines()
    assert any(c.startswith("ipx::associate_bus_interfaces -clock clk -reset rst_n") for c in calls)
    assert any(c.startswith("launch_runs impl_1") and c.endswith("-jobs 7") for c in calls)
    mems = sorted((vivado / "src").rglob("*.mem"))
    assert mems
    mems[0].unlink()
    proc = subprocess.run(["tclsh", "stub.tcl"], cwd=vivado, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and mems[0].name in proc.stderr and "is missing" in proc.stderr
