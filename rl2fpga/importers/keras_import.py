"""Import a Keras or QKeras policy from ``.keras`` (zip) or ``.h5`` (HDF5), safely.

The saved architecture is read as JSON first (``config.json`` in the zip, the ``model_config``
attribute of the HDF5 file) and every ``class_name`` in it must be on an allow-list of plain
layers, QKeras layers and quantizers, initializers and constraints. A ``Lambda`` layer, a
``TFOpLambda`` or any custom class is refused before Keras deserialises anything, so nothing in
the file runs. ``.keras`` files are then loaded with ``safe_mode=True`` as a second line.

QKeras layers import with their *quantized* weights (the quantizer applied to the stored float
kernel), so a model trained with QAT keeps its grid; quantize then re-quantizes to the configured
widths (PTQ of an already-quantized model on a coarser or equal grid is exact).
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from rl2fpga.errors import Rl2fpgaError
from rl2fpga.importers.chain import (
    ConvSpec,
    DenseSpec,
    FlattenSpec,
    ImportedPolicy,
    LayerSpec,
    build_keras,
)

MODEL_CLASSES = {"Sequential", "Functional", "Model"}
LAYER_CLASSES = {"InputLayer", "Dense", "Conv2D", "Flatten", "Activation", "ReLU", "Dropout",
                 "QDense", "QConv2D", "QActivation"}
NESTED_CLASSES = {
    # initializers, regularizers, constraints (inert data)
    "GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal", "LecunUniform", "LecunNormal",
    "Zeros", "Ones", "Constant", "RandomNormal", "RandomUniform", "TruncatedNormal", "Orthogonal",
    "VarianceScaling", "Identity", "L1", "L2", "L1L2", "MaxNorm", "NonNeg", "UnitNorm", "MinMaxNorm",
    "__tuple__",
    # QKeras quantizers
    "quantized_bits", "quantized_relu", "quantized_po2", "quantized_relu_po2", "quantized_tanh",
    "binary", "ternary", "stochastic_binary", "stochastic_ternary", "quantized_ulaw", "QInitializer", "Clip",
}
ALLOWED = MODEL_CLASSES | LAYER_CLASSES | NESTED_CLASSES
# a QKeras activation given as text, e.g. "quantized_relu(8,0)" (parsed by QKeras, never eval'd here)
_QSTRING = re.compile(r"^(quantized_bits|quantized_relu|quantized_tanh|quantized_po2|quantized_relu_po2|relu|linear|tanh)"
                      r"(\([\w\s.,=+\-]*\))?$")
_PLAIN_ACTS = {"relu", "linear", "tanh", None}


def _config_json(path: Path) -> dict[str, Any]:
    if path.suffix.lower() == ".keras":
        try:
            with zipfile.ZipFile(path) as z:
                raw = z.read("config.json")
        except (zipfile.BadZipFile, KeyError, OSError):
            raise Rl2fpgaError(f"{path.name} is not a Keras v3 .keras archive (no config.json); save it with model.save('policy.keras')") from None
    else:
        try:
            import h5py

            with h5py.File(path, "r") as f:
                raw = f.attrs.get("model_config")
        except OSError:
            raise Rl2fpgaError(f"{path.name} is not an HDF5 file; save it with model.save('policy.h5')") from None
        if raw is None:
            raise Rl2fpgaError(f"{path.name} holds weights only (no model_config); save the whole model with model.save('policy.h5')")
    if isinstance(raw, bytes):
        raw = raw.decode()
    try:
        cfg = json.loads(raw)
    except json.JSONDecodeError:
        raise Rl2fpgaError(f"{path.name}: the saved architecture is not valid JSON; save the model again") from None
    if not isinstance(cfg, dict):
        raise Rl2fpgaError(f"{path.name}: the saved architecture is not a model config; save the model again")
    return cfg


def check_config(cfg: Any, fname: str) -> set[str]:
    """Every ``class_name`` in the saved architecture is allowed; returns the set found."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            cn = node.get("class_name")
            if isinstance(cn, str):
                if cn not in ALLOWED:
                    why = "it would run code stored in the file" if cn in ("Lambda", "TFOpLambda", "SlicingOpLambda") \
                        else "it is a custom or unsupported class"
                    raise Rl2fpgaError(f"{fname}: layer class {cn} is refused ({why}); rebuild the policy from "
                                       "Dense, Conv2D (valid padding), Flatten and ReLU layers and save it again")
                reg = node.get("registered_name")
                if isinstance(reg, str) and reg not in (cn, f"keras>{cn}") and not reg.startswith("keras"):
                    raise Rl2fpgaError(f"{fname}: {cn} is registered as the custom object '{reg}', which is refused; save a model of plain Keras layers")
                mod = node.get("module")
                if isinstance(mod, str) and mod.split(".")[0] not in ("keras", "qkeras", "builtins", "tensorflow"):
                    raise Rl2fpgaError(f"{fname}: {cn} comes from the module '{mod}', which is refused; save a model of plain Keras layers")
                found.add(cn)
            for k, v in node.items():
                if k == "activation" and isinstance(v, str) and not _QSTRING.match(v.replace(" ", "")):
                    raise Rl2fpgaError(f"{fname}: activation '{v}' is not supported; use relu or linear (tanh only on the output of a SAC actor)")
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(cfg)
    return found


def _act_name(act: Any) -> str | None:
    """'relu', 'linear', 'tanh' or a QKeras quantizer name for a layer's activation."""
    if act is None:
        return "linear"
    if isinstance(act, str):
        base = act.split("(")[0].strip()
        return {"relu": "relu", "linear": "linear", "tanh": "tanh", "quantized_relu": "relu",
                "quantized_bits": "linear", "quantized_tanh": "tanh"}.get(base)
    name = getattr(act, "__name__", None) or type(act).__name__
    return {"relu": "relu", "linear": "linear", "tanh": "tanh", "quantized_relu": "relu",
            "quantized_bits": "linear", "quantized_tanh": "tanh"}.get(name)


