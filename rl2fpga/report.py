"""The last pipeline step: ``summary.json`` (every headline figure) and ``report.html`` (the
same for people, one self-contained file with embedded plots).

It only reads what the earlier steps wrote, through the typed artifacts of
:mod:`rl2fpga.artifacts` (stale results left out); a step that did not run shows as "not run",
never as a made-up number. The summary is assembled section by section below; the keys and
values of ``summary.json`` are a contract (``scripts/readme_tables.py``, the report template,
``docs/summaries/``).
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import numpy as np

from rl2fpga import GENERATED_HEADER, __version__
from rl2fpga import report_extras as X
from rl2fpga.artifacts import STEP_ORDER, RunArtifacts, data, pick
from rl2fpga.config import RunConfig
from rl2fpga.manifest import stale_steps
from rl2fpga.plots import new_figure as _fig
from rl2fpga.plots import png_base64 as _png
from rl2fpga.run import Run

__all__ = ["build_summary", "current_artifacts", "pick", "render_html", "report_warnings"]


# ---------------------------------------------------------------------------- reading


def current_artifacts(run: Run) -> RunArtifacts:
    """Every step's artifacts, without the results of finished steps computed from artifacts
    that changed since (rl2fpga.manifest.stale_steps); rerunning a step also removes every
    later summary."""
    return RunArtifacts.load(run.layout, skip=stale_steps(run.path))


def _ordered_timings(run: Run) -> dict[str, float]:
    t = run.timings()
    return {k: t[k] for k in STEP_ORDER if k in t and k != "report"}


# ---------------------------------------------------------------------------- summary sections


def _train_section(a: RunArtifacts) -> dict[str, Any]:
    train = data(a.train)
    rnd = data(a.analyze).get("random_policy") or {}
    return {"eval_return_mean": pick(train, "eval_return_mean"), "eval_return_std": pick(train, "eval_return_std"),
            "eval_episodes": pick(data(a.train_eval), "episodes"), "steps": pick(train, "steps"),
            "random_return_mean": rnd.get("return_mean"), "random_return_std": rnd.get("return_std")}


def _levels_section(a: RunArtifacts, cfg: RunConfig) -> list[dict[str, Any]]:
    """One row per prune level: float return, return with delta, significant fraction at T."""
    tkey = a.analyze.threshold_key(cfg.quantize.threshold) if a.analyze else None
    per_level = {lv.get("level"): lv for lv in (a.analyze.per_level if a.analyze else [])}
    rows = []
    for lv in a.levels.levels if a.levels else []:
        an = per_level.get(lv.get("level"), {})
        rows.append({
            "level": lv.get("level"),
            "sparsity": pick(lv, "sparsity"),
            "eval_return_mean": pick(lv, "eval_return_mean"),
            "eval_return_mean_delta": pick(an, "delta_return_mean"),
            "significant_fraction": (an.get("fraction") or {}).get(tkey) if tkey is not None else None,
        })
    return rows


def _selected_section(a: RunArtifacts) -> dict[str, Any]:
    """The quantized level (quantize/summary.json describes the selected level)."""
    q = data(a.quantize)
    keys = ("weight_bits", "layer_weight_bits", "act_bits", "threshold", "layer_thresholds", "threshold_int", "eval_return_mean",
            "eval_return_mean_delta")
    return {"level": pick(q, "prune_level"), "sparsity": pick(q, "sparsity"), "network": pick(q, "network"),
            **{k: pick(q, k) for k in keys}}


def _compression_section(a: RunArtifacts) -> dict[str, Any]:
    comp = a.quantize.compression if a.quantize else {}
    ana = data(a.analyze)
    return {
        "dense_bits": pick(comp, "dense_fp32_bits"),
        "stored_bits": pick(comp, "stored_bits"),
        "ratio": pick(comp, "ratio"),
        "ratio_values_only": pick(comp, "ratio_values_only"),
        # the quantized model's zero weights (pruned, or rounded to zero by the weight format)
        "zero_fraction": pick(comp, "sparsity"),
        # storage format per layer (csc | rel | dense), the smallest by the bits of its images
        "format": pick(comp, "format"),
        # analyze.sweep_bits: the largest compression over levels x bits keeping the return
        "sweep_best_ratio": pick(ana, "compression_sweep.best_ratio"),
        "sweep_best_ratio_values_only": pick(ana, "compression_sweep.best_ratio_values_only"),
        "sweep_best": pick(ana, "compression_sweep.best"),
        # analyze.frontier: the Pareto points of return vs stored bytes vs significant
        # multiplications over levels x weight bits x formats (quantize/frontier.py), every
        # point played (frontier_candidates) and how (frontier_setup: episodes, seeds, T, dense fp32)
        "frontier": sorted(pick(ana, "frontier.frontier", default=[]), key=lambda p: p["stored_bits"]) or None,
        "frontier_candidates": pick(ana, "frontier.frontier_candidates"),
        "frontier_setup": pick(ana, "frontier.frontier_setup"),
    }


def _multiplications_section(a: RunArtifacts) -> dict[str, Any]:
    mult = pick(data(a.analyze), "multiplications", default=None) or pick(data(a.quantize), "multiplications", default={})
    # reference_dense: the dense agent a small student replaces (analyze), against which
    # reduction_vs_reference counts
    return {k: pick(mult, k) for k in ("dense", "significant_mean", "reduction", "reference_dense", "reduction_vs_reference")}


def _hls_section(a: RunArtifacts) -> dict[str, Any]:
    return {k: pick(data(a.hls), k) for k in ("backend", "csim_frames", "csim_mismatches")}


def _lanes_text(per_layer: Any, lanes: Any) -> Any:
    """The engine's lanes: the one count, or per layer as "16/16/16/32/4" when they differ."""
    if isinstance(per_layer, list) and per_layer and len(set(per_layer)) > 1:
        return "/".join(str(v) for v in per_layer)
    return lanes


