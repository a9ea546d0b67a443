"""What the report adds to the headline figures: provenance (versions, commit, machine, the
config), every check with its counts, host latency beside engine cycles, capacities of the part
named in the config, hls4ml precisions per layer, and the plots that need error bars, a training
curve or a numeric threshold axis. Reads only what the steps wrote; a step that did not run
shows as not run."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np

from rl2fpga import provenance
from rl2fpga.artifacts import RunArtifacts, data
from rl2fpga.config import RunConfig, dump_yaml
from rl2fpga.parts import capacity as part_capacity
from rl2fpga.parts import utilisation
from rl2fpga.plots import new_figure as _fig
from rl2fpga.plots import png_base64 as _png


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


# ---------------------------------------------------------------------------- summary


def _f(v: Any) -> str:
    return "-" if v is None else f"{v:.1f}"


def checks(a: RunArtifacts, s: dict[str, Any]) -> list[dict[str, Any]]:
    """Every form checked against the golden model: what, how many, mismatches, verdict."""
    q, b = data(a.quantize), data(a.board)
    rows = [
        {"check": "QKeras model == golden (integers, visited states)", "count": q.get("golden_equals_qkeras_states"),
         "unit": "states", "mismatches": 0 if q.get("golden_equals_qkeras_states") else None,
         "note": "float32 exactness proved for every input" if q.get("float32_exact_proved") else "certified on the checked states"},
        {"check": "hls4ml C simulation == golden (consecutive frames, state carried)", "count": _get(s, "hls", "csim_frames"),
         "unit": "frames", "mismatches": _get(s, "hls", "csim_mismatches"), "note": _get(s, "hls", "backend") or ""},
        {"check": "RTL co-simulation == golden (Verilator, back-pressure)", "count": _get(s, "rtl", "cosim_frames"),
         "unit": "frames", "mismatches": _get(s, "rtl", "cosim_mismatches"), "note": f"{_get(s, 'rtl', 'lanes')} lanes"},
        {"check": "engine MAC counter == golden significant multiplications", "count": _get(s, "rtl", "cosim_frames"),
         "unit": "frames", "mismatches": _get(s, "rtl", "mac_mismatches"), "note": ""},
        {"check": f"closed loop on {b.get('target') or 'the board'} ({b.get('engine') or '-'}): actions == golden",
         "count": b.get("steps"), "unit": "steps", "mismatches": b.get("action_mismatches"),
         "note": "" if not b else f"{b.get('episodes')} episodes; output mismatches {b.get('output_mismatches')}, MAC mismatches {b.get('mac_mismatches')}"},
        {"check": "closed loop: board return == golden return", "count": b.get("episodes"), "unit": "episodes",
         "mismatches": None if not b or "golden_returns" not in b else sum(1 for x, y in zip(b["returns"], b["golden_returns"]) if x != y),
         "note": "" if not b else f"return {_f(b.get('return_mean'))}, golden {_f(b.get('golden_return_mean'))}"},
    ]
    for r in rows:
        r["verdict"] = "not run" if r["count"] is None or r["mismatches"] is None else ("pass" if r["mismatches"] == 0 else "FAIL")
    return rows


def latency(a: RunArtifacts, cfg: RunConfig) -> dict[str, Any]:
    """Engine cycles (co-simulation) at the assumed clock beside the host's per-step latency."""
    lat, b = data(a.latency), data(a.board)
    clock = lat.get("clock_mhz") or cfg.rtl.clock_mhz
    cyc = lat.get("cycles") or {}
    host = b.get("latency_us") or {}
    return {
        "clock_mhz": clock,
        "clock_note": "assumed (rtl.clock_mhz), not a timing-closed build",
        "engine_cycles": {k: cyc.get(k) for k in ("median", "p99", "max")} if cyc else None,
        "engine_us": {k: cyc[k] / clock for k in ("median", "p99", "max") if cyc.get(k) is not None} if cyc else None,
        "dense_equivalent_cycles": lat.get("dense_equivalent_cycles"),
        "host_target": b.get("target"),
        "host_engine": b.get("engine"),
        "host_us": {"p50": host.get("p50"), "p99": host.get("p99"), "mean": host.get("mean")} if host else None,
        "host_note": ("host -> driver -> DMA -> engine -> host per step; on the emulator this is the simulator's speed, not a board's"
                      if b.get("target") == "emulator" else "host -> driver -> device per step"),
    }


