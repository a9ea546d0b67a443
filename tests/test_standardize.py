"""Input standardisation as part of the deployed model: the golden model's integer form
(round(obs * 2^(frac + shift)) - offset), formats.json, the stored bits, the QKeras-side grid,
and the board driver (which quantizes observations itself, numpy only)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from rl2fpga.board import block_design as design
from rl2fpga.board.bundle import write_bundle
from rl2fpga.board.driver import EngineDriver, check_same_model, quantize_input
from rl2fpga.board.engine_models import GoldenEngine
from rl2fpga.board.simdevice import SimDevice
from rl2fpga.core.golden import Fmt, GoldenModel, InputStandardize, random_model
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.quantize.compression import compression
from rl2fpga.quantize.level import standardised_input
from rl2fpga.quantize.qkeras_model import to_grid
from rl2fpga.train.networks import mlp

STD = InputStandardize((1, -1, 0, 3), (3, -2, 0, 5))


def _model(std: InputStandardize | None = STD) -> GoldenModel:
    gm = random_model(np.random.default_rng(0), (4,), [("dense", 8), ("dense", 2)], sparsity=0.3,
                      in_fmt=Fmt(8, 4, True), threshold=1)  # frac 4
    return GoldenModel(gm.layers, gm.meta, std)


def test_quantize_input_standardises_by_hand():
    gm = _model()
    # 0.3 * 2^5 = 9.6 -> 10, -3 = 7;  -1.25 * 2^3 = -10, +2 = -8;  2.0 * 2^4 = 32 -> 32;  0.5 * 2^7 = 64 - 5 = 59
    assert gm.quantize_input(np.array([0.3, -1.25, 2.0, 0.5])).tolist() == [7, -8, 32, 59]
    # rounding first, then the offset: 3.5/32 * 2^5 = 3.5 -> 4 (half to even), -3 = 1; round(3.5 - 3) would be 0
    assert gm.quantize_input(np.array([3.5 / 32, 0, 0, 0]))[0] == 1
    # 10 * 2^5 - 3 = 317 saturates at the 8-bit qmax
    assert gm.quantize_input(np.array([10.0, 0, 0, 0]))[0] == 127
    assert gm.saturation.saturated == 1
    plain = _model(None)
    assert plain.quantize_input(np.array([0.3, -1.25, 2.0, 0.5])).tolist() == [5, -20, 32, 8]


def test_formats_json_keeps_it_and_old_folders_load_as_identity(tmp_path):
    gm = _model()
    gm.save(tmp_path / "a")
    spec = json.loads((tmp_path / "a" / "formats.json").read_text())
    assert spec["input_standardize"] == {"shift": [1, -1, 0, 3], "offset": [3, -2, 0, 5]}
    assert GoldenModel.load(tmp_path / "a").standardize == STD
    assert GoldenModel.load(tmp_path / "a").copy().standardize == STD
    _model(None).save(tmp_path / "b")
    assert "input_standardize" not in json.loads((tmp_path / "b" / "formats.json").read_text())
    assert GoldenModel.load(tmp_path / "b").standardize is None


def test_bad_standardisation_is_one_line():
    with pytest.raises(Rl2fpgaError, match="3 inputs"):
        _model(InputStandardize((0, 0, 0), (0, 0, 0)))
    with pytest.raises(Rl2fpgaError, match="shift"):
        InputStandardize((40, 0), (0, 0))


def test_its_bits_are_counted_and_a_student_is_judged_against_its_teacher():
    with_std, without = compression(_model())["total"], compression(_model(None))["total"]
    assert with_std["stored_bits"] - without["stored_bits"] == 4 * (8 + 6) == with_std["input_standardize_bits"]
    assert with_std["image_bits"] == without["image_bits"] == without["stored_bits"]  # the engine images alone
    ref = compression(_model(), reference_fp32_bits=147_520)["total"]
    assert ref["dense_fp32_bits"] == 147_520 and ref["model_fp32_bits"] == (4 * 8 + 8 + 8 * 2 + 2) * 32
    assert ref["ratio"] == 147_520 / with_std["stored_bits"]


def test_qkeras_side_grid_equals_the_golden_model():
    gm = _model()
    obs = np.random.default_rng(1).normal(size=(200, 4)) * 3
    want = np.stack([gm.quantize_input(o) for o in obs])
    assert np.array_equal(to_grid(obs, gm.in_fmt, STD), want)
    assert np.array_equal(to_grid(obs[0], gm.in_fmt, STD), want[0])


def test_board_driver_quantizes_as_the_golden_model_and_one_lsb_off_is_caught(tmp_path):
    gm = _model()
    bundle = write_bundle(tmp_path / "bundle", gm, 4, 8, 100.0, "CartPole-v1")
    (bundle / "rl2fpga.bit").write_text("simulated\n")
    (bundle / "rl2fpga.hwh").write_text(design.sim_hwh(design.DesignParams(4, 8)))
    drv = EngineDriver(bundle / "rl2fpga.bit", bundle / "manifest.json", device=SimDevice(GoldenEngine(gm, 4, 8)))
    ref = gm.copy()
    obs = np.random.default_rng(2).normal(size=(100, 4)) * 2
    for o in obs:
        x = drv.quantize(o)
        assert x.tolist() == ref.quantize_input(o).tolist()
        values, _ = drv.infer(x)
        assert values.tolist() == ref.step(x)[0].reshape(-1).tolist()
    manifest = json.loads((bundle / "manifest.json").read_text())
    m = manifest["model"]
    off = {**m["input_standardize"], "offset": [m["input_standardize"]["offset"][0] + 1, *m["input_standardize"]["offset"][1:]]}
    small = obs * 0.25  # off saturation
    shifted = [quantize_input(o, m["in_fmt"], (4,), off)[0] for o in small]
    assert all(a == ref.quantize_input(o)[0] - 1 for a, o in zip(shifted, small, strict=True))
    with pytest.raises(Rl2fpgaError, match="standardises"):
        check_same_model({"model": {**m, "input_standardize": off}}, m, "b")
    check_same_model(manifest, m, "b")


def test_standardised_input_reads_raw_observations_through_the_grid():
    tf.keras.utils.set_random_seed(0)
    model = mlp(4, 2, [8])
    rng = np.random.default_rng(3)
    states = rng.normal(size=(300, 4)) * [0.5, 0.05, 2.0, 0.01] + [0.1, 0.0, -1.0, 0.002]
    level = {"standardize_mean": states.mean(0).tolist(), "standardize_scale": (1 / states.std(0)).tolist()}
    model_z, fmt, std = standardised_input(model, level, states, 12)
    assert std.shift == tuple(int(round(np.log2(1 / s))) for s in states.std(0))
    x_int = to_grid(states, fmt, std)
    assert np.abs(x_int).max() <= fmt.qmax // 2 + 1  # the standardised states use the format, with headroom
    z = (x_int * fmt.lsb).astype(np.float32)
    np.testing.assert_allclose(model_z(z).numpy(), model(states.astype(np.float32)).numpy(), atol=0.05)


def test_float_view_is_the_grid_before_rounding():
    from rl2fpga.quantize.level import standardised_float

    gm = _model()
    tf.keras.utils.set_random_seed(1)
    model = mlp(4, 2, [8])
    model_z, to_z = standardised_float(model, STD, gm.in_fmt.frac)
    obs = np.random.default_rng(4).normal(size=(50, 4)) * 0.3
    lsb = gm.in_fmt.lsb
    for o in obs:
        assert np.abs(to_z(o) - gm.quantize_input(o) * lsb).max() <= lsb / 2 + 1e-12
    z = np.stack([to_z(o) for o in obs]).astype(np.float32)
    np.testing.assert_allclose(model_z(z).numpy(), model(obs.astype(np.float32)).numpy(), atol=1e-4)
