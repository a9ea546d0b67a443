"""The ``analyze`` stage: significant multiplications over real episodes, T and sparsity sweeps,
the compression sweep, plots (see :mod:`rl2fpga.quantize.analyze`)."""

from __future__ import annotations

from rl2fpga.artifacts import AnalyzeSummary, QuantizeSummary
from rl2fpga.config import RunConfig
from rl2fpga.fsutil import atomic_dir
from rl2fpga.run import Run
from rl2fpga.train.trainer import load_train_outputs


def analyze_step(run: Run, cfg: RunConfig) -> None:
    from rl2fpga.quantize.analyze import analyze

    _, spec, dense_eval = load_train_outputs(run)
    lay = run.layout
    lay.require("prune", lay.prune_levels)
    lay.require("quantize", lay.quantize_formats, QuantizeSummary.path(lay))
    with atomic_dir(lay.step("analyze")) as out:
        summary = analyze(run.path, cfg, spec, out)
        if cfg.analyze.sweep_bits:
            from rl2fpga.quantize.sweep import compression_sweep

            sweep = compression_sweep(run, cfg, spec, out)
            summary["compression_sweep"] = {k: sweep[k] for k in ("best", "best_ratio", "best_ratio_values_only",
                                                                  "paper_claim_ratio", "bits", "levels_swept")}
            AnalyzeSummary(summary).save_in(out)
    m = summary["multiplications"]
    print(f"analyze: {m['dense']:.0f} dense multiplications per step, {m['significant_mean']:.1f} significant "
          f"({m['reduction']:.1f}x fewer) at T={cfg.quantize.threshold}")
    best = summary.get("compression_sweep", {}).get("best")
    if best:
        print(f"analyze: largest compression keeping the return: {best['ratio']:.1f}x ({best['ratio_values_only']:.1f}x values only), "
              f"level {best['level']} (sparsity {best['sparsity']:.3f}), {best['bits']} bits")