def capacity(cfg: RunConfig, s: dict[str, Any]) -> dict[str, Any]:
    used = {k: _get(s, "rtl", k) for k in ("lut", "ff", "dsp", "bram36")}
    cap = part_capacity(cfg.hls.part)
    return {"part": cfg.hls.part, "device": cap[0] if cap else None, "known": cap is not None,
            "rows": utilisation(used, cfg.hls.part), "source": "yosys synth_xilinx estimate of the sparse delta engine"}


def hls_precisions(a: RunArtifacts) -> dict[str, Any]:
    h = data(a.hls)
    rows = []
    for name, p in (h.get("precisions") or {}).items():
        p = p if isinstance(p, dict) else {"result": str(p)}
        delta = "-" if not p.get("delta_stage") else f"yes, T_int {p.get('threshold')}"
        rows.append({"layer": name, **{k: str(p.get(k, "-")) for k in ("input", "weight", "bias", "accum", "result", "reuse_factor")},
                     "delta": delta})
    return {"backend": h.get("backend"), "io_type": h.get("io_type"), "strategy": h.get("strategy"),
            "precisions": h.get("precisions") or {}, "rows": rows, "build": h.get("build")}


def extra_summary(a: RunArtifacts, cfg: RunConfig, s: dict[str, Any]) -> dict[str, Any]:
    return {
        "provenance": provenance.collect(),
        "config": json.loads(json.dumps(dataclasses.asdict(cfg))),
        "checks": checks(a, s),
        "latency": latency(a, cfg),
        "capacity": capacity(cfg, s),
        "hls_precisions": hls_precisions(a),
        "imported": a.imported.data if a.imported else None,
    }


# ---------------------------------------------------------------------------- plots


def plot_reward_vs_sparsity(a: RunArtifacts, s: dict[str, Any]) -> str | None:
    """Mean return +- one standard deviation over the evaluation episodes of every level."""
    levels = a.levels.levels if a.levels else []
    lv = [x for x in levels if x.get("sparsity") is not None and x.get("eval_return_mean") is not None]
    if not lv:
        return None
    ana = data(a.analyze)
    fig, ax = _fig()
    xs = np.array([100 * x["sparsity"] for x in lv])
    n_ep = len(a.train_eval.returns if a.train_eval else []) or None
    ax.errorbar(xs, [x["eval_return_mean"] for x in lv], yerr=[x.get("eval_return_std") or 0 for x in lv], fmt="o-",
                capsize=3, label=f"pruned, float (mean +- std{f', {n_ep} episodes' if n_ep else ''})")
    per = [x for x in ana.get("per_level", []) if x.get("delta_return_mean") is not None]
    if per:
        ax.errorbar([100 * x["sparsity"] for x in per], [x["delta_return_mean"] for x in per],
                    yerr=[x.get("delta_return_std") or 0 for x in per], fmt="s--", capsize=3,
                    label=f"pruned + delta, float (T={ana.get('threshold')}, {ana.get('episodes')} episodes)")
    dense = _get(s, "train", "eval_return_mean")
    if dense is not None:
        ax.axhline(dense, color="k", lw=1, ls=":", label="dense")
    sel = s.get("selected", {})
    if sel.get("sparsity") is not None and sel.get("eval_return_mean_delta") is not None:
        ax.plot([100 * sel["sparsity"]], [sel["eval_return_mean_delta"]], "r*", ms=14, label="selected: 8-bit golden + delta")
    ax.set_xlabel("weight sparsity (%)")
    ax.set_ylabel("return")
    ax.legend(fontsize=7)
    return _png(fig)


