"""Per-output-channel power-of-two weight scales (issue #12, "What to build" 3): the golden model
against an independent float reference of the same scales, golden == QKeras on real states,
mixed precision, old formats.json files, one-line errors, and off-by-one-shift detection."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rl2fpga.core.golden import Fmt, GoldenModel, random_model
from rl2fpga.core.layers import Conv2D, Dense, Layer
from rl2fpga.errors import Rl2fpgaError


def float_reference(gm: GoldenModel, x_int: np.ndarray) -> np.ndarray:
    """The model in float64 from the *values* of its weights (w * 2^-w_frac_j), biases
    (b * 2^-(in_frac + w_frac_j)) and inputs; output = round half even onto the output grid,
    saturate, ReLU. Independent of Layer.requantize / round_shift."""
    x = np.asarray(x_int, dtype=np.float64) * 2.0 ** -gm.layers[0].in_fmt.frac
    for layer in gm.layers:
        wf = np.asarray(layer.w_frac if layer.w_frac is not None else [layer.w_fmt.frac] * layer.n_out, dtype=np.float64)
        w = layer.w.astype(np.float64) * 2.0**-wf
        b = layer.b.astype(np.float64) * 2.0 ** -(layer.in_fmt.frac + wf)
        acc = layer.apply(w, np.asarray(x).reshape(layer.in_shape)) + b
        y = np.clip(np.round(acc * 2.0**layer.out_fmt.frac), layer.out_fmt.qmin, layer.out_fmt.qmax)
        if layer.activation == "relu":
            y = np.maximum(y, 0)
        x = y * 2.0**-layer.out_fmt.frac
    return (np.asarray(x) * 2.0**gm.layers[-1].out_fmt.frac).astype(np.int64)


OUT = Fmt(16, 12, True)  # 4 fractional bits: fits 2-bit weights too
SPECS = {
    "mlp": ((6,), [("dense", 12), ("dense", 8), ("dense", 3)]),
    "cnn": ((9, 9, 2), [("conv2d", 4, 3, 2), ("dense", 5)]),
}


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("net", sorted(SPECS))
def test_golden_per_channel_equals_float_reference(bits, net):
    rng = np.random.default_rng(bits)
    in_shape, specs = SPECS[net]
    gm = random_model(rng, in_shape, specs, sparsity=0.3, w_bits=bits, w_frac_spread=3, out_fmt=OUT)
    assert all(layer.per_channel for layer in gm.layers)
    assert all(layer.w.min() >= -(1 << (bits - 1)) and layer.w.max() < (1 << (bits - 1)) for layer in gm.layers)
    x = rng.integers(0, 256, size=(40, *in_shape))
    wide = gm.widened()
    assert not wide.per_channel
    for xi in x:
        y = gm.forward(xi)
        assert np.array_equal(y, float_reference(gm, xi))
        assert np.array_equal(y, wide.forward(xi))


def test_incremental_delta_equals_direct_per_channel():
    rng = np.random.default_rng(7)
    gm = random_model(rng, (9, 9, 2), [("conv2d", 4, 3, 2), ("dense", 5)], w_bits=4, w_frac_spread=2, threshold=3)
    ref = gm.copy()
    x = rng.integers(0, 256, size=(9, 9, 2))
    for _ in range(15):
        x = np.clip(x + rng.integers(-6, 7, size=x.shape) * (rng.random(x.shape) < 0.3), 0, 255)
        y_inc, _ = gm.step(x, incremental=True)
        y_dir, _ = ref.step(x)
        assert np.array_equal(y_inc, y_dir)


@pytest.mark.parametrize("k", [0, 1, 2])
def test_one_channel_shift_off_by_one_is_seen(k):
    """A scale one bit off in one channel of one layer changes outputs (vs the reference of
    the true scales) on some of a few dozen inputs: the comparisons above would catch it."""
    rng = np.random.default_rng(11)
    gm = random_model(rng, (6,), SPECS["mlp"][1], w_bits=4, w_frac_spread=2, out_fmt=OUT)
    x = rng.integers(0, 256, size=(30, 6))
    ref = [float_reference(gm, xi) for xi in x]
    bad = gm.copy()
    layer = bad.layers[k]
    wf = list(layer.w_frac)
    j = int(np.argmin(wf))  # not the finest channel: w_fmt stays the finest's
    wf[j] += 1
    bad.layers[k] = Dense(layer.name, layer.w, layer.b, layer.w_fmt, layer.in_fmt, layer.out_fmt, layer.activation,
                          layer.in_shape, layer.stride, layer.threshold, tuple(wf))
    assert any(not np.array_equal(bad.forward(xi), r) for xi, r in zip(x, ref, strict=True))


def test_save_load_roundtrip_and_old_files(tmp_path):
    rng = np.random.default_rng(3)
    gm = random_model(rng, (9, 9, 2), [("conv2d", 4, 3, 2), ("dense", 5)], w_bits=4, w_frac_spread=3, out_fmt=OUT)
    gm.save(tmp_path / "pc")
    spec = json.loads((tmp_path / "pc" / "formats.json").read_text())
    assert [d["w_frac"] for d in spec["layers"]] == [list(layer.w_frac) for layer in gm.layers]
    back = GoldenModel.load(tmp_path / "pc")
    x = rng.integers(0, 256, size=(9, 9, 2))
    assert [layer.w_frac for layer in back.layers] == [layer.w_frac for layer in gm.layers]
    assert np.array_equal(back.forward(x), gm.forward(x))
    # a file written before per-channel scales (no w_frac key) loads as one format per layer
    old = random_model(rng, (6,), [("dense", 4), ("dense", 2)], w_bits=8)
    old.save(tmp_path / "old")
    spec = json.loads((tmp_path / "old" / "formats.json").read_text())
    assert all("w_frac" not in d for d in spec["layers"])
    back = GoldenModel.load(tmp_path / "old")
    assert not back.per_channel and back.layers[0].shift == old.layers[0].shift


def _dense(w_frac, out_fmt=Fmt(8, 3, False), w_fmt=Fmt(4, -2, True)) -> Layer:
    return Dense("d", np.ones((3, 2), np.int64), np.zeros(2, np.int64), w_fmt, Fmt(8, 0, False), out_fmt, "relu",
                 (3,), w_frac=w_frac)


def test_one_line_errors():
    with pytest.raises(Rl2fpgaError, match="2 output channels") as e:
        _dense((6, 5, 4))
    assert "\n" not in str(e.value)
    with pytest.raises(Rl2fpgaError, match="finest channel"):
        _dense((5, 4))
    with pytest.raises(Rl2fpgaError, match="fewer output fractional bits"):  # channel 1: shift < 0
        _dense((6, 0), out_fmt=Fmt(16, 6, False), w_fmt=Fmt(4, -2, True))
    with pytest.raises(Rl2fpgaError, match="per-channel"):
        _ = _dense((6, 5)).shift
    assert _dense((6, 6)).w_frac is None  # one scale for every channel is a per-layer layer
    assert list(_dense((6, 5)).shifts) == [14 - 5, 13 - 5]


def test_conv_widened_weights_fit_their_format():
    rng = np.random.default_rng(5)
    gm = random_model(rng, (9, 9, 2), [("conv2d", 4, 3, 2), ("dense", 5)], w_bits=2, w_frac_spread=3, out_fmt=OUT)
    for orig, layer in zip(gm.layers, gm.widened().layers, strict=True):
        assert isinstance(layer, (Conv2D, Dense))
        assert layer.w_fmt.bits == 2 + max(orig.w_frac) - min(orig.w_frac)
        assert layer.w_fmt.frac == max(orig.w_frac)
        assert layer.w.min() >= layer.w_fmt.qmin and layer.w.max() <= layer.w_fmt.qmax


def test_board_golden_ref_per_channel(tmp_path):
    """The deploy bundle's NumPy-only reference reads w_frac and matches the golden model."""
    from rl2fpga.board.golden_ref import GoldenRef

    rng = np.random.default_rng(9)
    gm = random_model(rng, (9, 9, 2), [("conv2d", 4, 3, 2), ("dense", 5)], w_bits=4, w_frac_spread=3, out_fmt=OUT,
                      threshold=2)
    gm.save(tmp_path / "golden")
    ref = GoldenRef(tmp_path / "golden")
    for _ in range(10):
        x = rng.integers(0, 256, size=(9, 9, 2))
        assert ref.step(x).tolist() == gm.step(x)[0].reshape(-1).tolist()


