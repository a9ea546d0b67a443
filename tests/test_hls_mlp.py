"""hls4ml C simulation of a CartPole-like MLP (4 -> 64 -> 64 -> 2, 90 % pruned, 8-bit) against the
golden model on 500 consecutive real CartPole frames, with the delta stage active and inactive;
complete projects for every backend; the ``rl2fpga hls`` command end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rl2fpga.config import EnvConfig, HlsConfig, RunConfig
from rl2fpga.core.golden import Fmt, GoldenModel, random_model
from rl2fpga.hls.hls4ml import flow
from rl2fpga.hls.hls4ml.build import write_testbench_data
from rl2fpga.hls.hls4ml.reports import check_project_files

pytestmark = pytest.mark.slow

N_FRAMES = 500


@pytest.fixture(scope="module")
def golden() -> GoldenModel:
    rng = np.random.default_rng(7)
    return random_model(rng, (4,), [("dense", 64), ("dense", 64), ("dense", 2)], sparsity=0.9, w_bits=8,
                        in_fmt=Fmt(8, 3, True), act=Fmt(8, 3, False), out_fmt=Fmt(16, 8, True), threshold=1)


@pytest.fixture(scope="module")
def frames(golden: GoldenModel) -> tuple[np.ndarray, np.ndarray]:
    x, starts = flow.collect_frames(EnvConfig(id="CartPole-v1"), golden, N_FRAMES, seed=3)
    assert x.shape == (N_FRAMES, 4) and starts[0] and starts.sum() > 1  # several real episodes
    return x, starts


@pytest.fixture(scope="module")
def compiled(golden: GoldenModel, tmp_path_factory: pytest.TempPathFactory) -> tuple[flow.HlsProject, flow.CSim]:
    project = flow.convert(golden, HlsConfig(backend="Vitis"), tmp_path_factory.mktemp("hls") / "vitis")
    return project, flow.CSim(project, golden)


def reference_outputs(golden: GoldenModel, x: np.ndarray, starts: np.ndarray, thresholds: list[int]) -> np.ndarray:
    g = golden.copy()
    g.set_thresholds(thresholds)
    out = []
    for frame, start in zip(x, starts):
        if start:
            g.reset()
        out.append(g.step(frame)[0].reshape(-1))
    return np.array(out)


def test_csim_equals_golden_with_and_without_delta(golden, frames, compiled) -> None:
    x, starts = frames
    _, csim = compiled
    active = flow.compare_with_golden(csim, x, starts, progress=False)
    inactive = flow.compare_with_golden(csim, x, starts, thresholds=[0, 0, 0], progress=False)
    ref_active = reference_outputs(golden, x, starts, [1, 1, 1])
    ref_inactive = reference_outputs(golden, x, starts, [0, 0, 0])
    assert active.frames == inactive.frames == N_FRAMES
    assert np.array_equal(active.outputs, ref_active) and active.mismatches == 0
    assert np.array_equal(inactive.outputs, ref_inactive) and inactive.mismatches == 0
    # the test can fail: the delta stage changes the golden outputs, and the firmware follows
    changed = (ref_active != ref_inactive).any(axis=1)
    assert changed.sum() > 10
    assert (active.outputs != inactive.outputs).any(axis=1).sum() == changed.sum()


def test_csim_state_resets_at_episode_start(golden, frames, compiled) -> None:
    x, starts = frames
    _, csim = compiled
    no_resets = np.zeros_like(starts)
    no_resets[0] = True
    res = flow.compare_with_golden(csim, x, starts, progress=False)  # resets at episode starts
    ref_without_resets = reference_outputs(golden, x, no_resets, [1, 1, 1])
    # had the firmware ignored the resets, it would match the no-reset reference instead
    assert res.mismatches == 0 and not np.array_equal(res.outputs, ref_without_resets)


def test_pruned_weights_are_zero_in_weight_files(golden, compiled) -> None:
    project, _ = compiled
    wdir = project.out_dir / "firmware" / "weights"
    for hls_layer in project.hls_model.get_layers():
        if "weight" not in hls_layer.weights:
            continue
        g = next(layer for layer in golden.layers if layer.name == hls_layer.name)
        txt = (wdir / f"{hls_layer.weights['weight'].name}.txt").read_text()
        written = np.array([float(v) for v in txt.replace(",", " ").split()])
        # hls4ml keeps the Keras (n_in, n_out) order for dense layers
        assert np.array_equal(written * 2.0**g.w_fmt.frac, g.w.reshape(-1).astype(np.float64))
        assert (written == 0).sum() == (g.w == 0).sum() > 0.8 * g.w.size
    counts = flow.check_written_weights(project, golden)
    assert counts["l1"]["nonzero"] == int(np.count_nonzero(golden.layers[1].w))


@pytest.mark.parametrize("backend", ["Vitis", "Vivado", "VivadoAccelerator"])
def test_every_backend_writes_a_complete_project(backend, golden, frames, tmp_path: Path) -> None:
    x, starts = frames
    project = flow.convert(golden, HlsConfig(backend=backend), tmp_path / backend.lower())
    project.hls_model.write()
    write_testbench_data(project, golden, x, starts)
    d = project.out_dir
    p = flow.PROJECT_NAME
    must = ["build_prj.tcl", "project.tcl", f"firmware/{p}.cpp", "firmware/parameters.h",
            "firmware/nnet_utils/rl2fpga_delta.h", f"{p}_test.cpp", "tb_data/tb_input_features.dat"]
    if backend == "VivadoAccelerator":
        must += ["design.tcl", "axi_stream_driver.py", f"firmware/{p}_axi.cpp"]
        assert "pynq-z2" in (d / "design.tcl").read_text() or "xc7z020" in (d / "project.tcl").read_text()
    for f in must:
        assert (d / f).is_file(), f
    assert len(list((d / "firmware" / "weights").glob("w*.h"))) == len(golden.layers)
    assert "rl2fpga::delta" in (d / "firmware" / f"{p}.cpp").read_text()
    res = check_project_files(d, backend, p)
    assert res["missing"] == [] and "project.tcl" in res["referenced"]
    (d / "project.tcl").unlink()
    assert "project.tcl" in check_project_files(d, backend, p)["missing"]


def test_rl2fpga_hls_command(golden, tmp_path: Path) -> None:
    from rl2fpga.cli import main
    from rl2fpga.run import Run

    run = Run.create(RunConfig(name="mlp"), path=tmp_path / "run")
    golden.save(run.path / "quantize" / "golden")
    run.mark_done("quantize", 1.0)
    assert main(["hls", str(run.path), "--backend", "Vivado", "--frames", str(N_FRAMES)]) == 0
    csim = json.loads((run.path / "hls" / "csim.json").read_text())
    summary = json.loads((run.path / "hls" / "summary.json").read_text())
    assert csim["frames"] == N_FRAMES and csim["mismatches"] == 0
    assert csim["delta_active"]["thresholds"] == [1, 1, 1] and csim["delta_inactive"]["thresholds"] == [0, 0, 0]
    assert csim["frames_where_delta_changes_output"] > 0
    assert summary["backend"] == "Vivado" and summary["csim_frames"] == N_FRAMES and summary["csim_mismatches"] == 0
    assert summary["weights"]["l0"]["nonzero"] == int(np.count_nonzero(golden.layers[0].w))
    assert summary["precisions"]["l2"]["result"].startswith("ap_fixed<16,8")
    assert summary["build"]["status"] in ("skipped", "built")
    assert (run.path / "hls" / "vivado" / "build_prj.tcl").is_file()


def test_hls_step_on_quantize_step_output(tmp_path: Path) -> None:
    """The pipeline's hand-over: quantize/qmodel.h5 (QKeras) + quantize/golden, thresholds from
    the quantize config; the hls step re-extracts the golden model from the QKeras model, checks
    it is the saved one, and its C simulation equals it."""
    import tensorflow as tf

    from rl2fpga.cli import main
    from rl2fpga.config import QuantizeConfig
    from rl2fpga.quantize.qkeras_model import (
        golden_from_qkeras,
        quantize_model,
        save_qmodel,
        threshold_ints,
    )
    from rl2fpga.run import Run
    from rl2fpga.train.networks import mlp

    tf.keras.utils.set_random_seed(0)
    model = mlp(4, 2, [64, 64])
    rng = np.random.default_rng(0)
    masks = {la.name: (rng.random(la.get_weights()[0].shape) > 0.9).astype(np.float32)
             for la in model.layers if la.get_weights()}
    in_fmt = Fmt(8, 3, True)
    qmodel = quantize_model(model, QuantizeConfig(), masks, in_fmt)
    gm = golden_from_qkeras(qmodel, in_fmt, 0)
    gm.set_thresholds(threshold_ints(gm, 0.1))
    assert gm.thresholds[0] > 0
    run = Run.create(RunConfig(name="q"), path=tmp_path / "run")
    save_qmodel(qmodel, run.path / "quantize" / "qmodel.h5")
    gm.save(run.path / "quantize" / "golden")
    run.mark_done("quantize", 1.0)
    assert main(["hls", str(run.path), "--set", "hls.build=false"]) == 0
    summary = json.loads((run.path / "hls" / "summary.json").read_text())
    assert summary["quantized_model"] == "qmodel.h5"
    assert summary["csim_frames"] == N_FRAMES and summary["csim_mismatches"] == 0
    assert summary["thresholds"] == gm.thresholds
    assert summary["build"]["status"] == "disabled"
    for layer in gm.layers:  # precisions follow the QKeras-derived golden formats
        assert summary["precisions"][layer.name]["weight"] == f"ap_fixed<{layer.w_fmt.bits},{layer.w_fmt.integer}>"
    # a QKeras model that disagrees with the golden model is refused in one line
    other = gm.copy()
    other.layers[1].w = other.layers[1].w.copy()
    nz = np.flatnonzero(other.layers[1].w)
    other.layers[1].w.flat[nz[0]] = 0
    other.save(run.path / "quantize" / "golden")
    assert main(["hls", str(run.path), "--set", "hls.build=false"]) == 2


def test_threshold_on_layer_without_delta_stage_is_refused(golden, compiled) -> None:
    import dataclasses

    from rl2fpga.errors import Rl2fpgaError

    project, _ = compiled
    only_input = flow.CSim(dataclasses.replace(project, stages=[0]), golden)
    with pytest.raises(Rl2fpgaError) as e:
        only_input.set_thresholds([1, 2, 0])
    assert "l1" in str(e.value) and "\n" not in str(e.value)
    only_input.set_thresholds([3, 0, 0])  # fine: layer 0 has its stage


def test_collect_frames_plays_a_continuous_actor() -> None:
    """Continuous actions (Pendulum): the golden actor's tanh(mean) * scale + offset drives the
    environment; with eps = 0 two recordings are identical and differ from random play."""
    g = random_model(np.random.default_rng(2), (3,), [("dense", 16), ("dense", 1)], sparsity=0.3,
                     in_fmt=Fmt(12, 4, True), act=Fmt(8, 3, False), out_fmt=Fmt(16, 8, True))
    env = EnvConfig(id="Pendulum-v1")
    a, sa = flow.collect_frames(env, g, 60, seed=1, eps=0.0)
    b, _ = flow.collect_frames(env, g, 60, seed=1, eps=0.0)
    r, _ = flow.collect_frames(env, g, 60, seed=1, eps=1.0)
    assert a.shape == (60, 3) and sa[0] and np.array_equal(a, b)
    assert a.min() >= g.in_fmt.qmin and a.max() <= g.in_fmt.qmax
    assert not np.array_equal(a, r)
