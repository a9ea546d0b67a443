"""The ``quantize`` stage: the selected prune level -> QKeras (QAT or PTQ) ->
``quantize/qmodel.h5`` (+ ``qmodel.meta.json``), ``quantize/golden/{formats.json, weights.npz}``
with the delta thresholds, ``compression.{json,md}``, ``eval.json``, ``summary.json``. A level
that loses the return falls back to less sparse ones (see :mod:`rl2fpga.quantize.level`)."""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

from rl2fpga.artifacts import (
    PruneLevels,
    PruneSelected,
    QuantizeCompression,
    QuantizeEval,
    QuantizeSummary,
)
from rl2fpga.config import QuantizeConfig, RunConfig
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.fsutil import atomic_dir, atomic_write_text
from rl2fpga.quantize.level import QuantizedLevel, keeps_return, quantize_level
from rl2fpga.run import Run
from rl2fpga.train.trainer import load_train_outputs


def _check_bits(qc: QuantizeConfig) -> None:
    for bits, what in ((qc.weight_bits, "weight_bits"), (qc.act_bits, "act_bits")):
        if not 2 <= bits <= 16:
            raise Rl2fpgaError(f"quantize.{what}={bits} is unsupported; use 2..16 bits (8, 6 and 4 are tested)")


def _candidates(levels: list[dict[str, Any]], selected: PruneSelected, keep: float, fallback: int) -> list[int]:
    """The selected level first, then larger ones (more nonzero weights where every level says,
    else less sparse) that kept the return in float, smallest first."""
    dense_ret = float(levels[0]["eval_return_mean"])
    if all("nonzero_weights" in lv for lv in levels):
        nz = next(lv["nonzero_weights"] for lv in levels if lv["level"] == selected.level)
        size = lambda lv: lv["nonzero_weights"]  # noqa: E731
        bigger = lambda lv: lv["nonzero_weights"] > nz  # noqa: E731
    else:
        size = lambda lv: -lv["sparsity"]  # noqa: E731
        bigger = lambda lv: lv["sparsity"] < selected.sparsity  # noqa: E731
    passing = sorted((lv for lv in levels if bigger(lv) and keeps_return(lv["eval_return_mean"], dense_ret, keep)),
                     key=size)
    return [selected.level] + [lv["level"] for lv in passing][:fallback]


def levels_to_try(levels: list[dict[str, Any]], selected: PruneSelected, qc: QuantizeConfig, keep: float) -> list[int]:
    """The prune levels to quantize in order: ``quantize.level`` alone when set (no fallback),
    else the prune selection and up to ``quantize.fallback_levels`` less sparse ones."""
    if qc.level is None:
        return _candidates(levels, selected, keep, qc.fallback_levels)
    if any(lv["level"] == qc.level for lv in levels):
        return [qc.level]
    raise Rl2fpgaError(f"quantize.level={qc.level} is not a prune level of this run; use one of "
                       f"{', '.join(str(lv['level']) for lv in levels)} (prune/levels.json) or null for the prune selection")


def _first_keeping(run: Run, cfg: RunConfig, spec: Any, candidates: list[int],
                   dense_ret: float) -> tuple[QuantizedLevel, list[dict[str, Any]]]:
    """Quantize the candidates in order until one keeps the return (else the best tried);
    that level and every attempt."""
    keep = cfg.prune.keep_return_fraction
    tried: list[dict[str, Any]] = []
    best: QuantizedLevel | None = None
    for index in candidates:
        res = quantize_level(run, cfg, spec, index)
        tried.append({"level": index, "sparsity": res.level["sparsity"], "eval_return_mean": res.ev0["mean"],
                      "eval_return_mean_delta": res.evd["mean"]})
        print(f"quantize: level {index} (sparsity {res.sparsity:.3f}): golden return {res.ev0['mean']:.1f}, "
              f"with delta {res.evd['mean']:.1f}")
        if best is None or res.evd["mean"] > best.evd["mean"]:
            best = res
        if keeps_return(res.evd["mean"], dense_ret, keep):
            best = res
            break
    if best is None:
        raise Rl2fpgaError("quantize: no prune level to quantize; rerun `rl2fpga prune`")
    return best, tried


