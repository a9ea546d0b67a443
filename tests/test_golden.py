"""The golden integer model: rounding, delta semantics, significant-multiplication counting."""

import numpy as np
import pytest

from rl2fpga.core.golden import Fmt, GoldenModel, random_model, round_shift
from rl2fpga.core.layers import Conv2D, Dense, Layer
from rl2fpga.errors import Rl2fpgaError


def test_round_shift_half_even_matches_numpy():
    rng = np.random.default_rng(1)
    acc = rng.integers(-(1 << 20), 1 << 20, size=20000)
    for shift in (1, 3, 7, 12):
        expect = np.round(acc / 2.0**shift).astype(np.int64)  # numpy rounds half to even
        assert (round_shift(acc, shift) == expect).all()


def test_papers_atari_dense_mults_table1():
    rng = np.random.default_rng(0)
    m = random_model(rng, (84, 84, 4), [("conv2d", 32, 8, 4), ("conv2d", 32, 4, 2), ("conv2d", 64, 3, 2), ("dense", 512), ("dense", 6)])
    # Table 1 formula from the shapes alone: out_h * out_w * filters * k_h * k_w * in_c; dense in*out
    sizes = [84]
    for k, s in ((8, 4), (4, 2), (3, 2)):
        sizes.append((sizes[-1] - k) // s + 1)
    expect = [
        sizes[1] ** 2 * 32 * 8 * 8 * 4,
        sizes[2] ** 2 * 32 * 4 * 4 * 32,
        sizes[3] ** 2 * 64 * 3 * 3 * 32,
        sizes[3] ** 2 * 64 * 512,
        512 * 6,
    ]
    assert m.dense_mults() == expect


def _brute_significant(layer: Layer, changed: np.ndarray) -> int:
    """Walk every (output position, tap) and count nonzero weights on changed inputs."""
    if not isinstance(layer, Conv2D):
        return sum(int(np.count_nonzero(layer.w[i])) for i in np.flatnonzero(changed.reshape(-1)))
    kh, kw, cin, cout = layer.w.shape
    oh, ow = layer.out_hw
    sh, sw = layer.stride
    n = 0
    for y in range(oh):
        for x in range(ow):
            for i in range(kh):
                for j in range(kw):
                    for c in range(cin):
                        if changed[y * sh + i, x * sw + j, c]:
                            n += int(np.count_nonzero(layer.w[i, j, c]))
    return n


@pytest.mark.parametrize("shape, specs", [
    ((13, 11, 3), [("conv2d", 5, 4, 3), ("conv2d", 4, 2, 1), ("dense", 3)]),  # borders: 13, 11 not multiples
    ((9,), [("dense", 7), ("dense", 2)]),
])
def test_significant_equals_brute_force(shape, specs):
    rng = np.random.default_rng(5)
    m = random_model(rng, shape, specs, sparsity=0.6)
    for layer in m.layers:
        for p in (0.05, 0.3, 1.0):
            changed = rng.random(layer.in_shape) < p
            assert layer.significant(changed) == _brute_significant(layer, changed)


@pytest.mark.parametrize("threshold", [0, 3])
def test_incremental_equals_direct(threshold):
    rng = np.random.default_rng(2)
    m1 = random_model(rng, (20, 20, 2), [("conv2d", 6, 4, 2), ("dense", 10), ("dense", 3)], sparsity=0.5, threshold=threshold)
    m2 = m1.copy()
    x = rng.integers(0, 256, (20, 20, 2))
    for t in range(40):
        if t == 20:
            m1.reset()
            m2.reset()
        x = np.where(rng.random(x.shape) < 0.05, rng.integers(0, 256, x.shape), x)
        y1, s1 = m1.step(x)
        y2, s2 = m2.step(x, incremental=True)
        assert (y1 == y2).all() and s1.macs == s2.macs and s1.events == s2.events
        for a, b in zip(m1.x_hat, m2.x_hat):
            assert (a == b).all()


def test_threshold_hysteresis_semantics():
    w = np.eye(3, dtype=np.int64)
    layer = Dense("l", w, np.zeros(3), Fmt(8, 1), Fmt(8, 8, False), Fmt(16, 9), "linear", (3,), threshold=2)
    assert layer.shift == 0
    m = GoldenModel([layer])
    y, s = m.step(np.array([2, 3, 0]))
    assert list(m.x_hat[0]) == [0, 3, 0] and s.events == [1] and s.macs == [1]
    y, s = m.step(np.array([4, 5, 0]))  # |4-0| > 2 fires, |5-3| = 2 does not
    assert list(m.x_hat[0]) == [4, 3, 0] and s.events == [1]
    assert list(y) == [4, 3, 0]
    m.reset()
    assert list(m.x_hat[0]) == [0, 0, 0]


def test_direct_with_zero_threshold_equals_stateless_forward():
    rng = np.random.default_rng(3)
    m = random_model(rng, (10,), [("dense", 8), ("dense", 4)])
    for _ in range(5):
        x = rng.integers(0, 256, 10)
        y, _ = m.step(x)
        assert (y == m.forward(x)).all()


def test_save_load_roundtrip_and_corrupt(tmp_path):
    rng = np.random.default_rng(4)
    m = random_model(rng, (8, 8, 1), [("conv2d", 2, 3, 1), ("dense", 3)], threshold=1)
    m.save(tmp_path)
    m2 = GoldenModel.load(tmp_path)
    x = rng.integers(0, 256, (8, 8, 1))
    assert (m.step(x)[0] == m2.step(x)[0]).all()
    (tmp_path / "formats.json").write_text("{broken")
    with pytest.raises(Rl2fpgaError, match="corrupt"):
        GoldenModel.load(tmp_path)


def test_accumulator_overflow_is_an_error():
    w = np.full((4096, 2), 127, dtype=np.int64)
    layer = Dense("big", w, np.zeros(2), Fmt(8, 1), Fmt(16, 0, False), Fmt(16, 8), "linear", (4096,))
    m = GoldenModel([layer])
    assert m.check_accumulators(limit_bits=48) == [layer.acc_bits()]
    with pytest.raises(Rl2fpgaError, match="accumulator needs"):
        m.check_accumulators(limit_bits=24)


def test_squash_action_maps_the_mean_into_the_action_box():
    from rl2fpga.core.golden import squash_action

    a = squash_action(np.array([0.0, 50.0, -50.0]), [-2.0, -2.0, 0.0], [2.0, 2.0, 1.0])
    assert a.dtype == np.float32
    assert a[0] == 0.0 and a[1] == 2.0 and a[2] == 0.0  # centre, saturated high, saturated low
    assert squash_action(np.array([0.0]), [0.0], [1.0])[0] == 0.5  # asymmetric box: its centre
    assert np.isclose(squash_action(np.array([1.0]), [-1.0], [1.0])[0], np.tanh(1.0))
