"""Bring your own policy: Keras / QKeras / ONNX importers, the Python API and ``rl2fpga run
--model``. The ONNX graphs are built here with ``onnx.helper`` (seeded), and every reference
output is computed here in NumPy from the same arrays, never by the importer under test."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from rl2fpga.errors import Rl2fpgaError  # noqa: E402

# ----------------------------------------------------------------------------- builders


def _mlp_weights(seed: int, sizes: list[int]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Seeded small random weights; for a 4-h-h-2 net (CartPole) two units of each hidden layer
    carry a balancing controller u = 0.1 x + 0.5 x' + 3 th + th' (as relu(u), relu(-u)) so the
    episodes are long and the frames realistic (500 steps for seeds 0-4 without the noise)."""
    rng = np.random.default_rng(seed)
    out = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        out.append((rng.normal(0, 0.05, (a, b)).astype(np.float32), rng.normal(0, 0.01, b).astype(np.float32)))
    if sizes[0] == 4 and sizes[-1] == 2 and len(sizes) == 4:
        u = np.array([0.1, 0.5, 3.0, 1.0], np.float32)
        (w1, b1), (w2, b2), (w3, b3) = out
        w1[:, 0], w1[:, 1], b1[:2] = u, -u, 0
        w2[:, :2] = 0
        w2[0, 0], w2[1, 1], b2[:2] = 1, 1, 0
        w3[:2, :] = [[0, 4], [4, 0]]
    return out


def onnx_mlp(path: Path, seed: int = 3, sizes: tuple[int, ...] = (4, 16, 16, 2), extra_op: str | None = None) -> list:
    """Gemm(transB=1)+Relu, MatMul+Add+Relu, Gemm: the three ways PyTorch exports a Linear."""
    ws = _mlp_weights(seed, list(sizes))
    (w1, b1), (w2, b2), (w3, b3) = ws
    init = [
        numpy_helper.from_array(w1.T.copy(), "w1"), numpy_helper.from_array(b1, "b1"),
        numpy_helper.from_array(w2, "w2"), numpy_helper.from_array(b2, "b2"),
        numpy_helper.from_array(w3.T.copy(), "w3"), numpy_helper.from_array(b3, "b3"),
    ]
    nodes = [
        helper.make_node("Gemm", ["obs", "w1", "b1"], ["h1"], transB=1, name="fc1"),
        helper.make_node("Relu", ["h1"], ["a1"], name="relu1"),
        helper.make_node("MatMul", ["a1", "w2"], ["m2"], name="fc2_matmul"),
        helper.make_node("Add", ["m2", "b2"], ["h2"], name="fc2_add"),
        helper.make_node("Relu", ["h2"], ["a2"], name="relu2"),
        helper.make_node("Gemm", ["a2", "w3", "b3"], ["q" if extra_op is None else "q0"], transB=1, name="out"),
    ]
    if extra_op is not None:
        nodes.append(helper.make_node(extra_op, ["q0"], ["q"], name="odd"))
    graph = helper.make_graph(nodes, "policy",
                              [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", sizes[0]])],
                              [helper.make_tensor_value_info("q", TensorProto.FLOAT, ["batch", sizes[-1]])], init)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="test")
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    return ws


def keras_mlp(path: Path, seed: int = 5, sizes: tuple[int, ...] = (4, 16, 16, 2)) -> list:
    import tensorflow as tf

    ws = _mlp_weights(seed, list(sizes))
    inp = tf.keras.Input((sizes[0],))
    x = inp
    for i, (w, _b) in enumerate(ws):
        last = i == len(ws) - 1
        x = tf.keras.layers.Dense(w.shape[1], name=f"my_dense_{i}")(x)
        if not last:
            x = tf.keras.layers.ReLU()(x)
    model = tf.keras.Model(inp, x)
    for i, (w, b) in enumerate(ws):
        model.get_layer(f"my_dense_{i}").set_weights([w, b])
    model.save(path)
    return ws


def np_mlp(ws: list, x: np.ndarray) -> np.ndarray:
    h = x.astype(np.float64)
    for i, (w, b) in enumerate(ws):
        h = h @ w.astype(np.float64) + b
        if i < len(ws) - 1:
            h = np.maximum(h, 0)
    return h


# ----------------------------------------------------------------------------- importers (fast)