def _summary(cfg: RunConfig, q: QuantizedLevel, comp: dict[str, Any], tried: list[dict[str, Any]],
             dense_ret: float, seconds: float) -> dict[str, Any]:
    """``quantize/summary.json``: the kept level, its formats, exactness, returns and savings."""
    from rl2fpga.quantize.qkeras_model import FLOAT32_EXACT

    qc, level, gm, ev0, evd = cfg.quantize, q.level, q.golden, q.ev0, q.evd
    keep = cfg.prune.keep_return_fraction
    macs = np.array([s.macs for s in q.policy.stats], dtype=np.float64)
    dense = np.array(gm.dense_mults(), dtype=np.float64)
    return {
        "prune_level": level["level"],
        "sparsity": level["sparsity"],
        # the deployed network's shape: input, then each layer's outputs (e.g. 4-8-8-2)
        "network": "-".join(["x".join(map(str, gm.in_shape))] + ["x".join(map(str, la.out_shape)) for la in gm.layers]),
        "float_return_mean": level["eval_return_mean"],
        "method": qc.method,
        "weight_bits": qc.weight_bits,
        "act_bits": qc.act_bits,
        "input_fmt": q.in_fmt.to_json(),
        "formats": {la.name: {"w": la.w_fmt.to_json(), "in": la.in_fmt.to_json(), "out": la.out_fmt.to_json(),
                              **({"w_frac": list(la.w_frac)} if la.w_frac is not None else {})} for la in gm.layers},
        "per_channel": qc.per_channel,
        "layer_weight_bits": [la.w_fmt.bits for la in gm.layers],
        "threshold": qc.threshold,
        "layer_thresholds": list(qc.layer_thresholds) or None,
        "threshold_int": q.t_int,
        "acc_bits": q.acc_bits,
        "float32_bound_static": q.static,
        "float32_bound_states": q.dynamic,
        # True: every input of the format keeps float32 QKeras exact (a proof); False: only
        # the checked real states are certified (and compared)
        "float32_exact_proved": max(q.static) < FLOAT32_EXACT,
        "golden_equals_qkeras_states": int(len(q.x_int)),
        "eval_return_mean": ev0["mean"],
        "eval_return_mean_delta": evd["mean"],
        "levels_tried": tried,
        # quantize.level: the user chose the level; else the prune step's selection (+ fallback)
        "level_chosen_by": "quantize.level" if qc.level is not None else "prune selection",
        # the selected model against the dense agent: far below it is flagged, not hidden
        "dense_return_mean": dense_ret,
        "return_below_dense": not keeps_return(evd["mean"], dense_ret, keep),
        "input_saturation": q.policy.gm.saturation.to_json(),
        "keep_fraction": ev0["mean"] / level["eval_return_mean"] if level["eval_return_mean"] else None,
        "keep_fraction_delta": evd["mean"] / level["eval_return_mean"] if level["eval_return_mean"] else None,
        "multiplications": {"dense": float(dense.sum()), "significant_mean": float(macs.sum(1).mean()),
                            "reduction": float(dense.sum() / max(macs.sum(1).mean(), 1e-9)),
                            "per_layer_mean": macs.mean(0).tolist()},
        "compression": comp["total"],
        "quantization": q.info,
        "seconds": round(seconds, 2),
    }


def quantize_step(run: Run, cfg: RunConfig) -> None:
    """Quantize the selected prune level; if its golden agent with delta updates loses more
    than ``prune.keep_return_fraction`` of the dense return, try up to
    ``quantize.fallback_levels`` less sparse levels (that kept it in float) and keep the first
    that does (else the best tried). Every attempt is listed in the summary."""
    from rl2fpga.quantize.compression import compression, fp32_bits, markdown_table
    from rl2fpga.quantize.qkeras_model import save_qmodel

    qc = cfg.quantize
    _check_bits(qc)
    dense_model, spec, _ = load_train_outputs(run)
    levels, selected = PruneLevels.require(run.layout).levels, PruneSelected.require(run.layout)
    t0 = time.perf_counter()
    dense_ret = float(levels[0]["eval_return_mean"])
    keep = cfg.prune.keep_return_fraction
    candidates = levels_to_try(levels, selected, qc, keep)
    q, tried = _first_keeping(run, cfg, spec, candidates, dense_ret)
    gm, level, ev0, evd, t_int = q.golden, q.level, q.ev0, q.evd, q.t_int
    # the engine's images of the model as quantized (thresholds 0), against the dense trained
    # agent (a small student's teacher)
    comp = compression(gm, lanes=cfg.rtl.lanes_arg, fmt=cfg.rtl.format, reference_fp32_bits=fp32_bits(dense_model))

    gm.set_thresholds(t_int)
    gm.meta.update({"threshold": qc.threshold, "layer_thresholds": list(qc.layer_thresholds) or None, "threshold_int": t_int, "prune_level": level["level"],
                    "sparsity": level["sparsity"], "env": spec.id, "input_bits": q.in_fmt.bits})
    lay = run.layout
    with atomic_dir(lay.step("quantize")) as out:
        save_qmodel(q.qmodel, out / lay.quantize_qmodel.name)
        gm.save(out / lay.quantize_golden.name)
        QuantizeCompression(comp).save_in(out)
        atomic_write_text(out / lay.quantize_compression_md.name, markdown_table(comp))
        QuantizeEval({"golden": ev0, "golden_delta": evd, "seed": q.seed}).save_in(out)
        QuantizeSummary(_summary(cfg, q, comp, tried, dense_ret, time.perf_counter() - t0)).save_in(out)
    if not keeps_return(evd["mean"], dense_ret, keep):
        print(f"warning: the selected model's return {evd['mean']:.1f} is far below the dense agent's {dense_ret:.1f} "
              f"(keeps less than prune.keep_return_fraction={keep}); check quantize.*_bits", file=sys.stderr)
    print(f"quantize: kept level {level['level']} (sparsity {level['sparsity']:.3f}), {qc.method} {qc.weight_bits}-bit, "
          f"return {ev0['mean']:.1f} (delta T_int={t_int}: {evd['mean']:.1f}), compression {comp['total']['ratio']:.1f}x "
          f"({comp['total']['stored_bits']} stored bits, formats {', '.join(comp['total']['format'].values())})")


# ----------------------------------------------------------------------------- analyze


