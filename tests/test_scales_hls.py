"""hls4ml C simulation of models with per-output-channel weight scales (lowered widened: one
weight type per layer, same integers) == golden on real CartPole frames, delta stage on and off,
at 2 and 4 bits; a golden with one channel's scale one off no longer matches."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rl2fpga.config import EnvConfig, HlsConfig
from rl2fpga.core.golden import Fmt, GoldenModel, random_model
from rl2fpga.hls.hls4ml import flow

pytestmark = pytest.mark.slow

N_FRAMES = 40


def _golden(bits: int) -> GoldenModel:
    return random_model(np.random.default_rng(bits), (4,), [("dense", 24), ("dense", 16), ("dense", 2)], sparsity=0.5,
                        w_bits=bits, w_frac_spread=3, in_fmt=Fmt(10, 4, True), act=Fmt(8, 3, False),
                        out_fmt=Fmt(16, 12, True), threshold=1)


@pytest.fixture(scope="module", params=[2, 4])
def compiled(request, tmp_path_factory):
    g = _golden(request.param)
    assert all(layer.per_channel for layer in g.layers)
    x, starts = flow.collect_frames(EnvConfig(id="CartPole-v1"), g, N_FRAMES, seed=4)
    project = flow.convert(g, HlsConfig(backend="Vitis"), tmp_path_factory.mktemp("hls") / f"pc{request.param}")
    return g, x, starts, project, flow.CSim(project, g)


def _reference(g: GoldenModel, x: np.ndarray, starts: np.ndarray, thresholds: list[int]) -> np.ndarray:
    g = g.copy()
    g.set_thresholds(thresholds)
    out = []
    for frame, start in zip(x, starts, strict=True):
        if start:
            g.reset()
        out.append(g.step(frame)[0].reshape(-1))
    return np.array(out)


def test_csim_equals_per_channel_golden(compiled) -> None:
    g, x, starts, project, csim = compiled
    for th in ([1, 1, 1], [0, 0, 0]):
        res = flow.compare_with_golden(csim, x, starts, thresholds=th, progress=False)
        assert res.frames == N_FRAMES and res.mismatches == 0
        assert np.array_equal(res.outputs, _reference(g, x, starts, th))
    # the weights hls4ml wrote are the widened integers: channel j's shifted by max(w_frac) - w_frac[j]
    flow.check_written_weights(project, g)
    for layer in g.layers:
        assert project.precisions[layer.name]["weight"] == flow.layer_precisions(layer, 48).weight
        assert f"ap_fixed<{layer.w_fmt.bits + max(layer.w_frac) - min(layer.w_frac)}," in project.precisions[layer.name]["weight"]


def test_one_channel_scale_off_by_one_is_a_mismatch(compiled) -> None:
    g, x, starts, _, csim = compiled
    bad = g.copy()
    last = bad.layers[-1]
    wf = list(last.w_frac)
    j = int(np.argmin(wf))
    wf[j] += 1
    bad.layers[-1] = dataclasses.replace(last, w_frac=tuple(wf))
    res = flow.compare_with_golden(csim, x, starts, thresholds=[0, 0, 0], progress=False)
    assert res.mismatches == 0
    assert not np.array_equal(res.outputs, _reference(bad, x, starts, [0, 0, 0]))


@pytest.mark.parametrize("bits", [2, 4])
def test_da4ml_interpreter_equals_per_channel_golden(tmp_path, bits: int) -> None:
    """da4ml's bit-exact interpreter on the widened lowering == the per-channel golden model."""
    from rl2fpga.hls.da4ml.lowering import generate, have_da4ml, interpreter_outputs
    from rl2fpga.train.frames import record_cartpole

    if not have_da4ml():
        pytest.skip(".venv-da4ml missing (make setup creates it)")
    g = _golden(bits)
    frames, _ = record_cartpole(200, seed=2)
    xs = np.stack([g.quantize_input(f) for f in frames])
    ref = np.stack([g.forward(x) for x in xs])
    generate(g, tmp_path / "pc", check_inputs=xs)
    out = interpreter_outputs(tmp_path / "pc")
    assert out.shape == ref.shape and np.array_equal(out, ref)
