"""QKeras model <-> golden integer model: formats, masks, files, and == on integers."""

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from rl2fpga.config import QuantizeConfig
from rl2fpga.core.golden import Fmt
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.quantize.qkeras_model import (
    FLOAT32_EXACT,
    float32_bounds,
    golden_from_qkeras,
    grid_float,
    input_format,
    load_qmodel,
    qkeras_int_outputs,
    quantize_model,
    save_qmodel,
    threshold_ints,
    to_grid,
)
from rl2fpga.train.networks import mlp

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)


def cartpole_states(n: int, seed: int = 0) -> np.ndarray:
    """Real CartPole observations under a random policy (episodes reset as they end)."""
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    out = []
    while len(out) < n:
        out.append(obs)
        obs, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            obs, _ = env.reset()
    env.close()
    return np.asarray(out, dtype=np.float32)


@pytest.fixture(scope="module")
def cartpole_q():
    tf.keras.utils.set_random_seed(3)
    model = mlp(4, 2, [64, 64])
    # make the weights less uniform than the initialiser (a trained net has a spread)
    model.set_weights([w * np.float32(2.5) if w.ndim == 2 else w + np.float32(0.1) for w in model.get_weights()])
    states = cartpole_states(1200)
    fmt = input_format(states, 12)
    rng = np.random.default_rng(0)
    masks = {la.name: rng.random(la.get_weights()[0].shape) > 0.7 for la in model.layers[1:]}
    x_int = to_grid(states, fmt)
    # 8-bit weights: the tracking bound below is for 8 bits (the default is 4, for small students)
    qmodel = quantize_model(model, QuantizeConfig(weight_bits=8), masks, fmt, samples=grid_float(x_int, fmt))
    return model, qmodel, fmt, masks, x_int


def test_input_format_pixels_and_floats():
    assert input_format(np.zeros((2, 84, 84, 4), np.uint8)) == Fmt(8, 0, False)
    fmt = input_format(np.array([[-2.9, 0.1], [1.0, 0.2]], np.float32), 12)
    assert fmt.signed and fmt.bits == 12
    # covers twice 2.9 (one bit of headroom): 2^(integer-1) is the first power of two >= 5.8
    assert 2.0 ** (fmt.integer - 1) == 8.0
    with pytest.raises(Rl2fpgaError, match="samples"):
        input_format(np.zeros((0, 3), np.float32))


def test_golden_equals_qkeras_cartpole_real_states(cartpole_q):
    _, qmodel, fmt, _, x_int = cartpole_q
    gm = golden_from_qkeras(qmodel, fmt, 0)
    # proof obligation: every partial sum fits float32's 24-bit significand
    assert max(float32_bounds(gm)) < FLOAT32_EXACT
    y_q = qkeras_int_outputs(qmodel, gm, x_int)
    y_g = np.stack([gm.forward(x) for x in x_int])
    assert len(x_int) >= 1000
    assert y_q.dtype == np.int64 and np.array_equal(y_q, y_g)
    # not trivially equal: outputs vary and are not all saturated
    assert len(np.unique(y_g)) > 100
    assert np.abs(y_g).max() < gm.layers[-1].out_fmt.qmax


def test_masks_stay_zero_and_weights_match_quantizers(cartpole_q):
    _, qmodel, fmt, masks, _ = cartpole_q
    gm = golden_from_qkeras(qmodel, fmt, 0)
    for layer in gm.layers:
        assert (layer.w[~masks[layer.name]] == 0).all()
        q = qmodel.get_layer(layer.name)
        # the integers are what QKeras' own quantizer computes, scaled by 2^frac
        wq = q.kernel_quantizer_internal(q.kernel).numpy().astype(np.float64)
        assert np.array_equal(layer.w, wq * 2.0**layer.w_fmt.frac)
        # biases sit in accumulator LSBs
        bq = q.bias_quantizer_internal(q.bias).numpy().astype(np.float64)
        assert np.array_equal(layer.b, bq * 2.0**layer.acc_frac)


def test_quantized_tracks_float_model(cartpole_q):
    model, qmodel, fmt, masks, x_int = cartpole_q
    masked = tf.keras.models.clone_model(model)
    masked.set_weights([w * masks[la.name] if w.ndim == 2 else w
                        for la in model.layers[1:] for w in la.get_weights()])
    xf = grid_float(x_int, fmt)
    yf = masked(xf).numpy()
    yq = qmodel(xf).numpy()
    # 8-bit weights and activations: close to the float agent, same greedy action nearly always
    assert np.abs(yf - yq).max() < 0.1 * np.abs(yf).max()
    assert (yf.argmax(1) == yq.argmax(1)).mean() > 0.9


