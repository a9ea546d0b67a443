"""Compression frontier: method x sparsity x weight bits x storage format, judged the way the
hardware runs it.

Every prune level of ``analyze.frontier_levels`` (each a method and a sparsity: the dense
agent, a pruned network, a small student) is quantized at every width of
``analyze.frontier_bits`` exactly as the quantize step does (:func:`quantize_level`: QAT or
PTQ, golden == QKeras checked) and played as the golden integer agent *with delta updates*
(T = ``quantize.threshold``, ``quantize.delta_episodes`` episodes from the evaluation seed,
the episodes the quantize step judges its model on). Its size is counted in every format of
``analyze.frontier_formats`` by :func:`rl2fpga.quantize.compression.compression` (the bits of
the engine's memory images + the input standardisation); the return and the significant
multiplications do not depend on the format, so each (level, width) is played once and every
format's size attached. The quantize step's own model is a point too (reused, not replayed).

The frontier is the Pareto front of (return: larger, stored bytes: smaller, significant
multiplications per step: smaller) over every point that played; a point equal to an earlier
one in all three objectives is left off (the formats of one (level, width) tie when they are
equally small: ``auto`` comes first). Levels that lose the return stay in the point list, off
the front. The golden model of every front point is saved (``analyze/frontier/<key>/``), so its
images can be regenerated and checked.

Writes ``frontier.json`` (:class:`~rl2fpga.artifacts.AnalyzeFrontier`), ``frontier.md`` and
``frontier.png`` into the analyze folder.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rl2fpga.config import RunConfig
from rl2fpga.core.golden import GoldenModel
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.run import Run

PAPER_RATIO = 400.0  # "pruning + quantization shrink RL networks up to 400x" (2025 paper)
# (point key, larger is better): the frontier's objectives
OBJECTIVES: tuple[tuple[str, bool], ...] = (("return_mean", True), ("stored_bits", False), ("significant_mean", False))


def pareto_indices(points: Sequence[Sequence[float]], maximize: Sequence[bool]) -> list[int]:
    """Indices of the points no other point dominates: at least as good in every objective
    (``maximize[k]``: larger is better, else smaller) and not equal. Equal points do not
    dominate each other: both stay."""
    signs = np.array([1.0 if m else -1.0 for m in maximize])
    p = np.asarray(points, dtype=np.float64).reshape(len(points), len(signs)) * signs
    front = []
    for i in range(len(p)):
        ge = np.all(p >= p[i], axis=1)
        gt = np.any(p > p[i], axis=1)
        if not np.any(ge & gt):
            front.append(i)
    return front


def bits_config(cfg: RunConfig, bits: int) -> RunConfig:
    """``cfg`` with every weight layer at ``bits`` (mixed precision cleared)."""
    c = copy.deepcopy(cfg)
    c.quantize.weight_bits, c.quantize.layer_weight_bits = bits, []
    return c


@dataclass
class Played:
    """One (level, weight widths) quantized and played as the golden agent."""

    key: str  # e.g. L01_b4 (the folder its golden model is saved under)
    level: dict[str, Any]  # its record in prune/levels.json
    golden: GoldenModel  # thresholds 0 (what the engine's images hold)
    t_int: list[int]
    evd: dict[str, Any]  # with delta updates: returns, mean, std, lengths
    significant_mean: float  # significant multiplications per step, over evd's episodes
    ev0: dict[str, Any] | None = None  # without delta updates (the compression sweep's figure)
    selected: bool = False  # the quantize step's model


class Candidates:
    """(level, width) -> :class:`Played`, each quantized once; shared by the frontier and the
    compression sweep (:mod:`rl2fpga.quantize.sweep`). The quantize step's model is taken from
    its artifacts."""

    def __init__(self, run: Run, cfg: RunConfig, spec: Any):
        self.run, self.cfg, self.spec = run, cfg, spec
        self.cache: dict[tuple[int, int], Played] = {}
        self.selected = self._selected()

    def _selected(self) -> Played | None:
        from rl2fpga.artifacts import PruneLevels, QuantizeEval, QuantizeSummary

        q, ev = QuantizeSummary.load(self.run.layout), QuantizeEval.load(self.run.layout)
        if q is None or ev is None or not (self.run.path / "quantize" / "golden").exists():
            return None
        gm = GoldenModel.load(self.run.path / "quantize" / "golden")
        t_int = gm.thresholds
        gm.set_thresholds(0)
        level = next(lv for lv in PruneLevels.require(self.run.layout).levels if lv["level"] == q.get("prune_level"))
        bits = [la.w_fmt.bits for la in gm.layers]
        key = f"L{level['level']:02d}_b{bits[0]}" if len(set(bits)) == 1 else f"L{level['level']:02d}_b{'-'.join(map(str, bits))}"
        played = Played(key, level, gm, t_int, ev.get("golden_delta"), float(q.get("multiplications.significant_mean")),
                        ev0=ev.get("golden"), selected=True)
        if len(set(bits)) == 1:
            self.cache[(level["level"], bits[0])] = played
        return played

    def get(self, level: int, bits: int, plain: bool = False) -> Played:
        """The level at ``bits``-bit weights, played with delta updates (``plain``: also without)."""
        from rl2fpga.quantize.level import quantize_level

        hit = self.cache.get((level, bits))
        if hit is None:
            res = quantize_level(self.run, bits_config(self.cfg, bits), self.spec, level, plain=plain)
            macs = np.array([s.macs for s in res.policy.stats], dtype=np.float64)
            hit = Played(f"L{level:02d}_b{bits}", res.level, res.golden, res.t_int, res.evd, float(macs.sum(1).mean()),
                         ev0=res.ev0)
            self.cache[(level, bits)] = hit
        if plain and hit.ev0 is None:
            hit.ev0 = self._plain(hit)
        return hit

    def _plain(self, p: Played) -> dict[str, Any]:
        from rl2fpga.quantize.quantizer import GoldenPolicy, run_stateful
        from rl2fpga.train.training import EVAL_SEED_OFFSET

        g0, spec = p.golden.copy(), self.spec
        g0.set_thresholds(0)
        return run_stateful(GoldenPolicy(g0, spec.discrete, spec.action_low, spec.action_high), self.cfg.env,
                            self.cfg.seed + EVAL_SEED_OFFSET, self.cfg.quantize.delta_episodes)


def check_frontier_config(cfg: RunConfig, levels: list[dict[str, Any]]) -> None:
    """One-line errors for analyze.frontier_* values the frontier cannot use."""
    from rl2fpga.hls.engine.formats import CHOICES

    ac = cfg.analyze
    for b in ac.frontier_bits:
        if not 2 <= b <= 16:
            raise Rl2fpgaError(f"analyze.frontier_bits has {b}; use widths of 2..16 bits")
    for f in ac.frontier_formats:
        if f not in CHOICES:
            raise Rl2fpgaError(f"analyze.frontier_formats has {f!r}; use formats of {', '.join(CHOICES)}")
    if not ac.frontier_formats:
        raise Rl2fpgaError("analyze.frontier_formats is empty; list at least one format (auto) or set analyze.frontier=false")
    known = {lv["level"] for lv in levels}
    for lv in ac.frontier_levels:
        if lv not in known:
            raise Rl2fpgaError(f"analyze.frontier_levels has level {lv}, which prune/levels.json does not list ({sorted(known)}); "
                               "use one of those or [] for every level")


def level_method(level: dict[str, Any], method: str | None) -> str:
    """How a level was made: ``dense`` (level 0), ``student 8x8`` (+ ``pruned``), or the prune method."""
    if level["level"] == 0:
        return "dense"
    if level.get("student_hidden"):
        return f"student {'x'.join(map(str, level['student_hidden']))}" + (" pruned" if level.get("sparsity", 0) > 0 else "")
    return method or "pruned"


def _returns(ev: dict[str, Any]) -> dict[str, Any]:
    r = np.asarray(ev["returns"], dtype=np.float64)
    se = float(r.std(ddof=1) / math.sqrt(len(r))) if len(r) > 1 else 0.0
    return {"return_mean": float(r.mean()), "return_se": se, "return_std": float(r.std()), "episodes": len(r)}


def format_points(p: Played, cfg: RunConfig, method: str, reference_bits: int, reference_mults: float) -> list[dict[str, Any]]:
    """One point per format of ``analyze.frontier_formats`` (the quantize step's model: also in
    ``rtl.format``, the format it is deployed in). ``sparsity``: the prune level's;
    ``weight_sparsity``: zero weights after quantization (what the formats store)."""
    from rl2fpga.quantize.compression import compression

    gm, lv = p.golden, p.level
    bits = [la.w_fmt.bits for la in gm.layers]
    network = "-".join(["x".join(map(str, gm.in_shape))] + ["x".join(map(str, la.out_shape)) for la in gm.layers])
    fmts = list(dict.fromkeys([*cfg.analyze.frontier_formats, *([cfg.rtl.format] if p.selected else [])]))
    out = []
    for fmt in fmts:
        tot = compression(gm, lanes=cfg.rtl.lanes_arg, fmt=fmt, reference_fp32_bits=reference_bits)["total"]
        out.append({
            "id": f"{p.key}_{fmt}", "key": p.key, "method": method, "network": network, "level": lv["level"],
            "sparsity": float(lv["sparsity"]), "weight_sparsity": float(tot["sparsity"]), "weight_bits": bits[0] if len(set(bits)) == 1 else bits,
            "layer_weight_bits": bits, "format": fmt, "formats": tot["format"],
            "stored_bits": int(tot["stored_bits"]), "stored_bytes": tot["stored_bits"] / 8,
            "image_bits": int(tot["image_bits"]), "input_standardize_bits": int(tot["input_standardize_bits"]),
            "values_only_bits": int(tot["values_only_bits"]), "dense_fp32_bits": int(tot["dense_fp32_bits"]),
            "ratio": float(tot["ratio"]), "ratio_values_only": float(tot["ratio_values_only"]),
            "threshold_int": list(p.t_int), "significant_mean": p.significant_mean,
            "significant_fraction": p.significant_mean / reference_mults if reference_mults else None,
            **_returns(p.evd), "selected": p.selected and fmt == cfg.rtl.format,
        })
    return out


def front(points: list[dict[str, Any]]) -> list[str]:
    """Ids of the frontier: the Pareto points of :data:`OBJECTIVES` over the points that
    played, a point equal to an earlier one in every objective left off."""
    ok = [p for p in points if "error" not in p]
    vals = [[float(p[k]) for k, _ in OBJECTIVES] for p in ok]
    seen: set[tuple[float, ...]] = set()
    ids = []
    for i in pareto_indices(vals, [m for _, m in OBJECTIVES]):
        if tuple(vals[i]) not in seen:
            seen.add(tuple(vals[i]))
            ids.append(ok[i]["id"])
    return ids


def _plays(cands: Candidates, levels: list[dict[str, Any]]) -> list[tuple[dict[str, Any], int]]:
    """The (level, width) pairs to play, the quantize step's model first."""
    ac = cands.cfg.analyze
    chosen = [lv for lv in levels if not ac.frontier_levels or lv["level"] in ac.frontier_levels]
    return [(lv, b) for lv in chosen for b in sorted(set(ac.frontier_bits), reverse=True)]


