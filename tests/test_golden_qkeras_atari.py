"""The papers' Atari CNN on real ALE Breakout frames: golden == QKeras on integers, incremental ==
direct over a real frame sequence, significant multiplications == a brute-force walk (conv
borders included). The network is randomly initialised, magnitude-pruned and quantized."""

import numpy as np
import pytest
import tensorflow as tf

from rl2fpga.config import EnvConfig, QuantizeConfig
from rl2fpga.core.golden import Fmt
from rl2fpga.core.layers import Conv2D
from rl2fpga.quantize.prune import apply_masks, magnitude_masks
from rl2fpga.quantize.qkeras_model import (
    FLOAT32_EXACT,
    float32_bounds,
    golden_from_qkeras,
    grid_float,
    input_format,
    qkeras_int_outputs,
    quantize_model,
    threshold_ints,
)
from rl2fpga.train.networks import cnn

pytestmark = pytest.mark.slow


def breakout_frames(n: int, seed: int = 0) -> np.ndarray:
    """Real stacked frames (84, 84, 4) uint8 of Breakout under a random policy."""
    from rl2fpga.train.envs import make_env

    env = make_env(EnvConfig(id="ALE/Breakout-v5"), seed, training=False)
    obs, _ = env.reset(seed=seed)
    frames = []
    while len(frames) < n:
        frames.append(obs)
        obs, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            obs, _ = env.reset()
    env.close()
    return np.asarray(frames)


@pytest.fixture(scope="module")
def atari():
    tf.keras.utils.set_random_seed(0)
    model = cnn(4, "atari")
    masks = magnitude_masks(model, 0.8)
    apply_masks(model, masks)
    frames = breakout_frames(1100)
    fmt = input_format(frames)
    assert fmt == Fmt(8, 0, False)
    # 8-bit weights as the Breakout config (the default is 4 bits, for small students)
    q = quantize_model(model, QuantizeConfig(weight_bits=8), masks, fmt, samples=grid_float(frames[::4], fmt))
    return model, q, masks, frames, fmt


def test_breakout_golden_equals_qkeras(atari):
    _, q, masks, frames, fmt = atari
    gm = golden_from_qkeras(q, fmt, 0)
    assert max(float32_bounds(gm)) < FLOAT32_EXACT  # static proof that float32 is exact here
    for la in gm.layers:
        assert (la.w[~masks[la.name]] == 0).all()
    x = frames[:1000].astype(np.int64)
    y_q = qkeras_int_outputs(q, gm, x)
    y_g = np.stack([gm.forward(f) for f in x])
    assert np.array_equal(y_q, y_g)
    assert len(np.unique(y_g)) > 50  # real outputs, not a saturated constant


def _brute_conv(w: np.ndarray, changed: np.ndarray, stride: int) -> int:
    kh, kw, _, _ = w.shape
    h, wd, _ = changed.shape
    nz = w != 0
    n = 0
    for y in range(0, h - kh + 1, stride):
        for x in range(0, wd - kw + 1, stride):
            n += int((changed[y : y + kh, x : x + kw, :, None] & nz).sum())
    return n


def test_breakout_incremental_direct_and_brute_force(atari):
    _, q, _, frames, fmt = atari
    gm = golden_from_qkeras(q, fmt, 0)
    t_int = threshold_ints(gm, 0.01)
    assert t_int[0] == 2  # 0.01 / 2^-8 = 2.56
    gm.set_thresholds(t_int)
    g2 = gm.copy()
    seq = frames[:120].astype(np.int64)
    for i, f in enumerate(seq):
        prev = [h.copy() for h in gm.x_hat]
        y1, s1 = gm.step(f)
        y2, s2 = g2.step(f, incremental=True)
        assert np.array_equal(y1, y2) and s1.macs == s2.macs
        if i in (0, 1, 7, 60):
            assert s1.macs[0] == _brute_conv(gm.layers[0].w, np.abs(f - prev[0]) > t_int[0], gm.layers[0].stride[0])
            for k, la in enumerate(gm.layers):
                # an input was transmitted exactly when its kept value changed (|d| > T >= 0)
                changed = gm.x_hat[k] != prev[k]
                if isinstance(la, Conv2D):
                    brute = _brute_conv(la.w, changed, la.stride[0])
                else:
                    brute = sum(int(np.count_nonzero(la.w[j])) for j in np.flatnonzero(changed.reshape(-1)))
                assert s1.macs[k] == brute, (i, la.name)
    # real frames change little: far fewer first-layer multiplications than dense ones
    _, st = gm.step(seq[-1])
    assert st.macs[0] < 0.2 * gm.layers[0].dense_mults()
