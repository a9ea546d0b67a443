"""Compression sweep, the 2025 paper's question: how small can the deployed network get and still
keep the dense agent's return?

Every prune level whose float agent keeps ``prune.keep_return_fraction`` of the dense return is
quantized with its weights at every width of ``analyze.sweep_bits`` (activations stay at
``quantize.act_bits``: they are computed, not stored, so they do not change the size) exactly as
the quantize step does (QAT or PTQ per ``quantize.method``, golden == QKeras checked), then played as
the golden integer agent (no delta updates: size is the question here) on the evaluation seeds.
Its size compression counts what the engine stores, index bits included
(:mod:`rl2fpga.quantize.compression`); the values-only ratio papers tend to quote is reported
beside it. The answer is the largest compression whose golden return still keeps the fraction.

Each (level, width) is quantized once per analyze step: the compression frontier
(:mod:`rl2fpga.quantize.frontier`) and this sweep share one :class:`~rl2fpga.quantize.frontier.Candidates`.

Writes ``sweep.json``, ``sweep.md`` and ``sweep.png`` into the analyze folder.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from rl2fpga.artifacts import AnalyzeSweep, PruneLevels
from rl2fpga.config import RunConfig
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.fsutil import atomic_write_bytes, atomic_write_text
from rl2fpga.quantize.frontier import PAPER_RATIO as PAPER_CLAIM
from rl2fpga.quantize.frontier import Candidates
from rl2fpga.run import Run


def compression_sweep(run: Run, cfg: RunConfig, spec: Any, out: Path, cands: Candidates | None = None) -> dict[str, Any]:
    """Run the sweep (see the module docstring); returns what ``sweep.json`` holds.
    ``cands``: (level, width) results already played (the frontier's), reused."""
    from rich.progress import Progress

    from rl2fpga.quantize.compression import compression, fp32_bits
    from rl2fpga.quantize.level import keeps_return
    from rl2fpga.train.trainer import load_train_outputs

    keep = cfg.prune.keep_return_fraction
    levels = PruneLevels.require(run.layout).levels
    dense_ret = float(levels[0]["eval_return_mean"])
    bits_list = sorted(set(cfg.analyze.sweep_bits), reverse=True)
    for b in bits_list:
        if not 2 <= b <= 16:
            raise Rl2fpgaError(f"analyze.sweep_bits has {b}; use widths of 2..16 bits")
    chosen = [lv for lv in levels if keeps_return(float(lv["eval_return_mean"]), dense_ret, keep)]
    cands = cands or Candidates(run, cfg, spec)
    reference = fp32_bits(load_train_outputs(run)[0])  # as the quantize step: against the dense trained agent
    rows: list[dict[str, Any]] = []
    with Progress(transient=True) as bar:
        task = bar.add_task("compression sweep", total=len(chosen) * len(bits_list))
        for lv in chosen:
            for bits in bits_list:
                row: dict[str, Any] = {"level": lv["level"], "sparsity": lv["sparsity"], "bits": bits,
                                       "float_return_mean": lv["eval_return_mean"]}
                try:
                    res = cands.get(lv["level"], bits, plain=True)
                except Rl2fpgaError as e:  # e.g. float32 QKeras cannot be exact at this width
                    row["error"] = str(e)
                else:
                    comp = compression(res.golden, lanes=cfg.rtl.lanes_arg, fmt=cfg.rtl.format,
                                       reference_fp32_bits=reference)["total"]
                    row.update({"return_mean": res.ev0["mean"], "return_mean_delta": res.evd["mean"],
                                "ratio": comp["ratio"], "ratio_values_only": comp["ratio_values_only"],
                                "stored_bits": comp["stored_bits"], "dense_fp32_bits": comp["dense_fp32_bits"],
                                "format": comp["format"],
                                "keeps": keeps_return(res.ev0["mean"], dense_ret, keep)})
                rows.append(row)
                bar.advance(task)
    passing = [r for r in rows if r.get("keeps")]
    best = max(passing, key=lambda r: r["ratio"], default=None)
    result = {
        "dense_return_mean": dense_ret,
        "keep_return_fraction": keep,
        "bits": bits_list,
        "levels_swept": [lv["level"] for lv in chosen],
        "levels_skipped": [lv["level"] for lv in levels if lv not in chosen],
        "rows": rows,
        "best": best,
        "best_ratio": best["ratio"] if best else None,
        "best_ratio_values_only": max((r["ratio_values_only"] for r in passing), default=None),
        "paper_claim_ratio": PAPER_CLAIM,
    }
    AnalyzeSweep(result).save_in(out)
    atomic_write_text(out / "sweep.md", sweep_markdown(result))
    atomic_write_bytes(out / "sweep.png", sweep_plot(result, spec.id))
    return result


def sweep_markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Compression sweep: golden integer agent (no delta), dense return {result['dense_return_mean']:.1f}, "
        f"keep >= {result['keep_return_fraction']:g}\n",
        "| level | sparsity | weight bits | float return | golden return | compression (with indices) | values only | keeps |",
        "|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for r in result["rows"]:
        if "error" in r:
            lines.append(f"| {r['level']} | {r['sparsity']:.3f} | {r['bits']} | {r['float_return_mean']:.1f} | error: {r['error']} | | | |")
            continue
        lines.append(f"| {r['level']} | {r['sparsity']:.3f} | {r['bits']} | {r['float_return_mean']:.1f} | {r['return_mean']:.1f} | "
                     f"{r['ratio']:.1f}x | {r['ratio_values_only']:.1f}x | {'yes' if r['keeps'] else 'no'} |")
    b = result["best"]
    lines.append("")
    if b:
        lines.append(f"Largest compression keeping the return: {b['ratio']:.1f}x with indices "
                     f"({b['ratio_values_only']:.1f}x values only) at level {b['level']} "
                     f"(sparsity {b['sparsity']:.3f}), {b['bits']}-bit weights; the 2025 paper reports up to {result['paper_claim_ratio']:.0f}x.")
    else:
        lines.append("No swept point keeps the return.")
    return "\n".join(lines) + "\n"


def sweep_plot(result: dict[str, Any], env_id: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    colors = {16: "#555555", 8: "#4477aa", 6: "#228833", 4: "#cc3311", 2: "#aa3377"}
    for bits in result["bits"]:
        pts = [r for r in result["rows"] if r["bits"] == bits and "ratio" in r]
        if pts:
            ax.scatter([r["ratio"] for r in pts], [r["return_mean"] for r in pts], label=f"{bits}-bit weights",
                       color=colors.get(bits), s=28)
    ax.axhline(result["keep_return_fraction"] * result["dense_return_mean"], color="#888888", ls="--",
               label=f"{result['keep_return_fraction']:g} x dense return")
    ax.axvline(result["paper_claim_ratio"], color="#cc3311", ls=":", label="2025 paper: up to 400x")
    if result["best"]:
        b = result["best"]
        ax.scatter([b["ratio"]], [b["return_mean"]], marker="*", s=180, color="#ee7733", zorder=3, label=f"best {b['ratio']:.0f}x")
    ax.set_xscale("log")
    ax.set_xlabel("size compression vs dense fp32 (index bits counted)")
    ax.set_ylabel("golden agent return")
    ax.set_title(f"{env_id}: return vs compression")
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()
