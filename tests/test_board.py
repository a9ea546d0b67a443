"""board/: the PYNQ driver against the simulated PYNQ-Z2 (golden-backed engine), the deploy
bundle, the Vivado project, closed-loop CartPole episodes and one-line errors."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from board_models import balancer

from rl2fpga.board import block_design as design
from rl2fpga.board.bundle import BUNDLE_FILES, check_bundle, write_bundle
from rl2fpga.board.driver import EngineDriver
from rl2fpga.board.engine_models import GoldenEngine
from rl2fpga.board.simdevice import SimDevice
from rl2fpga.cli import main
from rl2fpga.config import RunConfig, apply_overrides
from rl2fpga.core.golden import Fmt, GoldenModel, random_model
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.run import Run

BOARD_DIR = Path(__file__).resolve().parents[1] / "board"


def mlp(seed: int = 0, threshold: int = 1) -> GoldenModel:
    """A small pruned quantized MLP for CartPole's 4 observations (signed input, 1/32 LSB)."""
    return random_model(np.random.default_rng(seed), (4,), [("dense", 16), ("dense", 2)], sparsity=0.5,
                        in_fmt=Fmt(8, 3, True), threshold=threshold)


def cnn(seed: int = 1) -> GoldenModel:
    """A small CNN with uint8 pixel input (the Atari input format)."""
    return random_model(np.random.default_rng(seed), (12, 12, 2), [("conv2d", 4, 4, 2), ("dense", 8), ("dense", 3)],
                        sparsity=0.5, threshold=2)


def sim_bundle(tmp: Path, model: GoldenModel, lanes: int = 4, bpb: int = 8, hw_lanes: int | None = None) -> tuple[Path, SimDevice]:
    """A bundle whose bitstream slot holds a placeholder and whose .hwh is the simulated design."""
    bundle = write_bundle(tmp / "bundle", model, lanes, bpb, 100.0, "CartPole-v1")
    (bundle / "rl2fpga.bit").write_text("simulated\n")
    (bundle / "rl2fpga.hwh").write_text(design.sim_hwh(design.DesignParams(lanes, bpb)))
    return bundle, SimDevice(GoldenEngine(model, hw_lanes or lanes, bpb))


def open_driver(tmp: Path, model: GoldenModel, **kw) -> tuple[EngineDriver, SimDevice]:
    bundle, dev = sim_bundle(tmp, model, **kw)
    return EngineDriver(bundle / "rl2fpga.bit", bundle / "manifest.json", device=dev), dev


# ------------------------------------------------------------------------------ driver


@pytest.mark.parametrize("make, bpb", [(mlp, 8), (balancer, 4), (cnn, 8), (cnn, 3)])
def test_driver_matches_golden_through_dma(tmp_path, make, bpb):
    model = make()
    drv, dev = open_driver(tmp_path, model, bpb=bpb)
    assert type(drv.dma).__name__ == "DMA"  # pynq's own AXI DMA driver bound from the .hwh
    ref = model.copy()
    rng = np.random.default_rng(3)
    fmt = model.in_fmt
    x = rng.integers(fmt.qmin, fmt.qmax + 1, model.in_shape)
    for t in range(30):
        if t == 15:
            drv.reset_state()
            ref.reset()
        x = np.where(rng.random(x.shape) < 0.2, rng.integers(fmt.qmin, fmt.qmax + 1, x.shape), x)
        values, action = drv.infer(x)
        y, stats = ref.step(x)
        assert values.tolist() == y.reshape(-1).tolist()
        assert action == int(np.argmax(y))
        c = drv.counters()
        assert c["macs"] == stats.macs and c["events"] == stats.events
    assert drv.counters()["frames"] == 30
    assert dev.register_accesses > 0


