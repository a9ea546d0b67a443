"""Delta emulation, Table-1 counts from Keras models, compression accounting, golden over real
CartPole episodes (incremental == direct, significant == brute force)."""

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from rl2fpga.config import QuantizeConfig
from rl2fpga.core.layers import Layer
from rl2fpga.quantize.compression import compression
from rl2fpga.quantize.delta import FloatDeltaNetwork, float_layers
from rl2fpga.quantize.prune import apply_masks, magnitude_masks
from rl2fpga.quantize.qkeras_model import (
    golden_from_qkeras,
    grid_float,
    input_format,
    quantize_model,
    to_grid,
)
from rl2fpga.train.networks import cnn, mlp


def test_table1_dense_mults_from_keras_atari_model():
    model = cnn(6, "atari")
    sizes = [84]
    for k, s in ((8, 4), (4, 2), (3, 2)):
        sizes.append((sizes[-1] - k) // s + 1)
    expect = [sizes[1] ** 2 * 32 * 8 * 8 * 4, sizes[2] ** 2 * 32 * 4 * 4 * 32, sizes[3] ** 2 * 64 * 3 * 3 * 32,
              sizes[3] ** 2 * 64 * 512, 512 * 6]
    assert expect == [20 * 20 * 32 * 256, 9 * 9 * 32 * 512, 4 * 4 * 64 * 288, 1024 * 512, 3072]
    assert [la.structure.dense_mults() for la in float_layers(model)] == expect


def _brute(w: np.ndarray, changed: np.ndarray, stride: int) -> int:
    kh, kw, cin, _ = w.shape
    h, wd, _ = changed.shape
    oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    n = 0
    for y in range(oh):
        for x in range(ow):
            n += int((changed[y * stride : y * stride + kh, x * stride : x * stride + kw, :, None] & (w != 0)).sum())
    return n


def test_float_delta_t0_is_exact_and_counts_all_nonzero_inputs():
    tf.keras.utils.set_random_seed(0)
    model = cnn(3, "atari", dense=16, input_shape=(46, 43, 2))  # borders: 46-8, 43-8 not stride multiples
    masks = magnitude_masks(model, 0.5)
    apply_masks(model, masks)
    rng = np.random.default_rng(0)
    net = FloatDeltaNetwork(model, 0.0)
    x = rng.random((46, 43, 2))
    for t in range(4):
        x = np.where(rng.random(x.shape) < 0.1, rng.random(x.shape), x)
        y, st = net.step(x)
        np.testing.assert_allclose(y, model(x[None].astype(np.float32)).numpy()[0], rtol=1e-4, atol=1e-5)
        if t == 0:  # from x_hat = 0 every nonzero input is an event
            assert st.events[0] == int((x != 0).sum())
    # the first layer's count against a brute-force walk of the receptive fields
    changed = rng.random((46, 43, 2)) < 0.2
    layer = net.layers[0]
    assert layer.structure.significant(changed) == _brute(layer.w, changed, 4)


def test_float_delta_threshold_suppresses_small_changes():
    tf.keras.utils.set_random_seed(1)
    model = mlp(4, 2, [8])
    net = FloatDeltaNetwork(model, 0.1)
    x = np.array([0.5, -0.5, 0.2, 1.0])
    net.step(x)
    _, st = net.step(x + 0.05)  # below T everywhere: nothing is transmitted in layer 0
    assert st.events[0] == 0 and st.macs[0] == 0
    _, st = net.step(x + np.array([0.3, 0, 0, 0]))
    assert st.events[0] == 1 and st.macs[0] == int(np.count_nonzero(model.get_layer("fc1").get_weights()[0][0]))


def test_layer_compression_by_hand():
    """Stored bits of the engine's images for a 4 -> 3 layer with 3 nonzeros, one lane."""
    from rl2fpga.core.golden import random_model

    gm = random_model(np.random.default_rng(0), (4,), [("dense", 3)], sparsity=0.0)
    w = np.zeros((4, 3), np.int64)  # dense: 4 inputs, 3 outputs
    w[0, 1], w[2, 0], w[2, 2] = 5, -3, 7
    gm.layers[0].w = w
    gm.layers[0].b = np.array([3, -8, 100])  # 8 bits two's complement
    bias = 3 * 8  # 3 accumulator words of one lane
    by = {f: compression(gm, lanes=1, fmt=f)["layers"][gm.layers[0].name] for f in ("csc", "rel", "dense", "auto")}
    # csc: 3 words of fb (2 bits) + w (8); table 4 lists x {ptr 2 bits (3 words), len 2 bits (<= 2)}
    assert (by["csc"]["stored_value_bits"], by["csc"]["index_bits"], by["csc"]["pointer_bits"]) == (24, 6, 16)
    # rel: positions 1 | - | 0, 2 | -: runs 1, 0, 1 fit one bit, no filler
    assert (by["rel"]["run_bits"], by["rel"]["fillers"], by["rel"]["index_bits"], by["rel"]["pointer_bits"]) == (1, 0, 3, 16)
    # dense: 12 values, no index, no table
    assert (by["dense"]["stored_value_bits"], by["dense"]["index_bits"], by["dense"]["pointer_bits"]) == (96, 0, 0)
    for f, total in (("csc", 46), ("rel", 43), ("dense", 96)):
        assert by[f]["stored_bits"] == total + bias and by[f]["bias_bits"] == bias
    assert by["auto"]["format"] == "rel" and by["auto"]["stored_bits"] == 43 + bias
    assert by["csc"]["value_bits"] == 24 and by["csc"]["dense_fp32_bits"] == (12 + 3) * 32


def _cartpole_episode(n: int = 400, seed: int = 3) -> np.ndarray:
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    out = []
    for _ in range(n):
        out.append(obs)
        obs, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            break
    env.close()
    return np.asarray(out, np.float32)


def _brute_dense(layer: Layer, changed: np.ndarray) -> int:
    return sum(int(np.count_nonzero(layer.w[i])) for i in np.flatnonzero(changed))


@pytest.mark.parametrize("t_int", [0, 4])
def test_golden_real_episode_incremental_direct_and_brute_force(t_int):
    tf.keras.utils.set_random_seed(2)
    model = mlp(4, 2, [32, 32])
    masks = magnitude_masks(model, 0.6)
    obs = np.concatenate([_cartpole_episode(seed=s) for s in (3, 4, 5)])
    fmt = input_format(obs, 12)
    q = quantize_model(model, QuantizeConfig(), masks, fmt, samples=grid_float(to_grid(obs, fmt), fmt))
    g1 = golden_from_qkeras(q, fmt, t_int)
    g2 = g1.copy()
    total = 0
    for ep in (_cartpole_episode(seed=s) for s in (7, 8)):
        g1.reset()
        g2.reset()
        for o in ep:
            x = g1.quantize_input(o)
            prev = [h.copy() for h in g1.x_hat]
            y1, s1 = g1.step(x)
            y2, s2 = g2.step(x, incremental=True)
            assert np.array_equal(y1, y2) and s1.macs == s2.macs and s1.events == s2.events
            # brute force from the recorded state: which inputs moved by more than T_int
            xs = [x]
            for la in g1.layers[:-1]:
                xs.append(la.requantize(la.matvec(g1.x_hat[len(xs) - 1]) + la.b))
            for k, la in enumerate(g1.layers):
                changed = np.abs(xs[k].reshape(-1) - prev[k].reshape(-1)) > t_int
                assert s1.macs[k] == _brute_dense(la, changed)
            total += s1.total_macs
    assert total > 0
    if t_int:  # a real threshold saves work on real episodes
        dense = sum(g1.dense_mults())
        assert total < dense * (len(_cartpole_episode(seed=7)) + len(_cartpole_episode(seed=8)))


def test_compression_totals_from_golden():
    tf.keras.utils.set_random_seed(4)
    model = mlp(4, 2, [16])
    masks = magnitude_masks(model, 0.75)
    fmt = input_format(np.array([[1.0, -2.0, 0.1, 0.3]], np.float32), 12)
    q = quantize_model(model, QuantizeConfig(), masks, fmt)
    gm = golden_from_qkeras(q, fmt, 0)
    comp = compression(gm)
    assert comp["total"]["nnz"] == sum(la.nnz() for la in gm.layers)
    assert comp["total"]["stored_bits"] == sum(v["stored_bits"] for v in comp["layers"].values())
    # fp32 dense vs 8-bit, 25 % dense: smaller, but the engine's index, table and accumulator-wide
    # bias images keep it well below the values-only figure
    assert 2 < comp["total"]["ratio"] < comp["total"]["ratio_values_only"]


def test_float_delta_thresholds_per_layer():
    """One T per layer: layer 0 suppresses a small change, layer 1 with T = 0 passes every change."""
    tf.keras.utils.set_random_seed(1)
    model = mlp(4, 2, [8])
    net = FloatDeltaNetwork(model, [0.1, 0.0])
    x = np.array([0.5, -0.5, 0.2, 1.0])
    net.step(x)
    _, st = net.step(x + 0.05)
    assert st.events == [0, 0]  # nothing sent into layer 0, so layer 1's input did not move
    _, st = net.step(x + np.array([0.3, 0, 0, 0]))
    h = np.maximum(model.get_layer("fc1")(x[None] + np.array([[0.3, 0, 0, 0]])).numpy()[0], 0)
    h0 = np.maximum(model.get_layer("fc1")(x[None]).numpy()[0], 0)
    assert st.events[0] == 1 and st.events[1] == int(np.count_nonzero(h != h0))
    same = FloatDeltaNetwork(model, [0.1, 0.1])
    assert same.thresholds == FloatDeltaNetwork(model, 0.1).thresholds
