"""The README's measured tables, regenerated from committed summary excerpts (never copied by hand).

    python scripts/readme_tables.py --excerpt runs/cartpole   # write docs/summaries/cartpole.json from a run
    python scripts/readme_tables.py                           # rewrite the README blocks from the excerpts
    python scripts/readme_tables.py --check                   # exit 1 when the README differs (CI, tests)

A block in README.md sits between ``<!-- readme_tables:NAME begin -->`` and
``<!-- readme_tables:NAME end -->`` and is rendered from ``docs/summaries/NAME.json``; the block
``NAME-frontier`` is the run's compression frontier (its Pareto points as a table, and the plot
``docs/summaries/NAME_frontier.png``, redrawn from the same excerpt). The blocks ``mujoco`` and
``atari`` are one row per SAC run and per DQN Atari run of all the excerpts.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SUMMARIES = REPO / "docs" / "summaries"
README = REPO / "README.md"
# the keys of a run's summary.json an excerpt keeps (everything the tables quote)
KEEP = ("name", "env", "algo", "seed", "train", "levels", "selected", "compression", "multiplications", "hls", "rtl",
        "board", "timings_s", "checks", "latency", "capacity", "backends")


def excerpt(run_dir: Path, wall_s: float | None = None, console_log: Path | None = None,
            load_average: float | None = None, command: str | None = None) -> dict[str, Any]:
    s = json.loads((run_dir / "summary.json").read_text())
    out = {k: s.get(k) for k in KEEP}
    prov = s.get("provenance") or {}
    out["measured"] = {
        "date": time.strftime("%Y-%m-%d", time.gmtime((run_dir / "summary.json").stat().st_mtime)),
        "machine": prov.get("machine"),
        "commit": (prov.get("git") or {}).get("commit"),
        "dirty": (prov.get("git") or {}).get("dirty"),
        "packages": prov.get("packages"),
        "tools": prov.get("tools"),
    }
    log = run_dir / "run.log"
    out["measured"]["run_log_bytes"] = log.stat().st_size if log.exists() else None
    out["measured"]["make_demo_seconds"] = wall_s
    out["measured"]["load_average"] = load_average
    if command:
        out["measured"]["command"] = command
    out["measured"]["make_demo_log_bytes"] = console_log.stat().st_size if console_log and console_log.exists() else None
    out["threshold_study"] = threshold_study(run_dir)
    return out


def threshold_study(run_dir: Path) -> list[dict[str, Any]] | None:
    """The analyze step's rows per delta threshold T (the 2023 paper's Fig. 8 on the deployed
    level): T, its integer thresholds, the golden and float fractions of significant
    multiplications, the float DeltaNetwork's return over its episodes and the golden model's
    over analyze's recorded episodes (``golden_episodes``: analyze.episodes, each capped at
    analyze.max_steps); None without an analyze step or with fewer than three thresholds."""
    path = run_dir / "analyze" / "summary.json"
    if not path.is_file():
        return None
    summary = json.loads(path.read_text())
    rows = (summary.get("per_threshold") or {}).values()
    if len(rows) < 3:
        return None
    keys = ("T", "T_int", "golden_fraction", "float_fraction", "float_delta_return_mean", "float_delta_return_std",
            "golden_delta_return_mean")
    return [{**{k: r.get(k) for k in keys}, "episodes": len(r.get("float_delta_returns") or []),
             "golden_episodes": summary.get("episodes")}
            for r in sorted(rows, key=lambda r: float(r.get("T") or 0.0))]


def render_threshold_study(study: list[dict[str, Any]] | None) -> list[str]:
    """The block's threshold-study table (no lines when the excerpt has none)."""
    if not study:
        return []
    n = max(r.get("episodes") or 0 for r in study)
    g = study[0].get("golden_episodes")
    golden = ("golden return (played at T = 0 and the deployed T only" if g is None else
              f"golden return over analyze's {g} recorded episodes (each capped at analyze.max_steps; T = 0 and the deployed T only")
    lines = [f"Threshold study on the deployed level (analyze; returns of the float DeltaNetwork over {n} whole episodes, "
             "the same seeds at every T; T = 0 is the network without delta updates):", "",
             f"| T | T_int | significant multiplications (golden) | fewer than dense | return with delta updates (float) | {golden}) |",
             "| ---: | --- | ---: | ---: | ---: | ---: |"]
    for r in study:
        frac = r.get("golden_fraction")
        lines.append(f"| {r['T']:g} | {r.get('T_int')} | {_n(None if frac is None else 100 * frac, '{:.2f}')} % | "
                     f"{_reduction(frac)} | {_n(r.get('float_delta_return_mean'))} +- {_n(r.get('float_delta_return_std'))} | "
                     + ("-" if r.get("golden_delta_return_mean") is None else _n(r["golden_delta_return_mean"])) + " |")
    return [*lines, ""]