def compression_frontier(cands: Candidates, out: Path, reference_mults: float) -> dict[str, Any]:
    """Play, size and select (see the module docstring); returns what ``frontier.json`` holds.
    ``reference_mults``: the dense agent's multiplications per step (level 0)."""
    from rich.progress import Progress

    from rl2fpga.artifacts import AnalyzeFrontier, PruneLevels
    from rl2fpga.quantize.compression import fp32_bits
    from rl2fpga.quantize.level import keeps_return
    from rl2fpga.train.trainer import load_train_outputs
    from rl2fpga.train.training import EVAL_SEED_OFFSET

    run, cfg = cands.run, cands.cfg
    pl = PruneLevels.require(run.layout)
    levels, method = pl.levels, pl.get("method")
    check_frontier_config(cfg, levels)
    reference_bits = fp32_bits(load_train_outputs(run)[0])
    dense_ret, keep = float(levels[0]["eval_return_mean"]), cfg.prune.keep_return_fraction
    points: list[dict[str, Any]] = []
    played: list[Played] = [cands.selected] if cands.selected else []
    plays = _plays(cands, levels)
    with Progress(transient=True) as bar:
        task = bar.add_task("compression frontier", total=len(plays))
        for lv, bits in plays:
            try:
                p = cands.get(lv["level"], bits)
            except Rl2fpgaError as e:  # e.g. float32 QKeras cannot be exact at this width
                points.append({"id": f"L{lv['level']:02d}_b{bits}", "level": lv["level"], "weight_bits": bits,
                               "method": level_method(lv, method), "error": str(e)})
            else:
                if not any(p is x for x in played):
                    played.append(p)
            bar.advance(task)
    for p in played:
        points += format_points(p, cfg, level_method(p.level, method), reference_bits, reference_mults)
    for pt in points:
        if "error" not in pt:
            pt["keeps"] = keeps_return(pt["return_mean"], dense_ret, keep)
    ids = front(points)
    for pt in points:
        pt["on_front"] = pt["id"] in ids
    _save_front(out, played, points)
    result = {
        "objectives": [f"{k} ({'max' if m else 'min'})" for k, m in OBJECTIVES],
        "threshold": cfg.quantize.threshold, "episodes": cfg.quantize.delta_episodes,
        "seed": cfg.seed + EVAL_SEED_OFFSET, "keep_return_fraction": keep, "paper_ratio": PAPER_RATIO,
        "dense": {"fp32_bits": reference_bits, "stored_bytes": reference_bits / 8, "return_mean": dense_ret,
                  "return_std": levels[0].get("eval_return_std"), "significant_mean": reference_mults},
        "front": ids, "points": points,
    }
    AnalyzeFrontier(result).save_in(out)
    _write_views(out, result, cands.spec.id)
    return result


