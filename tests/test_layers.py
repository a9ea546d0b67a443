"""The layer model (rl2fpga/core/layers.py): shape validation, the Table 1 multiplication counts,
significant multiplications, the delta input rule, the kind registry and formats.json round trips.
Expected values are computed here by independent loops, never by the code under test."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rl2fpga.core.fixedpoint import Fmt
from rl2fpga.core.golden import GoldenModel, random_model
from rl2fpga.core.layers import (
    LAYER_CLASSES,
    Conv2D,
    DeltaInput,
    Dense,
    Layer,
    layer_class,
    layer_from_json,
    lowering,
    lowers,
)
from rl2fpga.errors import Rl2fpgaError

W8, IN8, ACT, OUT = Fmt(8, 1), Fmt(8, 0, False), Fmt(8, 3, False), Fmt(16, 8)


def _dense(w: np.ndarray, in_shape: tuple[int, ...], **kw) -> Dense:
    return Dense("d", w, np.zeros(w.shape[-1], np.int64), W8, IN8, ACT, "relu", in_shape, **kw)


def _conv(w: np.ndarray, in_shape: tuple[int, ...], stride: tuple[int, int]) -> Conv2D:
    return Conv2D("c", w, np.zeros(w.shape[-1], np.int64), W8, IN8, ACT, "relu", in_shape, stride)


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg and msg
    return msg


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: _dense(np.ones((5, 3), np.int64), (4,)), ["dense weights", "(4,)"]),
        (lambda: _dense(np.ones((5, 3, 1), np.int64), (5,)), ["dense weights"]),
        (lambda: _conv(np.ones((3, 3, 2, 4), np.int64), (8, 8, 3), (1, 1)), ["conv weights", "(8, 8, 3)"]),
        (lambda: _conv(np.ones((3, 3, 2, 4), np.int64), (16, 2), (1, 1)), ["conv weights"]),
        (lambda: _conv(np.ones((9, 3, 2, 4), np.int64), (8, 8, 2), (1, 1)), ["larger than input"]),
        (lambda: _conv(np.ones((3, 3, 2, 4), np.int64), (8, 8, 2), (0, 1)), ["stride"]),
        (lambda: Dense("d", np.ones((4, 3)), np.zeros(2), W8, IN8, ACT, "relu", (4,)), ["bias shape"]),
        (lambda: _dense(np.ones((4, 3), np.int64), (4,), threshold=-1), ["negative delta threshold"]),
        (lambda: Dense("d", np.ones((4, 3)), np.zeros(3), W8, IN8, Fmt(16, 0), "relu", (4,)), ["fractional bits"]),
    ],
)
def test_bad_layers_are_one_line_errors(make, words) -> None:
    with pytest.raises(Rl2fpgaError) as e:
        make()
    msg = _one_line(e)
    for w in words:
        assert w in msg, msg


def test_base_layer_is_abstract() -> None:
    with pytest.raises(Rl2fpgaError) as e:
        Layer("x", np.ones((2, 2)), np.zeros(2), W8, IN8, ACT, "relu", (2,))
    assert "abstract" in _one_line(e)


# ----------------------------------------------------------------------------- Table 1 counts


def test_dense_mults_atari_table1() -> None:
    """The Atari DQN of the 2023 paper, counted by hand: conv out = (in - k) // s + 1."""
    m = random_model(np.random.default_rng(0), (84, 84, 4),
                     [("conv2d", 32, 8, 4), ("conv2d", 64, 4, 2), ("conv2d", 64, 3, 1), ("dense", 512), ("dense", 6)])
    assert m.dense_mults() == [20 * 20 * 32 * 8 * 8 * 4, 9 * 9 * 64 * 4 * 4 * 32, 7 * 7 * 64 * 3 * 3 * 64,
                               7 * 7 * 64 * 512, 512 * 6]


@pytest.mark.parametrize("seed", range(4))
def test_conv_dense_mults_equal_a_loop_over_outputs_and_taps(seed: int) -> None:
    rng = np.random.default_rng(seed)
    kh, kw, cin, cout = (int(v) for v in rng.integers(1, 5, 4))
    sh, sw = (int(v) for v in rng.integers(1, 4, 2))
    h, w = kh + int(rng.integers(0, 9)), kw + int(rng.integers(0, 9))
    layer = _conv(np.ones((kh, kw, cin, cout), np.int64), (h, w, cin), (sh, sw))
    n = 0
    y = 0
    while y + kh <= h:  # every output row whose window fits
        x = 0
        while x + kw <= w:
            n += kh * kw * cin * cout
            x += sw
        y += sh
    assert layer.dense_mults() == n
    assert layer.out_shape == (len(range(0, h - kh + 1, sh)), len(range(0, w - kw + 1, sw)), cout)