def _n(v: Any, spec: str = "{:,.1f}") -> str:
    if v is None:
        return "not run"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, str):  # e.g. lanes per layer, "16/16/16/32/4"
        return v
    return spec.format(v)


def _bits(sel: dict[str, Any]) -> str:
    """``8`` or, for mixed precision (quantize.layer_weight_bits), the width of each layer: ``8/8/8/4/8``."""
    per = sel.get("layer_weight_bits") or []
    return "/".join(str(b) for b in per) if len(set(per)) > 1 else _n(sel.get("weight_bits"))


def _threshold(sel: dict[str, Any]) -> str:
    """T, or each layer's T when quantize.layer_thresholds was set."""
    per = sel.get("layer_thresholds")
    return f"{per} per layer" if per else str(sel.get("threshold"))


def render(name: str, e: dict[str, Any]) -> str:
    """The markdown block of one excerpt."""
    tr, sel, comp, mult, hls, rtl, brd = (e.get(k) or {} for k in ("train", "selected", "compression", "multiplications", "hls", "rtl", "board"))
    levels = e.get("levels") or []
    lv = next((x for x in levels if x.get("level") == sel.get("level")), {})
    t = e.get("timings_s") or {}
    m = (e.get("measured") or {})
    mach = m.get("machine") or {}
    cap = e.get("capacity") or {}
    lat = e.get("latency") or {}
    qk = next((c for c in (e.get("checks") or []) if c["check"].startswith("QKeras")), {})
    clock = rtl.get("clock_mhz") or 100.0
    host = lat.get("host_us") or {}
    rows: list[tuple[str, str]] = [
        ("dense agent, greedy return", f"{_n(tr.get('eval_return_mean'))} +- {_n(tr.get('eval_return_std'))} after {_n(tr.get('steps'))} steps ({_n(t.get('train'), '{:.0f}')} s)"),
        ("selected model" if sel.get("network") else "selected prune level",
         (f"{sel['network']}, " if sel.get("network") else "")
         + f"{_n(None if sel.get('sparsity') is None else 100 * sel['sparsity'])} % sparsity, float return {_n(lv.get('eval_return_mean'))}"),
        (f"{_bits(sel)}-bit golden model, without / with delta updates (T = {_threshold(sel)}, T_int = {sel.get('threshold_int')})",
         f"{_n(sel.get('eval_return_mean'))} / {_n(sel.get('eval_return_mean_delta'))}"),
        ("significant multiplications per step vs dense", f"{_n(mult.get('significant_mean'))} vs {_n(mult.get('dense'), '{:,.0f}')}: **{_n(mult.get('reduction'))}x fewer**"
         + (f" ({_n(mult.get('reduction_vs_reference'))}x vs the {_n(mult.get('reference_dense'), '{:,.0f}')} of the dense agent it replaces)"
            if mult.get("reference_dense") and mult.get("reference_dense") != mult.get("dense") else "")),
        (("size vs the dense agent's fp32 bits (every bit of the engine's memory images: values, indices, pointers, biases"
          + ("; formats " + ", ".join(f"{k} {v}" for k, v in comp["format"].items()) if comp.get("format") else "") + ")")
         if comp.get("format") else "size vs fp32 dense (values + CSC pointers + row indices + biases)",
         f"**{_n(comp.get('ratio'))}x** smaller ({_n(comp.get('ratio_values_only'))}x counting values only)"),
        ("QKeras == golden (integers)", f"{_n(qk.get('count'))} states, {_n(qk.get('mismatches'))} mismatches"),
        ("hls4ml C simulation vs golden", f"{_n(hls.get('csim_frames'))} frames, {_n(hls.get('csim_mismatches'))} mismatches"),
        (f"RTL co-simulation vs golden ({_n(rtl.get('lanes'))} lanes)",
         f"{_n(rtl.get('cosim_frames'))} frames, {_n(rtl.get('cosim_mismatches'))} mismatches, {_n(rtl.get('mac_mismatches'))} MAC-counter mismatches; "
         f"median {_n(rtl.get('cycles_median'), '{:,.0f}')} cycles ({_n(None if rtl.get('cycles_median') is None else rtl['cycles_median'] / clock, '{:.2f}')} us at an assumed {clock:.0f} MHz), "
         f"p99 {_n(rtl.get('cycles_p99'), '{:,.0f}')}; dense-equivalent {_n(rtl.get('cycles_dense'), '{:,.0f}')}; lower bound {_n(rtl.get('cycles_bound_median'), '{:,.0f}')}"
         + (f"; roofline (with the input transfer) {_n(rtl['cycles_roofline_median'], '{:,.0f}')}, median {_n(rtl.get('median_over_roofline'), '{:.2f}')}x it"
            if rtl.get("cycles_roofline_median") else "")),
        (f"yosys `synth_xilinx` estimate vs {cap.get('part') or 'the part'}",
         f"{_n(rtl.get('lut'))} LUT, {_n(rtl.get('ff'))} FF, {_n(rtl.get('dsp'))} DSP, {_n(rtl.get('bram36'), '{:g}')} BRAM36"),
        (f"closed loop, {brd.get('target') or 'board'} ({brd.get('engine') or '-'})",
         f"{_n(brd.get('episodes'))} episodes, {_n(brd.get('steps'))} steps, {_n(brd.get('action_mismatches'))} action mismatches, "
         f"return {_n(brd.get('return_mean'))} (golden {_n(brd.get('golden_return_mean'))})"),
        *_da4ml_rows(e),
        ("host latency per step through the driver (p50 / p99)", f"{_n(host.get('p50'), '{:,.0f}')} / {_n(host.get('p99'), '{:,.0f}')} us ({lat.get('host_target') or '-'}: the simulator's speed, not a board's)"),
    ]
    # a run that stopped early (`--to analyze`): the later steps' rows are left out and named once
    figures = {"hls": hls.get("csim_frames"), "rtl": rtl.get("lut"), "cosim": rtl.get("cosim_frames"),
               "board": brd.get("steps"), "da4ml": (e.get("backends") or {}).get("da4ml")}
    not_run = [step for step in _LATE_STEPS if step not in t and not figures[step]]
    rows = [r for r in rows if not any(step in not_run for step in _row_steps(r[0]))]
    load = f"; load average {m['load_average']:.1f} when it started" if m.get("load_average") else ""
    lines = [
        f"Measured by `{m.get('command') or 'make demo'}` on {m.get('date') or '?'}: {mach.get('cpu') or 'unknown CPU'}, {mach.get('cores')} cores "
        f"(shared with other jobs{load}), {mach.get('memory_gb')} GB, Python {mach.get('python')}; commit `{(m.get('commit') or '?')[:10]}`"
        f"{' with local changes' if m.get('dirty') else ''}. Regenerated by `python scripts/readme_tables.py` from "
        f"[`docs/summaries/{name}.json`](docs/summaries/{name}.json).",
        "",
        "| figure | value |",
        "| --- | --- |",
        *[f"| {a} | {b} |" for a, b in rows],
        "",
        *render_threshold_study(e.get("threshold_study")),
        *([f"Not run (the command stops before them): {', '.join(not_run)}.", ""] if not_run else []),
        "Step times: " + ", ".join(f"{k} {v:.0f} s" for k, v in t.items())
        + (f" ({sum(t.values()) / 60:.1f} min in all)" if m.get("command") else "") + "."
        + (f" `make demo` took {m['make_demo_seconds'] / 60:.1f} min in all (set-up included)" if m.get("make_demo_seconds") else "")
        + (f"; `make demo > log 2>&1` wrote {m['make_demo_log_bytes'] / 1024:.0f} KB" if m.get("make_demo_log_bytes") else "")
        + ((f", `run.log` {m['run_log_bytes'] / 1024:.0f} KB." if m.get("make_demo_seconds") else f" `run.log` {m['run_log_bytes'] / 1024:.0f} KB.")
           if m.get("run_log_bytes") else ""),
    ]
    return "\n".join(lines)


