"""Per-channel power-of-two scales in QKeras (explicit ``alpha`` per output channel): golden ==
QKeras on real CartPole states at 2, 4 and 8 bits, mixed precision per layer, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from test_quant_qkeras import cartpole_states

from rl2fpga.config import QuantizeConfig
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.quantize.qkeras_model import (
    golden_from_qkeras,
    grid_float,
    input_format,
    load_qmodel,
    qkeras_int_outputs,
    quantize_model,
    save_qmodel,
    to_grid,
)
from rl2fpga.train.networks import mlp

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)


@pytest.fixture(scope="module")
def net():
    tf.keras.utils.set_random_seed(5)
    model = mlp(4, 2, [32, 32])
    # channels of very different magnitude: what one step per layer handles badly
    ws = model.get_weights()
    ws = [w * np.float32(np.logspace(-2, 0.5, w.shape[-1])) if w.ndim == 2 else w for w in ws]
    model.set_weights(ws)
    states = cartpole_states(400)
    fmt = input_format(states, 12)
    rng = np.random.default_rng(1)
    masks = {la.name: rng.random(la.get_weights()[0].shape) > 0.5 for la in model.layers[1:]}
    return model, fmt, masks, to_grid(states, fmt)


def _quantize(net, **kw):
    model, fmt, masks, x_int = net
    return quantize_model(model, QuantizeConfig(**kw), masks, fmt, samples=grid_float(x_int, fmt))


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_golden_equals_qkeras_per_channel(net, bits):
    _, fmt, masks, x_int = net
    q = _quantize(net, weight_bits=bits, per_channel=True)
    gm = golden_from_qkeras(q, fmt, 0)
    assert gm.per_channel
    for layer in gm.layers:
        assert layer.w_fmt.bits == bits
        assert layer.w.min() >= -(1 << (bits - 1)) and layer.w.max() < (1 << (bits - 1))
        assert not np.any(layer.w[~masks[layer.name]])
        # the quantized float value of every weight is w_int * 2^-w_frac_j (independent of the golden code)
        kernel = q.get_layer(layer.name)
        w_q = kernel.kernel_quantizer_internal(kernel.kernel).numpy().astype(np.float64)
        assert np.array_equal(w_q, layer.w * 2.0 ** -layer.w_frac_ch.astype(np.float64))
    y_q = qkeras_int_outputs(q, gm, x_int)
    assert np.array_equal(y_q, np.stack([gm.forward(x) for x in x_int]))


def test_per_channel_beats_per_layer_at_4_bits(net):
    """The point of it: at 4 bits per-channel scales keep more of the small channels."""
    model, fmt, _, x_int = net
    errs = []
    for pc in (False, True):
        q = _quantize(net, weight_bits=4, per_channel=pc)
        gm = golden_from_qkeras(q, fmt, 0)
        zero = sum(int(np.count_nonzero(la.w == 0)) for la in gm.layers)
        errs.append(zero)
    assert errs[1] < errs[0]  # fewer weights collapse to 0


def test_mixed_precision_and_roundtrip(net, tmp_path):
    _, fmt, _, x_int = net
    q = _quantize(net, layer_weight_bits=[8, 2, 4], per_channel=True)
    gm = golden_from_qkeras(q, fmt, 0)
    assert [la.w_fmt.bits for la in gm.layers] == [8, 2, 4]
    save_qmodel(q, tmp_path / "q.h5")
    q2 = load_qmodel(tmp_path / "q.h5")
    gm2 = golden_from_qkeras(q2, fmt, 0)
    assert [la.w_frac for la in gm2.layers] == [la.w_frac for la in gm.layers]
    assert np.array_equal(qkeras_int_outputs(q2, gm2, x_int[:100]), np.stack([gm.forward(x) for x in x_int[:100]]))
    with pytest.raises(Rl2fpgaError, match="2 entries for 3 weight layers"):
        _quantize(net, layer_weight_bits=[8, 2])


@pytest.mark.parametrize("alpha,needle", [("auto_po2", "unsupported"), ([1.0, 3.0], "not one power of two")])
def test_unsupported_kernel_scales_are_one_line_errors(alpha, needle):
    from qkeras import QActivation, QDense, quantized_bits

    from rl2fpga.core.golden import Fmt

    inp = tf.keras.Input((3,))
    x = QDense(2, kernel_quantizer=quantized_bits(4, 0, alpha=alpha), bias_quantizer=quantized_bits(8, 3, alpha=1),
               name="d")(inp)
    q = tf.keras.Model(inp, QActivation(quantized_bits(16, 7, alpha=1))(x))
    with pytest.raises(Rl2fpgaError, match=needle) as e:
        golden_from_qkeras(q, Fmt(8, 2, True), 0)
    assert "\n" not in str(e.value)
