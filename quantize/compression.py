"""Model-size accounting: dense fp32 against what the sparse hardware actually stores.

Per layer, ``stored`` counts every bit the sparse delta engine keeps:

* values: ``nnz * w_bits`` (nonzero integer weights);
* index overhead of its compressed format -- dense layers: one pointer per *input* (the fan-out
  list an input event walks, i.e. compressed columns of the math matrix ``W[out, in]``) plus
  one output index per nonzero; convolutions: one pointer per (tap, input channel) plus one
  filter index per nonzero; pointers are ``ceil(log2(nnz + 1))`` bits, indices
  ``ceil(log2(n_out))`` bits;
* biases: ``n_out * b_bits``;
* scales: with per-output-channel weight scales, one requantize shift per output
  (``n_out * bits(max shift)``, the engine's ``<layer>_shift.mem``); 0 for one scale per layer.

``ratio`` = dense fp32 bits (weights + biases) / stored bits. ``ratio_values_only`` ignores the
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


def layer_compression(w: np.ndarray, kind: str, w_bits: int, b_bits: int, scale_bits: int = 0) -> dict[str, Any]:
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
    stored = values + pointers + indices + biases + scale_bits
    dense_fp32 = (n_w + n_out) * 32
    return {
        "kind": kind, "weights": n_w, "nnz": nnz, "sparsity": 1 - nnz / n_w,
        "w_bits": w_bits, "b_bits": b_bits,
        "dense_fp32_bits": dense_fp32,
        "value_bits": values, "pointer_bits": pointers, "index_bits": indices, "bias_bits": biases,
        "scale_bits": scale_bits, "stored_bits": stored,
        "ratio": dense_fp32 / stored,
        "ratio_values_only": dense_fp32 / (values + biases),
    }


def compression(gm: GoldenModel, bias_bits: dict[str, int] | None = None) -> dict[str, Any]:
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
        scale_bits = la.n_out * max(1, int(la.shifts.max()).bit_length()) if la.per_channel else 0
        layers[la.name] = layer_compression(la.w, la.kind, la.w_fmt.bits, bb, scale_bits)
    tot = {k: sum(v[k] for v in layers.values()) for k in
           ("weights", "nnz", "dense_fp32_bits", "value_bits", "pointer_bits", "index_bits", "bias_bits", "scale_bits", "stored_bits")}
    tot["sparsity"] = 1 - tot["nnz"] / tot["weights"]
    tot["ratio"] = tot["dense_fp32_bits"] / tot["stored_bits"]
    tot["ratio_values_only"] = tot["dense_fp32_bits"] / (tot["value_bits"] + tot["bias_bits"])
    return {"layers": layers, "total": tot}


def markdown_table(comp: dict[str, Any]) -> str:
    rows = ["| layer | weights | nnz | sparsity | dense fp32 (bits) | stored (bits) | ratio | values-only ratio |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in [*comp["layers"].items(), ("total", comp["total"])]:
        rows.append(f"| {name} | {r['weights']} | {r['nnz']} | {r['sparsity']:.3f} | {r['dense_fp32_bits']} | "
                    f"{r['stored_bits']} | {r['ratio']:.1f} | {r['ratio_values_only']:.1f} |")
    return "\n".join(rows) + "\n"
