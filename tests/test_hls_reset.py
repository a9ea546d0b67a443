"""The hls4ml firmware's episode reset: the top function's ``rl2fpga_reset`` port clears every
delta stage's stored inputs. C simulation across several real episode boundaries, driving the
port at each episode start, must equal the golden model (which resets there); the same frames
without the reset must not (so the test can fail). Every backend: Vivado and Vitis (a plain
port), VivadoAccelerator (the flag is the first word of the input stream), io_parallel and
io_stream."""

from __future__ import annotations

import numpy as np
import pytest

from rl2fpga.config import EnvConfig, HlsConfig
from rl2fpga.core.golden import Fmt, GoldenModel, random_model
from rl2fpga.hls.hls4ml import flow

pytestmark = pytest.mark.slow


def _mlp() -> GoldenModel:
    rng = np.random.default_rng(3)
    return random_model(rng, (4,), [("dense", 16), ("dense", 2)], sparsity=0.5, w_bits=8,
                        in_fmt=Fmt(8, 3, True), act=Fmt(8, 3, False), out_fmt=Fmt(16, 8, True), threshold=2)


def _cnn() -> GoldenModel:
    rng = np.random.default_rng(4)
    return random_model(rng, (8, 8, 2), [("conv2d", 3, 3, 2), ("dense", 5), ("dense", 2)], sparsity=0.5,
                        threshold=3)


def _cartpole_frames(golden: GoldenModel) -> tuple[np.ndarray, np.ndarray]:
    x, starts = flow.collect_frames(EnvConfig(id="CartPole-v1"), golden, 150, seed=5)
    return x, starts


def _pixel_frames() -> tuple[np.ndarray, np.ndarray]:
    """4 episodes of a sparse random walk of 8x8x2 pixels; each episode starts elsewhere."""
    rng = np.random.default_rng(6)
    frames, starts = [], []
    for _ in range(4):
        x = rng.integers(0, 256, (8, 8, 2))
        for t in range(12):
            frames.append(x.copy())
            starts.append(t == 0)
            x = np.where(rng.random(x.shape) < 0.1, rng.integers(0, 256, x.shape), x)
    return np.stack(frames), np.array(starts)


@pytest.mark.parametrize("backend, model", [("Vitis", "mlp"), ("Vivado", "cnn"), ("VivadoAccelerator", "mlp")])
def test_csim_episode_reset_port(tmp_path, backend: str, model: str) -> None:
    golden = _mlp() if model == "mlp" else _cnn()
    x, starts = _cartpole_frames(golden) if model == "mlp" else _pixel_frames()
    assert starts[0] and starts[1:].sum() >= 3  # >= 3 episode boundaries after the first
    hcfg = HlsConfig(backend=backend)
    if backend == "VivadoAccelerator":
        hcfg.board = "pynq-z2"
    project = flow.convert(golden, hcfg, tmp_path / backend, backend=backend)
    csim = flow.CSim(project, golden)  # writes (through the writer hook) and compiles
    cpp = (tmp_path / backend / "firmware" / f"{flow.PROJECT_NAME}.cpp").read_text()
    assert "bool rl2fpga_reset" in cpp and cpp.count(", rl2fpga_reset);") == len(project.stages)
    with_reset = flow.compare_with_golden(csim, x, starts, progress=False)
    assert with_reset.mismatches == 0
    # the same frames, never resetting the firmware: the golden model (which resets) differs
    csim.reset()
    golden_ref = golden.copy()
    no_reset = []
    for i, frame in enumerate(x):
        if starts[i]:
            golden_ref.reset()
        no_reset.append(np.array_equal(csim.step(frame), golden_ref.step(frame)[0].reshape(-1)))
    assert not all(no_reset), "the state never mattered: this test could not fail"
