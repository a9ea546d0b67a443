"""The delta-update input stage, as a Keras layer and as an hls4ml extension layer.

Semantics (rl2fpga/core/golden.py): every element keeps the value it last transmitted, ``x_hat``,
and takes the new value only when ``|x - x_hat| > T`` (strict); the layer outputs ``x_hat``.
``x_hat`` starts at 0 and is reset at every episode start. ``T = T_int * 2^-frac`` where
``T_int`` is the golden threshold in LSBs of the layer's input format; ``T_int = 0`` makes the
stage a passthrough (every change is transmitted).

Pieces of the hls4ml extension (hls4ml's "extension API"):

* :class:`DeltaStage` - the Keras layer (stateful over the batch axis read as time);
* :class:`Rl2fpgaDelta` - the hls4ml layer, registered with ``register_layer``;
* :func:`parse_delta_stage` - the Keras-to-hls4ml parser;
* :class:`DeltaConfigTemplate`, :class:`DeltaFunctionTemplate` - config and function-call
  templates (Jinja2 files in ``templates/hls4ml``) registered on the Vivado, Vitis and
  VivadoAccelerator backends, with the C++ header ``rl2fpga_delta.h`` (static state, exported
  C-simulation reset / threshold hooks) registered as custom source;
* :func:`add_reset_port` - the writer hook: after hls4ml writes a project it gives the top
  function the episode-reset port ``bool rl2fpga_reset`` that every delta stage takes (the
  Python bridge drives it from ``rl2fpga_delta_reset()``; on the VivadoAccelerator overlay it is
  the first word of the input stream).

Call :func:`register_delta_extension` once before converting (it is idempotent).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import tensorflow as tf

from rl2fpga import GENERATED_HEADER

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
HEADER = TEMPLATE_DIR / "rl2fpga_delta.h"
BACKENDS = ("Vivado", "Vitis", "VivadoAccelerator")

_JINJA = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


# ------------------------------------------------------------------------------ Keras layer


@tf.keras.utils.register_keras_serializable(package="rl2fpga")
class DeltaStage(tf.keras.layers.Layer):
    """Delta-update stage: ``x_hat <- x where |x - x_hat| > T``; outputs ``x_hat``.

    The batch axis is time: a batch of frames in episode order is processed one frame after the
    other and the state carries over to the next call. :meth:`reset_state` starts an episode.
    """

    def __init__(self, threshold_int: int = 0, frac: int = 0, stage: int = 0, **kwargs: Any):
        super().__init__(**kwargs)
        if threshold_int < 0:
            raise ValueError(f"negative delta threshold {threshold_int}")
        self.threshold_int = int(threshold_int)
        self.frac = int(frac)
        self.stage = int(stage)

    @property
    def threshold(self) -> float:
        return self.threshold_int * 2.0 ** (-self.frac)

    def build(self, input_shape: tf.TensorShape) -> None:
        self.x_hat = self.add_weight(
            name="x_hat", shape=tuple(input_shape[1:]), initializer="zeros", trainable=False
        )
        super().build(input_shape)

    def reset_state(self) -> None:
        self.x_hat.assign(tf.zeros_like(self.x_hat))

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        t = tf.constant(self.threshold, dtype=inputs.dtype)

        def step(x_hat: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
            return tf.where(tf.abs(x - x_hat) > t, x, x_hat)

        out = tf.scan(step, inputs, initializer=tf.cast(self.x_hat, inputs.dtype))
        self.x_hat.assign(tf.cast(out[-1], self.x_hat.dtype))
        return out

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "threshold_int": self.threshold_int, "frac": self.frac, "stage": self.stage}


def reset_delta_states(model: tf.keras.Model) -> None:
    """Episode start for every :class:`DeltaStage` of a Keras model."""
    for layer in model.layers:
        if isinstance(layer, DeltaStage):
            layer.reset_state()


# ------------------------------------------------------------------------------ hls4ml pieces


def _hls4ml_classes() -> dict[str, Any]:
    """Build the hls4ml classes lazily (importing hls4ml costs a few seconds)."""
    from hls4ml.backends.template import FunctionCallTemplate, LayerConfigTemplate
    from hls4ml.model.attributes import Attribute
    from hls4ml.model.layers import Layer

    class Rl2fpgaDelta(Layer):
        """hls4ml layer of the delta stage: same shape and precision out as in."""

        _expected_attributes = [
            Attribute("n_in"),
            Attribute("threshold"),
            Attribute("stage"),
            Attribute("frac"),
        ]

        def initialize(self) -> None:
            inp = self.get_input_variable()
            self.set_attr("n_in", inp.size())
            self.add_output_variable(inp.shape, precision=inp.type.precision)

    class DeltaConfigTemplate(LayerConfigTemplate):
        def __init__(self) -> None:
            super().__init__(Rl2fpgaDelta)
            self.template = _JINJA.get_template("delta_config.h.j2")

        def format(self, node: Any) -> str:
            prec = node.get_input_variable().type.precision
            width, signed = int(prec.width), bool(prec.signed)
            frac = int(prec.width - prec.integer)
            if frac != node.get_attr("frac"):
                raise _precision_mismatch(node.name, frac, node.get_attr("frac"))
            raw = f"ap_int<{width}>" if signed else f"ap_uint<{width}>"
            return self.template.render(
                header=GENERATED_HEADER,
                index=node.index,
                stage=node.get_attr("stage"),
                before=node.name.removesuffix("_delta"),
                n_in=node.get_attr("n_in"),
                threshold=node.get_attr("threshold"),
                raw_t=raw,
                diff_t=f"ap_int<{width + 2}>",
            )

    class DeltaFunctionTemplate(FunctionCallTemplate):
        def __init__(self) -> None:
            super().__init__(Rl2fpgaDelta, include_header=[f"nnet_utils/{HEADER.name}"])
            self.template = _JINJA.get_template("delta_function.cpp.j2")

        def format(self, node: Any) -> str:
            params = self._default_function_params(node)
            io = node.model.config.get_config_value("IOType")
            return self.template.render(
                function="delta_stream" if io == "io_stream" else "delta",
                input_t=params["input_t"],
                output_t=params["output_t"],
                config=params["config"],
                input=params["input"],
                output=params["output"],
                stage=node.get_attr("stage"),
                threshold=node.get_attr("threshold"),
            ).strip()

    return {
        "Rl2fpgaDelta": Rl2fpgaDelta,
        "DeltaConfigTemplate": DeltaConfigTemplate,
        "DeltaFunctionTemplate": DeltaFunctionTemplate,
    }


def _precision_mismatch(name: str, got: int, want: int) -> Exception:
    from rl2fpga.errors import Rl2fpgaError

    return Rl2fpgaError(
        f"delta stage {name}: hls4ml input precision has {got} fractional bits but the golden "
        f"threshold is in LSBs of {want}; generate the precisions from the golden formats"
    )


def parse_delta_stage(
    keras_layer: dict[str, Any], input_names: list[str], input_shapes: list[list[int]], data_reader: Any
) -> tuple[dict[str, Any], list[int]]:
    """Keras -> hls4ml layer dict (the converter's handler for ``DeltaStage``)."""
    cfg = keras_layer["config"]
    layer = {
        "name": cfg["name"],
        "class_name": "Rl2fpgaDelta",
        "inputs": input_names,
        "threshold": int(cfg["threshold_int"]),
        "stage": int(cfg["stage"]),
        "frac": int(cfg["frac"]),
    }
    return layer, list(input_shapes[0])


RESET_PORT = "rl2fpga_reset"


def _patch(path: Path, pairs: list[tuple[str, str]], regex: bool = False) -> None:
    """Apply exact (or regex) replacements; each must match at least once, else the hls4ml
    output has changed and the reset port would silently be missing."""
    import re

    from rl2fpga.errors import Rl2fpgaError

    text = path.read_text()
    for old, new in pairs:
        n = len(re.findall(old, text)) if regex else text.count(old)
        if n == 0:
            raise Rl2fpgaError(f"cannot add the episode-reset port to {path.name} (hls4ml wrote other code than expected); this hls4ml version is not supported")
        text = re.sub(old, new, text) if regex else text.replace(old, new)
    path.write_text(text)


def add_reset_port(model: Any) -> None:
    """Give the written project's top function the port ``bool rl2fpga_reset`` (every delta
    stage's function call takes it) and drive it in the C-simulation bridge and testbench.
    VivadoAccelerator: the AXI-stream wrapper reads one extra first input word, the reset flag
    (nonzero: this frame starts an episode), so the overlay's DMA carries it in band."""
    out = Path(model.config.get_output_dir())
    proj = model.config.get_project_name()
    fw = out / "firmware"
    top_sig = r"(void " + proj + r"\(\n(?:    [^\n]*\n)+?)\)"
    port = rf"\1    , bool {RESET_PORT}\n)"
    _patch(fw / f"{proj}.cpp", [(top_sig + r" \{", port + " {")], regex=True)
    _patch(fw / f"{proj}.cpp", [("    // hls-fpga-machine-learning insert IO\n",
                                 f"    // hls-fpga-machine-learning insert IO\n    #pragma HLS INTERFACE ap_none port={RESET_PORT}\n")])
    _patch(fw / f"{proj}.h", [(top_sig + ";", port + ";")], regex=True)
    # the bridge is its own translation unit: it reaches the request through a C symbol
    _patch(out / f"{proj}_bridge.cpp", [("#include <algorithm>\n", "#include <algorithm>\n"
                                         'extern "C" bool rl2fpga_delta_take_reset(); // rl2fpga_delta.h\n')])
    axi = fw / f"{proj}_axi.cpp"
    if axi.exists():  # VivadoAccelerator: the flag travels as the first stream word
        _patch(axi, [
            ("(input_axi_t in[N_IN]", "(input_axi_t in[N_IN + 1]"),
            ("    bool is_last = false;\n", f"    bool is_last = false;\n    bool {RESET_PORT} = in[0].data != 0;\n"),
            ("in_local[i] = in[i].data;", "in_local[i] = in[i + 1].data;"),
            ("is_last |= (in[i].last == 1)", "is_last |= (in[i + 1].last == 1)"),
            (f"{proj}(in_local, out_local);", f"{proj}(in_local, out_local, {RESET_PORT});"),
        ])
        _patch(fw / f"{proj}_axi.h", [("_axi(input_axi_t in[N_IN]", "_axi(input_axi_t in[N_IN + 1]")])
        call = r"( *)" + proj + r"_axi\((\w+),\s*(\w+)\);"
        flag_in = (r"\1{ input_axi_t rl2fpga_in[N_IN + 1]; rl2fpga_in[0] = input_axi_t(T_in(FLAG), 0); "
                   r"for (unsigned i = 0; i < N_IN; i++) rl2fpga_in[i + 1] = \2[i]; "
                   + proj + r"_axi(rl2fpga_in, \3); }")
        _patch(out / f"{proj}_bridge.cpp", [(call, flag_in.replace("FLAG", "rl2fpga_delta_take_reset() ? 1 : 0"))], regex=True)
        _patch(out / f"{proj}_test.cpp", [(call, flag_in.replace("FLAG", "0"))], regex=True)
    else:
        call = r"( *)" + proj + r"\(([^;()]*)\);"
        _patch(out / f"{proj}_bridge.cpp", [(call, r"\1" + proj + r"(\2, rl2fpga_delta_take_reset());")], regex=True)
        _patch(out / f"{proj}_test.cpp", [(call, r"\1" + proj + r"(\2, false);")], regex=True)


def _hook_writer(backend: Any) -> None:
    """Run :func:`add_reset_port` after the backend's writer (hls4ml's compile() rewrites the
    project, so the hook must sit on the writer, not after a write)."""
    writer = backend.writer
    if getattr(writer, "_rl2fpga_hooked", False):
        return
    original = writer.write_hls

    def write_hls(model: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(model, *args, **kwargs)
        if any(layer.class_name == "Rl2fpgaDelta" for layer in model.get_layers()):
            add_reset_port(model)
        return result

    writer.write_hls = write_hls
    writer._rl2fpga_hooked = True


_REGISTERED: dict[str, Any] = {}


def register_delta_extension() -> dict[str, Any]:
    """Register the delta stage with hls4ml (parser, layer, templates, header); idempotent."""
    if _REGISTERED:
        return _REGISTERED
    import hls4ml
    from hls4ml.backends import get_backend
    from hls4ml.converters.keras_v2_to_hls import layer_handlers, register_keras_v2_layer_handler

    classes = _hls4ml_classes()
    for keras_name in ("DeltaStage", "rl2fpga>DeltaStage"):
        if keras_name not in layer_handlers:
            register_keras_v2_layer_handler(keras_name, parse_delta_stage)
    hls4ml.model.layers.register_layer("Rl2fpgaDelta", classes["Rl2fpgaDelta"])
    for name in BACKENDS:
        backend = get_backend(name)
        backend.register_template(classes["DeltaConfigTemplate"])
        backend.register_template(classes["DeltaFunctionTemplate"])
        backend.register_source(HEADER)
        _hook_writer(backend)
    _REGISTERED.update(classes)
    return _REGISTERED