def _rtl_section(a: RunArtifacts, cfg: RunConfig) -> dict[str, Any]:
    rtl, cos, lat = data(a.rtl), data(a.cosim), data(a.latency)
    return {
        "lanes": _lanes_text(pick(rtl, "layer_lanes"), pick(rtl, "lanes", default=pick(lat, "lanes"))),
        "cosim_frames": pick(cos, "frames"),
        "cosim_mismatches": pick(cos, "mismatches"),
        "mac_mismatches": a.frames.mac_mismatches() if a.frames and a.frames.frames else None,
        "cycles_median": pick(lat, "cycles.median"),
        "cycles_p99": pick(lat, "cycles.p99"),
        "cycles_dense": pick(lat, "dense_equivalent_cycles"),
        "cycles_bound_median": pick(lat, "lower_bound_cycles.median"),
        "cycles_roofline_median": pick(lat, "roofline_cycles.median"),
        "median_over_roofline": pick(lat, "median_over_roofline"),
        "clock_mhz": pick(lat, "clock_mhz", default=cfg.rtl.clock_mhz),
        **{k: pick(rtl, f"resources.{k}") for k in ("lut", "ff", "dsp", "bram36")},
    }


def _board_section(a: RunArtifacts) -> dict[str, Any]:
    brd = data(a.board)
    keys = ("target", "engine", "episodes", "steps", "action_mismatches", "return_mean", "golden_return_mean",
            "input_mismatches", "driver_input_saturation")
    out = {k: pick(brd, k) for k in keys}
    # golden actions compared with the golden policy check the driver, not any hardware
    out["hardware_check"] = pick(brd, "hardware_check", default=None if not brd else brd.get("engine") != "golden")
    return out


def _da4ml_section(a: RunArtifacts) -> dict[str, Any]:
    d4 = data(a.da4ml)
    keys = ("enabled", "reason", "delta", "cosim_frames", "cosim_mismatches", "latency_cycles", "axi_latency_cycles", "board")
    return {k: d4.get(k) for k in keys}