def test_save_load_roundtrip(cartpole_q, tmp_path):
    _, qmodel, fmt, _, x_int = cartpole_q
    save_qmodel(qmodel, tmp_path / "qmodel.h5")
    q2 = load_qmodel(tmp_path / "qmodel.h5")
    gm, gm2 = golden_from_qkeras(qmodel, fmt, 0), golden_from_qkeras(q2, fmt, 0)
    for a, b in zip(gm.layers, gm2.layers):
        assert np.array_equal(a.w, b.w) and np.array_equal(a.b, b.b) and a.out_fmt == b.out_fmt
    assert np.array_equal(qkeras_int_outputs(q2, gm2, x_int[:50]), qkeras_int_outputs(qmodel, gm, x_int[:50]))
    assert q2.rl2fpga_meta["act_scale"] == list(qmodel.rl2fpga_meta["act_scale"])
    gm.save(tmp_path / "golden")
    from rl2fpga.core.golden import GoldenModel

    gm3 = GoldenModel.load(tmp_path / "golden")
    assert np.array_equal(gm3.forward(x_int[0]), gm.forward(x_int[0]))


def test_load_errors_are_one_line(tmp_path):
    with pytest.raises(Rl2fpgaError, match="missing"):
        load_qmodel(tmp_path / "nope.h5")
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(Rl2fpgaError, match="corrupt") as e:
        load_qmodel(bad)
    assert "\n" not in str(e.value)


def test_threshold_ints(cartpole_q):
    _, qmodel, fmt, _, _ = cartpole_q
    gm = golden_from_qkeras(qmodel, fmt, 0)
    t = threshold_ints(gm, 0.05)
    assert t[0] == int(np.floor(0.05 / fmt.lsb))  # input layer: T / LSB_in
    assert threshold_ints(gm, 0.0) == [0] * len(gm.layers)
    with pytest.raises(Rl2fpgaError, match="below one LSB"):
        threshold_ints(gm, fmt.lsb / 2)


@pytest.mark.parametrize("bits", [4, 6])
def test_fewer_bits_golden_equals_qkeras(cartpole_q, bits):
    model, _, fmt, masks, x_int = cartpole_q
    qc = QuantizeConfig(weight_bits=bits, act_bits=bits)
    q = quantize_model(model, qc, masks, fmt, samples=grid_float(x_int, fmt))
    gm = golden_from_qkeras(q, fmt, 0)
    assert all(la.w_fmt.bits == bits for la in gm.layers)
    assert all(la.out_fmt.bits == bits for la in gm.layers[:-1])
    assert all(la.w.min() >= -(1 << (bits - 1)) and la.w.max() < (1 << (bits - 1)) for la in gm.layers)
    y_q = qkeras_int_outputs(q, gm, x_int)
    assert np.array_equal(y_q, np.stack([gm.forward(x) for x in x_int]))


@pytest.mark.parametrize("discrete,flag,expect", [(False, True, True), (False, False, False), (True, True, False)])
def test_qat_loss_on_the_actions_for_continuous_actors(discrete, flag, expect):
    """quantize.qat_action_loss: a SAC actor's QAT matches tanh of the means (its actions); a
    saturated mean then costs nothing, so the fit goes where the actions change. DQN never."""
    from rl2fpga.quantize.quantizer import quantize_policy

    tf.keras.utils.set_random_seed(0)
    model = mlp(4, 2, [8])
    w, b = model.get_layer("out").get_weights()
    model.get_layer("out").set_weights([w * 40.0, b])  # means far into tanh's flat tails
    states = cartpole_states(300)
    fmt = input_format(states, 12)
    qcfg = QuantizeConfig(weight_bits=4, qat_steps=100, qat_action_loss=flag)
    qmodel, info = quantize_policy(model, {}, qcfg, fmt, states, seed=0, discrete=discrete)
    assert info["qat_action_loss"] is expect
    x = grid_float(to_grid(states, fmt), fmt)
    err = float(np.mean((np.tanh(qmodel.predict(x, verbose=0)) - np.tanh(model.predict(x, verbose=0))) ** 2))
    assert err < 0.5  # the quantized actor still acts like the float one (4 bits)


def test_layer_thresholds_per_layer(cartpole_q):
    """quantize.layer_thresholds: each layer's T_int from its own T (0 keeps that layer exact);
    a list of the wrong length or a negative T is a one-line error."""
    _, qmodel, fmt, _, _ = cartpole_q
    gm = golden_from_qkeras(qmodel, fmt, 0)
    n = len(gm.layers)
    uniform = threshold_ints(gm, 0.05)
    mixed = threshold_ints(gm, [0.05] + [0.0] * (n - 1))
    assert mixed[0] == uniform[0] == int(np.floor(0.05 / fmt.lsb)) and mixed[1:] == [0] * (n - 1)
    assert threshold_ints(gm, [0.05] * n) == uniform
    with pytest.raises(Rl2fpgaError, match=f"has {n + 1} entries but the network has {n} layers") as e:
        threshold_ints(gm, [0.05] * (n + 1))
    assert "\n" not in str(e.value)
    with pytest.raises(Rl2fpgaError, match="negative"):
        threshold_ints(gm, [0.05] + [-0.1] * (n - 1))


def test_deployed_threshold_is_the_layer_list_when_given():
    from rl2fpga.config import RunConfig, apply_overrides

    cfg = RunConfig()
    assert cfg.quantize.deployed_threshold() == cfg.quantize.threshold
    cfg = apply_overrides(cfg, ["quantize.layer_thresholds=[0.01, 0.0, 0.0]"])
    assert cfg.quantize.deployed_threshold() == [0.01, 0.0, 0.0]