_LATE_STEPS = ("hls", "rtl", "cosim", "board", "da4ml")


def _row_steps(figure: str) -> tuple[str, ...]:
    """The pipeline steps a row of ``render`` reports (its figure is ``not run`` without them)."""
    for prefix, steps in (("hls4ml C simulation", ("hls",)), ("RTL co-simulation", ("cosim",)),
                          ("yosys", ("rtl",)), ("closed loop", ("board",)), ("host latency", ("board",)),
                          ("da4ml", ("da4ml",))):
        if figure.startswith(prefix):
            return steps
    return ()


def _da4ml_rows(e: dict[str, Any]) -> list[tuple[str, str]]:
    """The da4ml back end's row, when the run has one (``backends.da4ml``)."""
    d = (e.get("backends") or {}).get("da4ml") or {}
    if not d:
        return []
    return [("da4ml, fully parallel (delta off): co-simulation, yosys, latency",
             f"{_n(d.get('verified_frames'))} real states, {_n(d.get('mismatches'))} mismatches; AXI top {_n(d.get('lut'))} LUT, "
             f"{_n(d.get('ff'))} FF, {_n(d.get('dsp'))} DSP, {_n(d.get('latency_cycles'), '{:,.0f}')} cycles first beat -> action, "
             f"II {_n(d.get('ii_cycles'))}; fits the part: {_n(d.get('fits_part'))}")]