def test_driver_thresholds_reach_the_engine(tmp_path):
    model = mlp(threshold=0)
    drv, _ = open_driver(tmp_path, model)
    drv.set_thresholds([5, 3])
    ref = model.copy()
    ref.set_thresholds([5, 3])
    rng = np.random.default_rng(7)
    for _ in range(20):
        x = rng.integers(-128, 128, 4)
        assert drv.infer(x)[0].tolist() == ref.step(x)[0].tolist()
    with pytest.raises(Rl2fpgaError, match="thresholds given for 2 layers"):
        drv.set_thresholds([1])


def test_the_bundle_driver_is_this_driver(tmp_path):
    bundle, _ = sim_bundle(tmp_path, mlp())
    assert (bundle / "driver.py").read_bytes() == (BOARD_DIR / "driver.py").read_bytes()
    for f in BUNDLE_FILES:
        assert (bundle / f).exists(), f
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["model"]["in_shape"] == [4] and manifest["model"]["n_out"] == 2


# ------------------------------------------------------------------------------ bad input


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("bits, channel, name", [(0x20, "mm2s", "DMASlvErr"), (0x40, "s2mm", "DMADecErr"), (0x10, "s2mm", "DMAIntErr")])
def test_dma_error_status_is_one_line_and_recovers(tmp_path, bits, channel, name):
    model = mlp()
    drv, dev = open_driver(tmp_path, model)
    x = np.arange(4) - 2
    dev.inject_dma_error(channel, bits)
    with pytest.raises(Rl2fpgaError) as e:
        drv.infer(x)
    msg = _one_line(e)
    assert channel.upper() in msg and name in msg and "DMASR" in msg
    ref = model.copy()  # the failed frame never reached the engine (MM2S) or was lost (S2MM)
    if channel == "s2mm":
        ref.step(x)
    values, _ = drv.infer(x)  # the driver reset the DMA: the next step works
    assert values.tolist() == ref.step(x)[0].reshape(-1).tolist()


def test_missing_bitstream_is_one_line(tmp_path):
    bundle, dev = sim_bundle(tmp_path, mlp())
    (bundle / "rl2fpga.bit").unlink()
    with pytest.raises(Rl2fpgaError, match="bitstream .* is missing") as e:
        EngineDriver(bundle / "rl2fpga.bit", bundle / "manifest.json", device=dev)
    _one_line(e)


def test_missing_hwh_is_one_line(tmp_path):
    bundle, dev = sim_bundle(tmp_path, mlp())
    (bundle / "rl2fpga.hwh").unlink()
    with pytest.raises(Rl2fpgaError, match="hardware handoff") as e:
        EngineDriver(bundle / "rl2fpga.bit", bundle / "manifest.json", device=dev)
    _one_line(e)


def test_bitstream_for_other_engine_parameters_is_refused(tmp_path):
    with pytest.raises(Rl2fpgaError, match="lanes=2 but the manifest says 4") as e:
        open_driver(tmp_path, mlp(), lanes=4, hw_lanes=2)
    _one_line(e)


def test_bundle_from_another_model_shape(tmp_path):
    bundle, _ = sim_bundle(tmp_path, mlp())
    other = random_model(np.random.default_rng(0), (4,), [("dense", 8), ("dense", 2)], in_fmt=Fmt(8, 3, True))
    with pytest.raises(Rl2fpgaError, match=r"built for another model \(layer l0: out_shape \[16\] != \[8\]\)") as e:
        check_bundle(bundle, other)
    _one_line(e)


def test_bundle_from_another_model_format(tmp_path):
    bundle, _ = sim_bundle(tmp_path, mlp())
    other = random_model(np.random.default_rng(0), (4,), [("dense", 16), ("dense", 2)], sparsity=0.5,
                         in_fmt=Fmt(8, 2, True), threshold=1)
    with pytest.raises(Rl2fpgaError, match="in_fmt") as e:
        check_bundle(bundle, other)
    _one_line(e)


def test_bundle_with_other_weights(tmp_path):
    bundle, _ = sim_bundle(tmp_path, mlp(seed=0))
    check_bundle(bundle, mlp(seed=0))  # same model: accepted
    with pytest.raises(Rl2fpgaError, match="other weights"):
        check_bundle(bundle, mlp(seed=5))


