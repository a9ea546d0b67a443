"""The ``analyze`` stage: significant multiplications over real episodes, T and sparsity sweeps,
the compression frontier and the compression sweep, plots (see :mod:`rl2fpga.quantize.analyze`,
:mod:`rl2fpga.quantize.frontier`, :mod:`rl2fpga.quantize.sweep`)."""

from __future__ import annotations

from typing import Any

from rl2fpga.artifacts import AnalyzeSummary, PruneLevels, QuantizeSummary
from rl2fpga.config import RunConfig
from rl2fpga.fsutil import atomic_dir
from rl2fpga.run import Run
from rl2fpga.train.trainer import load_train_outputs


def analyze_step(run: Run, cfg: RunConfig) -> None:
    from rl2fpga.quantize.analyze import analyze
    from rl2fpga.quantize.frontier import Candidates, check_frontier_config

    _, spec, dense_eval = load_train_outputs(run)
    lay = run.layout
    lay.require("prune", lay.prune_levels)
    lay.require("quantize", lay.quantize_formats, QuantizeSummary.path(lay))
    if cfg.analyze.frontier:  # bad frontier settings fail before any work
        check_frontier_config(cfg, PruneLevels.require(lay).levels)
    with atomic_dir(lay.step("analyze")) as out:
        summary = analyze(run.path, cfg, spec, out)
        cands = Candidates(run, cfg, spec)  # each (level, width) quantized once for both below
        if cfg.analyze.frontier:
            summary["frontier"] = _frontier(cands, out, summary)
        if cfg.analyze.sweep_bits:
            from rl2fpga.quantize.sweep import compression_sweep

            sweep = compression_sweep(run, cfg, spec, out, cands)
            summary["compression_sweep"] = {k: sweep[k] for k in ("best", "best_ratio", "best_ratio_values_only",
                                                                  "paper_claim_ratio", "bits", "levels_swept")}
        summary["random_policy"] = _random_baseline(cfg, spec)
        AnalyzeSummary(summary).save_in(out)
    rb = summary["random_policy"]
    print(f"analyze: a random policy on the same {rb['episodes']} episodes: {rb['return_mean']:.1f} +- "
          f"{rb['return_std']:.1f} (std)")
    m = summary["multiplications"]
    print(f"analyze: {m['dense']:.0f} dense multiplications per step, {m['significant_mean']:.1f} significant "
          f"({m['reduction']:.1f}x fewer) at T={cfg.quantize.threshold}")
    best = summary.get("compression_sweep", {}).get("best")
    if best:
        print(f"analyze: largest compression keeping the return: {best['ratio']:.1f}x ({best['ratio_values_only']:.1f}x values only), "
              f"level {best['level']} (sparsity {best['sparsity']:.3f}), {best['bits']} bits")


def _random_baseline(cfg: RunConfig, spec: Any) -> dict[str, Any]:
    """Uniform random actions on the dense evaluation's seeded episodes: what "learned" is measured against."""
    from rl2fpga.train.evaluate import evaluate_random
    from rl2fpga.train.training import EVAL_SEED_OFFSET

    seed, episodes = cfg.seed + EVAL_SEED_OFFSET, cfg.train.eval_episodes
    res = evaluate_random(spec, cfg.env, seed, episodes)
    return {"return_mean": res.mean, "return_std": res.std, "episodes": episodes, "seed": seed}


def _frontier(cands: Any, out: Any, summary: dict[str, Any]) -> dict[str, Any]:
    """The compression frontier, its summary view, one printed line."""
    from rl2fpga.quantize.frontier import compression_frontier, summary_view

    result = compression_frontier(cands, out, float(summary["multiplications"]["reference_dense"]))
    view = summary_view(result)
    pts = view["frontier"]
    smallest = min((p for p in pts if p["keeps"]), key=lambda p: p["stored_bits"], default=None)
    print(f"analyze: compression frontier: {len(pts)} Pareto points of {len(result['points'])}"
          + (f"; smallest keeping the return: {smallest['id']}, {smallest['stored_bytes']:,.0f} bytes ({smallest['ratio']:.1f}x), "
             f"return {smallest['return_mean']:.1f} +- {smallest['return_se']:.1f} with delta" if smallest else ""))
    return view
