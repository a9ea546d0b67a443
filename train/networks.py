"""Policy networks built only from layers that QKeras and hls4ml support: Dense, Conv2D with
valid padding, ReLU, Flatten (no BatchNorm, no pooling).

Inputs are on the fixed-point grid: Atari pixels p enter as p * 2^-8 (:func:`pixels_to_input`),
channels-last (84, 84, 4). Layer names are stable (conv1.., fc1.., out) because pruning masks,
the golden model and the hardware refer to layers by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import tensorflow as tf

PIXEL_SCALE = 2.0**-8  # p -> p * 2^-8, exactly representable on an 8-bit fractional grid

# (filters, kernel, stride) of each convolution
ATARI_CONVS = [(32, 8, 4), (32, 4, 2), (64, 3, 2)]  # the 2023 paper's network
NATURE_CONVS = [(32, 8, 4), (64, 4, 2), (64, 3, 1)]  # Mnih et al. 2015
ATARI_SHAPE = (84, 84, 4)


def pixels_to_input(frames: np.ndarray) -> np.ndarray:
    """uint8 frames -> float32 network input on the 2^-8 grid (channels-last kept as given)."""
    return frames.astype(np.float32) * np.float32(PIXEL_SCALE)


def mlp(obs_dim: int, n_out: int, hidden: list[int], name: str = "policy") -> tf.keras.Model:
    inp = tf.keras.Input(shape=(obs_dim,), name="obs")
    x = inp
    for i, h in enumerate(hidden):
        x = tf.keras.layers.Dense(h, activation="relu", name=f"fc{i + 1}")(x)
    out = tf.keras.layers.Dense(n_out, activation="linear", name="out")(x)
    return tf.keras.Model(inp, out, name=name)


def cnn(
    n_out: int,
    kind: Literal["atari", "nature"] = "atari",
    dense: int = 512,
    input_shape: tuple[int, int, int] = ATARI_SHAPE,
    name: str = "policy",
) -> tf.keras.Model:
    convs = ATARI_CONVS if kind == "atari" else NATURE_CONVS
    inp = tf.keras.Input(shape=input_shape, name="obs")
    x = inp
    for i, (f, k, s) in enumerate(convs):
        x = tf.keras.layers.Conv2D(f, k, strides=s, padding="valid", activation="relu", name=f"conv{i + 1}")(x)
    x = tf.keras.layers.Flatten(name="flatten")(x)
    x = tf.keras.layers.Dense(dense, activation="relu", name="fc1")(x)
    out = tf.keras.layers.Dense(n_out, activation="linear", name="out")(x)
    return tf.keras.Model(inp, out, name=name)


def build_network(network: str, obs_shape: tuple[int, ...], n_out: int, hidden: list[int], name: str = "policy") -> tf.keras.Model:
    """The policy network of a run: ``network`` is mlp, atari or nature."""
    if network == "mlp":
        return mlp(int(np.prod(obs_shape)), n_out, hidden, name=name)
    if network in ("atari", "nature"):
        return cnn(n_out, network, input_shape=tuple(obs_shape), name=name)  # type: ignore[arg-type]
    from rl2fpga.errors import Rl2fpgaError

    raise Rl2fpgaError(f"unknown network '{network}'; use mlp, atari or nature")


def weight_layers(model: tf.keras.Model) -> list[tf.keras.layers.Layer]:
    """The Dense and Conv2D layers in order (what pruning, quantization and hardware map)."""
    return [layer for layer in model.layers if isinstance(layer, tf.keras.layers.Dense | tf.keras.layers.Conv2D)]


def chain_forward(model: tf.keras.Model, dtype: tf.DType = tf.bfloat16):
    """``model``'s forward pass computed in ``dtype`` on its own (float32) variables, for a learner:
    every kernel and bias is cast to ``dtype`` where it is used, so gradients flow to the float32
    variables (bfloat16 runs the convolutions and matmuls through oneDNN's AVX512-BF16/AMX
    kernels). Only the layers :func:`build_network` uses (Conv2D, Flatten, Dense); the output is
    float32. The model itself (acting, evaluation, saving) is untouched and stays float32."""
    def flatten(h: tf.Tensor, layer: tf.keras.layers.Layer) -> tf.Tensor:
        return tf.reshape(h, [tf.shape(h)[0], -1])

    def conv(h: tf.Tensor, layer: tf.keras.layers.Layer) -> tf.Tensor:
        return tf.nn.conv2d(h, tf.cast(layer.kernel, dtype), strides=(1, *layer.strides, 1), padding=layer.padding.upper())

    def dense(h: tf.Tensor, layer: tf.keras.layers.Layer) -> tf.Tensor:
        return tf.matmul(h, tf.cast(layer.kernel, dtype))

    # each layer with the function computing its linear part (a Flatten has no bias/activation)
    steps: list[tuple[Callable[[tf.Tensor, tf.keras.layers.Layer], tf.Tensor], tf.keras.layers.Layer]] = []
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.InputLayer):
            continue
        if isinstance(layer, tf.keras.layers.Conv2D) and type(layer) is tf.keras.layers.Conv2D:
            if layer.data_format != "channels_last" or tuple(layer.dilation_rate) != (1, 1) or layer.groups != 1:
                raise ValueError(f"chain_forward: unsupported Conv2D settings in layer {layer.name}")
            steps.append((conv, layer))
        elif type(layer) is tf.keras.layers.Dense:
            steps.append((dense, layer))
        elif type(layer) is tf.keras.layers.Flatten:
            steps.append((flatten, layer))
        else:
            raise ValueError(f"chain_forward: layer {layer.name} ({type(layer).__name__}) is not Conv2D, Flatten or Dense")

    def forward(x: tf.Tensor) -> tf.Tensor:
        # uint8 pixels p: p * 2^-8 (network_input's values), cast once; exact in bfloat16 (8
        # significant bits) and float32
        h = tf.cast(x, dtype) * PIXEL_SCALE if x.dtype == tf.uint8 else tf.cast(x, dtype)
        for op, layer in steps:
            h = op(h, layer)
            if op is flatten:
                continue
            if layer.use_bias:
                h = tf.nn.bias_add(h, tf.cast(layer.bias, dtype))
            h = layer.activation(h)
        return tf.cast(h, tf.float32)

    return forward