def test_frame_outside_format_is_one_line(tmp_path):
    drv, _ = open_driver(tmp_path, mlp())
    with pytest.raises(Rl2fpgaError, match="outside the input format"):
        drv.infer(np.array([0, 0, 0, 500]))
    with pytest.raises(Rl2fpgaError, match="frame has 3 elements"):
        drv.infer(np.array([0, 0, 0]))
    with pytest.raises(Rl2fpgaError, match="dtype float64"):
        drv.infer(np.array([0.1, 0.0, 0.0, 0.0]))


# ------------------------------------------------------------------------------ Vivado project


def fake_rtl(rtl: Path) -> None:
    """What the RTL generator writes (design.json lists the sources), plus a stray netlist."""
    rtl.mkdir(parents=True)
    (rtl / "rl2fpga_pkg.sv").write_text("package rl2fpga_pkg; endpackage\n")
    (rtl / "rl2fpga_engine_top.sv").write_text("module rl2fpga_engine_top(input logic clk); endmodule\n")
    (rtl / "l0_w.mem").write_text("00\n")
    (rtl / "synth_netlist.v").write_text("module rl2fpga_engine_top(input clk); endmodule\n")
    (rtl / "design.json").write_text(json.dumps({"sv_files": ["rl2fpga_pkg.sv", "rl2fpga_engine_top.sv"], "lanes": 2,
                                                 "input_bytes_per_beat": 4}))


def make_run(tmp: Path, model: GoldenModel, sets: list[str] = ()) -> Run:
    cfg = apply_overrides(RunConfig(), ["env.id=CartPole-v1", "seed=3", *sets])
    run = Run.create(cfg, path=tmp / "run")
    model.save(run.path / "quantize" / "golden")
    return run


