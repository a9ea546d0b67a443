"""The ``prune``, ``quantize`` and ``analyze`` pipeline steps.

* ``prune``: ``prune/level_XX/{model.keras, masks.npz, eval.json}``, ``levels.json``,
  ``selected.json`` (see :mod:`rl2fpga.quantize.prune`).
* ``quantize``: the selected level -> QKeras (QAT or PTQ) -> ``quantize/qmodel.h5`` (+
  ``qmodel.meta.json``), ``quantize/golden/{formats.json, weights.npz}`` with the delta
  thresholds, ``compression.{json,md}``, ``summary.json``.
* ``analyze``: significant multiplications over real episodes, T and sparsity sweeps, plots
  (see :mod:`rl2fpga.quantize.analyze`).

Each step writes into a temp folder that replaces its folder only on success.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from rl2fpga.config import RunConfig
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.fsutil import atomic_dir, atomic_write_json, atomic_write_text, read_json
from rl2fpga.run import Run

CALIB_SEED_OFFSET = 30_000  # calibration / distillation episodes
ANALYZE_SEED_OFFSET = 40_000  # analysed episodes
MAX_CALIB_STATES = 3000


def _require_files(paths: list[Path], step: str, run: Run) -> None:
    for p in paths:
        if not p.exists():
            raise Rl2fpgaError(f"{p} is missing; run `rl2fpga {step} {run.path}` first")


def _load_train(run: Run) -> tuple[Any, Any, dict[str, Any]]:
    from rl2fpga.quantize.prune import read_eval
    from rl2fpga.train.steps import load_trained

    d = run.path / "train"
    _require_files([d / "model.keras", d / "env.json", d / "eval.json"], "train", run)
    try:
        model, spec = load_trained(run)
    except (OSError, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise Rl2fpgaError(f"the trained model in {d} is corrupt ({first}); rerun `rl2fpga train`") from None
    return model, spec, read_eval(d / "eval.json")


def _float_policy(model: Any, spec: Any) -> Any:
    from rl2fpga.train.evaluate import deterministic_actor, greedy_policy

    return greedy_policy(model) if spec.discrete else deterministic_actor(model, spec)


# ----------------------------------------------------------------------------- prune


def prune_step(run: Run, cfg: RunConfig) -> None:

    from rl2fpga.quantize import prune as P

    dense, spec, dense_eval = _load_train(run)
    pc = cfg.prune
    if pc.method == "imp" and pc.rewind == "init":
        rewind_path = run.path / "train" / "init_model.keras"
    elif pc.method == "imp":
        ckpts = sorted((run.path / "train" / "checkpoints").glob("step_*.keras"))
        if not ckpts:
            raise Rl2fpgaError(f"prune.rewind=checkpoint but {run.path / 'train' / 'checkpoints'} has none; set prune.rewind=init or train with checkpoints")
        rewind_path = ckpts[0]
    else:
        rewind_path = None
    if rewind_path is not None:
        _require_files([rewind_path], "train", run)
    t0 = time.perf_counter()
    with atomic_dir(run.path / "prune") as out:
        agent_dir = run.path / "train" / "agent"
        finetune = pc.method == "gradual"
        if pc.finetune == "distill":
            retrain = P.distiller(cfg, dense, spec)
        else:
            retrain = P.retrainer(cfg, cfg.train.algo, finetune=finetune,
                                  agent_dir=agent_dir if finetune and cfg.train.algo == "sac" and agent_dir.is_dir() else None)
        if pc.method == "imp":
            from rl2fpga.safety import load_keras_model

            rewind_to = load_keras_model(rewind_path)
            levels = P.imp(dense, dense_eval, rewind_to, retrain, cfg, out)
        elif pc.method == "gradual":
            levels = P.gradual(dense, dense_eval, retrain, cfg, out)
        else:
            masks = {la.name: np.ones(la.get_weights()[0].shape, bool) for la in P.prunable_layers(dense)}
            levels = [P.save_level(out, 0, 0, 0.0, dense, masks, dense_eval)]
        sel = P.write_levels(out, levels, pc.keep_return_fraction, pc.method)
        atomic_write_json(out / "summary.json", {
            "method": pc.method, "levels": len(levels), "selected_level": sel.index,
            "selected_sparsity": sel.sparsity, "selected_return_mean": sel.eval_return_mean,
            "dense_return_mean": levels[0].eval_return_mean, "max_sparsity": max(lv.sparsity for lv in levels),
            "seconds": round(time.perf_counter() - t0, 2),
        })
    print(f"prune: {len(levels)} levels, selected level {sel.index} (sparsity {sel.sparsity:.3f}, return {sel.eval_return_mean:.1f})")


# ----------------------------------------------------------------------------- quantize


def collect_states(policy: Any, cfg: RunConfig, episodes: int, max_steps: int, seed: int) -> np.ndarray:
    """Observations the float agent visits (real episodes, seeds ``seed + i``)."""
    from rl2fpga.train.evaluate import record_episode

    obs = [record_episode(policy, cfg.env, seed + i, max_steps).observations for i in range(episodes)]
    return np.concatenate(obs)


def _keeps(ret: float, dense: float, keep: float) -> bool:
    """``ret`` keeps ``keep`` of ``dense`` (for negative returns: at most (1 - keep) worse)."""
    return ret >= keep * dense - 1e-9 if dense > 0 else ret >= dense + (1 - keep) * dense - 1e-9


def _quantize_level(run: Run, cfg: RunConfig, spec: Any, index: int) -> dict[str, Any]:
    """Quantize one prune level, check golden == QKeras, run the golden agent with and without
    delta updates."""
    from rl2fpga.quantize.prune import load_level
    from rl2fpga.quantize.qkeras_model import (
        FLOAT32_EXACT,
        float32_bounds,
        golden_from_qkeras,
        input_format,
        qkeras_int_outputs,
        threshold_ints,
    )
    from rl2fpga.quantize.quant import GoldenPolicy, qkeras_policy, quantize_policy, run_stateful
    from rl2fpga.train.common import EVAL_SEED_OFFSET

    qc = cfg.quantize
    model, masks, level = load_level(run.path, index)
    states = collect_states(_float_policy(model, spec), cfg, qc.calib_episodes, qc.calib_max_steps,
                            cfg.seed + CALIB_SEED_OFFSET)
    if len(states) > MAX_CALIB_STATES:  # Atari frames: keep memory and distillation time bounded
        keep = np.random.default_rng(cfg.seed).choice(len(states), MAX_CALIB_STATES, replace=False)
        states = states[np.sort(keep)]
    in_fmt = input_format(states, qc.float_input_bits)

    def visit(qm: Any) -> np.ndarray:
        pol = qkeras_policy(qm, in_fmt, spec.discrete, spec.action_low, spec.action_high)
        return collect_states(pol, cfg, qc.calib_episodes, qc.calib_max_steps, cfg.seed + CALIB_SEED_OFFSET + 500)

    qmodel, info = quantize_policy(model, masks, qc, in_fmt, states, cfg.seed, discrete=spec.discrete, visit=visit)
    gm = golden_from_qkeras(qmodel, in_fmt, 0)
    acc_bits = gm.check_accumulators()
    t_int = threshold_ints(gm, qc.threshold)

    # exactness: static float32 proof, else a per-state certificate, then == on the states
    static = float32_bounds(gm)
    check = states[: qc.check_states]
    x_int = np.stack([gm.quantize_input(o) for o in check])
    dynamic = float32_bounds(gm, x_int) if max(static) >= FLOAT32_EXACT else static
    if max(dynamic) >= FLOAT32_EXACT:
        raise Rl2fpgaError(f"accumulators reach {max(dynamic)} LSBs >= 2^24 on real states, so float32 QKeras cannot be exact; use fewer weight or activation bits")
    y_q = qkeras_int_outputs(qmodel, gm, x_int)
    y_g = np.stack([gm.forward(x) for x in x_int])
    if not np.array_equal(y_q, y_g):
        raise Rl2fpgaError(f"golden model differs from QKeras on {int((y_q != y_g).any(axis=1).sum())} of {len(x_int)} states; this is a bug, please report it")

    # the quantized agent, without and with delta updates
    seed = cfg.seed + EVAL_SEED_OFFSET
    g0 = gm.copy()
    g0.set_thresholds(0)
    ev0 = run_stateful(GoldenPolicy(g0, spec.discrete, spec.action_low, spec.action_high), cfg.env, seed, qc.delta_episodes)
    gd = gm.copy()
    gd.set_thresholds(t_int)
    pol = GoldenPolicy(gd, spec.discrete, spec.action_low, spec.action_high)
    evd = run_stateful(pol, cfg.env, seed, qc.delta_episodes)
    return {"model": model, "level": level, "qmodel": qmodel, "info": info, "gm": gm, "in_fmt": in_fmt, "t_int": t_int,
            "acc_bits": acc_bits, "static": static, "dynamic": dynamic, "x_int": x_int, "ev0": ev0, "evd": evd,
            "seed": seed, "pol": pol}



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
    _, spec, _ = _load_train(run)
    _require_files([run.path / "prune" / "levels.json", run.path / "prune" / "selected.json"], "prune", run)
    t0 = time.perf_counter()
    levels = read_json(run.path / "prune" / "levels.json")["levels"]
    selected = read_json(run.path / "prune" / "selected.json")
    dense_ret = float(levels[0]["eval_return_mean"])
    keep = cfg.prune.keep_return_fraction
    # the selected level first, then less sparse ones that kept the return in float
    passing = sorted((lv for lv in levels if lv["sparsity"] < selected["sparsity"] and _keeps(lv["eval_return_mean"], dense_ret, keep)),
                     key=lambda lv: -lv["sparsity"])
    candidates = [selected["level"]] + [lv["level"] for lv in passing][: qc.fallback_levels]
    tried, best = [], None
    for index in candidates:
        res = _quantize_level(run, cfg, spec, index)
        tried.append({"level": index, "sparsity": res["level"]["sparsity"], "eval_return_mean": res["ev0"]["mean"],
                      "eval_return_mean_delta": res["evd"]["mean"]})
        print(f"quantize: level {index} (sparsity {res['level']['sparsity']:.3f}): golden return {res['ev0']['mean']:.1f}, "
              f"with delta {res['evd']['mean']:.1f}")
        if best is None or res["evd"]["mean"] > best["evd"]["mean"]:
            best = res
        if _keeps(res["evd"]["mean"], dense_ret, keep):
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
            "return_below_dense": not _keeps(evd["mean"], dense_ret, keep),
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
    if not _keeps(evd["mean"], dense_ret, keep):
        print(f"warning: the selected model's return {evd['mean']:.1f} is far below the dense agent's {dense_ret:.1f} "
              f"(keeps less than prune.keep_return_fraction={keep}); check quantize.*_bits", file=sys.stderr)
    print(f"quantize: kept level {level['level']} (sparsity {level['sparsity']:.3f}), {qc.method} {qc.weight_bits}-bit, "
          f"return {ev0['mean']:.1f} (delta T_int={t_int}: {evd['mean']:.1f}), compression {comp['total']['ratio']:.1f}x")


# ----------------------------------------------------------------------------- analyze


def analyze_step(run: Run, cfg: RunConfig) -> None:
    from rl2fpga.quantize.analyze import analyze

    _, spec, dense_eval = _load_train(run)
    _require_files([run.path / "prune" / "levels.json"], "prune", run)
    _require_files([run.path / "quantize" / "golden" / "formats.json", run.path / "quantize" / "summary.json"], "quantize", run)
    with atomic_dir(run.path / "analyze") as out:
        summary = analyze(run.path, cfg, spec, out)
        if cfg.analyze.sweep_bits:
            from rl2fpga.quantize.sweep import compression_sweep

            sweep = compression_sweep(run, cfg, spec, out)
            summary["compression_sweep"] = {k: sweep[k] for k in ("best", "best_ratio", "best_ratio_values_only",
                                                                  "paper_claim_ratio", "bits", "levels_swept")}
            atomic_write_json(out / "summary.json", summary)
    m = summary["multiplications"]
    print(f"analyze: {m['dense']:.0f} dense multiplications per step, {m['significant_mean']:.1f} significant "
          f"({m['reduction']:.1f}x fewer) at T={cfg.quantize.threshold}")
    best = summary.get("compression_sweep", {}).get("best")
    if best:
        print(f"analyze: largest compression keeping the return: {best['ratio']:.1f}x ({best['ratio_values_only']:.1f}x values only), "
              f"level {best['level']} (sparsity {best['sparsity']:.3f}), {best['bits']} bits")