def build_summary(run: Run, cfg: RunConfig) -> dict[str, Any]:
    """``summary.json``: every headline figure of the run, assembled from the step artifacts."""
    from rl2fpga.hls.da4ml.compare import backends, recommend  # the back ends side by side

    a = current_artifacts(run)
    q = data(a.quantize)
    summary: dict[str, Any] = {
        "name": cfg.name, "env": cfg.env.id, "algo": cfg.train.algo, "seed": cfg.seed,
        "train": _train_section(a),
        "levels": _levels_section(a, cfg),
        "selected": {**_selected_section(a), "dense_return_mean": pick(q, "dense_return_mean"),
                     "return_below_dense": pick(q, "return_below_dense")},
        "compression": _compression_section(a),
        "multiplications": _multiplications_section(a),
        "hls": _hls_section(a),
        "rtl": _rtl_section(a, cfg),
        "board": _board_section(a),
        "timings_s": _ordered_timings(run),
        "input_saturation": pick(data(a.board), "input_saturation") or pick(q, "input_saturation"),
    }
    summary["warnings"] = report_warnings(summary)
    summary.update(X.extra_summary(a, cfg, summary))  # provenance, checks, latency, capacity, precisions
    summary["backends"] = backends(run.path, cfg.rtl.clock_mhz)
    summary["recommendation"] = recommend(summary["backends"], cfg.da4ml.goal) if summary["backends"] else None
    summary["da4ml"] = _da4ml_section(a)
    return summary


SATURATION_WARN = 0.001  # warn when more than 0.1 % of input elements saturate


def report_warnings(s: dict[str, Any]) -> list[str]:
    """What a reader must not miss: weaker checks, saturated inputs, a lost return."""
    out = []
    sat = s.get("input_saturation") or {}
    if sat.get("elements") and sat.get("fraction", 0.0) > SATURATION_WARN:
        out.append(f"{100 * sat['fraction']:.2f} % of the input elements ({sat['saturated']:,} of {sat['elements']:,}; "
                   f"{sat['frames_saturated']:,} of {sat['frames']:,} frames) fell outside the input format and were "
                   "saturated: widen it (quantize.float_input_bits) or standardise the observations")
    brd = s.get("board") or {}
    drv = brd.get("driver_input_saturation") or {}
    if brd.get("input_mismatches"):
        out.append(f"the driver put {brd['input_mismatches']:,} observations on the input grid differently from the golden "
                   "model (board/driver.py quantize_input vs GoldenModel.quantize_input): rebuild the bundle")
    if drv.get("elements") and drv.get("fraction", 0.0) > SATURATION_WARN:
        out.append(f"on the board path the driver saturated {100 * drv['fraction']:.2f} % of the input elements "
                   f"({drv['saturated']:,} of {drv['elements']:,}): the observations leave the calibrated input format")
    sel = s.get("selected") or {}
    if sel.get("return_below_dense"):
        out.append(f"the selected model's return ({_fmt(sel.get('eval_return_mean_delta'), '{:.1f}')} with delta updates) "
                   f"is far below the dense agent's ({_fmt(sel.get('dense_return_mean'), '{:.1f}')}): check the bit widths")
    if s.get("board", {}).get("hardware_check") is False:
        out.append(f"the closed loop ran on the golden engine ({s['board'].get('target')}): it compares the golden model "
                   "with itself, not hardware; use board.emulator_engine=verilator for a hardware check")
    return out


# ---------------------------------------------------------------------------- plots


def plot_fraction_vs_sparsity(s: dict[str, Any], ana: dict[str, Any]) -> str | None:
    rows = [x for x in pick(ana, "per_level", default=[]) or [] if isinstance(x.get("fraction"), dict)]
    if not rows:
        return None
    fig, ax = _fig()
    keys = sorted(rows[0]["fraction"], key=float)
    for k in keys:
        pts = [(100 * x["sparsity"], x["fraction"][k]) for x in rows if x["fraction"].get(k)]
        if pts:
            ax.plot(*zip(*pts, strict=True), "o-", ms=3, label=f"T = {k}")
    ax.plot([100 * x["sparsity"] for x in rows], [1 - x["sparsity"] for x in rows], "k:", label="pruning only")
    ax.set_yscale("log")
    ax.set_xlabel("weight sparsity (%)")
    ax.set_ylabel("significant / dense multiplications")
    ax.legend(fontsize=7, ncol=2)
    return _png(fig)


