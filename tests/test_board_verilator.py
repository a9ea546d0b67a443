"""Closed loop through the PYNQ driver, the simulated AXI DMA and the generated RTL clocked by
Verilator: every step's outputs, action and MAC counters against the golden model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from board_models import balancer

from rl2fpga.board.driver import EngineDriver
from rl2fpga.board.simdevice import SimDevice
from rl2fpga.board.verilator_engine import VerilatorEngine
from rl2fpga.cli import main
from rl2fpga.config import RunConfig, apply_overrides
from rl2fpga.core.golden import random_model
from rl2fpga.run import Run

pytestmark = [
    pytest.mark.verilator,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("verilator") is None, reason="verilator is not on PATH"),
]

REPO = Path(__file__).resolve().parents[1]
ATARI_CNN = [("conv2d", 32, 8, 4), ("conv2d", 32, 4, 2), ("conv2d", 64, 3, 2), ("dense", 512), ("dense", 4)]


def make_run(tmp: Path, model, sets: list[str], **gen) -> Run:
    from rl2fpga.hls.engine import generator as rtlgen

    cfg = apply_overrides(RunConfig(), ["board.emulator_engine=verilator", "rtl.lanes=4", "rtl.input_bytes_per_beat=8", *sets])
    run = Run.create(cfg, path=tmp / "run")
    model.save(run.path / "quantize" / "golden")
    rtlgen.generate(model, run.path / "rtl", cfg.rtl.lanes, cfg.rtl.input_bytes_per_beat, **gen)
    from rl2fpga.manifest import record_files

    record_files(run.path / "rtl")  # as the rtl step does: the board step verifies these hashes
    return run


def test_cartpole_verilator_episodes_equal_golden(tmp_path):
    model = balancer()
    run = make_run(tmp_path, model, ["env.id=CartPole-v1", "seed=3", "board.max_steps=200"])
    assert main(["board", str(run.path), "--target", "emulator", "--episodes", "3"]) == 0
    s = json.loads((run.path / "board" / "summary.json").read_text())
    assert s["engine"] == "verilator"
    assert s["action_mismatches"] == 0 and s["output_mismatches"] == 0 and s["mac_mismatches"] == 0
    assert len(s["returns"]) == 3 and s["returns"] == s["golden_returns"] and s["steps"] == sum(s["returns"])
    assert min(s["returns"]) >= 100 and s["cycles_per_step"]["min"] > 0

    # a busy interconnect: 30 % idle input cycles and output back-pressure, same results
    stalled = VerilatorEngine(run.path / "rtl", run.path / "board" / "verilator", model, 4, 8, stalls=0.3, seed=7)
    bundle = run.path / "board" / "emulator"
    drv = EngineDriver(bundle / "rl2fpga.bit", bundle / "manifest.json", device=SimDevice(stalled))
    ref = model.copy()
    rng = np.random.default_rng(2)
    plain_cycles = s["cycles_per_step"]["mean"]
    cycles = []
    for _ in range(100):
        x = drv.quantize(rng.normal(0, 0.3, 4))
        values, action = drv.infer(x)
        y, stats = ref.step(x)
        assert values.tolist() == y.tolist() and action == model.action(y)
        assert drv.counters()["macs"] == stats.macs
        cycles.append(drv.counters()["cycles"])
    assert np.mean(cycles) > plain_cycles  # the stalls did happen

    # the comparison can fail: flip bit 6 of lane 0's first weight word of the output layer (the
    # low w_bits of a word are the weight in every storage format: 64 <-> 0; read by $readmemh
    # at start-up, so the cached library is reused) and the outputs disagree. (The biases are
    # all zero: their image is 1 bit wide, too narrow for a large corruption.)
    mem = run.path / "rtl" / "d1_waa.mem"
    lines = mem.read_text().splitlines()
    i = next(k for k, ln in enumerate(lines) if ln.strip() and not ln.startswith("//"))
    lines[i] = format(int(lines[i], 16) ^ (1 << 6), f"0{len(lines[i])}x")
    mem.write_text("\n".join(lines) + "\n")
    assert main(["board", str(run.path), "--target", "emulator", "--episodes", "1"]) == 2  # edited: refused
    from rl2fpga.manifest import record_files

    record_files(run.path / "rtl")  # as if the generator itself had written the wrong bias
    assert main(["board", str(run.path), "--target", "emulator", "--episodes", "1"]) == 0
    bad = json.loads((run.path / "board" / "summary.json").read_text())
    assert bad["engine"] == "verilator" and bad["output_mismatches"] > 0


@pytest.mark.parametrize("steps,gen", [
    (500, {}),
    # the row schedule with rows sent bottom up, frame stack in fabric: the PYNQ driver reads INFO
    # bit 25 from the engine and sends each plane's rows last to first (a top-down packet would
    # not match: the engine would see every frame upside down)
    (300, {"frame_stack": True, "schedule": "rows", "row_order": "bottom_up"}),
], ids=["frame", "rows_bottom_up"])
def test_breakout_through_verilator(tmp_path, steps: int, gen: dict):
    """The papers' Atari CNN, random-pruned to 90 %, consecutive agent steps of Breakout in
    closed loop through the driver, the simulated DMA and the Verilator engine."""
    from rl2fpga.board.play import make_backend, play

    model = random_model(np.random.default_rng(0), (84, 84, 4), ATARI_CNN, sparsity=0.9, threshold=2)
    run = make_run(tmp_path, model, ["env.id=ALE/Breakout-v5", "seed=0", "board.episodes=20",
                                     f"board.max_steps={steps}"], **gen)
    cfg = run.config()
    backend, engine = make_backend(run, cfg, model)
    assert engine == "verilator"
    log = play(cfg, model, backend, step_budget=steps)
    assert sum(log.steps) == steps
    assert log.action_mismatches == 0 and log.output_mismatches == 0 and log.mac_mismatches == 0, log.first_mismatch
    assert len(log.cycles) == steps and min(log.cycles) > 0
