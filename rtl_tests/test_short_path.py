"""Co-simulation of the short-path dense layer (rl2fpga_dense_layer.sv: register accumulators,
every word requantized each frame, outputs straight from the requantizers, two events per
cycle into a layer whose outputs fill at most half the lanes) vs the golden model: MLPs whose
layers all take the short path, with output counts that are not multiples of the lanes
(padding outputs), several accumulator words per lane (requantized word by word, or all in
one step before a layer that takes two events per cycle: RQ_ALL), per-channel shifts, state resets
mid-episode, threshold writes and random back-pressure; and a CNN whose conv layers take the
general path and whose dense tail takes the short path, fed the (h, w, c) map."""

from __future__ import annotations

import numpy as np
import pytest

from rl2fpga.core.golden import Fmt, random_model
from rl2fpga.hls.cosim.harness import BUILD_ROOT, have_verilator, run_engine
from rl2fpga.hls.engine.generator import generate
from rl2fpga.rtl_tests.checks import assert_matches_golden, drifting_frames

pytestmark = [pytest.mark.verilator, pytest.mark.skipif(not have_verilator(), reason="verilator not installed")]

SHORT = "rl2fpga_dense_layer"
# layers requantizing all their words in one step, by case (the cases that exist to cover it)
RQ_ALL = {"mlp_4882_l4": [False, True, False], "mlp_wide_l3": [False] * 3, "mlp_rqall_l5": [False, True, False]}


def _check(res: dict, n: int) -> None:
    totals = assert_matches_golden(res, n)
    assert min(totals) < max(totals)  # the work varied: deltas, not dense recomputation


@pytest.mark.parametrize("case", [
    # (name, hidden/output widths, lanes, per-channel weight scales)
    ("mlp_4882_l4", [8, 8, 2], 4, False),
    ("mlp_odd_l3", [10, 7, 3], 3, False),
    ("mlp_scales_l4", [13, 6, 2], 4, True),
    ("mlp_pair_l8", [16, 9, 3], 8, True),
    # 20 and 17 outputs on 3 lanes: more than 16 accumulators, requantized word by word
    ("mlp_wide_l3", [20, 17, 2], 3, False),
    # 11 outputs on 5 lanes before a 2-output layer (two events per cycle): 3 words in one step
    ("mlp_rqall_l5", [9, 11, 2], 5, False),
])
def test_short_path_mlp(case: tuple[str, list[int], int, bool]) -> None:
    from rl2fpga.train.frames import record_cartpole

    name, widths, lanes, scales = case
    rng = np.random.default_rng(len(name) + sum(widths))
    kw = {"w_frac_spread": 3, "out_fmt": Fmt(16, 12, True)} if scales else {}
    g = random_model(rng, (4,), [("dense", n) for n in widths], sparsity=0.1, w_bits=4,
                     in_fmt=Fmt(12, 5, True), threshold=2, **kw)
    assert all(layer.per_channel for layer in g.layers) == scales
    frames, starts = record_cartpole(90, seed=4)
    root = BUILD_ROOT / "tests" / f"short_{name}"
    g.save(root / "golden")
    d = generate(g, root / "rtl", lanes=lanes, input_bytes_per_beat=8, fmt="dense")
    assert [p.module for p in d.layers] == [SHORT] * len(widths)
    if name in RQ_ALL:
        assert [p.rq_all for p in d.layers] == RQ_ALL[name]
    res = run_engine(d, root / "golden", frames, root / "work", seed=5, idle=0.3, stall=0.3,
                     resets=sorted(set(starts[1:]) | {33}), threshold_writes={50: [(1, 0)], 70: [(2, 5), (1, 3)]})
    _check(res, len(frames))


def test_short_path_after_conv() -> None:
    """conv (general path, dense format) -> conv -> dense 7 -> dense 3 (short path): the dense
    layer's events carry the conv map's (y, x, c)."""
    rng = np.random.default_rng(12)
    g = random_model(rng, (11, 9, 2), [("conv2d", 5, 3, 2), ("conv2d", 4, 2, 1), ("dense", 7), ("dense", 3)],
                     sparsity=0.3, threshold=1)
    frames = drifting_frames(rng, (11, 9, 2), 30, 0.08)
    root = BUILD_ROOT / "tests" / "short_after_conv"
    g.save(root / "golden")
    d = generate(g, root / "rtl", lanes=3, input_bytes_per_beat=16, fmt="dense")
    assert [p.module for p in d.layers] == ["rl2fpga_layer", "rl2fpga_layer", SHORT, SHORT]
    res = run_engine(d, root / "golden", frames, root / "work", seed=6, idle=0.3, stall=0.3,
                     resets=[12], threshold_writes={20: [(2, 0), (3, 2)]})
    _check(res, len(frames))