def plot_cycles(s: dict[str, Any], frames: list[dict[str, Any]] | None) -> str | None:
    cycles = [f["cycles"] for f in frames or [] if f.get("cycles") is not None]
    if not cycles:
        return None
    fig, ax = _fig()
    r = s["rtl"]
    cyc = np.asarray(cycles, dtype=float)
    lo = min([cyc.min(), *(v for v in (r.get("cycles_bound_median"),) if v)])
    hi = max([cyc.max(), *(v for v in (r.get("cycles_dense"),) if v)])
    bins = np.geomspace(max(lo, 1) * 0.9, hi * 1.1, 60) if r.get("cycles_dense") else 40
    ax.hist(cyc, bins=bins, color="tab:blue", alpha=0.8, label="engine (measured)")
    if r.get("cycles_bound_median"):
        ax.axvline(r["cycles_bound_median"], color="tab:green", ls="--", label="lower bound (sig. MACs / lanes)")
    if r.get("cycles_dense"):
        ax.axvline(r["cycles_dense"], color="tab:red", ls="--", label="dense-equivalent")
        ax.set_xscale("log")
    ax.set_xlabel("cycles per frame")
    ax.set_ylabel("frames")
    ax.legend(fontsize=8)
    return _png(fig)


def plot_stages(lat: dict[str, Any] | None) -> str | None:
    from rl2fpga.hls.cosim.latency import stages_figure

    if not lat or not lat.get("stages"):
        return None
    return _png(stages_figure(lat["stages"]))


def plot_frontier(s: dict[str, Any]) -> str | None:
    """The compression frontier of the summary (return vs stored bytes, the front highlighted)."""
    from rl2fpga.plots import frontier_figure

    c = s.get("compression") or {}
    if not c.get("frontier_candidates") or not c.get("frontier_setup"):
        return None
    return _png(frontier_figure({**c["frontier_setup"], "points": c["frontier_candidates"]}, f"{s['env']}: compression frontier"))


FRONTIER_HEADER = ["point", "method", "network", "weight bits", "formats", "stored bytes", "vs fp32 (all bits / values)",
                   "significant mults", "return +- s.e."]


def _frontier_rows(s: dict[str, Any]) -> list[list[str]]:
    """One row per Pareto point of the compression frontier."""
    return [[p["id"] + (" (deployed)" if p.get("selected") else ""), p["method"], p["network"], _fmt(p["weight_bits"]),
             ", ".join(f"{k} {v}" for k, v in p["formats"].items()), _fmt(p["stored_bytes"], "{:,.1f}"),
             f"{p['ratio']:,.1f}x / {p['ratio_values_only']:,.1f}x", _fmt(p["significant_mean"], "{:,.1f}"),
             f"{p['return_mean']:,.1f} +- {p['return_se']:,.1f}"]
            for p in (s.get("compression") or {}).get("frontier") or []]


def plot_compression(quant: dict[str, Any]) -> str | None:
    layers = pick(quant, "layers", default=None)
    if not layers:
        return None
    fig, ax = _fig()
    names = list(layers)
    layers = [layers[n] for n in names]
    dense = np.array([x.get("dense_fp32_bits", 0) for x in layers], dtype=float)
    stored = np.array([x.get("stored_bits", 0) for x in layers], dtype=float)
    xs = np.arange(len(names))
    ax.bar(xs - 0.2, dense / 8192, 0.4, label="fp32 dense")
    ax.bar(xs + 0.2, stored / 8192, 0.4, label="stored (sparse, quantized)")
    ax.set_xticks(xs, names)
    ax.set_yscale("log")
    ax.set_ylabel("KiB")
    ax.legend(fontsize=8)
    return _png(fig)


# ---------------------------------------------------------------------------- html


def _fmt(v: Any, spec: str = "{:,.4g}") -> str:
    if v is None:
        return "not run"
    if isinstance(v, float):
        return spec.format(v)
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _verdict(frames: Any, mism: Any) -> tuple[str, str]:
    if frames is None or mism is None:
        return "not run", "na"
    return ("bit-exact", "ok") if mism == 0 else (f"{mism} mismatches", "bad")