def test_compression_counts_one_shift_per_output():
    """scale_bits = the bits of the per-channel shift images; a per-layer twin has none."""
    from rl2fpga.quantize.compression import compression

    rng = np.random.default_rng(4)
    pc = random_model(rng, (6,), SPECS["mlp"][1], w_bits=4, w_frac_spread=3, out_fmt=OUT)
    per_layer = GoldenModel([dataclasses_replace(la, w_frac=None) for la in pc.layers])
    lanes = 4
    a = compression(pc, {la.name: 16 for la in pc.layers}, lanes=lanes)
    b = compression(per_layer, {la.name: 16 for la in pc.layers}, lanes=lanes)
    for la in pc.layers:
        # by hand: shifts of this layer fit in bit_length(max) bits, one per output, in the
        # engine's shift image: rows of `lanes` fields, the last row padded like the bias image
        want = -(-la.n_out // lanes) * lanes * int(max(la.in_fmt.frac + f - la.out_fmt.frac for f in la.w_frac)).bit_length()
        assert a["layers"][la.name]["scale_bits"] == want
        assert a["layers"][la.name]["images"][f"{la.name}_shift.mem"] == want
        assert a["layers"][la.name]["stored_bits"] == b["layers"][la.name]["stored_bits"] + want
    assert b["total"]["scale_bits"] == 0


def dataclasses_replace(layer: Layer, **kw) -> Layer:
    """The same layer with fields replaced (w_frac=None keeps w_fmt: a per-layer twin)."""
    import dataclasses

    return dataclasses.replace(layer, **kw)


def test_config_keys_validated():
    from rl2fpga.config import RunConfig, apply_overrides
    from rl2fpga.validate import validate_config

    cfg = apply_overrides(RunConfig(), ["quantize.per_channel=true", "quantize.layer_weight_bits=[4, 2, 8]"])
    assert cfg.quantize.per_channel and cfg.quantize.layer_weight_bits == [4, 2, 8]
    validate_config(cfg, check_env=False)
    bad = apply_overrides(RunConfig(), ["quantize.layer_weight_bits=[4, 1]"])
    with pytest.raises(Rl2fpgaError, match=r"quantize.layer_weight_bits\[1\]' = 1 is out of range") as e:
        validate_config(bad, check_env=False)
    assert "\n" not in str(e.value)