# ----------------------------------------------------------------------------- arithmetic and counting


def _brute_conv(w: np.ndarray, x: np.ndarray, stride: tuple[int, int]) -> tuple[np.ndarray, int]:
    """(W (*) x, significant pairs for the nonzero mask of x) by explicit loops."""
    kh, kw, cin, cout = w.shape
    h, wd, _ = x.shape
    oh, ow = (h - kh) // stride[0] + 1, (wd - kw) // stride[1] + 1
    y = np.zeros((oh, ow, cout), np.int64)
    sig = 0
    for oy in range(oh):
        for ox in range(ow):
            for i in range(kh):
                for j in range(kw):
                    for c in range(cin):
                        v = int(x[oy * stride[0] + i, ox * stride[1] + j, c])
                        y[oy, ox] += v * w[i, j, c]
                        if v != 0:
                            sig += int(np.count_nonzero(w[i, j, c]))
    return y, sig


@pytest.mark.parametrize("seed", range(5))
def test_conv_matvec_and_significant_equal_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    kh, kw, cin, cout = 3, 2, int(rng.integers(1, 4)), int(rng.integers(1, 5))
    stride = (int(rng.integers(1, 3)), int(rng.integers(1, 4)))
    w = np.where(rng.random((kh, kw, cin, cout)) < 0.5, 0, rng.integers(-128, 128, (kh, kw, cin, cout)))
    layer = _conv(w, (9, 10, cin), stride)
    x = np.where(rng.random((9, 10, cin)) < 0.6, 0, rng.integers(1, 256, (9, 10, cin)))
    y, sig = _brute_conv(w, x, stride)
    assert np.array_equal(layer.matvec(x), y)
    assert layer.significant(x != 0) == sig


@pytest.mark.parametrize("seed", range(5))
def test_dense_matvec_and_significant_equal_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    in_shape = (3, 2, 4)  # a dense layer reads a feature map flattened in C order (y, x, c)
    w = np.where(rng.random((24, 7)) < 0.5, 0, rng.integers(-128, 128, (24, 7)))
    layer = _dense(w, in_shape)
    x = np.where(rng.random(in_shape) < 0.5, 0, rng.integers(1, 256, in_shape))
    y = np.zeros(7, np.int64)
    sig = 0
    for yy in range(3):
        for xx in range(2):
            for c in range(4):
                row = (yy * 2 + xx) * 4 + c
                y += int(x[yy, xx, c]) * w[row]
                sig += int(np.count_nonzero(w[row])) if x[yy, xx, c] else 0
    assert np.array_equal(layer.matvec(x), y)
    assert layer.significant(x != 0) == sig
    assert layer.reads_flattened((3, 2, 4)) and not layer.reads_flattened((24,))


def test_matvec_is_exact_beyond_float64_integers() -> None:
    """matvec multiplies in float64 only where every partial sum is provably below 2^53: values
    whose products need more bits (up to 2^58, sums below 2^61) still come out exact, as Python
    integers say."""
    rng = np.random.default_rng(7)
    for scale in (1, 2**30 + 1):  # small: the float path; huge: the int64 path
        w = rng.integers(-128, 128, (6, 5)) * scale
        layer = _dense(w, (6,))
        x = rng.integers(0, 256, 6) if scale == 1 else rng.integers(-(2**20), 2**20, 6) + 2**20 + 1
        exact = [sum(int(x[i]) * int(w[i, o]) for i in range(6)) for o in range(5)]
        assert layer.matvec(x).tolist() == exact
    # the float path itself, on products near 2^53 but sums below it, is exact too
    w = np.full((2, 1), 2**26 + 1)
    layer = _dense(w, (2,))
    assert layer.matvec(np.array([2**25 + 3, 2**25 - 5])).tolist() == [(2**26 + 1) * (2**26 - 2)]


def test_weights_are_frozen_once_used_and_replacing_them_takes_effect() -> None:
    """The arrays derived from w (float copy, fan-out map) cannot go stale: w is read-only once
    used, and a new w is used as soon as it is assigned."""
    w = np.array([[1, 0], [0, 2], [3, 0]])
    layer = _dense(w, (3,))
    assert layer.matvec(np.array([1, 1, 1])).tolist() == [4, 2]
    assert layer.significant(np.array([True, True, False])) == 2
    with pytest.raises(ValueError, match="read-only"):
        layer.w[0, 0] = 5
    layer.w = np.array([[5, 1], [0, 2], [3, 0]])
    assert layer.matvec(np.array([1, 1, 1])).tolist() == [8, 3]
    assert layer.significant(np.array([True, True, False])) == 3