def _cards(s: dict[str, Any]) -> list[dict[str, str]]:
    """The headline figures at the top of the report."""
    r, m, c, sel = s["rtl"], s["multiplications"], s["compression"], s["selected"]
    cards = [
        {"k": "trained return", "v": _fmt(s["train"]["eval_return_mean"], "{:.1f}"), "d": f"{s['algo'].upper()} greedy eval", "cls": ""},
        {"k": "selected sparsity", "v": _fmt(None if sel["sparsity"] is None else 100 * sel["sparsity"], "{:.1f} %"),
         "d": (f"network {sel['network']}, " if sel.get("network") else "") + f"{_fmt(sel['weight_bits'])}-bit weights, T_int {sel['threshold_int']}", "cls": ""},
        {"k": "return with delta", "v": _fmt(sel["eval_return_mean_delta"], "{:.1f}"), "d": "golden integer model, delta updates", "cls": ""},
        {"k": "fewer multiplications", "v": _fmt(m["reduction"], "{:.1f}x"), "d": "significant vs dense"
         + (f" ({_fmt(m['reduction_vs_reference'], '{:.1f}x')} vs the dense agent it replaces)"
            if m.get("reduction_vs_reference") and m.get("reference_dense") != m.get("dense") else ""), "cls": ""},
        {"k": "smaller network", "v": _fmt(c["ratio"], "{:.1f}x"), "d": "fp32 dense bits / bits of the engine's memory images"
         + (f" ({', '.join(f'{k}: {v}' for k, v in c['format'].items())})" if c.get("format") else ""), "cls": ""},
        {"k": "median latency", "v": _fmt(r["cycles_median"], "{:,.0f}") + (" cyc" if r["cycles_median"] is not None else ""),
         "d": (f"{r['cycles_median'] / r['clock_mhz']:.1f} us at an assumed {r['clock_mhz']:.0f} MHz, {r['lanes']} lanes"
               if r["cycles_median"] else ""), "cls": ""},
    ]
    lat = s["latency"]
    if lat.get("host_us") and lat["host_us"].get("p50") is not None:
        cards.append({"k": "host latency p50 / p99", "v": f"{lat['host_us']['p50']:,.0f} us",
                      "d": f"p99 {lat['host_us']['p99']:,.0f} us per step, {lat['host_target']} ({lat['host_engine']})", "cls": ""})
    if s.get("imported"):
        cards[0].update({"k": "imported policy return", "d": f"{s['imported'].get('file') or 'in-memory model'} ({s['imported'].get('format')})"})
    return cards


def _verification(s: dict[str, Any]) -> list[dict[str, str]]:
    """One row per form checked against the golden model, da4ml's included."""
    rows = []
    for c_ in s["checks"]:
        verdict, cls = _verdict(c_["count"], c_["mismatches"])
        if c_["check"].startswith("closed loop") and s["board"].get("hardware_check") is False and verdict != "not run":
            verdict, cls = "golden vs golden: no hardware check", "na"
        rows.append({"form": c_["check"], "frames": f"{_fmt(c_['count'])} {c_['unit']}" if c_["count"] is not None else "not run",
                     "mismatches": _fmt(c_["mismatches"]), "verdict": verdict, "cls": cls, "note": c_["note"]})
    d4 = s.get("da4ml") or {}
    if d4.get("enabled"):
        b4 = d4.get("board") or {}
        for form, n, mism in (("da4ml design, co-simulation (Verilator, delta off)", d4.get("cosim_frames"), d4.get("cosim_mismatches")),
                              ("da4ml design, closed loop (emulator, steps)", b4.get("steps"), b4.get("action_mismatches"))):
            verdict, cls = _verdict(n, mism)
            rows.append({"form": form, "frames": _fmt(n), "mismatches": _fmt(mism), "verdict": verdict, "cls": cls, "note": ""})
    return rows


