"""The records every importer produces and what turns them into the canonical Keras chain:
:class:`LayerSpec` (one subclass per layer kind: :class:`DenseSpec`, :class:`ConvSpec`,
:class:`FlattenSpec`), :class:`ImportedPolicy`, :func:`build_keras`, :func:`check_against_env`.

A module of its own so that the package (``read_policy``) and the importers it dispatches to
(:mod:`~rl2fpga.importers.keras_import`, :mod:`~rl2fpga.importers.onnx_import`) both import it
and not each other.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from rl2fpga.errors import Rl2fpgaError


@dataclass
class LayerSpec:
    """One layer in the canonical chain, weights in Keras layout; one subclass per kind."""

    kind: ClassVar[str] = ""  # a label for people (the API's layer summary), never switched on
    weighted: ClassVar[bool] = True  # has weights (Dense, Conv); a Flatten has none

    w: np.ndarray | None = None  # dense (in, out); conv (kh, kw, cin, cout)
    b: np.ndarray | None = None
    strides: tuple[int, int] = (1, 1)
    relu: bool = False


@dataclass
class DenseSpec(LayerSpec):
    kind: ClassVar[str] = "dense"


@dataclass
class ConvSpec(LayerSpec):
    kind: ClassVar[str] = "conv"


@dataclass
class FlattenSpec(LayerSpec):
    kind: ClassVar[str] = "flatten"
    weighted: ClassVar[bool] = False


@dataclass
class ImportedPolicy:
    """The chain, plus what the importer folded away and where it came from."""

    layers: list[LayerSpec]
    input_shape: tuple[int, ...]  # channels-last for images
    output_tanh: bool = False  # the source ended in tanh (SAC mean head); the pipeline re-applies it
    source: dict[str, Any] = field(default_factory=dict)
    input_scale: float = 1.0  # a constant the source multiplied its input by (x / 255), folded into layer 1
    raw_input: bool = False  # the source takes the raw observation (ONNX); Keras takes rl2fpga's input (p * 2^-8)

    def fold_input_scale(self, pixels: bool) -> None:
        """Fold the input scale into the first layer's weights (once): for pixel observations a
        raw-input source sees ``p = 256 * x`` where rl2fpga feeds ``x = p * 2^-8``."""
        s = self.input_scale * (256.0 if pixels and self.raw_input else 1.0)
        if s != 1.0:
            first = next(la for la in self.layers if la.weighted)
            first.w = (first.w.astype(np.float64) * s).astype(np.float32)  # type: ignore[union-attr]
        self.source["input_scale_folded"] = s
        self.input_scale, self.raw_input = 1.0, False


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_chain(layers: list[LayerSpec], where: str) -> None:
    weighted = [la for la in layers if la.weighted]
    if not weighted:
        raise Rl2fpgaError(f"{where} has no Dense/Gemm or Conv layer; pass a policy network")
    if weighted[-1].relu:
        raise Rl2fpgaError(f"{where} ends in a ReLU; the output layer must be linear (Q-values or the actor's mean)")
    seen_dense = False
    for la in layers:
        if isinstance(la, DenseSpec):
            seen_dense = True
        elif isinstance(la, ConvSpec) and seen_dense:
            raise Rl2fpgaError(f"{where} has a convolution after a dense layer; only Conv... -> Flatten -> Dense... chains map to hardware")


def build_keras(pol: ImportedPolicy, name: str = "policy") -> Any:
    """The canonical tf.keras model of an imported chain (float32 weights copied exactly)."""
    import tensorflow as tf

    _check_chain(pol.layers, pol.source.get("file", "the model"))
    inp = tf.keras.Input(shape=tuple(pol.input_shape), name="obs")
    x = inp
    weighted = [i for i, la in enumerate(pol.layers) if la.weighted]
    last = weighted[-1]
    n_conv = n_fc = 0
    pending: list[tuple[str, np.ndarray, np.ndarray]] = []
    if len(pol.input_shape) > 1 and isinstance(pol.layers[0], DenseSpec):
        x = tf.keras.layers.Flatten(name="flatten")(x)
    for i, la in enumerate(pol.layers):
        act = "relu" if la.relu else "linear"
        if not la.weighted:
            if len(x.shape) > 2:
                x = tf.keras.layers.Flatten(name="flatten")(x)
            continue
        assert la.w is not None
        b = la.b if la.b is not None else np.zeros(la.w.shape[-1], np.float32)
        if isinstance(la, ConvSpec):
            n_conv += 1
            lname = f"conv{n_conv}"
            kh, kw, _, cout = la.w.shape
            x = tf.keras.layers.Conv2D(cout, (kh, kw), strides=la.strides, padding="valid", activation=act, name=lname)(x)
        else:
            if len(x.shape) > 2:
                x = tf.keras.layers.Flatten(name="flatten")(x)
            lname = "out" if i == last else f"fc{n_fc + 1}"
            if i != last:
                n_fc += 1
            if int(x.shape[-1]) != la.w.shape[0]:
                raise Rl2fpgaError(f"layer {lname} expects {la.w.shape[0]} inputs but gets {int(x.shape[-1])}; the model's shapes do not chain")
            x = tf.keras.layers.Dense(la.w.shape[1], activation=act, name=lname)(x)
        pending.append((lname, np.asarray(la.w, np.float32), np.asarray(b, np.float32)))
    model = tf.keras.Model(inp, x, name=name)
    for lname, w, b in pending:
        layer = model.get_layer(lname)
        want = [tuple(v.shape) for v in layer.get_weights()]
        if want != [w.shape, b.shape]:
            raise Rl2fpgaError(f"layer {lname}: weights {w.shape}/{b.shape} do not fit {want}; the model's shapes do not chain")
        layer.set_weights([w, b])
    return model


def check_against_env(pol: ImportedPolicy, model: Any, spec: Any) -> None:
    """The model's input and output fit the environment (observation shape, actions)."""
    obs = tuple(spec.obs_shape)
    if tuple(pol.input_shape) != obs:
        raise Rl2fpgaError(f"the model takes inputs of shape {tuple(pol.input_shape)} but {spec.id} observations are {obs}; pass a policy for this environment")
    n_out = int(model.output_shape[-1])
    if n_out != spec.n_actions:
        what = "actions" if spec.discrete else "action dimensions"
        raise Rl2fpgaError(f"the model has {n_out} outputs but {spec.id} has {spec.n_actions} {what}; pass a policy for this environment")
    if pol.output_tanh and spec.discrete:
        raise Rl2fpgaError(f"the model ends in tanh but {spec.id} has discrete actions; a Q-network's output must be linear")