def test_acc_bound_is_reached_by_an_extreme_input() -> None:
    rng = np.random.default_rng(3)
    w = rng.integers(-128, 128, (2, 2, 3, 4))
    layer = Conv2D("c", w, rng.integers(-50, 50, 4), W8, IN8, ACT, "relu", (2, 2, 3))
    # one output position; the extreme input per weight sign, per output channel
    best = 0
    for o in range(4):
        for sign in (1, -1):
            x = np.where(sign * w[..., o] > 0, IN8.qmax, IN8.qmin)
            best = max(best, abs(int((x * w[..., o]).sum()) + int(layer.b[o])))
    assert layer.acc_bound() == best


def test_delta_input_rule() -> None:
    d = DeltaInput(2)
    x_hat = np.array([0, 5, 10, 10])
    x = np.array([3, 7, 8, 13])
    new, changed, delta = d.update(x, x_hat)
    assert changed.tolist() == [True, False, False, True]  # |d| > T, not >=
    assert new.tolist() == [3, 5, 10, 13] and delta.tolist() == [3, 0, 0, 3]
    fnew, _, _ = DeltaInput(0.0).update(np.array([0.1, 0.3]), np.array([0.7, 0.3]))
    assert fnew[0] == 0.1  # exactly x, not x_hat + (x - x_hat)


# ----------------------------------------------------------------------------- registry, lowering, files


def test_registry_knows_each_class_by_its_kind() -> None:
    assert LAYER_CLASSES == {"dense": Dense, "conv2d": Conv2D}
    assert layer_class("conv2d") is Conv2D
    with pytest.raises(Rl2fpgaError) as e:
        layer_class("lstm", "layer l3")
    msg = _one_line(e)
    assert "layer l3" in msg and "'lstm'" in msg and "dense" in msg and "conv2d" in msg


def test_lowering_table_by_class_and_one_line_refusal() -> None:
    conv = _conv(np.ones((2, 2, 1, 1), np.int64), (3, 3, 1), (1, 1))
    dense = _dense(np.ones((4, 2), np.int64), (4,))
    table = {Dense: "dense-entry"}
    assert lowering(table, dense, "demo") == "dense-entry" and lowers(table, dense) and not lowers(table, conv)
    with pytest.raises(Rl2fpgaError) as e:
        lowering(table, conv, "demo")
    assert "demo back end cannot lower a conv2d layer" in _one_line(e)


def test_save_load_round_trip_keeps_classes_and_file_meaning(tmp_path: Path) -> None:
    g = random_model(np.random.default_rng(1), (12, 12, 2), [("conv2d", 3, 3, 2), ("dense", 5), ("dense", 2)],
                     threshold=1, flatten=True)
    g.save(tmp_path)
    spec = json.loads((tmp_path / "formats.json").read_text())
    assert [d["kind"] for d in spec["layers"]] == ["conv2d", "dense", "dense"]  # the on-disk strings
    assert spec["layers"][0]["stride"] == [2, 2] and spec["layers"][1]["in_shape"] == [75]
    back = GoldenModel.load(tmp_path)
    assert [type(la) for la in back.layers] == [Conv2D, Dense, Dense]
    for a, b in zip(g.layers, back.layers, strict=True):
        assert np.array_equal(a.w, b.w) and np.array_equal(a.b, b.b) and a.to_json() == b.to_json()
    x = np.random.default_rng(2).integers(0, 256, (12, 12, 2))
    assert np.array_equal(g.forward(x), back.forward(x))
    d = spec["layers"][1]
    again = layer_from_json(d, g.layers[1].w, g.layers[1].b)
    assert isinstance(again, Dense) and again.to_json() == d


def test_unknown_kind_in_formats_json_is_one_line(tmp_path: Path) -> None:
    g = random_model(np.random.default_rng(1), (6,), [("dense", 4), ("dense", 2)])
    g.save(tmp_path)
    spec = json.loads((tmp_path / "formats.json").read_text())
    spec["layers"][1]["kind"] = "lstm"
    (tmp_path / "formats.json").write_text(json.dumps(spec))
    with pytest.raises(Rl2fpgaError) as e:
        GoldenModel.load(tmp_path)
    msg = _one_line(e)
    assert "'lstm'" in msg and "l1" in msg