def _save_front(out: Path, played: list[Played], points: list[dict[str, Any]]) -> None:
    """The golden model (thresholds 0) of every front point: ``frontier/<key>/``."""
    keys = {pt["key"] for pt in points if pt.get("on_front")}
    for p in played:
        if p.key in keys:
            p.golden.save(out / "frontier" / p.key)
            for pt in points:
                if pt.get("key") == p.key:
                    pt["golden"] = f"frontier/{p.key}"


def _write_views(out: Path, result: dict[str, Any], env_id: str) -> None:
    from rl2fpga.fsutil import atomic_write_bytes, atomic_write_text
    from rl2fpga.plots import frontier_figure, png_bytes

    atomic_write_text(out / "frontier.md", frontier_markdown(result))
    atomic_write_bytes(out / "frontier.png", png_bytes(frontier_figure(result, f"{env_id}: compression frontier")))


def frontier_markdown(result: dict[str, Any], front_only: bool = False) -> str:
    """The points as a markdown table (front points in bold ids)."""
    d = result["dense"]
    lines = [f"Compression frontier: golden agent with delta updates (T = {result['threshold']:g}), "
             f"{result['episodes']} episodes from seed {result['seed']}; dense fp32 agent {d['stored_bytes']:,.0f} bytes, "
             f"return {d['return_mean']:.1f}. Front: Pareto of return (max), stored bytes, significant multiplications (min).\n",
             "| point | method | network | sparsity | weight bits | formats | stored bytes | vs fp32 (every bit / values only) "
             "| significant mults / step | return (mean +- s.e.) | front |",
             "|---|---|---|---:|---:|---|---:|---:|---:|---:|:---:|"]
    for p in result["points"]:
        if front_only and not p.get("on_front"):
            continue
        if "error" in p:
            lines.append(f"| {p['id']} | {p['method']} | | | {p['weight_bits']} | | | | | error: {p['error']} | |")
            continue
        fmts = ", ".join(f"{k} {v}" for k, v in p["formats"].items())
        lines.append(f"| {'**' + p['id'] + '**' if p['on_front'] else p['id']} | {p['method']} | {p['network']} | {p['sparsity']:.3f} | "
                     f"{p['weight_bits']} | {p['format']}: {fmts} | {p['stored_bytes']:,.1f} | {p['ratio']:.1f}x / {p['ratio_values_only']:.1f}x | "
                     f"{p['significant_mean']:,.1f} | {p['return_mean']:.1f} +- {p['return_se']:.1f} | {'yes' if p['on_front'] else ''} |")
    return "\n".join(lines) + "\n"


COMPACT_KEYS = ("id", "method", "level", "sparsity", "weight_bits", "format", "stored_bits", "stored_bytes", "ratio",
                "significant_mean", "return_mean", "return_se", "keeps", "on_front", "selected", "error")
SETUP_KEYS = ("objectives", "threshold", "episodes", "seed", "keep_return_fraction", "paper_ratio", "dense")


def summary_view(result: dict[str, Any]) -> dict[str, Any]:
    """What ``summary.json``'s compression section carries: ``frontier`` (the front points,
    every field, smallest first), ``frontier_candidates`` (every point, the plotted fields) and
    ``frontier_setup`` (episodes, seeds, T, the dense fp32 agent, the paper's ratio).
    :func:`rl2fpga.plots.frontier_figure` draws ``{**frontier_setup, "points": frontier_candidates}``."""
    by_id = {p["id"]: p for p in result["points"]}
    return {
        "frontier": sorted((by_id[i] for i in result["front"]), key=lambda p: p["stored_bits"]),
        "frontier_candidates": [{k: p[k] for k in COMPACT_KEYS if k in p} for p in result["points"]],
        "frontier_setup": {k: result[k] for k in SETUP_KEYS},
    }