def render_frontier(name: str, e: dict[str, Any]) -> str:
    """The markdown block of an excerpt's compression frontier (``compression.frontier*``)."""
    comp = e.get("compression") or {}
    setup, front = comp.get("frontier_setup"), comp.get("frontier") or []
    if not setup:
        return "No compression frontier in this run (analyze.frontier=false or an older run)."
    d, n = setup["dense"], len(comp.get("frontier_candidates") or [])
    keeping = [p for p in front if p.get("keeps")]
    best = min(keeping, key=lambda p: p["stored_bits"], default=None)
    lines = [
        f"![return vs stored bytes, {name}](docs/summaries/{name}_frontier.png)",
        "",
        f"{n} points (prune levels x weight widths x storage formats), each played as the golden agent with delta "
        f"updates (T = {setup['threshold']:g}, {setup['episodes']} episodes from seed {setup['seed']}); the dense fp32 agent "
        f"stores {d['stored_bytes']:,.0f} bytes, so the 2025 paper's 400x would be {d['stored_bytes'] / setup['paper_ratio']:,.1f} bytes. "
        "The Pareto front of return (max), stored bytes and significant multiplications per step (min):",
        "",
        "| point | method | network | weight bits | formats | stored bytes | vs fp32, every bit (values only) | significant mults / step | return +- s.e. |",
        "| --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for p in front:
        fmts = ", ".join(f"{k} {v}" for k, v in p["formats"].items())
        lines.append(f"| {p['id']}{' (deployed)' if p.get('selected') else ''} | {p['method']} | {p['network']} | {p['weight_bits']} | "
                     f"{fmts} | {p['stored_bytes']:,.1f} | {p['ratio']:,.1f}x ({p['ratio_values_only']:,.1f}x) | "
                     f"{p['significant_mean']:,.1f} | {p['return_mean']:,.1f} +- {p['return_se']:,.1f} |")
    if best:
        lines += ["", f"Smallest point keeping {setup['keep_return_fraction']:g} of the dense return: {best['id']}, "
                  f"{best['stored_bytes']:,.1f} bytes, **{best['ratio']:,.1f}x** counting every bit."]
    return "\n".join(lines)


def _se(std: float | None, n: int | None) -> float | None:
    return None if std is None or not n else std / n ** 0.5


def render_mujoco(excerpts: dict[str, dict[str, Any]]) -> str:
    """One row per SAC run (the MuJoCo environments side by side, issue 19)."""
    rows = []
    for name, e in sorted(excerpts.items(), key=lambda kv: str(kv[1].get("env"))):
        if e.get("algo") != "sac":
            continue
        tr, sel, comp, mult, hls, rtl, brd = (e.get(k) or {} for k in ("train", "selected", "compression", "multiplications", "hls", "rtl", "board"))
        dense = tr.get("eval_return_mean")
        n = tr.get("eval_episodes") or (comp.get("frontier_setup") or {}).get("episodes")
        delta = sel.get("eval_return_mean_delta")
        keep = f" ({100 * delta / dense:.1f} %)" if dense and delta is not None and dense > 0 else ""
        front = [p for p in (comp.get("frontier") or []) if p.get("keeps")]
        small = min(front, key=lambda p: p["stored_bits"], default=None)
        rnd = tr.get("random_return_mean")
        rows.append(
            f"| [{e.get('env')}](configs/{name}.yaml) | {_n(dense)} +- {_n(_se(tr.get('eval_return_std'), n))} | "
            f"{_n(rnd) if rnd is not None else 'not run'} | {sel.get('network') or '-'}, {_bits(sel)}-bit | {_n(delta)}{keep} | "
            f"**{_n(comp.get('ratio'))}x** ({_n(comp.get('ratio_values_only'))}x) | "
            + (f"{small['id']}: {_n(small['ratio'])}x, {_n(small['return_mean'])} | " if small else "none | ")
            + f"{_n(mult.get('significant_mean'))} of {_n(mult.get('reference_dense'), '{:,.0f}')} | "
            f"{_n(rtl.get('cycles_median'), '{:,.0f}')} ({_n(rtl.get('lanes'))} lanes) | "
            f"{_n(hls.get('csim_mismatches'))} / {_n(rtl.get('cosim_mismatches'))} / {_n(brd.get('action_mismatches'))} |")
    if not rows:
        return "No SAC run excerpts in docs/summaries yet."
    return "\n".join([
        "Each row is one `rl2fpga run configs/ENV.yaml` (SAC, 150k steps, 2 shared CPU cores), regenerated by "
        "`python scripts/readme_tables.py` from `docs/summaries/*.json`. Returns are over the same 30 seeded episodes "
        "(seeds 10000..10029) for the dense agent, the random policy and the deployed model (its golden integer model with "
        "delta updates at T = 0.01); size is against the dense actor's fp32 weights and biases, counting every bit the "
        "engine stores (values only in brackets); significant multiplications per step are the deployed model's with delta "
        "updates, of the dense fp32 actor's. The 2025 paper reports up to 400x across these environments; it gives no "
        "per-environment figure we could set beside these.",
        "",
        "| environment | dense return +- s.e. | random policy | deployed model | its return with delta (of dense) | "
        "size vs fp32, every bit (values only) | frontier: smallest keeping 95 % | significant mults / step | engine cycles, median | "
        "mismatches C-sim / co-sim / board |",
        "| --- | ---: | ---: | --- | ---: | ---: | --- | ---: | ---: | ---: |",
        *rows,
    ])


# the 2023 paper's games in its order, and its figure for each (fraction of significant multiplications of
# dense, pruning + delta updates; delta alone), from DESIGN.md
ATARI_GAMES = ("Breakout", "SpaceInvaders", "Robotank", "Enduro", "Krull", "Freeway")
PAPER_ATARI = {
    "Breakout": "fraction 0.018 -> 0.009 as sparsity grows (56-111x); delta alone 55x",
    "SpaceInvaders": "fraction 0.065 -> 0.022 as sparsity grows (15-45x)",
    "Robotank": "delta alone 5.5x; combined 20-100x (all games)",
}
KEEP_FRACTION = 0.95  # "within 5 % of dense" (or one standard deviation of the dense return, whichever is wider)


def _atari_game(env: Any) -> str | None:
    """``ALE/Breakout-v5`` -> ``Breakout`` (None: not an ALE id)."""
    m = re.fullmatch(r"ALE/(\w+)-v\d+", str(env))
    return m.group(1) if m else None


def sparsest_keeping(levels: list[dict[str, Any]], dense: float, dense_std: float | None) -> dict[str, Any] | None:
    """The sparsest prune level whose return with delta updates (the analyze per-level float
    DeltaNetwork) stays within max(5 % of |dense|, one std of dense) below the dense return."""
    margin = max((1 - KEEP_FRACTION) * abs(dense), dense_std or 0.0)
    ok = [lv for lv in levels if lv.get("eval_return_mean_delta") is not None and lv.get("sparsity") is not None
          and lv["eval_return_mean_delta"] >= dense - margin - 1e-9]
    return max(ok, key=lambda lv: (lv["sparsity"], lv["eval_return_mean_delta"]), default=None)


def _reduction(fraction: float | None) -> str:
    return "not run" if not fraction else f"{1 / fraction:,.1f}x"


def _engine_cell(rtl: dict[str, Any]) -> str:
    """The deployed model's co-simulation: median cycles per frame against the dense-equivalent
    cycles, the significant-MAC lower bound and the roofline (input transfer), with its check."""
    cyc = rtl.get("cycles_median")
    if not cyc:
        return "not run"
    parts = [f"{cyc:,.0f}"]
    if rtl.get("cycles_dense"):
        parts.append(f"1/{rtl['cycles_dense'] / cyc:,.0f} of dense")
    if rtl.get("cycles_bound_median"):
        parts.append(f"{cyc / rtl['cycles_bound_median']:.2f}x the MAC bound")
    if rtl.get("cycles_roofline_median"):
        parts.append(f"{cyc / rtl['cycles_roofline_median']:.2f}x the roofline")
    mm = (rtl.get("cosim_mismatches"), rtl.get("mac_mismatches"))
    check = (f"{_n(rtl.get('cosim_frames'))} frames, {_n(mm[0])} mismatches, MAC counters "
             + ("== golden" if mm[1] == 0 else f"{_n(mm[1])} off"))
    return ", ".join(parts) + f" ({check})"


def render_atari(excerpts: dict[str, dict[str, Any]]) -> str:
    """One row per DQN Atari run (the 2023 paper's six games, issue 16)."""
    runs = [(name, e, _atari_game(e.get("env"))) for name, e in excerpts.items()]
    runs = [(n, e, g) for n, e, g in runs if g and e.get("algo") == "dqn"]
    order = {g: i for i, g in enumerate(ATARI_GAMES)}
    rows = []
    for name, e, game in sorted(runs, key=lambda r: (order.get(r[2], len(order)), r[2], r[0])):
        tr, sel, mult, comp = (e.get(k) or {} for k in ("train", "selected", "multiplications", "compression"))
        dense, std, n = tr.get("eval_return_mean"), tr.get("eval_return_std"), tr.get("eval_episodes")
        best = sparsest_keeping(e.get("levels") or [], dense, std) if dense is not None else None
        level = (f"{100 * best['sparsity']:.1f} %: {_n(best['eval_return_mean_delta'])} | "
                 f"{_reduction(best.get('significant_fraction'))}") if best else "none | -"
        red = mult.get("reduction_vs_reference") or mult.get("reduction")
        rows.append(
            f"| [{game}](configs/{name}.yaml) | {_n(tr.get('random_return_mean'))} | "
            f"{_n(dense)} +- {_n(_se(std, n))} ({_n(n)}) | {level} | "
            + (f"{100 * sel['sparsity']:.1f} %" if sel.get("sparsity") is not None else "")
            + (f" ({100 * comp['zero_fraction']:.1f} % zero at {_bits(sel)} bits)" if comp.get("zero_fraction") is not None else "")
            + (": " if sel.get("sparsity") is not None else "")
            + f"{_n(sel.get('eval_return_mean_delta'))} | {_n(red) + 'x' if red else 'not run'} | "
            + (f"{_n(comp['ratio'])}x | " if comp.get("ratio") else "not run | ")
            + f"{_engine_cell(e.get('rtl') or {})} | {PAPER_ATARI.get(game, '20-100x (all games)')} |")
    if not rows:
        return "No DQN Atari run excerpts in docs/summaries yet: rows appear as the runs land."
    return "\n".join([
        "Each row is one `rl2fpga run configs/GAME.yaml` (DQN, the papers' CNN, 2 shared CPU cores), regenerated by "
        "`python scripts/readme_tables.py` from `docs/summaries/*.json`. Returns are over the same seeded evaluation "
        "episodes (seeds 10000..; the episode count in brackets) for the random policy, the dense agent (+- s.e.), "
        "every prune level with delta updates (the float DeltaNetwork at the run's T, analyze.level_episodes) and the "
        "deployed model (its golden integer model with delta updates; its sparsity is the prune level's, then the share "
        "of weights that are zero once quantized). Its size is the dense fp32 agent's bits over every bit of the engine's "
        "memory images (values, indices, pointers, biases). A level keeps the return when its return with "
        "delta updates is at most 5 % of the dense return (or one standard deviation of it, whichever is wider) below "
        "it; its reduction is 1 / its fraction of the dense agent's multiplications that are significant. The engine "
        "column is the deployed model's co-simulation (Verilator, real frames): median cycles per frame with the input "
        "transfer, against the dense-equivalent cycles, the significant-MAC lower bound and the roofline (max of the "
        "input transfer and the MAC bound). The paper's figures are the 2023 paper's (fraction of significant "
        "multiplications vs dense).",
        "",
        "| game | random policy | dense return +- s.e. (episodes) | sparsest level keeping the return: its return with delta | "
        "its significant-multiplication reduction | deployed model: sparsity, golden return with delta | "
        "its reduction (golden) | its size vs fp32, every bit | engine: median cycles per frame | paper |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
        *rows,
    ])


def write_plots(summaries: Path = SUMMARIES) -> list[Path]:
    """``NAME_frontier.png`` beside every excerpt that has a compression frontier."""
    from rl2fpga.plots import frontier_figure, png_bytes

    out = []
    for f in sorted(summaries.glob("*.json")):
        e = json.loads(f.read_text())
        comp = e.get("compression") or {}
        if comp.get("frontier_setup") and comp.get("frontier_candidates"):
            fig = frontier_figure({**comp["frontier_setup"], "points": comp["frontier_candidates"]},
                                  f"{e.get('env')}: compression frontier ({f.stem})")
            png = summaries / f"{f.stem}_frontier.png"
            png.write_bytes(png_bytes(fig))
            out.append(png)
    return out


def _block_re(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- readme_tables:{re.escape(name)} begin -->\n)(.*?)(<!-- readme_tables:{re.escape(name)} end -->)", re.S)


def regenerate(readme: str, summaries: Path = SUMMARIES) -> str:
    for f in sorted(summaries.glob("*.json")):
        e = json.loads(f.read_text())
        for block, fn in ((f.stem, render), (f"{f.stem}-frontier", render_frontier)):
            rx = _block_re(block)
            if not rx.search(readme):
                continue
            body = fn(f.stem, e) + "\n"
            readme = rx.sub(lambda m, body=body: m.group(1) + body + m.group(3), readme)
    excerpts = {f.stem: json.loads(f.read_text()) for f in sorted(summaries.glob("*.json"))}
    for block, fn in (("mujoco", render_mujoco), ("atari", render_atari)):
        rx = _block_re(block)
        if rx.search(readme):
            body = fn(excerpts) + "\n"
            readme = rx.sub(lambda m, body=body: m.group(1) + body + m.group(3), readme)
    return readme


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--excerpt", metavar="RUN_DIR", help="write docs/summaries/<name>.json from a finished run")
    ap.add_argument("--name", help="excerpt name (default: the run's name)")
    ap.add_argument("--check", action="store_true", help="exit 1 when README.md is not what the excerpts render")
    ap.add_argument("--wall-seconds", type=float, help="with --excerpt: the wall time of make demo")
    ap.add_argument("--console-log", type=Path, help="with --excerpt: the file `make demo > log 2>&1` wrote")
    ap.add_argument("--load-average", type=float, help="with --excerpt: the 1-minute load average when make demo started")
    ap.add_argument("--command", help="with --excerpt: the command that made the run (default: make demo)")
    a = ap.parse_args(argv)
    if a.excerpt:
        e = excerpt(Path(a.excerpt), a.wall_seconds, a.console_log, a.load_average, a.command)
        name = a.name or e.get("name") or Path(a.excerpt).name
        SUMMARIES.mkdir(parents=True, exist_ok=True)
        (SUMMARIES / f"{name}.json").write_text(json.dumps(e, indent=1, sort_keys=False) + "\n")
        print(f"wrote {SUMMARIES / f'{name}.json'}")
    text = README.read_text()
    new = regenerate(text)
    if not a.check:
        for png in write_plots():
            print(f"wrote {png}")
    if a.check:
        if new != text:
            print("error: README.md's measured tables differ from docs/summaries/*.json; run python scripts/readme_tables.py", file=sys.stderr)
            return 1
        return 0
    if new != text:
        README.write_text(new)
        print("README.md updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