def _plots(s: dict[str, Any], run: Run, a: RunArtifacts, cfg: RunConfig) -> list[dict[str, Any]]:
    ana = data(a.analyze)
    plots = [
        {"title": "Reward vs sparsity, mean +- std over episodes (cf. 2023 paper, Fig. 6)", "png": X.plot_reward_vs_sparsity(a, s), "missing": "prune step not run"},
        {"title": "Training curve", "png": X.plot_training_curve(a), "missing": "no training metrics (imported policy or train not run)"},
        {"title": "Significant multiplications vs sparsity (cf. Fig. 8)", "png": plot_fraction_vs_sparsity(s, ana), "missing": "analyze step not run"},
        {"title": "Delta threshold sweep", "png": X.plot_threshold_sweep(a, cfg), "missing": "analyze step not run"},
        {"title": "Cycles per frame over real episodes", "png": plot_cycles(s, a.frames.frames if a.frames else None), "missing": "cosim step not run"},
        {"title": "Where a frame's cycles go: input transfer, then what each layer still does after its input ended",
         "png": plot_stages(data(a.latency)), "missing": "no stage marks: no co-simulation yet, or one older than the stage probes"},
        {"title": f"Resources vs {s['capacity']['device'] or cfg.hls.part} capacity (yosys estimate)",
         "png": X.plot_resources(s, s["capacity"]), "missing": "rtl step not run or part unknown"},
        {"title": "Size: dense fp32 vs stored", "png": plot_compression(data(a.compression)), "missing": "quantize step not run"},
        {"title": "Compression frontier: return with delta updates vs stored bytes (every bit counted; cf. 2025 paper, 400x)",
         "png": plot_frontier(s), "missing": "no compression frontier in this run (the analyze step has not finished, or analyze.frontier=false)"},
    ]
    sweep_png = run.layout.analyze_sweep_png  # analyze.sweep_bits: drawn by quantize/sweep.py
    if sweep_png.exists() and ana:
        plots.append({"title": "Return vs compression over levels x weight bits (cf. 2025 paper, up to 400x)",
                      "png": base64.b64encode(sweep_png.read_bytes()).decode(), "missing": "no swept point"})
    return plots


LAYER_HEADER = ["layer", "dense mults", "nonzero weights", "significant mean", "fraction"]


def _layer_rows(ana: dict[str, Any]) -> list[list[str]]:
    return [[name, _fmt(row.get("dense")), _fmt(row.get("nnz")), _fmt(row.get("golden_significant_mean"), "{:,.1f}"),
             _fmt(row.get("golden_fraction"), "{:.4f}")]
            for name, row in (pick(ana, "layers", default={}) or {}).items()]


def render_html(s: dict[str, Any], run: Run) -> str:
    """``report.html`` from the summary ``s`` and the plots drawn from the run's artifacts."""
    import jinja2

    from rl2fpga.hls.da4ml.compare import TABLE_HEADER, table_rows

    a = current_artifacts(run)  # only results of current steps
    cfg = run.config()
    d4 = s.get("da4ml") or {}
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
    )
    return env.get_template("report.html.j2").render(
        s=s,
        header=GENERATED_HEADER,
        version=__version__,
        generated=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        cards=_cards(s),
        verification=_verification(s),
        plots=_plots(s, run, a, cfg),
        layer_rows=_layer_rows(data(a.analyze)),
        layer_header=LAYER_HEADER,
        frontier_rows=_frontier_rows(s),
        frontier_header=FRONTIER_HEADER,
        frontier_setup=(s.get("compression") or {}).get("frontier_setup") or {},
        lat=s["latency"],
        cap=s["capacity"],
        prec=s["hls_precisions"],
        prov=s["provenance"],
        config_yaml=X.config_yaml(cfg),
        imported=s.get("imported"),
        backend_rows=table_rows(s.get("backends") or {}),
        backend_header=TABLE_HEADER,
        recommendation=(s.get("recommendation") or {}).get("line") or "",
        da4ml_note=d4.get("delta") if d4.get("enabled") else (f"da4ml back end not run ({d4.get('reason')})" if d4.get("reason") else ""),
        hardware_forms=_hardware_forms(run.path),
    )


def _hardware_forms(run_dir: Path) -> list[dict[str, str]]:
    """One row per hardware form (board/forms.py): cycles, clock, host latency p50 / p99."""
    from rl2fpga.board.forms import hardware_forms

    return hardware_forms(run_dir)


