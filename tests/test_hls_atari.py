"""hls4ml C simulation of the papers' Atari CNN (84x84x4 -> conv 32 8x8/4 -> conv 32 4x4/2 ->
conv 64 3x3/2 -> dense 512 -> dense 4; random, 90 % pruned, 8-bit; io_stream) against the golden
model on 500 consecutive real Breakout frames, delta stages active and inactive.

One hls4ml conversion and one g++ compile for the whole module: the thresholds are set at run
time through the C-simulation hook of the delta stage. The Breakout frames are generated once.
"""

from __future__ import annotations

import numpy as np
import pytest

from rl2fpga.config import EnvConfig, HlsConfig
from rl2fpga.core.golden import GoldenModel, random_model
from rl2fpga.hls.hls4ml import flow

pytestmark = pytest.mark.slow

N_FRAMES = 500
ATARI = [("conv2d", 32, 8, 4), ("conv2d", 32, 4, 2), ("conv2d", 64, 3, 2), ("dense", 512), ("dense", 4)]
THRESHOLDS = [2, 1, 1, 1, 1]  # T = 0.01 on the 2^-8 pixel grid is 2 LSBs; hidden layers 1 LSB


@pytest.fixture(scope="session")
def atari_golden() -> GoldenModel:
    g = random_model(np.random.default_rng(11), (84, 84, 4), ATARI, sparsity=0.9)
    g.set_thresholds(THRESHOLDS)
    return g


@pytest.fixture(scope="session")
def breakout_frames(atari_golden: GoldenModel) -> tuple[np.ndarray, np.ndarray]:
    """500 consecutive Breakout observations (AtariPreprocessing on a frameskip=1 base env,
    4 stacked frames, channels-last uint8 -> integers p meaning p * 2^-8)."""
    x, starts = flow.collect_frames(EnvConfig(id="ALE/Breakout-v5"), atari_golden, N_FRAMES, seed=5, eps=0.3)
    assert x.shape == (N_FRAMES, 84, 84, 4) and x.max() <= 255 and x.min() >= 0 and starts[0]
    return x, starts


@pytest.fixture(scope="module")
def atari_csim(atari_golden: GoldenModel, tmp_path_factory: pytest.TempPathFactory) -> flow.CSim:
    project = flow.convert(atari_golden, HlsConfig(backend="Vitis"), tmp_path_factory.mktemp("atari") / "vitis")
    assert project.io_type == "io_stream" and project.stages == [0, 1, 2, 3, 4]
    return flow.CSim(project, atari_golden)


def test_atari_csim_equals_golden_with_and_without_delta(atari_golden, breakout_frames, atari_csim) -> None:
    x, starts = breakout_frames
    active = flow.compare_with_golden(atari_csim, x, starts, progress=False)
    inactive = flow.compare_with_golden(atari_csim, x, starts, thresholds=[0] * 5, progress=False)
    assert active.frames == inactive.frames == N_FRAMES
    assert active.mismatches == 0, f"first mismatch at frame {active.first_mismatch}"
    assert inactive.mismatches == 0, f"first mismatch at frame {inactive.first_mismatch}"
    assert np.array_equal(active.outputs, active.golden_outputs)
    # with T = 0 every change is transmitted, so the output is the stateless dense inference
    dense = np.array([atari_golden.forward(frame).reshape(-1) for frame in x])
    assert np.array_equal(inactive.outputs, dense)
    # the test can fail: the delta stages change the outputs on some frames, in both models
    changed = (active.golden_outputs != inactive.golden_outputs).any(axis=1)
    assert changed.sum() > 0
    assert np.array_equal((active.outputs != inactive.outputs).any(axis=1), changed)


def test_atari_weights_written_with_pruned_zeros(atari_golden, atari_csim) -> None:
    counts = flow.check_written_weights(atari_csim.project, atari_golden)
    for layer in atari_golden.layers:
        assert counts[layer.name]["nonzero"] == int(np.count_nonzero(layer.w))
        assert counts[layer.name]["zero"] == int(layer.w.size - np.count_nonzero(layer.w))
