"""Fast checks of the hls flow's pieces (no hls4ml compile): the delta stage's Keras semantics,
precisions generated from golden formats, refusals with one-line messages, report parsing."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from rl2fpga.config import HlsConfig, RunConfig
from rl2fpga.core.golden import Fmt, random_model
from rl2fpga.errors import Rl2fpgaError, ToolMissing
from rl2fpga.hls.hls4ml import flow
from rl2fpga.hls.hls4ml.delta_layer import DeltaStage, reset_delta_states
from rl2fpga.hls.hls4ml.reports import check_project_files, synthesis_figures

tf.config.threading.set_inter_op_parallelism_threads(1)
tf.config.threading.set_intra_op_parallelism_threads(1)


def _mlp(threshold: int = 1, sparsity: float = 0.9, seed: int = 0):
    rng = np.random.default_rng(seed)
    return random_model(rng, (4,), [("dense", 64), ("dense", 64), ("dense", 2)], sparsity=sparsity,
                        in_fmt=Fmt(8, 3, True), threshold=threshold)


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


# ------------------------------------------------------------------------------ delta stage


def test_delta_stage_keras_is_hysteresis_with_reset() -> None:
    frac, t_int = 5, 2
    rng = np.random.default_rng(1)
    x_int = np.cumsum(rng.integers(-3, 4, size=(60, 6)), axis=0)  # slowly drifting signals
    inp = tf.keras.Input(shape=(6,))
    model = tf.keras.Model(inp, DeltaStage(threshold_int=t_int, frac=frac, name="d")(inp))

    def expected(xs: np.ndarray) -> np.ndarray:  # written out here, independent of the layer
        x_hat = np.zeros(xs.shape[1], dtype=np.int64)
        out = []
        for x in xs:
            for i in range(len(x)):
                if abs(x[i] - x_hat[i]) > t_int:
                    x_hat[i] = x[i]
            out.append(x_hat.copy())
        return np.array(out)

    scale = 2.0**-frac
    # two calls of 30 frames: the state carries over from the first call to the second
    y1 = model(x_int[:30] * scale).numpy()
    y2 = model(x_int[30:] * scale).numpy()
    got = np.round(np.concatenate([y1, y2]) / scale).astype(np.int64)
    want = expected(x_int)
    assert np.array_equal(got, want)
    assert not np.array_equal(want, x_int)  # the hysteresis held some values back
    # episode start: state back to 0
    reset_delta_states(model)
    y3 = np.round(model(x_int[30:] * scale).numpy() / scale).astype(np.int64)
    assert np.array_equal(y3, expected(x_int[30:]))


def test_delta_stage_threshold_zero_is_passthrough() -> None:
    inp = tf.keras.Input(shape=(3,))
    model = tf.keras.Model(inp, DeltaStage(threshold_int=0, frac=4)(inp))
    x = np.array([[0.0, 0.0625, -1.0], [0.0625, 0.0625, 0.5], [0.125, 0.0, 0.5]], dtype=np.float32)
    assert np.array_equal(model(x).numpy(), x)


def test_delta_stages_go_before_thresholded_layers_and_input() -> None:
    g = _mlp(threshold=0)
    assert flow.delta_stage_layers(g) == [0]
    g.set_thresholds([0, 3, 0])
    assert flow.delta_stage_layers(g) == [0, 1]
    model = flow.build_keras(g)
    names = [layer.name for layer in model.layers]
    assert names.index("l0_delta") < names.index("l0") and names.index("l1_delta") < names.index("l1")
    assert "l2_delta" not in names
    # weights are exactly the golden integers on their grids
    w = model.get_layer("l1").get_weights()[0] * 2.0 ** g.layers[1].w_fmt.frac
    assert np.array_equal(w.astype(np.int64), g.layers[1].w)


# ------------------------------------------------------------------------------ precisions


def _parse_fixed(t: str) -> tuple[bool, int, int]:
    signed = t.startswith("ap_fixed")
    width, integer = t[t.index("<") + 1 :].split(">")[0].split(",")[:2]
    return signed, int(width), int(integer)


def test_precisions_are_generated_from_golden_formats() -> None:
    g = _mlp()
    for layer in g.layers:
        p = flow.layer_precisions(layer, 48)
        for text, fmt in ((p.weight, layer.w_fmt), (p.result, layer.out_fmt), (p.input, layer.in_fmt)):
            signed, width, integer = _parse_fixed(text)
            assert (signed, width, integer) == (fmt.signed, fmt.bits, fmt.integer)
        assert "AP_RND_CONV,AP_SAT" in p.result  # golden: round half to even, saturate
        signed, width, integer = _parse_fixed(p.accum)
        assert signed and width - integer == layer.in_fmt.frac + layer.w_fmt.frac
        assert (1 << (width - 1)) > layer.acc_bound()  # no reachable accumulator value wraps
        signed, width, integer = _parse_fixed(p.bias)
        assert width - integer == layer.acc_frac
        assert np.abs(layer.b).max() < (1 << (width - 1))


def test_accumulator_too_wide_is_one_line_error() -> None:
    g = _mlp()
    need = g.layers[1].acc_bits()
    with pytest.raises(Rl2fpgaError) as e:
        flow.layer_precisions(g.layers[1], need - 1)
    msg = _one_line(e)
    assert "l1" in msg and str(need) in msg and "max_accum_bits" in msg
    with pytest.raises(Rl2fpgaError) as e:
        flow.convert(g, HlsConfig(max_accum_bits=need - 1), "/nonexistent/never-written")
    assert "accumulator" in _one_line(e)


def test_reuse_factor_by_layer_size() -> None:
    rng = np.random.default_rng(0)
    g = random_model(rng, (1024,), [("dense", 512), ("dense", 4)])
    big, small = g.layers
    assert flow.reuse_factor(small, None, 4096) == 1
    rf = flow.reuse_factor(big, None, 4096)
    assert 1024 * 512 / rf <= 4096 and rf == 128
    with pytest.raises(Rl2fpgaError) as e:
        flow.reuse_factor(big, 7, 4096)
    assert "reuse factor 7" in _one_line(e)


def test_resource_with_compression_is_refused() -> None:
    with pytest.raises(Rl2fpgaError) as e:
        flow.convert(_mlp(), HlsConfig(strategy="Resource", compression=True), "/nonexistent/x")
    assert "Compression" in _one_line(e) or "compression" in _one_line(e)


# ------------------------------------------------------------------------------ unsupported layers


@pytest.mark.parametrize(
    "layer, cls",
    [
        (tf.keras.layers.BatchNormalization(name="bn"), "BatchNormalization"),
        (tf.keras.layers.MaxPooling2D(2, name="pool"), "MaxPooling2D"),
    ],
)
def test_unsupported_layer_named_in_one_line(layer: tf.keras.layers.Layer, cls: str) -> None:
    inp = tf.keras.Input(shape=(8, 8, 2))
    x = tf.keras.layers.Conv2D(4, 3, name="c")(inp)
    x = layer(x)
    x = tf.keras.layers.Flatten()(x)
    model = tf.keras.Model(inp, tf.keras.layers.Dense(2)(x))
    with pytest.raises(Rl2fpgaError) as e:
        flow.check_keras_layers(model)
    msg = _one_line(e)
    assert f"'{layer.name}'" in msg and cls in msg


def test_same_padding_refused() -> None:
    inp = tf.keras.Input(shape=(8, 8, 2))
    model = tf.keras.Model(inp, tf.keras.layers.Conv2D(4, 3, padding="same", name="c")(inp))
    with pytest.raises(Rl2fpgaError) as e:
        flow.check_keras_layers(model)
    assert "padding" in _one_line(e)


def test_hls_step_refuses_quantized_model_with_batchnorm(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from rl2fpga.cli import main
    from rl2fpga.run import Run

    run = Run.create(RunConfig(name="bn"), path=tmp_path / "run")
    _mlp().save(run.path / "quantize" / "golden")
    inp = tf.keras.Input(shape=(4,))
    x = tf.keras.layers.Dense(8, name="fc1")(inp)
    x = tf.keras.layers.BatchNormalization(name="fc1_bn")(x)
    tf.keras.Model(inp, tf.keras.layers.Dense(2, name="out")(x)).save(run.path / "quantize" / "qmodel.h5")
    run.mark_done("quantize", 1.0)
    assert main(["hls", str(run.path)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "fc1_bn" in err[0] and "BatchNormalization" in err[0]


# ------------------------------------------------------------------------------ vendor tools


def test_missing_vendor_tool_one_line_notice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture) -> None:
    from rl2fpga.hls.hls4ml.build import vendor_build

    monkeypatch.setenv("PATH", str(tmp_path))
    for backend, tool in (("Vitis", "vitis-run"), ("Vivado", "vivado_hls"), ("VivadoAccelerator", "vivado_hls")):
        with pytest.raises(ToolMissing) as e:
            flow.require_vendor_tool(backend)
        assert tool in _one_line(e)

    class P:  # a project object: only its backend is read before the tool check
        backend = "Vitis"

    out = vendor_build(P(), RunConfig())  # type: ignore[arg-type]
    assert out["status"] == "skipped"
    captured = capsys.readouterr()
    lines = [line for line in (captured.err + captured.out).splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("notice:") and "vitis-run" in lines[0]
    assert "Traceback" not in captured.err


def test_vendor_tool_found_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exe = tmp_path / "vitis-run"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + os.environ.get("PATH", ""))
    assert flow.require_vendor_tool("Vitis") == str(exe)
    assert "vitis-run" in flow.vendor_tools_on_path()


# ------------------------------------------------------------------------------ reports


CSYNTH = """<?xml version="1.0" encoding="UTF-8"?>
<profile>
  <UserAssignments><TargetClockPeriod>10.00</TargetClockPeriod></UserAssignments>
  <PerformanceEstimates>
    <SummaryOfTimingAnalysis><EstimatedClockPeriod>8.000</EstimatedClockPeriod></SummaryOfTimingAnalysis>
    <SummaryOfOverallLatency>
      <Best-caseLatency>12</Best-caseLatency><Worst-caseLatency>15</Worst-caseLatency>
      <Interval-min>1</Interval-min><Interval-max>3</Interval-max>
    </SummaryOfOverallLatency>
  </PerformanceEstimates>
  <AreaEstimates>
    <Resources><BRAM_18K>2</BRAM_18K><DSP>7</DSP><FF>1500</FF><LUT>3200</LUT><URAM>0</URAM></Resources>
    <AvailableResources><BRAM_18K>280</BRAM_18K><DSP>220</DSP><FF>106400</FF><LUT>53200</LUT><URAM>0</URAM></AvailableResources>
  </AreaEstimates>