def _quantized(layer: Any, which: str, value: np.ndarray) -> np.ndarray:
    q = getattr(layer, f"{which}_quantizer_internal", None)
    if q is None:
        return value
    return np.asarray(q(value.astype(np.float32)), np.float32)


def policy_from_model(model: Any, fname: str = "the model") -> ImportedPolicy:
    """The chain of a loaded tf.keras model (Keras or QKeras)."""
    import tensorflow as tf

    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise Rl2fpgaError(f"{fname} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; a policy has one of each")
    layers: list[LayerSpec] = []
    tanh = False
    quantized = False

    def set_act(a: str | None, where: str) -> None:
        nonlocal tanh
        if a is None:
            raise Rl2fpgaError(f"{fname}: layer {where} has an unsupported activation; use relu or linear")
        if a == "linear":
            return
        weighted = [la for la in layers if la.weighted]
        if not weighted or not layers[-1].weighted:
            raise Rl2fpgaError(f"{fname}: activation {where} does not follow a Dense or Conv2D layer; put it right after one")
        if a == "relu":
            if tanh:
                raise Rl2fpgaError(f"{fname}: tanh is only supported as the last operation (SAC mean head)")
            weighted[-1].relu = True
        elif a == "tanh":
            tanh = True

    for layer in model.layers:
        cls = type(layer).__name__
        if tanh and cls not in ("Dropout",):
            raise Rl2fpgaError(f"{fname}: layer {layer.name} follows a tanh; tanh is only supported as the last operation (SAC mean head)")
        if isinstance(layer, tf.keras.layers.InputLayer) or cls == "Dropout":
            continue
        if cls in ("Dense", "QDense", "Conv2D", "QConv2D"):
            w = layer.get_weights()
            kernel = np.asarray(w[0], np.float32)
            bias = np.asarray(w[1], np.float32) if layer.use_bias else np.zeros(kernel.shape[-1], np.float32)
            if cls.startswith("Q"):
                quantized = True
                kernel = _quantized(layer, "kernel", kernel)
                bias = _quantized(layer, "bias", bias) if layer.use_bias else bias
            if cls.endswith("Conv2D"):
                if layer.padding != "valid" or tuple(layer.dilation_rate) != (1, 1) or layer.data_format != "channels_last" \
                        or getattr(layer, "groups", 1) != 1:
                    raise Rl2fpgaError(f"{fname}: Conv2D {layer.name} must have padding='valid', no dilation, no groups, channels_last")
                layers.append(ConvSpec(kernel, bias, tuple(int(s) for s in layer.strides)))
            else:
                layers.append(DenseSpec(kernel, bias))
            set_act(_act_name(layer.activation), layer.name)
        elif cls == "Flatten":
            layers.append(FlattenSpec())
        elif cls in ("Activation", "QActivation"):
            quantized |= cls == "QActivation"
            set_act(_act_name(layer.activation), layer.name)
        elif cls == "ReLU":
            if layer.max_value is not None or float(layer.negative_slope) != 0.0 or float(layer.threshold) != 0.0:
                raise Rl2fpgaError(f"{fname}: ReLU {layer.name} has max_value/negative_slope/threshold; only a plain ReLU maps")
            set_act("relu", layer.name)
        else:
            raise Rl2fpgaError(f"{fname}: layer {layer.name} ({cls}) is not supported; use Dense, Conv2D (valid), Flatten and ReLU")
    shape = tuple(int(d) for d in model.input_shape[1:])
    pol = ImportedPolicy(layers, shape, tanh, {"format": "qkeras" if quantized else "keras"})
    return pol


def verify_same_function(pol: ImportedPolicy, source: Any, canon: Any, seed: int = 0) -> None:
    """The rebuilt chain computes what the source model computes (random inputs, float32):
    catches a graph that is not a plain chain (skips, branches) which the layer walk cannot see."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (64, *pol.input_shape)).astype(np.float32)
    y_src = np.asarray(source(x, training=False))
    y = np.asarray(canon(x, training=False))
    if pol.output_tanh:
        y = np.asarray(tf.tanh(y))
    scale = max(1.0, float(np.abs(y_src).max()))
    if not np.allclose(y, y_src, rtol=1e-4, atol=1e-4 * scale):
        raise Rl2fpgaError(f"{pol.source.get('file', 'the model')}: the layers do not form a plain chain (the rebuilt network "
                           "computes something else, e.g. a skip connection); pass a Conv -> Flatten -> Dense chain")


def read_keras_file(path: Path) -> ImportedPolicy:
    import tensorflow as tf

    classes = check_config(_config_json(path), path.name)
    custom: dict[str, Any] = {}
    if classes & {"QDense", "QConv2D", "QActivation"} or classes & {c for c in NESTED_CLASSES if c.islower()}:
        from rl2fpga.quantize.qkeras_model import custom_objects

        custom = custom_objects()
    kwargs: dict[str, Any] = {"compile": False, "custom_objects": custom}
    if path.suffix.lower() == ".keras":
        kwargs["safe_mode"] = True
    try:
        model = tf.keras.models.load_model(path, **kwargs)
    except (OSError, ValueError, KeyError, TypeError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise Rl2fpgaError(f"{path.name} could not be loaded ({first[:200]}); save it again with model.save()") from None
    pol = policy_from_model(model, path.name)
    pol.source["file"] = path.name
    if pol.source["format"] == "keras":
        verify_same_function(pol, model, build_keras(pol))
    return pol