def plot_training_curve(a: RunArtifacts) -> str | None:
    m = data(a.train_metrics)
    evals = [e for e in m.get("evals", []) if e.get("mean") is not None]
    eps = m.get("episodes", [])
    if not evals and not eps:
        return None
    fig, ax = _fig()
    if eps:
        st = np.array([e["step"] for e in eps], dtype=float)
        r = np.array([e["return"] for e in eps], dtype=float)
        ax.plot(st, r, ".", ms=2, alpha=0.35, color="tab:gray", label="training episodes (exploring)")
    if evals:
        st = np.array([e["step"] for e in evals], dtype=float)
        mu = np.array([e["mean"] for e in evals], dtype=float)
        sd = np.array([e.get("std") or 0 for e in evals], dtype=float)
        ax.plot(st, mu, "o-", ms=3, color="tab:blue", label="greedy evaluation (mean)")
        ax.fill_between(st, mu - sd, mu + sd, color="tab:blue", alpha=0.2, label="+- std")
    sel = m.get("selected_step")
    if sel:
        ax.axvline(sel, color="tab:red", ls="--", lw=1, label=f"selected model (step {sel:,})")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("return")
    ax.legend(fontsize=7)
    return _png(fig)


def plot_threshold_sweep(a: RunArtifacts, cfg: RunConfig) -> str | None:
    """Significant-multiplication fraction (left, log) and return (right) against T on a numeric
    (symmetric-log) axis; the selected T is marked."""
    ana = data(a.analyze)
    rows = sorted((ana.get("per_threshold") or {}).values(), key=lambda x: x.get("T", 0))
    if not rows:
        return None
    fig, ax = _fig(6.2, 3.6)
    T = np.array([x["T"] for x in rows], dtype=float)
    nz = T[T > 0]
    lin = float(nz.min()) if nz.size else 1e-3
    h1 = ax.plot(T, [x.get("golden_fraction") for x in rows], "o-", color="tab:blue", label="significant fraction, golden integer")
    h2 = ax.plot(T, [x.get("float_fraction") for x in rows], "s--", color="tab:cyan", label="significant fraction, float DeltaNetwork")
    ax.set_xscale("symlog", linthresh=lin)
    ax.set_yscale("log")
    ax.set_xlabel("delta threshold T (input units; symlog axis, 0 = no delta)")
    ax.set_ylabel("significant / dense multiplications")
    handles = h1 + h2
    ax2 = ax.twinx()
    fr = [(t, x.get("float_delta_return_mean"), x.get("float_delta_return_std") or 0) for t, x in zip(T, rows)
          if x.get("float_delta_return_mean") is not None]
    if fr:
        n = max((len(x.get("float_delta_returns") or []) for x in rows), default=0)
        handles.append(ax2.errorbar([a for a, _, _ in fr], [b for _, b, _ in fr], yerr=[c for _, _, c in fr], fmt="^:",
                                    color="tab:orange", capsize=3,
                                    label="return, float delta (mean +- std" + (f", {n} episodes)" if n else ")")))
    gr = [(t, x["golden_delta_return_mean"]) for t, x in zip(T, rows) if x.get("golden_delta_return_mean") is not None]
    if gr:
        handles += ax2.plot([a for a, _ in gr], [b for _, b in gr], "D", color="tab:red", ms=6, label="return, golden integer")
    ax2.set_ylabel("return")
    t_sel = cfg.quantize.threshold
    handles.append(ax.axvline(t_sel, color="k", ls="--", lw=1, label=f"selected T = {t_sel:g}"))
    ax.set_xticks(T, [f"{t:g}" for t in T])
    ax.legend(handles=handles, fontsize=7, loc="lower left")
    return _png(fig)


def plot_resources(s: dict[str, Any], cap: dict[str, Any]) -> str | None:
    rows = [r for r in cap.get("rows", []) if r.get("available")]
    if not rows:
        return None
    fig, ax = _fig(5.6, 2.6)
    used = [r["percent"] for r in rows]
    bars = ax.barh([r["resource"].upper() for r in rows], used, color=["tab:red" if u > 100 else "tab:blue" for u in used])
    for b, r in zip(bars, rows, strict=True):
        ax.text(b.get_width() + 1, b.get_y() + b.get_height() / 2, f"{r['used']:,} / {r['available']:,}", va="center", fontsize=8)
    ax.axvline(100, color="k", lw=1)
    ax.set_xlim(0, max(110, max(used) * 1.3))
    ax.set_xlabel(f"% of {cap['device']} ({cap['part']})")
    return _png(fig)


def config_yaml(cfg: RunConfig) -> str:
    return dump_yaml(cfg)
