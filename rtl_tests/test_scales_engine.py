"""The sparse delta engine with per-output-channel weight scales (``<layer>_shift.mem``):
co-simulation == golden on real CartPole frames and a CNN at 2 and 4 bits, MAC counters ==
golden; a shift one off in one channel of the generated image is seen as mismatches."""

from __future__ import annotations

import re

import numpy as np
import pytest

from rl2fpga.core.golden import Fmt, GoldenModel, random_model
from rl2fpga.hls.cosim.harness import BUILD_ROOT, have_verilator, run_engine
from rl2fpga.hls.engine.generator import generate
from rl2fpga.rtl_tests.checks import assert_matches_golden, drifting_frames

pytestmark = [pytest.mark.verilator, pytest.mark.slow,
              pytest.mark.skipif(not have_verilator(), reason="verilator not installed")]

OUT = Fmt(16, 12, True)  # 4 output fractional bits: fits 2-bit weights


def _check(res: dict, n: int) -> None:
    assert_matches_golden(res, n, actions=False)


def _cartpole_model(bits: int) -> tuple[GoldenModel, np.ndarray, list[int]]:
    from rl2fpga.train.frames import record_cartpole

    g = random_model(np.random.default_rng(bits), (4,), [("dense", 24), ("dense", 16), ("dense", 2)], sparsity=0.5,
                     in_fmt=Fmt(16, 5, True), w_bits=bits, w_frac_spread=3, out_fmt=OUT)
    g.set_thresholds([20, 1, 1])
    frames, starts = record_cartpole(40, seed=5)
    return g, frames, starts


@pytest.mark.parametrize("bits", [2, 4])
def test_cartpole_per_channel(bits: int) -> None:
    g, frames, starts = _cartpole_model(bits)
    assert all(layer.per_channel for layer in g.layers)
    root = BUILD_ROOT / "tests" / f"scales_mlp{bits}"
    g.save(root / "golden")
    d = generate(g, root / "rtl", lanes=4, input_bytes_per_beat=8)
    assert all(p.shift_bits > 0 and (d.out_dir / p.shift_file).exists() for p in d.layers)
    res = run_engine(d, root / "golden", frames, root / "work", seed=1, idle=0.2, stall=0.2, resets=starts[1:])
    _check(res, len(frames))


def test_cnn_per_channel_4bit() -> None:
    rng = np.random.default_rng(13)
    g = random_model(rng, (11, 9, 2), [("conv2d", 5, 3, 2), ("dense", 6), ("dense", 3)], sparsity=0.5, threshold=1,
                     w_bits=4, w_frac_spread=2, out_fmt=OUT)
    frames = drifting_frames(rng, (11, 9, 2), 12, 0.1)
    root = BUILD_ROOT / "tests" / "scales_cnn4"
    g.save(root / "golden")
    d = generate(g, root / "rtl", lanes=3, input_bytes_per_beat=16)
    _check(run_engine(d, root / "golden", frames, root / "work", seed=2, idle=0.3, stall=0.3), 12)


def test_shift_off_by_one_in_image_is_a_mismatch() -> None:
    """Channel 0 of the last layer gets its shift one off in the generated image (the RTL then
    outputs twice or half golden's value): the co-simulation must report mismatches."""
    g, frames, _ = _cartpole_model(4)
    root = BUILD_ROOT / "tests" / "scales_corrupt"
    g.save(root / "golden")
    d = generate(g, root / "rtl", lanes=4, input_bytes_per_beat=8)
    plan = d.layers[-1]
    path = d.out_dir / plan.shift_file
    lines = path.read_text().splitlines()
    i = next(k for k, ln in enumerate(lines) if not ln.startswith("//"))  # row 0, after the header lines
    row = int(lines[i], 16)
    mask = (1 << plan.shift_bits) - 1
    good = row & mask
    assert good == g.layers[-1].shifts[0]  # the image holds golden's shift (lane 0 = channel 0)
    bad = good - 1 if good > 0 else good + 1
    lines[i] = f"{(row & ~mask) | bad:0{len(lines[i])}x}"
    assert re.fullmatch(r"[0-9a-f]+", lines[i])
    path.write_text("\n".join(lines) + "\n")
    res = run_engine(d, root / "golden", frames[:10], root / "work", seed=1)
    assert res["mismatches"] > 0


@pytest.mark.parametrize("lanes", [1, 3])
def test_per_channel_design_lints_and_counts_shift_bits(tmp_path, lanes: int) -> None:
    from rl2fpga.hls.engine.generator import lint

    rng = np.random.default_rng(lanes)
    g = random_model(rng, (11, 9, 2), [("conv2d", 5, 3, 2), ("dense", 7), ("dense", 3)], sparsity=0.6,
                     w_bits=2, w_frac_spread=4, out_fmt=OUT)
    d = generate(g, tmp_path, lanes=lanes, input_bytes_per_beat=16)
    log = lint(d, tmp_path / "lint.log")
    assert "%Warning" not in log and "%Error" not in log
    for p, layer in zip(d.layers, g.layers, strict=True):
        rows = [ln for ln in (d.out_dir / p.shift_file).read_text().splitlines() if not ln.startswith("//")]
        assert len(rows) == p.fb and p.mem_bits["shifts"] == p.fb * lanes * p.shift_bits
        assert (1 << p.shift_bits) > int(layer.shifts.max())
