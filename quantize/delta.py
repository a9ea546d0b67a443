"""The float DeltaNetwork (2023 paper) on a Keras policy, counting significant multiplications.

Every layer keeps the input values it last used, ``x_hat``; an input is transmitted again (and
its column of weights used) only when ``|x - x_hat| > T`` (T in the float units of that
layer's input: pixels in [0, 1), hidden activations as the float network computes them).
``acc = W x_hat + b`` is recomputed in float64 (equal to the incremental sum up to rounding).
The significant multiplications of a step are counted exactly as the golden model counts
them (:meth:`rl2fpga.core.layers.Layer.significant` on the nonzero pattern of the weights).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from rl2fpga.core.fixedpoint import Fmt
from rl2fpga.core.golden import StepStats
from rl2fpga.core.layers import DeltaInput, Layer
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.quantize.qkeras_model import KERAS_KINDS, golden_class_of, per_layer_thresholds

_DUMMY = Fmt(32, 16, True)


@dataclass
class FloatLayer:
    name: str
    w: np.ndarray  # float64, dense (n_in, n_out), conv (kh, kw, c_in, c_out)
    b: np.ndarray
    activation: str
    structure: Layer  # nonzero pattern as an integer golden layer (geometry and counting)

    @property
    def in_shape(self) -> tuple[int, ...]:
        return self.structure.in_shape

    @property
    def stride(self) -> tuple[int, int]:
        return self.structure.stride

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(np.asarray(x, np.float64).reshape(self.in_shape))
        y = self.structure.apply(self.w, x) + self.b
        return np.maximum(y, 0.0) if self.activation == "relu" else y


def float_layers(model: tf.keras.Model) -> list[FloatLayer]:
    """The Dense/Conv2D chain of a float Keras policy (Flatten is implicit, C order)."""
    out: list[FloatLayer] = []
    shape = tuple(int(s) for s in model.input_shape[1:])
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.InputLayer | tf.keras.layers.Flatten):
            continue
        if not isinstance(layer, tf.keras.layers.Dense | tf.keras.layers.Conv2D):
            raise Rl2fpgaError(f"layer {layer.name} ({type(layer).__name__}) unsupported; use Dense, Conv2D and Flatten")
        w, b = (np.asarray(a, np.float64) for a in layer.get_weights())
        act = layer.get_config().get("activation", "linear")
        cls = golden_class_of(layer)
        kind = KERAS_KINDS[cls]
        structure = cls(layer.name, (w != 0).astype(np.int64), np.zeros(w.shape[-1], np.int64),
                        _DUMMY, _DUMMY, _DUMMY, "linear", kind.in_shape(shape), kind.stride(layer))
        out.append(FloatLayer(layer.name, w, b, act, structure))
        shape = structure.out_shape
    return out


class FloatDeltaNetwork:
    """DeltaNetwork inference of a float policy with one threshold T for every layer (or one
    per layer: a list, as ``quantize.layer_thresholds``)."""

    def __init__(self, model: tf.keras.Model, threshold: float | list[float]):
        self.layers = float_layers(model)
        self.thresholds = per_layer_thresholds(threshold, len(self.layers))
        self.threshold = self.thresholds[0]
        self.reset()

    def reset(self) -> None:
        self.x_hat = [np.zeros(la.in_shape) for la in self.layers]

    def step(self, x: np.ndarray) -> tuple[np.ndarray, StepStats]:
        stats = StepStats()
        for k, layer in enumerate(self.layers):
            x = np.asarray(x, np.float64).reshape(layer.in_shape)
            self.x_hat[k], changed, _ = DeltaInput(self.thresholds[k]).update(x, self.x_hat[k])
            stats.events.append(int(changed.sum()))
            stats.macs.append(layer.structure.significant(changed))
            x = layer.forward(self.x_hat[k])
        return x.reshape(-1), stats

    def dense_mults(self) -> list[int]:
        return [la.structure.dense_mults() for la in self.layers]
