"""The ``quantize`` stage: the selected prune level -> QKeras (QAT or PTQ) ->
``quantize/qmodel.h5`` (+ ``qmodel.meta.json``), ``quantize/golden/{formats.json, weights.npz}``
with the delta thresholds, ``compression.{json,md}``, ``eval.json``, ``summary.json``. A level
that loses the return falls back to less sparse ones (see :mod:`rl2fpga.quantize.level`)."""

from __future__ import annotations

import sys
import time

import numpy as np

from rl2fpga.config import RunConfig
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.fsutil import atomic_dir, atomic_write_json, atomic_write_text, read_json
from rl2fpga.quantize.level import keeps_return, quantize_level
from rl2fpga.run import Run
from rl2fpga.train.trainer import load_train_outputs, require_files


def quantize_step(run: Run, cfg: RunConfig) -> None:
    """Quantize the selected prune level; if its golden agent with delta updates loses more
    than ``prune.keep_return_fraction`` of the dense return, try up to
    ``quantize.fallback_levels`` less sparse levels (that kept it in float) and keep the first
    that does (else the best tried). Every attempt is listed in the summary."""
    from rl2fpga.quantize.compression import compression, markdown_table
    from rl2fpga.quantize.qkeras_model import FLOAT32_EXACT, save_qmodel

    qc = cfg.quantize
    for bits, what in ((qc.weight_bits, "weight_bits"), (qc.act_bits, "act_bits")):
        if not 2 <= bits <= 16:
            raise Rl2fpgaError(f"quantize.{what}={bits} is unsupported; use 2..16 bits (8, 6 and 4 are tested)")
    _, spec, _ = load_train_outputs(run)
    require_files([run.path / "prune" / "levels.json", run.path / "prune" / "selected.json"], "prune", run)
    t0 = time.perf_counter()
    levels = read_json(run.path / "prune" / "levels.json")["levels"]
    selected = read_json(run.path / "prune" / "selected.json")
    dense_ret = float(levels[0]["eval_return_mean"])
    keep = cfg.prune.keep_return_fraction
    # the selected level first, then less sparse ones that kept the return in float
    passing = sorted((lv for lv in levels if lv["sparsity"] < selected["sparsity"] and keeps_return(lv["eval_return_mean"], dense_ret, keep)),
                     key=lambda lv: -lv["sparsity"])
    candidates = [selected["level"]] + [lv["level"] for lv in passing][: qc.fallback_levels]
    tried, best = [], None
    for index in candidates:
        res = quantize_level(run, cfg, spec, index)
        tried.append({"level": index, "sparsity": res["level"]["sparsity"], "eval_return_mean": res["ev0"]["mean"],
                      "eval_return_mean_delta": res["evd"]["mean"]})
        print(f"quantize: level {index} (sparsity {res['level']['sparsity']:.3f}): golden return {res['ev0']['mean']:.1f}, "
              f"with delta {res['evd']['mean']:.1f}")
        if best is None or res["evd"]["mean"] > best["evd"]["mean"]:
            best = res
        if keeps_return(res["evd"]["mean"], dense_ret, keep):
            best = res
            break
    assert best is not None
    model, level, qmodel, info, gm = best["model"], best["level"], best["qmodel"], best["info"], best["gm"]
    in_fmt, t_int, acc_bits, static, dynamic = best["in_fmt"], best["t_int"], best["acc_bits"], best["static"], best["dynamic"]
    x_int, ev0, evd, seed, pol = best["x_int"], best["ev0"], best["evd"], best["seed"], best["pol"]
    del model
    macs = np.array([s.macs for s in pol.stats], dtype=np.float64)
    dense = np.array(gm.dense_mults(), dtype=np.float64)
    comp = compression(gm)

    gm.set_thresholds(t_int)
    gm.meta.update({"threshold": qc.threshold, "threshold_int": t_int, "prune_level": level["level"],
                    "sparsity": level["sparsity"], "env": spec.id, "input_bits": in_fmt.bits})
    with atomic_dir(run.path / "quantize") as out:
        save_qmodel(qmodel, out / "qmodel.h5")
        gm.save(out / "golden")
        atomic_write_json(out / "compression.json", comp)
        atomic_write_text(out / "compression.md", markdown_table(comp))
        atomic_write_json(out / "eval.json", {"golden": ev0, "golden_delta": evd, "seed": seed})
        atomic_write_json(out / "summary.json", {
            "prune_level": level["level"],
            "sparsity": level["sparsity"],
            "float_return_mean": level["eval_return_mean"],
            "method": qc.method,
            "weight_bits": qc.weight_bits,
            "act_bits": qc.act_bits,
            "input_fmt": in_fmt.to_json(),
            "formats": {la.name: {"w": la.w_fmt.to_json(), "in": la.in_fmt.to_json(), "out": la.out_fmt.to_json()} for la in gm.layers},
            "threshold": qc.threshold,
            "threshold_int": t_int,
            "acc_bits": acc_bits,
            "float32_bound_static": static,
            "float32_bound_states": dynamic,
            # True: every input of the format keeps float32 QKeras exact (a proof); False: only
            # the checked real states are certified (and compared)
            "float32_exact_proved": max(static) < FLOAT32_EXACT,
            "golden_equals_qkeras_states": int(len(x_int)),
            "eval_return_mean": ev0["mean"],
            "eval_return_mean_delta": evd["mean"],
            "levels_tried": tried,
            # the selected model against the dense agent: far below it is flagged, not hidden
            "dense_return_mean": dense_ret,
            "return_below_dense": not keeps_return(evd["mean"], dense_ret, keep),
            "input_saturation": pol.gm.saturation.to_json(),
            "keep_fraction": ev0["mean"] / level["eval_return_mean"] if level["eval_return_mean"] else None,
            "keep_fraction_delta": evd["mean"] / level["eval_return_mean"] if level["eval_return_mean"] else None,
            "multiplications": {"dense": float(dense.sum()), "significant_mean": float(macs.sum(1).mean()),
                                "reduction": float(dense.sum() / max(macs.sum(1).mean(), 1e-9)),
                                "per_layer_mean": macs.mean(0).tolist()},
            "compression": comp["total"],
            "quantization": info,
            "seconds": round(time.perf_counter() - t0, 2),
        })
    if not keeps_return(evd["mean"], dense_ret, keep):
        print(f"warning: the selected model's return {evd['mean']:.1f} is far below the dense agent's {dense_ret:.1f} "
              f"(keeps less than prune.keep_return_fraction={keep}); check quantize.*_bits", file=sys.stderr)
    print(f"quantize: kept level {level['level']} (sparsity {level['sparsity']:.3f}), {qc.method} {qc.weight_bits}-bit, "
          f"return {ev0['mean']:.1f} (delta T_int={t_int}: {evd['mean']:.1f}), compression {comp['total']['ratio']:.1f}x")


# ----------------------------------------------------------------------------- analyze