def test_onnx_mlp_imports_to_the_same_function(tmp_path: Path) -> None:
    from rl2fpga.importers import build_keras, read_policy

    ws = onnx_mlp(tmp_path / "p.onnx")
    pol = read_policy(tmp_path / "p.onnx")
    assert [la.kind for la in pol.layers] == ["dense", "dense", "dense"]
    assert [la.relu for la in pol.layers] == [True, True, False]
    model = build_keras(pol)
    assert [la.name for la in model.layers[1:]] == ["fc1", "fc2", "out"]
    x = np.random.default_rng(0).uniform(-2, 2, (50, 4)).astype(np.float32)
    np.testing.assert_allclose(model(x).numpy(), np_mlp(ws, x), rtol=1e-5, atol=1e-5)
    assert len(pol.source["sha256"]) == 64


def test_onnx_unsupported_op_is_named(tmp_path: Path) -> None:
    from rl2fpga.importers import read_policy

    onnx_mlp(tmp_path / "bad.onnx", extra_op="Sigmoid")
    with pytest.raises(Rl2fpgaError) as e:
        read_policy(tmp_path / "bad.onnx")
    msg = str(e.value)
    assert "Sigmoid" in msg and "\n" not in msg


def test_cli_unsupported_onnx_op_one_line_and_nothing_written(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from rl2fpga.cli import main

    onnx_mlp(tmp_path / "bad.onnx", extra_op="Softmax")
    rc = main(["run", "--model", str(tmp_path / "bad.onnx"), "--env", "CartPole-v1", "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("error: ") and "Softmax" in err[0]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def _np_conv_nchw(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int) -> np.ndarray:
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    y = np.zeros((n, o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            y[:, :, i, j] = np.einsum("nchw,ochw->no", patch, w) + b
    return y


def test_onnx_cnn_layout_and_input_scale(tmp_path: Path) -> None:
    """NCHW Conv -> Relu -> Flatten -> Gemm with x / 255 at the input: the channels-last Keras
    chain on p * 2^-8 computes what the ONNX graph computes on the raw pixels p."""
    from rl2fpga.importers import build_keras, read_policy

    rng = np.random.default_rng(7)
    wc = rng.normal(0, 0.3, (3, 2, 3, 3)).astype(np.float32)
    bc = rng.normal(0, 0.1, 3).astype(np.float32)
    wf = rng.normal(0, 0.3, (4, 3 * 3 * 3)).astype(np.float32)  # (out, in): transB=1
    bf = rng.normal(0, 0.1, 4).astype(np.float32)
    init = [numpy_helper.from_array(wc, "wc"), numpy_helper.from_array(bc, "bc"), numpy_helper.from_array(wf, "wf"),
            numpy_helper.from_array(bf, "bf"), numpy_helper.from_array(np.array(255.0, np.float32), "k255")]
    nodes = [helper.make_node("Div", ["obs", "k255"], ["x"]),
             helper.make_node("Conv", ["x", "wc", "bc"], ["c1"], kernel_shape=[3, 3], strides=[2, 2]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Flatten", ["r1"], ["f"], axis=1),
             helper.make_node("Gemm", ["f", "wf", "bf"], ["q"], transB=1)]
    g = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, 2, 7, 7])],
                          [helper.make_tensor_value_info("q", TensorProto.FLOAT, [1, 4])], init)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), str(tmp_path / "cnn.onnx"))
    pol = read_policy(tmp_path / "cnn.onnx")
    assert pol.input_shape == (7, 7, 2)
    pol.fold_input_scale(pixels=True)
    model = build_keras(pol)
    p = rng.integers(0, 256, (5, 2, 7, 7)).astype(np.float64)  # raw pixels, NCHW
    ref = np.maximum(_np_conv_nchw(p / 255.0, wc, bc, 2), 0).reshape(5, -1) @ wf.T.astype(np.float64) + bf
    x_rl = (p.transpose(0, 2, 3, 1) / 256.0).astype(np.float32)  # what rl2fpga feeds: channels-last, p * 2^-8
    np.testing.assert_allclose(model(x_rl).numpy(), ref, rtol=1e-4, atol=1e-4)


def test_onnx_padding_refused(tmp_path: Path) -> None:
    from rl2fpga.importers import read_policy

    w = np.ones((1, 1, 3, 3), np.float32)
    g = helper.make_graph([helper.make_node("Conv", ["obs", "w"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])], "g",
                          [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, 1, 5, 5])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 5, 5])], [numpy_helper.from_array(w, "w")])
    onnx.save(helper.make_model(g), str(tmp_path / "pad.onnx"))
    with pytest.raises(Rl2fpgaError, match="padding"):
        read_policy(tmp_path / "pad.onnx")