def test_vivado_project_and_bundle_reference_existing_files(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no vivado
    run = make_run(tmp_path, mlp())
    fake_rtl(run.path / "rtl")
    assert main(["board", str(run.path), "--action", "build"]) == 0
    vivado = run.path / "board" / "vivado"
    tcl = (vivado / "build.tcl").read_text()
    assert tcl.startswith("# generated by rl2fpga")
    inputs = re.findall(r"\[file join \$here (src/[^\]\s]+)\]", tcl)
    assert inputs == ["src/rl2fpga_pkg.sv", "src/rl2fpga_engine_top.sv", "src/l0_w.mem"]
    for f in inputs:
        assert (vivado / f).exists(), f
    # everything else the script names is what Vivado itself creates
    made = {f.split()[0] for f in re.findall(r"\[file join \$here ([^\]]+)\]", tcl) if not f.startswith("src/")}
    assert made <= {"engine_ip", "ip_repo", "rl2fpga", "out"}, made
    for vlnv in ("xilinx.com:ip:processing_system7:5.5", "xilinx.com:ip:axi_dma:7.1", design.ENGINE_VLNV):
        assert vlnv in tcl
    assert "c_sg_length_width {26}" in tcl and design.PART in tcl
    assert "c_m_axis_mm2s_tdata_width {32}" in tcl  # the generated RTL's 4-byte beats (design.json)
    build = json.loads((run.path / "board" / "build.json").read_text())
    assert build["bitstream"] is None and "vivado -mode batch -source build.tcl" in build["commands"][-1]
    bundle = run.path / "board" / "bundle"
    for f in BUNDLE_FILES:
        assert (bundle / f).exists(), f
    readme = (bundle / "README.md").read_text()
    assert "missing" in readme
    run_policy = (bundle / "run_policy.py").read_text()
    compile(run_policy, "run_policy.py", "exec")
    assert '"CartPole-v1"' in run_policy
    engine = json.loads((bundle / "manifest.json").read_text())["engine"]
    assert engine["lanes"] == 2 and engine["input_bytes_per_beat"] == 4


def test_build_without_rtl_is_one_line(tmp_path, capsys):
    run = make_run(tmp_path, mlp())
    assert main(["board", str(run.path), "--action", "build"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: no generated RTL") and "\n" not in err


# ------------------------------------------------------------------------------ closed loop


def test_cartpole_emulator_episodes_equal_golden(tmp_path):
    run = make_run(tmp_path, balancer(), ["board.emulator_engine=golden", "board.max_steps=200"])
    assert main(["board", str(run.path), "--target", "emulator", "--episodes", "3"]) == 0
    s = json.loads((run.path / "board" / "summary.json").read_text())
    assert s["target"] == "emulator" and s["engine"] == "golden" and s["episodes"] == 3
    assert s["action_mismatches"] == 0 and s["output_mismatches"] == 0 and s["mac_mismatches"] == 0
    assert len(s["returns"]) == 3 and s["returns"] == s["golden_returns"]
    assert s["steps"] == sum(s["returns"])  # CartPole pays 1 per step
    assert min(s["returns"]) >= 100  # whole episodes of a controller that balances
    assert s["latency_us"]["p50"] > 0 and s["cycles_per_step"]["mean"] > 0
    assert s["dense_macs"] == [4 * 4, 4 * 2] and 0 < s["mac_fraction"] < 1  # pruned + delta
    lat = json.loads((run.path / "board" / "latency_emulator.json").read_text())
    assert len(lat["cycles"]) == len(lat["latency_us"]) == len(lat["macs"]) == s["steps"]


def test_closed_loop_detects_a_wrong_engine(tmp_path, monkeypatch):
    """The agreement check can fail: an engine with one weight changed disagrees."""
    model = mlp()
    run = make_run(tmp_path, model, ["board.emulator_engine=golden", "board.max_steps=100"])
    broken = model.copy()
    broken.layers[1].w = broken.layers[1].w.copy()
    broken.layers[1].w[:, 0] = 0
    broken.layers[1].b = broken.layers[1].b + 5000

    import rl2fpga.board.engine_models as engine_mod

    real = engine_mod.GoldenEngine
    monkeypatch.setattr(engine_mod, "GoldenEngine", lambda m, lanes, bpb: real(broken, lanes, bpb))
    assert main(["board", str(run.path), "--target", "emulator", "--episodes", "1"]) == 0
    s = json.loads((run.path / "board" / "summary.json").read_text())
    assert s["output_mismatches"] > 0 and s["first_mismatch"]["step"] == 0


def test_continuous_actor_plays_through_the_emulator(tmp_path, monkeypatch):
    """Pendulum (continuous): the host turns the engine's integer outputs into
    tanh(mean) * scale + offset; equal outputs give equal actions and returns, and a wrong
    engine is caught on its actions too."""
    actor = random_model(np.random.default_rng(4), (3,), [("dense", 16), ("dense", 1)], sparsity=0.3,
                         in_fmt=Fmt(12, 4, True), threshold=1)
    run = make_run(tmp_path, actor, ["env.id=Pendulum-v1", "board.emulator_engine=golden", "board.max_steps=40"])
    assert main(["board", str(run.path), "--target", "emulator", "--episodes", "2"]) == 0
    s = json.loads((run.path / "board" / "summary.json").read_text())
    assert s["steps"] == 80 and s["action_mismatches"] == 0 and s["output_mismatches"] == 0
    assert s["returns"] == s["golden_returns"] and all(r < 0 for r in s["returns"])
    broken = actor.copy()
    broken.layers[1].b = broken.layers[1].b + 3000
    import rl2fpga.board.engine_models as engine_mod

    real = engine_mod.GoldenEngine
    monkeypatch.setattr(engine_mod, "GoldenEngine", lambda m, lanes, bpb: real(broken, lanes, bpb))
    assert main(["board", str(run.path), "--target", "emulator", "--episodes", "1"]) == 0
    s = json.loads((run.path / "board" / "summary.json").read_text())
    assert s["action_mismatches"] > 0 and len(s["first_mismatch"]["action"]) == 1


def test_reference_target(tmp_path):
    run = make_run(tmp_path, mlp(), ["board.max_steps=50"])
    assert main(["board", str(run.path), "--target", "reference", "--episodes", "2"]) == 0
    s = json.loads((run.path / "board" / "summary.json").read_text())
    assert s["engine"] == "golden" and s["action_mismatches"] == 0 and s["returns"] == s["golden_returns"]
    assert s["cycles_per_step"] is None


def test_pynq_target_without_board_is_one_line(tmp_path, capsys):
    run = make_run(tmp_path, mlp())
    assert main(["board", str(run.path), "--target", "pynq", "--episodes", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: no PYNQ board found") and "\n" not in err


def test_missing_golden_model_is_one_line(tmp_path, capsys):
    run = make_run(tmp_path, mlp())
    shutil.rmtree(run.path / "quantize")
    assert main(["board", str(run.path), "--target", "emulator"]) == 2
    assert "rl2fpga quantize" in capsys.readouterr().err


def test_manifest_for_another_input_shape_times_out_with_tlast_error(tmp_path):
    """A bundle whose manifest disagrees with the bitstream's input size: the engine flags the
    misplaced TLAST and the driver says so in one line instead of hanging."""
    model = cnn()
    bundle, dev = sim_bundle(tmp_path, model)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["model"]["in_shape"] = [12, 12, 1]
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    drv = EngineDriver(bundle / "rl2fpga.bit", bundle / "manifest.json", device=dev, timeout_s=0.05)
    with pytest.raises(Rl2fpgaError, match="S2MM timed out .*misplaced TLAST") as e:
        drv.infer(np.zeros((12, 12, 1), np.int64))
    _one_line(e)


@pytest.mark.slow
def test_hls_csim_target_plays_like_golden(tmp_path):
    pytest.importorskip("hls4ml")
    run = make_run(tmp_path, balancer(), ["board.max_steps=60"])
    assert main(["board", str(run.path), "--target", "hls-csim", "--episodes", "1"]) == 0
    s = json.loads((run.path / "board" / "summary.json").read_text())
    assert s["engine"] == "hls4ml-csim" and s["action_mismatches"] == 0 and s["output_mismatches"] == 0
    assert s["returns"] == s["golden_returns"] == [60.0]


def test_hls_accelerator_driver_through_simulated_dma(tmp_path):
    """hls4ml's VivadoAccelerator design (hier_0/axi_dma_0, float32 streams) behind the same
    interface: integers exact through float32, actions and outputs equal to golden."""
    from rl2fpga.board.driver import HlsAcceleratorDriver
    from rl2fpga.board.engine_models import HlsStreamEngine

    model = balancer(threshold=2)
    bundle = write_bundle(tmp_path / "bundle", model, 4, 8, 100.0, "CartPole-v1")
    (bundle / "rl2fpga.bit").write_text("simulated\n")
    (bundle / "rl2fpga.hwh").write_text(design.sim_hwh(design.DesignParams(1, 4), hls=True))
    drv = HlsAcceleratorDriver.open(bundle / "rl2fpga.bit", bundle / "manifest.json", device=SimDevice(HlsStreamEngine(model)))
    ref = model.copy()
    rng = np.random.default_rng(4)
    for _ in range(40):
        obs = rng.normal(0, 0.5, 4)
        x = drv.quantize(obs)
        assert x.tolist() == model.quantize_input(obs).tolist()
        values, action = drv.infer(x)
        y, _ = ref.step(x)
        assert values.tolist() == y.reshape(-1).tolist() and action == model.action(y)
    drv.set_thresholds([2, 0])
    with pytest.raises(Rl2fpgaError, match="compiled in"):
        drv.set_thresholds([0, 0])


def test_bundle_driver_imports_without_rl2fpga(tmp_path):
    """On the board rl2fpga is not installed: driver.py falls back to the bundle's contract.py."""
    import subprocess
    import sys

    bundle, _ = sim_bundle(tmp_path, mlp())
    (bundle / "rl2fpga.bit").unlink()
    code = (
        "import os, sys; sys.modules['rl2fpga'] = None; sys.path.insert(0, os.getcwd())\n"
        "import driver\n"
        "assert driver.contract.__file__ == os.path.join(os.getcwd(), 'contract.py'), driver.contract.__file__\n"
        "m = driver.load_manifest('manifest.json'); assert m['model']['n_out'] == 2\n"
        "try:\n"
        "    driver.EngineDriver('rl2fpga.bit', 'manifest.json')\n"
        "except driver.Rl2fpgaError as e:\n"
        "    print('ERR', type(e).__module__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=bundle, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "ERR driver bitstream" in out.stdout and "is missing" in out.stdout


def test_run_policy_script_on_the_simulated_board(tmp_path, monkeypatch):
    """The bundle's run_policy.py, with the simulated PYNQ-Z2 as pynq's active device."""
    import runpy
    import sys

    import pynq

    model = balancer()
    bundle, dev = sim_bundle(tmp_path, model)
    monkeypatch.setattr(pynq.Device, "_active_device", dev, raising=False)
    monkeypatch.syspath_prepend(str(bundle))
    monkeypatch.delitem(sys.modules, "driver", raising=False)
    out = tmp_path / "results.json"
    monkeypatch.setattr(sys, "argv", ["run_policy.py", "--episodes", "2", "--max-steps", "80", "--out", str(out)])
    runpy.run_path(str(bundle / "run_policy.py"), run_name="__main__")
    r = json.loads(out.read_text())
    assert r["returns"] == [80.0, 80.0] and r["cycles_mean"] > 0 and r["latency_us"]["p50"] > 0
    assert r["input_saturation"]["frames"] == 160 and r["input_saturation"]["elements"] == 4 * 160  # every step counted


def test_run_policy_script_drives_a_continuous_actor(tmp_path, monkeypatch):
    """run_policy.py with a Pendulum actor: the host's tanh(mean) * scale + offset from the
    engine's outputs; returns equal the golden actor's on the same seeds."""
    import runpy
    import sys

    import pynq

    from rl2fpga.config import EnvConfig
    from rl2fpga.core.golden import squash_action
    from rl2fpga.train.envs import make_env

    actor = random_model(np.random.default_rng(4), (3,), [("dense", 16), ("dense", 1)], sparsity=0.3,
                         in_fmt=Fmt(12, 4, True), threshold=1)
    bundle = write_bundle(tmp_path / "bundle", actor, 4, 8, 100.0, "Pendulum-v1")
    (bundle / "rl2fpga.bit").write_text("simulated\n")
    (bundle / "rl2fpga.hwh").write_text(design.sim_hwh(design.DesignParams(4, 8)))
    monkeypatch.setattr(pynq.Device, "_active_device", SimDevice(GoldenEngine(actor, 4, 8)), raising=False)
    monkeypatch.syspath_prepend(str(bundle))
    monkeypatch.delitem(sys.modules, "driver", raising=False)
    out = tmp_path / "results.json"
    monkeypatch.setattr(sys, "argv", ["run_policy.py", "--episodes", "2", "--max-steps", "30", "--out", str(out)])
    runpy.run_path(str(bundle / "run_policy.py"), run_name="__main__")
    got = json.loads(out.read_text())["returns"]
    env = make_env(EnvConfig(id="Pendulum-v1"), seed=0, training=False)
    g, want = actor.copy(), []
    for ep in range(2):
        obs, _ = env.reset(seed=ep)
        g.reset()
        total = 0.0
        for _ in range(30):
            y, _ = g.step(g.quantize_input(obs))
            obs, r, *_ = env.step(squash_action(g.output_float(y), env.action_space.low, env.action_space.high))
            total += float(r)
        want.append(total)
    assert got == want and all(r < 0 for r in got)


STUB_VIVADO = r"""
# Vivado's commands as stubs: log every call; add_files insists that its files exist.
set ::calls {}
proc unknown {cmd args} {
    lappend ::calls [concat $cmd $args]
    switch -glob -- $cmd {
        add_files { foreach f [lindex $args end] { if {![file exists $f]} { error "add_files: missing $f" } } }
        get_property { return "100%" }
    }
    return ""
}
set here [pwd]
file mkdir [file join $here rl2fpga rl2fpga.runs impl_1]
close [open [file join $here rl2fpga rl2fpga.runs impl_1 rl2fpga_wrapper.bit] w]
file mkdir [file join $here rl2fpga rl2fpga.gen sources_1 bd rl2fpga hw_handoff]
close [open [file join $here rl2fpga rl2fpga.gen sources_1 bd rl2fpga hw_handoff rl2fpga.hwh] w]
source build.tcl
set f [open calls.txt w]
foreach c $::calls { puts $f $c }
close $f
"""


@pytest.mark.skipif(shutil.which("tclsh") is None, reason="tclsh is not on PATH")
def test_vivado_tcl_runs_under_a_stub_vivado(tmp_path, monkeypatch):
    """The generated script is valid Tcl that adds only existing files and ends with the
    bitstream and .hwh in out/ (Vivado's commands stubbed)."""
    import subprocess

    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    run = make_run(tmp_path, mlp())
    fake_rtl(run.path / "rtl")
    assert main(["board", str(run.path), "--action", "build"]) == 0
    vivado = run.path / "board" / "vivado"
    (vivado / "stub.tcl").write_text(STUB_VIVADO)
    proc = subprocess.run(["tclsh", "stub.tcl"], cwd=vivado, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    calls = (vivado / "calls.txt").read_text().splitlines()
    assert any(c.startswith("ipx::package_project") for c in calls)
    assert any("create_bd_cell -type ip -vlnv xilinx.com:ip:axi_dma:7.1 axi_dma_0" in c for c in calls)
    assert "get_bd_intf_pins rl2fpga_engine_0/s_axis" in calls and "get_bd_intf_pins axi_dma_0/M_AXIS_MM2S" in calls
    assert any(c.startswith("assign_bd_address") and "0x43C00000" in c for c in calls)
    assert (vivado / "out" / "rl2fpga.bit").exists() and (vivado / "out" / "rl2fpga.hwh").exists()
    # a rebuild now finds the bitstream and puts it into the bundle
    assert main(["board", str(run.path), "--action", "build"]) == 0
    assert (run.path / "board" / "bundle" / "rl2fpga.bit").exists()
    assert json.loads((run.path / "board" / "build.json").read_text())["bitstream"]


def test_pynq_target_on_a_simulated_board(tmp_path, monkeypatch, capsys):
    """target=pynq as on the board (pynq's device list holds the simulated PYNQ-Z2): the run's
    bundle is checked against its model, the driver finds the device by itself."""
    import pynq

    model = balancer()
    run = make_run(tmp_path, model, ["board.max_steps=50"])
    _, dev = sim_bundle(run.path / "board", model)
    monkeypatch.setattr(pynq.Device, "_devices", [dev], raising=False)
    monkeypatch.setattr(pynq.Device, "_active_device", dev, raising=False)
    assert main(["board", str(run.path), "--target", "pynq", "--episodes", "2"]) == 0
    s = json.loads((run.path / "board" / "summary.json").read_text())
    assert s["engine"] == "pynq" and s["action_mismatches"] == 0 and s["output_mismatches"] == 0
    assert s["returns"] == s["golden_returns"] == [50.0, 50.0]
    sim_bundle(run.path / "board", mlp())  # the bundle of another model
    assert main(["board", str(run.path), "--target", "pynq", "--episodes", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "was built for another model" in err and "rebuild the bundle" in err
