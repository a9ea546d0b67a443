"""Model-size accounting: dense fp32 against what the sparse hardware actually stores.

Per layer, ``stored`` counts every bit the sparse delta engine keeps:

* values: ``nnz * w_bits`` (nonzero integer weights);
* index overhead of its compressed format -- dense layers: one pointer per *input* (the fan-out
  list an input event walks, i.e. compressed columns of the math matrix ``W[out, in]``) plus
  one output index per nonzero; convolutions: one pointer per (tap, input channel) plus one
  filter index per nonzero; pointers are ``ceil(log2(nnz + 1))`` bits, indices
  ``ceil(log2(n_out))`` bits;
* biases: ``n_out * b_bits``.

Input standardisation (:class:`~rl2fpga.core.golden.InputStandardize`, when the golden model
has one): an offset of the input width and a shift per input, counted in the total.

``ratio`` = dense fp32 bits (weights + biases) / stored bits. The dense reference is the
model itself, or ``reference_fp32_bits`` (the dense *teacher* a small student was distilled
from: a student is judged against the network it replaces; ``model_fp32_bits`` keeps its own). ``ratio_values_only`` ignores the
index overhead (nonzero weights and biases only) -- the optimistic figure papers often quote;
both are reported so nobody mistakes one for the other.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rl2fpga.core.golden import GoldenModel


def _bits_for(n: int) -> int:
    return max(1, math.ceil(math.log2(max(n, 2))))


def layer_compression(w: np.ndarray, kind: str, w_bits: int, b_bits: int) -> dict[str, Any]:
    n_out = int(w.shape[-1])
    n_w = int(w.size)
    nnz = int(np.count_nonzero(w))
    lists = int(np.prod(w.shape[:-1]))  # dense: inputs; conv: (kh, kw, c_in)
    ptr_bits = _bits_for(nnz + 1)
    idx_bits = _bits_for(n_out)
    values = nnz * w_bits
    pointers = (lists + 1) * ptr_bits
    indices = nnz * idx_bits
    biases = n_out * b_bits
    stored = values + pointers + indices + biases
    dense_fp32 = (n_w + n_out) * 32
    return {
        "kind": kind, "weights": n_w, "nnz": nnz, "sparsity": 1 - nnz / n_w,
        "w_bits": w_bits, "b_bits": b_bits,
        "dense_fp32_bits": dense_fp32,
        "value_bits": values, "pointer_bits": pointers, "index_bits": indices, "bias_bits": biases,
        "stored_bits": stored,
        "ratio": dense_fp32 / stored,
        "ratio_values_only": dense_fp32 / (values + biases),
    }


def compression(gm: GoldenModel, bias_bits: dict[str, int] | None = None,
                reference_fp32_bits: int | None = None) -> dict[str, Any]:
    """Per-layer and total accounting of a golden model (bias widths from ``bias_bits`` or
    ``gm.meta['layers'][name]['b_fmt']``, else the accumulator width)."""
    layers = {}
    meta_layers = gm.meta.get("layers", {}) if isinstance(gm.meta.get("layers"), dict) else {}
    for la in gm.layers:
        if bias_bits and la.name in bias_bits:
            bb = bias_bits[la.name]
        elif la.name in meta_layers and "b_fmt" in meta_layers[la.name]:
            bb = int(meta_layers[la.name]["b_fmt"]["bits"])
        else:
            bb = la.acc_bits()
        layers[la.name] = layer_compression(la.w, la.kind, la.w_fmt.bits, bb)
    tot = {k: sum(v[k] for v in layers.values()) for k in
           ("weights", "nnz", "dense_fp32_bits", "value_bits", "pointer_bits", "index_bits", "bias_bits", "stored_bits")}
    tot["sparsity"] = 1 - tot["nnz"] / tot["weights"]
    std = getattr(gm, "standardize", None)
    tot["input_standardize_bits"] = std.stored_bits(gm.in_fmt.bits) if std is not None else 0
    tot["stored_bits"] += tot["input_standardize_bits"]
    tot["model_fp32_bits"] = tot["dense_fp32_bits"]
    if reference_fp32_bits is not None:
        tot["dense_fp32_bits"] = int(reference_fp32_bits)
    tot["ratio"] = tot["dense_fp32_bits"] / tot["stored_bits"]
    tot["ratio_values_only"] = tot["dense_fp32_bits"] / (tot["value_bits"] + tot["bias_bits"] + tot["input_standardize_bits"])
    return {"layers": layers, "total": tot}


def fp32_bits(model: Any) -> int:
    """Dense fp32 bits (kernels + biases) of a float Keras model's Dense and Conv2D layers."""
    from rl2fpga.quantize.prune import prunable_layers

    return 32 * sum(int(sum(np.size(a) for a in la.get_weights()[:2])) for la in prunable_layers(model))


def markdown_table(comp: dict[str, Any]) -> str:
    rows = ["| layer | weights | nnz | sparsity | dense fp32 (bits) | stored (bits) | ratio | values-only ratio |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in [*comp["layers"].items(), ("total", comp["total"])]:
        rows.append(f"| {name} | {r['weights']} | {r['nnz']} | {r['sparsity']:.3f} | {r['dense_fp32_bits']} | "
                    f"{r['stored_bits']} | {r['ratio']:.1f} | {r['ratio_values_only']:.1f} |")
    return "\n".join(rows) + "\n"