def test_keras_mlp_imports_with_folded_relu_layers(tmp_path: Path) -> None:
    from rl2fpga.importers import build_keras, read_policy

    ws = keras_mlp(tmp_path / "k.keras")
    pol = read_policy(tmp_path / "k.keras")
    assert [la.relu for la in pol.layers] == [True, True, False]
    x = np.random.default_rng(1).uniform(-2, 2, (40, 4)).astype(np.float32)
    np.testing.assert_allclose(build_keras(pol)(x).numpy(), np_mlp(ws, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_keras_lambda_is_refused_before_loading(tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Lambda layer would run code stored in the file: refused from the saved config, and the
    function never runs (it would create a marker file)."""
    import tensorflow as tf

    from rl2fpga.importers import read_policy

    marker = tmp_path / "ran"
    monkeypatch.setenv("RL2FPGA_LAMBDA_MARKER", str(marker))
    side_effect = lambda x: x + 0.0 * __import__("pathlib").Path(__import__("os").environ["RL2FPGA_LAMBDA_MARKER"]).write_text("x")  # noqa: E731
    inp = tf.keras.Input((4,))
    x = tf.keras.layers.Dense(2)(inp)
    model = tf.keras.Model(inp, tf.keras.layers.Lambda(side_effect)(x))
    model.save(tmp_path / f"lam{suffix}")
    marker.unlink(missing_ok=True)
    with pytest.raises(Rl2fpgaError, match="Lambda"):
        read_policy(tmp_path / f"lam{suffix}")
    assert not marker.exists()


def test_keras_skip_connection_refused(tmp_path: Path) -> None:
    import tensorflow as tf

    from rl2fpga.importers import read_policy

    inp = tf.keras.Input((4,))
    h = tf.keras.layers.Dense(4, activation="relu")(inp)
    out = tf.keras.layers.Dense(2)(tf.keras.layers.Add()([h, inp]))
    tf.keras.Model(inp, out).save(tmp_path / "skip.keras")
    with pytest.raises(Rl2fpgaError, match="Add"):
        read_policy(tmp_path / "skip.keras")


def test_qkeras_h5_imports_quantized_weights(tmp_path: Path) -> None:
    import tensorflow as tf
    from qkeras import QActivation, QDense, quantized_bits

    from rl2fpga.importers import read_policy

    inp = tf.keras.Input((4,))
    x = QDense(8, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(8, 2, alpha=1), name="q1")(inp)
    x = QActivation("quantized_relu(8,2)")(x)
    x = QDense(2, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(8, 2, alpha=1), name="q2")(x)
    model = tf.keras.Model(inp, x)
    rng = np.random.default_rng(2)
    model.get_layer("q1").set_weights([rng.normal(0, 0.4, (4, 8)).astype(np.float32), rng.normal(0, 0.2, 8).astype(np.float32)])
    model.save(tmp_path / "q.h5", save_format="h5")
    pol = read_policy(tmp_path / "q.h5")
    assert pol.source["format"] == "qkeras"
    assert [la.relu for la in pol.layers] == [True, False]
    w = pol.layers[0].w
    assert np.array_equal(w * 32, np.round(w * 32))  # on the 6-bit grid (5 fractional bits)
    assert np.abs(w).max() < 1.0


def test_imported_policy_checked_against_env(tmp_path: Path) -> None:
    from rl2fpga.api import import_policy, imported_config
    from rl2fpga.config import RunConfig
    from rl2fpga.run import Run

    onnx_mlp(tmp_path / "p.onnx", sizes=(4, 8, 8, 3))  # CartPole has 2 actions
    cfg = imported_config(RunConfig(), "CartPole-v1", False, "prune", ["train.eval_episodes=1"])
    run = Run.create(cfg, path=tmp_path / "run")
    with pytest.raises(Rl2fpgaError, match="3 outputs"):
        import_policy(run, cfg, tmp_path / "p.onnx")
    assert not (tmp_path / "run" / "train").exists()


# ----------------------------------------------------------------------------- end to end (slow)

FAST = ["train.eval_episodes=3", "quantize.method=ptq", "quantize.calib_episodes=2", "quantize.delta_episodes=2",
        "quantize.check_states=300", "hls.csim_frames=60", "hls.build=false", "rtl.synth=false", "cosim.frames=40",
        "cosim.backpressure=0.3"]


def _check_run(run_dir: Path) -> dict:
    q = json.loads((run_dir / "quantize" / "summary.json").read_text())
    h = json.loads((run_dir / "hls" / "summary.json").read_text())
    c = json.loads((run_dir / "cosim" / "summary.json").read_text())
    assert q["golden_equals_qkeras_states"] > 0  # the quantize step raises on any difference
    assert h["csim_frames"] >= 60 and h["csim_mismatches"] == 0
    assert c["frames"] == 40 and c["mismatches"] == 0
    frames = json.loads((run_dir / "cosim" / "frames.json").read_text())
    assert all(f["macs"] == f["golden_macs"] for f in frames)
    assert (run_dir / "run.log").stat().st_size > 0
    return q


@pytest.mark.slow
@pytest.mark.verilator
def test_api_compiles_keras_and_onnx_to_cosim(tmp_path: Path) -> None:
    import rl2fpga
    from rl2fpga.hls.cosim.harness import have_verilator

    if not have_verilator():
        pytest.skip("verilator not on PATH")
    keras_mlp(tmp_path / "kpol.keras")
    onnx_mlp(tmp_path / "opol.onnx")
    for f in ("kpol.keras", "opol.onnx"):
        c = rl2fpga.compile(tmp_path / f, "CartPole-v1", run_dir=tmp_path / "runs" / f.replace(".", "_"),
                            start="quantize", overrides=FAST)
        g = c.golden
        assert [la.name for la in g.layers] == ["fc1", "fc2", "out"]
        h = c.hls_project()
        assert h["csim_mismatches"] == 0
        c.engine()
        cs = c.cosim()
        assert cs["mismatches"] == 0
        assert c.report().exists()
        _check_run(c.run_dir)
        imported = json.loads((c.run_dir / "train" / "imported.json").read_text())
        assert imported["file"] == f


@pytest.mark.slow
@pytest.mark.verilator
def test_cli_run_model_to_cosim(tmp_path: Path) -> None:
    from rl2fpga.cli import main
    from rl2fpga.hls.cosim.harness import have_verilator

    if not have_verilator():
        pytest.skip("verilator not on PATH")
    keras_mlp(tmp_path / "kpol.keras")
    onnx_mlp(tmp_path / "opol.onnx")
    for f, frm in (("opol.onnx", "prune"), ("kpol.keras", "quantize")):
        sets = [a for s in FAST + (["prune.method=none"] if frm == "prune" else []) for a in ("--set", s)]
        rc = main(["run", "--model", str(tmp_path / f), "--env", "CartPole-v1", "--runs-dir", str(tmp_path / "runs"),
                   "--from", frm, "--to", "cosim", *sets])
        assert rc == 0
        _check_run(tmp_path / "runs" / Path(f).stem)


def test_onnx_sac_mean_head_tanh_is_taken_as_the_squash(tmp_path: Path) -> None:
    """A SAC actor exported with its tanh: the tanh is removed (the pipeline applies tanh and the
    action scale itself) and the import writes train/ for a continuous environment."""
    from rl2fpga.api import import_policy, imported_config
    from rl2fpga.config import RunConfig
    from rl2fpga.run import Run
    from rl2fpga.train.trainer import load_trained

    ws = onnx_mlp(tmp_path / "a.onnx", sizes=(3, 8, 8, 1), extra_op="Tanh")  # Pendulum: obs 3, action 1
    cfg = imported_config(RunConfig(), "Pendulum-v1", False, "quantize", ["train.eval_episodes=1"])
    assert cfg.train.algo == "sac" and cfg.prune.method == "none"
    run = Run.create(cfg, path=tmp_path / "run")
    rec = import_policy(run, cfg, tmp_path / "a.onnx")
    assert rec["output_tanh_removed"] is True
    model, spec = load_trained(run)
    assert not spec.discrete
    x = np.random.default_rng(4).uniform(-1, 1, (20, 3)).astype(np.float32)
    np.testing.assert_allclose(model(x).numpy(), np_mlp(ws, x), rtol=1e-5, atol=1e-5)  # the mean, before tanh
    assert json.loads((run.path / "train" / "summary.json").read_text())["steps"] == 0


def test_onnx_tanh_on_a_q_network_is_refused(tmp_path: Path) -> None:
    from rl2fpga.api import import_policy, imported_config
    from rl2fpga.config import RunConfig
    from rl2fpga.run import Run

    onnx_mlp(tmp_path / "q.onnx", extra_op="Tanh")
    cfg = imported_config(RunConfig(), "CartPole-v1", False, "quantize", ["train.eval_episodes=1"])
    with pytest.raises(Rl2fpgaError, match="tanh"):
        import_policy(Run.create(cfg, path=tmp_path / "run"), cfg, tmp_path / "q.onnx")
