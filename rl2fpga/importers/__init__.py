"""Bring your own policy: read a trained network from a file and rebuild it as the plain Keras
chain every later step maps (Conv2D with valid padding, Flatten, Dense; ReLU or linear).

* ``.keras`` / ``.h5``: Keras or QKeras (:mod:`rl2fpga.importers.keras_import`), read safely:
  the saved config is checked against a list of layer classes before anything is deserialised,
  so a Lambda layer or a custom object is refused, never executed.
* ``.onnx``: read with the ``onnx`` package (protobuf only, no torch, no runtime)
  (:mod:`rl2fpga.importers.onnx_import`): Gemm, MatMul + Add, Conv, Relu, Flatten, Reshape,
  Tanh at the end (the SAC mean head), Identity, and a constant input scale (``x / 255``)
  folded into the first layer.

Every importer produces a list of :class:`~rl2fpga.importers.chain.LayerSpec`;
:func:`~rl2fpga.importers.chain.build_keras` turns it into the canonical model (layer names ``conv1..``, ``flatten``, ``fc1..``, ``out``).
"""

from __future__ import annotations

from pathlib import Path

from rl2fpga.errors import Rl2fpgaError
from rl2fpga.importers.chain import (
    ConvSpec,
    DenseSpec,
    FlattenSpec,
    ImportedPolicy,
    LayerSpec,
    build_keras,
    check_against_env,
    sha256_file,
)

__all__ = ["SUFFIXES", "ConvSpec", "DenseSpec", "FlattenSpec", "ImportedPolicy", "LayerSpec", "build_keras",
           "check_against_env", "read_policy", "sha256_file"]

SUFFIXES = (".keras", ".h5", ".hdf5", ".onnx")


def read_policy(path: str | Path) -> ImportedPolicy:
    """Import a policy file by its suffix (``.keras``, ``.h5``, ``.onnx``)."""
    p = Path(path)
    if not p.is_file():
        raise Rl2fpgaError(f"model file {p} not found; pass a .keras, .h5 or .onnx file")
    suffix = p.suffix.lower()
    if suffix in (".keras", ".h5", ".hdf5"):
        from rl2fpga.importers.keras_import import read_keras_file

        pol = read_keras_file(p)
    elif suffix == ".onnx":
        from rl2fpga.importers.onnx_import import read_onnx

        pol = read_onnx(p)
    else:
        raise Rl2fpgaError(f"model file {p.name} has an unknown type '{suffix}'; use .keras, .h5 (Keras or QKeras) or .onnx")
    pol.source.update({"file": p.name, "sha256": sha256_file(p)})
    return pol