</profile>
"""


def test_synthesis_report_parsed_into_figures(tmp_path: Path) -> None:
    p = "rl2fpga_policy"
    (tmp_path / "project.tcl").write_text(f'set project_name "{p}"\nset backend "vitis"\n')
    sln = tmp_path / f"{p}_prj"
    (sln / "solution1" / "syn" / "report").mkdir(parents=True)
    (sln / "hls.app").write_text('<project><solutions><solution name="solution1"/></solutions></project>')
    (sln / "solution1" / "syn" / "report" / f"{p}_csynth.xml").write_text(CSYNTH)
    fig = synthesis_figures(tmp_path)
    assert fig is not None
    assert fig["latency_cycles"] == {"best": 12, "worst": 15}
    assert fig["interval_cycles"] == {"min": 1, "max": 3}
    assert fig["latency_us"]["worst"] == pytest.approx(15 * 8.0 / 1000)
    assert fig["resources"] == {"BRAM_18K": 2, "DSP": 7, "FF": 1500, "LUT": 3200, "URAM": 0}
    assert fig["utilisation"]["LUT"] == pytest.approx(3200 / 53200)
    assert synthesis_figures(tmp_path / "nothing-here") is None


def test_project_check_finds_missing_referenced_file(tmp_path: Path) -> None:
    p = "top"
    (tmp_path / "build_prj.tcl").write_text(
        "source [file join $tcldir project.tcl]\nadd_files firmware/${project_name}.cpp\n"
        "add_files -tb ${project_name}_test.cpp\nadd_files ${project_name}_prj/solution1/x.v\n"
    )
    (tmp_path / "project.tcl").write_text('set project_name "top"\n')
    (tmp_path / "firmware").mkdir()
    (tmp_path / "firmware" / "top.cpp").write_text("")
    res = check_project_files(tmp_path, "Vitis", p)
    assert res["referenced"] == ["project.tcl", "firmware/top.cpp", "top_test.cpp"]  # build output skipped
    assert "top_test.cpp" in res["missing"] and "firmware/top.cpp" not in res["missing"]


def test_unknown_board_is_one_line_error() -> None:
    with pytest.raises(Rl2fpgaError) as e:
        flow.convert(_mlp(), HlsConfig(backend="VivadoAccelerator", board="pynq-z9"), "/nonexistent/x")
    msg = _one_line(e)
    assert "pynq-z9" in msg and "pynq-z2" in msg
