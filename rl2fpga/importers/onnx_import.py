"""Import an ONNX policy (e.g. an SB3 or cleanrl PyTorch network exported with
``torch.onnx.export``) with the ``onnx`` package: protobuf parsing only, no torch, no runtime,
no external data files.

Supported: ``Gemm`` (any alpha/beta/transB), ``MatMul`` followed by ``Add`` of a constant,
``Conv`` (no padding, no dilation, one group), ``Relu``, ``Flatten`` / ``Reshape`` to
(batch, features) (also the ``Shape -> Gather -> Unsqueeze -> Concat`` chain that
``x.view(x.size(0), -1)`` exports), ``Tanh`` as the last operation (the SAC actor's mean head,
re-applied by the pipeline), ``Identity``, ``Dropout``, and ``Mul`` / ``Div`` by a scalar
constant before the first layer (``x / 255``), folded into the first layer's weights.

Layouts: an ONNX image input is NCHW; the Keras chain is channels-last, so convolution kernels
are transposed and the rows of the first dense layer after ``Flatten`` are permuted from
PyTorch's (c, y, x) order to (y, x, c). The graph input is the environment's raw observation:
for pixel environments rl2fpga feeds ``p * 2^-8``, so the first layer is scaled by 256 (and by
any folded ``1/255``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rl2fpga.errors import Rl2fpgaError
from rl2fpga.importers.chain import ConvSpec, DenseSpec, FlattenSpec, ImportedPolicy, LayerSpec

SUPPORTED = ("Gemm", "MatMul", "Add", "Conv", "Relu", "Flatten", "Reshape", "Tanh", "Identity", "Dropout",
             "Mul", "Div", "Constant")
SHAPE_OPS = ("Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast", "Slice")


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _fail(node: Any, why: str) -> Rl2fpgaError:
    return Rl2fpgaError(f"ONNX node '{node.name or node.output[0]}' ({node.op_type}): {why}")


def _load(path: Path) -> Any:
    """The ONNX model, refused before any work when it is not a protobuf, keeps its weights in
    external files or uses an op outside the supported list."""
    try:
        import onnx
    except ImportError:
        raise Rl2fpgaError("the onnx package is not installed; pip install onnx (rl2fpga's set-up installs it)") from None
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf DecodeError and friends
        raise Rl2fpgaError(f"{path.name} is not a valid ONNX model ({type(e).__name__}); export it again with torch.onnx.export") from None
    g = model.graph
    for t in g.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            raise Rl2fpgaError(f"{path.name} keeps its weights in external data files, which are refused; export with the weights inside the .onnx file")
    bad = sorted({n.op_type for n in g.node if n.op_type not in SUPPORTED + SHAPE_OPS})
    if bad:  # one line naming every unsupported op, before any work
        raise Rl2fpgaError(f"{path.name}: unsupported ONNX op{'s' if len(bad) > 1 else ''} {', '.join(bad)}; "
                           "supported: Gemm, MatMul+Add, Conv, Relu, Flatten/Reshape, Tanh (last), Identity, Mul/Div by a constant at the input")
    return model


def _input(path: Path, inp: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(Keras input shape, channels-last; the ONNX tensor shape without the batch)."""
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inp.type.tensor_type.shape.dim]
    feat = dims[1:]
    if any(d is None or d <= 0 for d in feat) or len(feat) not in (1, 3):
        raise Rl2fpgaError(f"{path.name}: input shape {dims} must be (batch, features) or (batch, C, H, W) with fixed sizes")
    if len(feat) == 3:
        c, h, w = feat
        return (h, w, c), (c, h, w)
    return (feat[0],), (feat[0],)


