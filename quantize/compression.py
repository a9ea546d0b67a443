"""Model-size accounting: dense fp32 against what the sparse delta engine stores.

``stored`` is the bits of the engine's memory images, per layer in the storage format the
generator picks (:mod:`rl2fpga.hls.engine.formats`: csc, rel or dense, the smallest per layer
unless ``rtl.format`` forces one): the images are built by the same function the generator
writes them with (:func:`rl2fpga.hls.engine.generator.plan_images`), and the rtl step checks
the written files against this figure. Per layer:

* ``stored_value_bits``: value fields of the weight images (zeros of the dense format and rel
  fillers included); ``index_bits``: the rest of the weight images (csc's absolute index, rel's
  run); ``pointer_bits``: the ``{len, ptr}`` table; ``bias_bits``: the bias image;
  ``scale_bits``: images of part ``scale``: with per-output-channel weight scales, the
  engine's ``<layer>_shift.mem`` (one requantize shift of ``contract.shift_bits`` bits per
  output, padded to whole rows of lanes like the bias image); 0 for one scale per layer (its
  shift is an SV parameter, no image);
* ``value_bits``: ``nnz * w_bits``, the nonzero values alone.

``ratio`` = dense fp32 bits (weights + biases) / stored bits. ``ratio_values_only`` ignores the
index overhead (nonzero weights and ``n_out * b_bits`` biases only) -- the optimistic figure
papers often quote; both are reported so nobody mistakes one for the other.

Input standardisation (:class:`~rl2fpga.core.golden.InputStandardize`, when the golden model
has one): an offset of the input width and a shift per input, counted in ``stored_bits`` and
in the values-only figure (``input_standardize_bits``; the host applies it, so it is no memory
image of the engine). The dense reference is the model itself, or ``reference_fp32_bits`` (the
dense *teacher* a small student was distilled from: a student is judged against the network it
replaces; ``model_fp32_bits`` keeps its own).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rl2fpga.core.golden import GoldenModel

TOTAL_KEYS = ("weights", "nnz", "dense_fp32_bits", "value_bits", "stored_value_bits", "index_bits", "pointer_bits",
              "bias_bits", "scale_bits", "stored_bits", "values_only_bits")


def _bias_bits(gm: GoldenModel, name: str, acc_bits: int, bias_bits: dict[str, int] | None) -> int:
    meta_layers = gm.meta.get("layers", {}) if isinstance(gm.meta.get("layers"), dict) else {}
    if bias_bits and name in bias_bits:
        return bias_bits[name]
    if name in meta_layers and "b_fmt" in meta_layers[name]:
        return int(meta_layers[name]["b_fmt"]["bits"])
    return acc_bits


def compression(gm: GoldenModel, bias_bits: dict[str, int] | None = None, lanes: int | list[int] = 4,
                fmt: str = "auto", reference_fp32_bits: int | None = None) -> dict[str, Any]:
    """Per-layer and total accounting of a golden model as the engine with ``lanes`` lanes (one
    count, or one per layer)
    stores it in ``fmt`` (bias widths of the values-only figure from ``bias_bits`` or
    ``gm.meta['layers'][name]['b_fmt']``, else the accumulator width)."""
    from rl2fpga.hls.engine.generator import plan_images

    layers = {}
    for la, (_plan, images) in zip(gm.layers, plan_images(gm, lanes, fmt), strict=True):
        st = images.store
        n_w, nnz, n_out = int(la.w.size), int(np.count_nonzero(la.w)), int(la.n_out)
        words = sum(max(len(e), 1) for e in st.entries)
        bb = _bias_bits(gm, la.name, la.acc_bits(), bias_bits)
        r: dict[str, Any] = {
            "kind": la.kind, "format": st.fmt, "run_bits": st.run_bits, "fillers": st.fillers,
            "weights": n_w, "nnz": nnz, "sparsity": 1 - nnz / n_w, "w_bits": la.w_fmt.bits, "b_bits": bb,
            "dense_fp32_bits": (n_w + n_out) * 32, "value_bits": nnz * la.w_fmt.bits,
            "stored_value_bits": words * st.w_bits, "index_bits": images.bits("weights") - words * st.w_bits,
            "pointer_bits": images.bits("table"), "bias_bits": images.bits("bias"), "scale_bits": images.bits("scale"),
            "stored_bits": images.bits(), "values_only_bits": nnz * la.w_fmt.bits + n_out * bb,
            "images": {im.name: im.bits for im in images.images},
        }
        r["ratio"] = r["dense_fp32_bits"] / r["stored_bits"]
        r["ratio_values_only"] = r["dense_fp32_bits"] / r["values_only_bits"]
        layers[la.name] = r
    tot: dict[str, Any] = {k: sum(v[k] for v in layers.values()) for k in TOTAL_KEYS}
    tot["sparsity"] = 1 - tot["nnz"] / tot["weights"]
    std = getattr(gm, "standardize", None)
    tot["input_standardize_bits"] = std.stored_bits(gm.in_fmt.bits) if std is not None else 0
    tot["image_bits"] = tot["stored_bits"]  # the engine's memory images alone (what the rtl step reads back)
    tot["stored_bits"] += tot["input_standardize_bits"]
    tot["model_fp32_bits"] = tot["dense_fp32_bits"]
    if reference_fp32_bits is not None:
        tot["dense_fp32_bits"] = int(reference_fp32_bits)
    tot["ratio"] = tot["dense_fp32_bits"] / tot["stored_bits"]
    tot["values_only_bits"] += tot["input_standardize_bits"]
    tot["ratio_values_only"] = tot["dense_fp32_bits"] / tot["values_only_bits"]
    tot["lanes"] = lanes
    tot["format"] = {name: v["format"] for name, v in layers.items()}
    return {"layers": layers, "total": tot}


def fp32_bits(model: Any) -> int:
    """Dense fp32 bits (kernels + biases) of a float Keras model's Dense and Conv2D layers."""
    from rl2fpga.quantize.prune import prunable_layers

    return 32 * sum(int(sum(np.size(a) for a in la.get_weights()[:2])) for la in prunable_layers(model))


def markdown_table(comp: dict[str, Any]) -> str:
    rows = ["| layer | format | weights | nnz | sparsity | dense fp32 (bits) | stored (bits) | ratio | values-only ratio |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in [*comp["layers"].items(), ("total", comp["total"])]:
        f = r["format"] if isinstance(r["format"], str) else ""
        rows.append(f"| {name} | {f} | {r['weights']} | {r['nnz']} | {r['sparsity']:.3f} | {r['dense_fp32_bits']} | "
                    f"{r['stored_bits']} | {r['ratio']:.1f} | {r['ratio_values_only']:.1f} |")
    return "\n".join(rows) + "\n"
