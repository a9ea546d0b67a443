"""Whole-network co-simulation of the sparse delta engine (cocotb + Verilator) vs the golden
model: real episodes, random back-pressure and idle on both streams, state resets at episode
starts and mid-episode, threshold writes. Every frame's outputs, action, event and MAC
counters must equal the golden model's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rl2fpga.core.golden import Fmt, GoldenModel, random_model
from rl2fpga.hls.cosim.harness import BUILD_ROOT, have_verilator, run_engine
from rl2fpga.hls.engine.generator import generate
from rl2fpga.rtl_tests.checks import assert_matches_golden, drifting_frames

pytestmark = [pytest.mark.verilator, pytest.mark.skipif(not have_verilator(), reason="verilator not installed")]


def _cosim(name: str, golden: GoldenModel, frames: np.ndarray, lanes: int, beat_bytes: int,
           frame_stack: bool = False, schedule: str = "frame", row_order: str = "top_down", **kw) -> dict:
    root = BUILD_ROOT / "tests" / name
    golden.save(root / "golden")
    design = generate(golden, root / "rtl", lanes=lanes, input_bytes_per_beat=beat_bytes, frame_stack=frame_stack,
                      schedule=schedule, row_order=row_order)
    return run_engine(design, root / "golden", frames, root / "work", **kw)


def _check(res: dict, n: int) -> None:
    totals = assert_matches_golden(res, n)
    # the work really was sparse: some frame did fewer MACs than the first (dense) one
    assert min(totals) < totals[0]
    _check_stage_marks(res)


def _check_stage_marks(res: dict) -> None:
    """The stage probes (where a frame's cycles go): the last input beat cannot come before one
    beat per cycle allows; each event link's end marker follows the one before it (a layer ends
    its frame only after its input has); the action beat comes no earlier; the stage times add up to
    the cycles of every frame."""
    from rl2fpga.hls.cosim.latency import stage_times

    frames = res["per_frame"]
    n_layers = len(frames[0]["macs"])
    for f in frames:
        m = f["marks"]
        assert len(m) == n_layers + 2, m
        assert m[0] >= f["input_bytes"] // res["beat_bytes"], (f["index"], m)
        assert all(a <= b for a, b in zip(m, m[1:], strict=False)), (f["index"], m)
        assert m[-1] <= f["cycles"], (f["index"], m, f["cycles"])
    st = stage_times(frames, [f"l{k}" for k in range(n_layers)])
    assert st is not None and len(st["mean"]) == n_layers + 3
    assert abs(sum(st["mean"]) - st["mean_cycles"]) < 1e-6 * st["mean_cycles"]


@pytest.mark.slow
def test_cartpole_mlp_real_episodes() -> None:
    """4 -> 64 -> 64 -> 2, ~90 % sparse, 16-bit signed inputs (2-byte elements), 220 real
    CartPole frames; resets at every episode start and once mid-episode; a hidden threshold
    is rewritten mid-episode (the all-dirty pass after a threshold write)."""
    from rl2fpga.train.frames import record_cartpole

    rng = np.random.default_rng(7)
    g = random_model(rng, (4,), [("dense", 64), ("dense", 64), ("dense", 2)], sparsity=0.9,
                     in_fmt=Fmt(16, 5, True))
    g.set_thresholds([20, 2, 2])
    frames, starts = record_cartpole(220, seed=3)
    n = len(frames)
    res = _cosim("cartpole_mlp", g, frames, lanes=4, beat_bytes=8, seed=1, idle=0.3, stall=0.3,
                 resets=sorted(set(starts[1:]) | {111}), threshold_writes={150: [(1, 0)], 180: [(2, 4)]})
    _check(res, n)


@pytest.mark.slow
def test_odd_cnn_borders_strides_lanes() -> None:
    """A small CNN with awkward shapes: kernel 3 stride 2, stride 3 > kernel 2 (gaps), channel
    counts that are not multiples of the 3 lanes, 16-byte beats that split pixels; the dense
    layer takes the (h, w, c) feature map (the Atari test covers a flat input)."""
    rng = np.random.default_rng(11)
    g = random_model(rng, (15, 13, 3), [("conv2d", 5, 3, 2), ("conv2d", 7, 2, 3), ("dense", 7), ("dense", 3)],
                     sparsity=0.6, threshold=1)
    frames = drifting_frames(rng, (15, 13, 3), 40, 0.05)  # a sparse random walk of pixels
    res = _cosim("odd_cnn", g, frames, lanes=3, beat_bytes=16, seed=2, idle=0.4, stall=0.4,
                 resets=[17], threshold_writes={25: [(1, 0), (2, 3)]})
    _check(res, 40)


@pytest.mark.slow
def test_per_layer_lanes() -> None:
    """Lanes per layer (rtl.layer_lanes): 2 on the conv, 7 (more than its 5 outputs: idle lanes)
    and 1 on the hidden dense layers, 3 on the output; outputs, actions and MAC counters ==
    golden under back-pressure, with a reset and a threshold write."""
    rng = np.random.default_rng(12)
    g = random_model(rng, (11, 12, 2), [("conv2d", 5, 3, 2), ("dense", 5), ("dense", 9), ("dense", 3)],
                     sparsity=0.5, threshold=1, flatten=True)
    frames = drifting_frames(rng, (11, 12, 2), 30, 0.08)
    root = BUILD_ROOT / "tests" / "per_layer_lanes"
    g.save(root / "golden")
    design = generate(g, root / "rtl", lanes=[2, 7, 1, 3], input_bytes_per_beat=8)
    res = run_engine(design, root / "golden", frames, root / "work", seed=5, idle=0.3, stall=0.3, resets=[13],
                     threshold_writes={20: [(2, 0)]})
    _check(res, 30)


def stacked_walk(rng: np.random.Generator, n: int, h: int, w: int, k: int, p: float = 0.05) -> np.ndarray:
    """``n`` consecutive (h, w, k) frame stacks of a sparse random walk of pixels, built as
    train/envs.py's FrameStackLast does: at the start all k frames are the first frame, then
    each step drops the oldest and appends the newest."""
    f = rng.integers(0, 256, size=(h, w))
    stack = [f] * k
    out = []
    for _ in range(n):
        out.append(np.stack(stack, axis=-1).astype(np.uint8))
        f = np.where(rng.random(f.shape) < p, rng.integers(0, 256, size=f.shape), f)
        stack = stack[1:] + [f]
    return np.stack(out)


@pytest.mark.parametrize("row_order", ["top_down", "bottom_up"])
def test_row_schedule(row_order: str) -> None:
    """Row schedule: each conv layer walks an output row as soon as the input rows it reads are
    in (row markers on the links), rows sent top down or bottom up. Outputs, events and MACs ==
    golden through resets and threshold writes (sweep frames), back-pressure, strides that leave input rows unused
    (13 rows, 3x3 / 2: row 12 feeds nothing; then 2x2 / 3 over 6 rows) and a dense tail."""
    rng = np.random.default_rng(7)
    g = random_model(rng, (13, 15, 4), [("conv2d", 6, 3, 2), ("conv2d", 5, 2, 3), ("conv2d", 4, 1, 1),
                                        ("dense", 9), ("dense", 3)], sparsity=0.6, threshold=1)
    frames = stacked_walk(rng, 30, 13, 15, 4)
    res = _cosim(f"rows_{row_order}", g, frames, lanes=3, beat_bytes=8, frame_stack=True, seed=6, idle=0.3,
                 stall=0.3, resets=[11], threshold_writes={19: [(1, 0), (2, 2)]}, schedule="rows",
                 row_order=row_order)
    _check(res, 30)


@pytest.mark.slow
def test_frame_stack_in_fabric() -> None:
    """Frame stack kept in fabric: the TB sends only the newest frame (a full stack after each
    state reset), 13 x 15 pixels = 195 bytes, not a whole number of 8-byte beats; the engine
    must present the same (13, 15, 4) input as the golden model's. Resets mid-run, back-
    pressure, a conv with stride 3 > kernel 2 and a dense tail."""
    rng = np.random.default_rng(5)
    g = random_model(rng, (13, 15, 4), [("conv2d", 6, 3, 2), ("conv2d", 5, 2, 3), ("dense", 9), ("dense", 3)],
                     sparsity=0.6, threshold=1)
    frames = stacked_walk(rng, 40, 13, 15, 4)
    res = _cosim("frame_stack", g, frames, lanes=3, beat_bytes=8, frame_stack=True, seed=4, idle=0.3,
                 stall=0.3, resets=[9, 23])
    _check(res, 40)
    full = {0, 9, 23}
    for f in res["per_frame"]:
        # the stream carried one plane (25 beats) per frame, four after a reset
        assert f["input_bytes"] == (4 if f["index"] in full else 1) * 25 * 8


def atari_model(seed: int = 1, sparsity: float = 0.9, threshold: int = 2) -> GoldenModel:
    """The papers' Atari CNN (84x84x4 -> conv 32 8x8/4 -> conv 32 4x4/2 -> conv 64 3x3/2 ->
    flatten -> dense 512 -> dense 4), pruned random integer weights; fc1 takes the flat 1024
    vector, as in a model extracted from QKeras."""
    rng = np.random.default_rng(seed)
    return random_model(rng, (84, 84, 4),
                        [("conv2d", 32, 8, 4), ("conv2d", 32, 4, 2), ("conv2d", 64, 3, 2), ("dense", 512), ("dense", 4)],
                        sparsity=sparsity, threshold=threshold, flatten=True)


@pytest.mark.slow
def test_atari_cnn_real_breakout() -> None:
    """The Atari CNN, 90 % sparse, T_int = 2 on every layer, 220 consecutive real Breakout
    frames under random back-pressure, resets at episode starts and mid-episode."""
    from rl2fpga.train.frames import record

    frames, starts = record(220, seed=0)
    res = _cosim("atari_cnn", atari_model(), frames, lanes=4, beat_bytes=128, seed=3, idle=0.2, stall=0.3,
                 resets=sorted(set(starts[1:]) | {120}))
    _check(res, len(frames))


def test_frames_helper_shapes() -> None:
    from rl2fpga.train.frames import record

    frames, starts = record(8, seed=5)
    assert frames.shape == (8, 84, 84, 4) and frames.dtype == np.uint8
    assert starts[0] == 0
    # frame stacking: the newest channel of frame t is channel 2 of frame t+1
    assert np.array_equal(frames[0][..., 3], frames[1][..., 2])
    assert Path(BUILD_ROOT).name == "build"