class _Walk:
    """The walk along the graph's one chain: the current tensor, its ONNX shape and the layers
    so far; one method per op kind (:data:`_OPS`)."""

    def __init__(self, consts: dict[str, np.ndarray], cur: str, shape: tuple[int, ...]):
        self.consts = consts
        self.cur = cur
        self.shape = shape  # the current tensor's ONNX shape (no batch)
        self.layers: list[LayerSpec] = []
        self.shape_derived: set[str] = set()
        self.in_scale = 1.0
        self.tanh = False
        self.last_out: str | None = None  # output of the last weighted layer (bias adds / relu attach to it)
        self.flatten_chw: tuple[int, int, int] | None = None  # (C, H, W) at a flatten still owed a row permutation

    def is_cur(self, name: str) -> bool:
        return name == self.cur

    def node(self, node: Any) -> None:
        op, a = node.op_type, _attrs(node)
        ins = list(node.input)
        if op == "Constant":
            self.constant(node, a)
        elif op in SHAPE_OPS:
            self.shape_op(node, ins)
        elif self.tanh:
            raise _fail(node, "follows a Tanh; Tanh is only supported as the last operation (SAC mean head)")
        else:
            _OPS[op](self, node, a, ins)

    def constant(self, node: Any, a: dict[str, Any]) -> None:
        from onnx import numpy_helper

        v = a.get("value")
        if v is None:
            raise _fail(node, "only tensor constants ('value') are supported")
        self.consts[node.output[0]] = numpy_helper.to_array(v).astype(np.float64)

    def shape_op(self, node: Any, ins: list[str]) -> None:
        if node.op_type == "Shape" and self.is_cur(ins[0]) or all(i in self.consts or i in self.shape_derived for i in ins if i):
            self.shape_derived.add(node.output[0])
            return
        raise _fail(node, f"{node.op_type} on activations is not supported (only inside a flatten's shape computation)")

    def passthrough(self, node: Any, a: dict[str, Any], ins: list[str]) -> None:
        if not self.is_cur(ins[0]):
            raise _fail(node, "does not continue the chain")
        self.cur = node.output[0]
        if self.last_out == ins[0]:
            self.last_out = self.cur

    def scale(self, node: Any, a: dict[str, Any], ins: list[str]) -> None:
        other = [i for i in ins if not self.is_cur(i)]
        if len(other) != 1 or other[0] not in self.consts or self.consts[other[0]].size != 1 or not any(self.is_cur(i) for i in ins):
            raise _fail(node, "only multiplying or dividing the input by a scalar constant is supported")
        if self.layers:
            raise _fail(node, "a constant scale is only supported before the first layer")
        v = float(self.consts[other[0]].reshape(()))
        if node.op_type == "Div" and self.is_cur(ins[1]):
            raise _fail(node, "dividing a constant by the input is not supported")
        if v == 0.0:
            raise _fail(node, "scale by zero")
        self.in_scale *= v if node.op_type == "Mul" else 1.0 / v
        self.cur = node.output[0]

    def _gemm_weights(self, node: Any, a: dict[str, Any], ins: list[str]) -> tuple[np.ndarray, np.ndarray]:
        wt = self.consts[ins[1]]
        if node.op_type != "Gemm":
            return wt, np.zeros(wt.shape[1])
        if a.get("transA", 0):
            raise _fail(node, "transA=1 is not supported")
        wt = wt.T if a.get("transB", 0) else wt
        wt = wt * float(a.get("alpha", 1.0))
        bias = np.zeros(wt.shape[1])
        if len(ins) > 2 and ins[2]:
            if ins[2] not in self.consts:
                raise _fail(node, "the bias must be a constant")
            bias = np.broadcast_to(self.consts[ins[2]] * float(a.get("beta", 1.0)), (wt.shape[1],)).astype(np.float64)
        return wt, bias

    def gemm(self, node: Any, a: dict[str, Any], ins: list[str]) -> None:
        if not self.is_cur(ins[0]) or ins[1] not in self.consts:
            raise _fail(node, "the weights must be a constant and the input the previous layer's output")
        if len(self.shape) != 1:
            raise _fail(node, f"input has shape {self.shape}; put a Flatten before it")
        wt, bias = self._gemm_weights(node, a, ins)
        if wt.ndim != 2 or wt.shape[0] != self.shape[0]:
            raise _fail(node, f"weights of shape {wt.shape} do not fit an input of {self.shape[0]} features")
        if self.flatten_chw is not None:
            c, h, w = self.flatten_chw
            # Keras flat index (y, x, c) reads ONNX flat index c*H*W + y*W + x
            yy, xx, cc = np.meshgrid(np.arange(h), np.arange(w), np.arange(c), indexing="ij")
            wt = wt[(cc * h * w + yy * w + xx).reshape(-1)]
            self.flatten_chw = None
        self.layers.append(DenseSpec(wt.astype(np.float32), bias.astype(np.float32)))
        self.shape = (wt.shape[1],)
        self.cur = self.last_out = node.output[0]

    def add(self, node: Any, a: dict[str, Any], ins: list[str]) -> None:
        other = [i for i in ins if not self.is_cur(i)]
        if len(other) != 1 or other[0] not in self.consts or self.last_out != self.cur or self.layers[-1].relu:
            raise _fail(node, "only adding a constant bias right after a Gemm, MatMul or Conv is supported")
        la = self.layers[-1]
        v = self.consts[other[0]]
        n = la.w.shape[-1]  # type: ignore[union-attr]
        if v.size == 1:
            v = np.full(n, float(v.reshape(())))
        elif v.size == n:
            v = v.reshape(-1)
        else:
            raise _fail(node, f"bias of shape {v.shape} does not fit {n} outputs")
        la.b = (la.b.astype(np.float64) + v).astype(np.float32)  # type: ignore[union-attr]
        self.cur = self.last_out = node.output[0]

    def conv(self, node: Any, a: dict[str, Any], ins: list[str]) -> None:
        shape = self.shape
        if not self.is_cur(ins[0]) or ins[1] not in self.consts:
            raise _fail(node, "the weights must be a constant and the input the previous layer's output")
        if len(shape) != 3:
            raise _fail(node, f"input has shape {shape}; a Conv needs (C, H, W)")
        wt = self.consts[ins[1]]
        if wt.ndim != 4:
            raise _fail(node, "only 2-D convolutions are supported")
        if a.get("group", 1) != 1 or any(d != 1 for d in a.get("dilations", [1, 1])):
            raise _fail(node, "groups and dilations are not supported")
        if any(p != 0 for p in a.get("pads", [0, 0, 0, 0])) or a.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID", "NOTSET", "VALID"):
            raise _fail(node, "padding is not supported (rl2fpga convolutions are 'valid')")
        o, ci, kh, kw = wt.shape
        if ci != shape[0]:
            raise _fail(node, f"weights expect {ci} input channels, the input has {shape[0]}")
        sy, sx = (int(s) for s in a.get("strides", [1, 1]))
        bias = self.consts[ins[2]].reshape(-1) if len(ins) > 2 and ins[2] else np.zeros(o)
        self.layers.append(ConvSpec(wt.transpose(2, 3, 1, 0).astype(np.float32), bias.astype(np.float32), (sy, sx)))
        self.shape = (o, (shape[1] - kh) // sy + 1, (shape[2] - kw) // sx + 1)
        self.cur = self.last_out = node.output[0]

    def relu(self, node: Any, a: dict[str, Any], ins: list[str]) -> None:
        if not self.is_cur(ins[0]) or self.last_out != self.cur or not self.layers or self.layers[-1].relu:
            raise _fail(node, "a Relu must follow a Gemm, MatMul(+Add) or Conv directly")
        self.layers[-1].relu = True
        self.cur = self.last_out = node.output[0]

    def tanh_op(self, node: Any, a: dict[str, Any], ins: list[str]) -> None:
        if not self.is_cur(ins[0]) or self.last_out != self.cur:
            raise _fail(node, "Tanh must directly follow the last layer (SAC mean head)")
        self.tanh = True
        self.cur = node.output[0]

    def flatten(self, node: Any, a: dict[str, Any], ins: list[str]) -> None:
        if not self.is_cur(ins[0]):
            raise _fail(node, "does not continue the chain")
        if node.op_type == "Flatten" and a.get("axis", 1) != 1:
            raise _fail(node, "only axis=1 is supported")
        if node.op_type == "Reshape":
            s = ins[1]
            if s in self.consts:
                target = [int(v) for v in self.consts[s].reshape(-1)]
                if len(target) != 2 or not (target[1] == -1 or target[1] == int(np.prod(self.shape))):
                    raise _fail(node, f"reshape to {target} is not a flatten to (batch, features)")
            elif s not in self.shape_derived:
                raise _fail(node, "the target shape must be a constant")
        if len(self.shape) == 3:
            self.flatten_chw = (self.shape[0], self.shape[1], self.shape[2])
            self.layers.append(FlattenSpec())
        self.shape = (int(np.prod(self.shape)),)
        self.cur = node.output[0]
        self.last_out = None if self.layers and not self.layers[-1].weighted else self.last_out


# op type -> the walk's handler (Constant and the shape ops are handled before the Tanh check)
_OPS: dict[str, Callable[[_Walk, Any, dict[str, Any], list[str]], None]] = {
    "Identity": _Walk.passthrough, "Dropout": _Walk.passthrough, "Mul": _Walk.scale, "Div": _Walk.scale,
    "Gemm": _Walk.gemm, "MatMul": _Walk.gemm, "Add": _Walk.add, "Conv": _Walk.conv, "Relu": _Walk.relu,
    "Tanh": _Walk.tanh_op, "Flatten": _Walk.flatten, "Reshape": _Walk.flatten,
}


def read_onnx(path: Path) -> ImportedPolicy:
    from onnx import numpy_helper

    model = _load(path)
    g = model.graph
    consts: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in g.initializer}
    inputs = [i for i in g.input if i.name not in consts]
    if len(inputs) != 1 or len(g.output) != 1:
        raise Rl2fpgaError(f"{path.name} has {len(inputs)} inputs and {len(g.output)} outputs; a policy has one of each")
    input_shape, shape = _input(path, inputs[0])
    walk = _Walk(consts, inputs[0].name, shape)
    for node in g.node:
        walk.node(node)
    if walk.cur != g.output[0].name:
        raise Rl2fpgaError(f"{path.name}: the graph output '{g.output[0].name}' is not the end of one chain of supported ops")
    if not walk.layers:
        raise Rl2fpgaError(f"{path.name} has no Gemm/MatMul/Conv layer; pass a policy network")
    return ImportedPolicy(walk.layers, input_shape, walk.tanh, {"format": "onnx", "opset": [o.version for o in model.opset_import],
                                                                "producer": model.producer_name},
                          input_scale=walk.in_scale, raw_input=True)
