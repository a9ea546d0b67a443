"""The last pipeline step: ``summary.json`` (every headline figure) and ``report.html`` (the
same for people, one self-contained file with embedded plots).

It only reads what the earlier steps wrote (each step's ``summary.json`` and a few data files);
a step that did not run shows as "not run", never as a made-up number.
"""

from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from rl2fpga import GENERATED_HEADER, __version__
from rl2fpga.config import RunConfig
from rl2fpga.run import Run

PYNQ_Z2 = {"lut": 53_200, "ff": 106_400, "dsp": 220, "bram36": 140}


# ---------------------------------------------------------------------------- reading


def _load(path: Path) -> Any:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def pick(d: Any, *paths: str, default: Any = None) -> Any:
    """The first dotted path present in ``d`` (e.g. ``pick(s, "rtl.lut", "resources.lut")``)."""
    for p in paths:
        node = d
        ok = True
        for part in p.split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            else:
                ok = False
                break
        if ok and node is not None:
            return node
    return default


def _threshold_key(ana: dict[str, Any], T: float) -> str | None:
    """The key of ``T`` in analyze's per-threshold tables (keys are the T values as text)."""
    for k in (pick(ana, "per_threshold", default={}) or {}):
        try:
            if abs(float(k) - T) < 1e-12:
                return k
        except ValueError:
            continue
    return None


def _ordered_timings(run: Run) -> dict[str, float]:
    from rl2fpga.pipeline import STEP_ORDER

    t = run.timings()
    return {k: t[k] for k in STEP_ORDER if k in t and k != "report"}


def _current_loader(run: Run) -> Any:
    """``_load`` without the results of finished steps computed from artifacts that changed
    since (rl2fpga.manifest.stale_steps); rerunning a step also removes every later summary."""
    from rl2fpga.manifest import stale_steps

    stale = stale_steps(run.path)

    def load(path: Path) -> Any:
        step = path.relative_to(run.path).parts[0]
        return None if step in stale else _load(path)

    return load


def build_summary(run: Run, cfg: RunConfig) -> dict[str, Any]:
    p = run.path
    _load = _current_loader(run)  # only results of current steps
    train = _load(p / "train" / "summary.json") or {}
    levels_raw = (_load(p / "prune" / "levels.json") or {}).get("levels", [])
    quant = _load(p / "quantize" / "summary.json") or {}
    ana = _load(p / "analyze" / "summary.json") or {}
    hls = _load(p / "hls" / "summary.json") or {}
    rtl = _load(p / "rtl" / "summary.json") or {}
    cos = _load(p / "cosim" / "summary.json") or {}
    lat = _load(p / "cosim" / "latency.json") or {}
    frames = _load(p / "cosim" / "frames.json") or []
    brd = _load(p / "board" / "summary.json") or {}

    tkey = _threshold_key(ana, cfg.quantize.threshold)
    per_level = {lv.get("level"): lv for lv in pick(ana, "per_level", default=[]) or []}
    levels = []
    for lv in levels_raw or []:
        a = per_level.get(lv.get("level"), {})
        levels.append(
            {
                "level": lv.get("level"),
                "sparsity": pick(lv, "sparsity"),
                "eval_return_mean": pick(lv, "eval_return_mean"),
                "eval_return_mean_delta": pick(a, "delta_return_mean"),
                "significant_fraction": (a.get("fraction") or {}).get(tkey) if tkey is not None else None,
            }
        )
    sel = quant  # quantize/summary.json describes the selected level
    comp = pick(quant, "compression", default={}) or {}
    mult = pick(ana, "multiplications", default=None) or pick(quant, "multiplications", default={})
    mac_mism = None
    if frames:
        mac_mism = sum(1 for f in frames if f.get("macs") != f.get("golden_macs"))
    summary: dict[str, Any] = {
        "name": cfg.name,
        "env": cfg.env.id,
        "algo": cfg.train.algo,
        "seed": cfg.seed,
        "train": {
            "eval_return_mean": pick(train, "eval_return_mean"),
            "eval_return_std": pick(train, "eval_return_std"),
            "steps": pick(train, "steps"),
        },
        "levels": levels,
        "selected": {
            "level": pick(sel, "prune_level"),
            "sparsity": pick(sel, "sparsity"),
            "weight_bits": pick(sel, "weight_bits"),
            "act_bits": pick(sel, "act_bits"),
            "threshold": pick(sel, "threshold"),
            "threshold_int": pick(sel, "threshold_int"),
            "eval_return_mean": pick(sel, "eval_return_mean"),
            "eval_return_mean_delta": pick(sel, "eval_return_mean_delta"),
        },
        "compression": {
            "dense_bits": pick(comp, "dense_fp32_bits"),
            "stored_bits": pick(comp, "stored_bits"),
            "ratio": pick(comp, "ratio"),
            "ratio_values_only": pick(comp, "ratio_values_only"),
            # analyze.sweep_bits: the largest compression over levels x bits keeping the return
            "sweep_best_ratio": pick(ana, "compression_sweep.best_ratio"),
            "sweep_best_ratio_values_only": pick(ana, "compression_sweep.best_ratio_values_only"),
            "sweep_best": pick(ana, "compression_sweep.best"),
        },
        "multiplications": {
            "dense": pick(mult, "dense"),
            "significant_mean": pick(mult, "significant_mean"),
            "reduction": pick(mult, "reduction"),
        },
        "hls": {
            "backend": pick(hls, "backend"),
            "csim_frames": pick(hls, "csim_frames"),
            "csim_mismatches": pick(hls, "csim_mismatches"),
        },
        "rtl": {
            "lanes": pick(rtl, "lanes", default=pick(lat, "lanes")),
            "cosim_frames": pick(cos, "frames"),
            "cosim_mismatches": pick(cos, "mismatches"),
            "mac_mismatches": mac_mism,
            "cycles_median": pick(lat, "cycles.median"),
            "cycles_p99": pick(lat, "cycles.p99"),
            "cycles_dense": pick(lat, "dense_equivalent_cycles"),
            "cycles_bound_median": pick(lat, "lower_bound_cycles.median"),
            "clock_mhz": pick(lat, "clock_mhz", default=cfg.rtl.clock_mhz),
            "lut": pick(rtl, "resources.lut"),
            "ff": pick(rtl, "resources.ff"),
            "dsp": pick(rtl, "resources.dsp"),
            "bram36": pick(rtl, "resources.bram36"),
        },
        "board": {
            "target": pick(brd, "target"),
            "engine": pick(brd, "engine"),
            "episodes": pick(brd, "episodes"),
            "steps": pick(brd, "steps"),
            "action_mismatches": pick(brd, "action_mismatches"),
            "return_mean": pick(brd, "return_mean"),
            "golden_return_mean": pick(brd, "golden_return_mean"),
        },
        "timings_s": _ordered_timings(run),
    }
    summary["board"]["hardware_check"] = pick(brd, "hardware_check", default=None if not brd else brd.get("engine") != "golden")
    summary["selected"]["dense_return_mean"] = pick(quant, "dense_return_mean")
    summary["selected"]["return_below_dense"] = pick(quant, "return_below_dense")
    summary["input_saturation"] = pick(brd, "input_saturation") or pick(quant, "input_saturation")
    summary["warnings"] = report_warnings(summary)
    from rl2fpga.report_extras import (
        extra_summary,  # provenance, checks, latency, capacity, precisions
    )

    summary.update(extra_summary(run, cfg, summary))
    # the back ends side by side and the pick for the user's goal (rl2fpga.hls.da4ml.compare)
    from rl2fpga.hls.da4ml.compare import backends, recommend

    summary["backends"] = backends(run.path, cfg.rtl.clock_mhz)
    summary["recommendation"] = recommend(summary["backends"], cfg.da4ml.goal) if summary["backends"] else None
    d4 = _load(p / "da4ml" / "summary.json") or {}
    summary["da4ml"] = {k: d4.get(k) for k in ("enabled", "reason", "delta", "cosim_frames", "cosim_mismatches",
                                               "latency_cycles", "axi_latency_cycles", "board")}
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
    sel = s.get("selected") or {}
    if sel.get("return_below_dense"):
        out.append(f"the selected model's return ({_fmt(sel.get('eval_return_mean_delta'), '{:.1f}')} with delta updates) "
                   f"is far below the dense agent's ({_fmt(sel.get('dense_return_mean'), '{:.1f}')}): check the bit widths")
    if s.get("board", {}).get("hardware_check") is False:
        out.append(f"the closed loop ran on the golden engine ({s['board'].get('target')}): it compares the golden model "
                   "with itself, not hardware; use board.emulator_engine=verilator for a hardware check")
    return out


# ---------------------------------------------------------------------------- plots


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _fig(w: float = 5.6, h: float = 3.4) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(w, h))
    ax.grid(alpha=0.3)
    return fig, ax


def plot_reward_vs_sparsity(s: dict[str, Any]) -> str | None:
    lv = [x for x in s["levels"] if x.get("sparsity") is not None and x.get("eval_return_mean") is not None]
    if not lv:
        return None
    fig, ax = _fig()
    ax.plot([100 * x["sparsity"] for x in lv], [x["eval_return_mean"] for x in lv], "o-", label="pruned")
    delta = [(100 * x["sparsity"], x["eval_return_mean_delta"]) for x in lv if x.get("eval_return_mean_delta") is not None]
    if delta:
        ax.plot(*zip(*delta, strict=True), "s--", label="pruned + delta (golden, 8-bit)")
    dense = s["train"]["eval_return_mean"]
    if dense is not None:
        ax.axhline(dense, color="k", lw=1, ls=":", label="dense")
    sel = s["selected"]
    if sel.get("sparsity") is not None and sel.get("eval_return_mean_delta") is not None:
        ax.plot([100 * sel["sparsity"]], [sel["eval_return_mean_delta"]], "r*", ms=14, label="selected (quantized, delta)")
    ax.set_xlabel("weight sparsity (%)")
    ax.set_ylabel("mean return")
    ax.legend(fontsize=8)
    return _png(fig)


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


def plot_threshold_sweep(ana: dict[str, Any]) -> str | None:
    table = pick(ana, "per_threshold", default={}) or {}
    rows = sorted(table.values(), key=lambda x: x.get("T", 0))
    if not rows:
        return None
    fig, ax = _fig()
    xs = range(len(rows))
    ax.plot(xs, [x.get("golden_fraction") for x in rows], "o-", label="golden integer (T_int)")
    ax.plot(xs, [x.get("float_fraction") for x in rows], "s--", label="float DeltaNetwork (T)")
    ax.set_xticks(list(xs), [str(x.get("T")) for x in rows])
    ax.set_yscale("log")
    ax.set_xlabel("delta threshold T (input units)")
    ax.set_ylabel("significant / dense multiplications")
    ax.legend(fontsize=8, loc="lower left")
    rets = [x.get("float_delta_return_mean") for x in rows]
    if any(r is not None for r in rets):
        ax2 = ax.twinx()
        ax2.plot(list(xs), rets, "^:", color="tab:orange")
        ax2.set_ylabel("return (float, delta)", color="tab:orange")
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


def plot_resources(s: dict[str, Any]) -> str | None:
    r = s["rtl"]
    keys = [k for k in PYNQ_Z2 if r.get(k) is not None]
    if not keys:
        return None
    fig, ax = _fig(5.6, 2.6)
    used = [100.0 * r[k] / PYNQ_Z2[k] for k in keys]
    bars = ax.barh([k.upper() for k in keys], used, color=["tab:red" if u > 100 else "tab:blue" for u in used])
    for b, k in zip(bars, keys, strict=True):
        ax.text(b.get_width() + 1, b.get_y() + b.get_height() / 2, f"{r[k]:,} / {PYNQ_Z2[k]:,}", va="center", fontsize=8)
    ax.axvline(100, color="k", lw=1)
    ax.set_xlim(0, max(110, max(used) * 1.3))
    ax.set_xlabel("% of xc7z020 (PYNQ-Z2)")
    return _png(fig)


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


def render_html(s: dict[str, Any], run: Run) -> str:
    import jinja2

    p = run.path
    _load = _current_loader(run)  # only results of current steps
    ana = _load(p / "analyze" / "summary.json") or {}
    quant = _load(p / "quantize" / "compression.json") or {}
    frames = _load(p / "cosim" / "frames.json")
    r, m, c, sel = s["rtl"], s["multiplications"], s["compression"], s["selected"]
    cards = [
        {"k": "trained return", "v": _fmt(s["train"]["eval_return_mean"], "{:.1f}"), "d": f"{s['algo'].upper()} greedy eval", "cls": ""},
        {"k": "selected sparsity", "v": _fmt(None if sel["sparsity"] is None else 100 * sel["sparsity"], "{:.1f} %"), "d": f"{_fmt(sel['weight_bits'])}-bit weights, T_int {sel['threshold_int']}", "cls": ""},
        {"k": "return with delta", "v": _fmt(sel["eval_return_mean_delta"], "{:.1f}"), "d": "golden integer model, delta updates", "cls": ""},
        {"k": "fewer multiplications", "v": _fmt(m["reduction"], "{:.1f}x"), "d": "significant vs dense", "cls": ""},
        {"k": "smaller network", "v": _fmt(c["ratio"], "{:.1f}x"), "d": "fp32 dense bits / stored bits", "cls": ""},
        {"k": "median latency", "v": _fmt(r["cycles_median"], "{:,.0f}") + (" cyc" if r["cycles_median"] is not None else ""),
         "d": (f"{r['cycles_median'] / r['clock_mhz']:.1f} us at {r['clock_mhz']:.0f} MHz, {r['lanes']} lanes" if r["cycles_median"] else ""), "cls": ""},
    ]
    from rl2fpga import report_extras as X

    cfg = run.config()
    lat = s["latency"]
    if lat.get("host_us") and lat["host_us"].get("p50") is not None:
        cards.append({"k": "host latency p50 / p99", "v": f"{lat['host_us']['p50']:,.0f} us",
                      "d": f"p99 {lat['host_us']['p99']:,.0f} us per step, {lat['host_target']} ({lat['host_engine']})", "cls": ""})
    if s.get("imported"):
        cards[0].update({"k": "imported policy return", "d": f"{s['imported'].get('file') or 'in-memory model'} ({s['imported'].get('format')})"})
    if r["cycles_median"]:
        cards[5]["d"] = f"{r['cycles_median'] / r['clock_mhz']:.1f} us at an assumed {r['clock_mhz']:.0f} MHz, {r['lanes']} lanes"
    verification = []
    for c_ in s["checks"]:
        verdict, cls = _verdict(c_["count"], c_["mismatches"])
        if c_["check"].startswith("closed loop") and s["board"].get("hardware_check") is False and verdict != "not run":
            verdict, cls = "golden vs golden: no hardware check", "na"
        verification.append({"form": c_["check"], "frames": f"{_fmt(c_['count'])} {c_['unit']}" if c_["count"] is not None else "not run",
                             "mismatches": _fmt(c_["mismatches"]), "verdict": verdict, "cls": cls, "note": c_["note"]})
    d4 = s.get("da4ml") or {}
    if d4.get("enabled"):
        b4 = d4.get("board") or {}
        for form, n, mism in (("da4ml design, co-simulation (Verilator, delta off)", d4.get("cosim_frames"), d4.get("cosim_mismatches")),
                              ("da4ml design, closed loop (emulator, steps)", b4.get("steps"), b4.get("action_mismatches"))):
            verdict, cls = _verdict(n, mism)
            verification.append({"form": form, "frames": _fmt(n), "mismatches": _fmt(mism), "verdict": verdict, "cls": cls, "note": ""})
    from rl2fpga.hls.da4ml.compare import TABLE_HEADER, table_rows

    backend_rows = table_rows(s.get("backends") or {})
    plots = [
        {"title": "Reward vs sparsity, mean +- std over episodes (cf. 2023 paper, Fig. 6)", "png": X.plot_reward_vs_sparsity(run, s), "missing": "prune step not run"},
        {"title": "Training curve", "png": X.plot_training_curve(run), "missing": "no training metrics (imported policy or train not run)"},
        {"title": "Significant multiplications vs sparsity (cf. Fig. 8)", "png": plot_fraction_vs_sparsity(s, ana), "missing": "analyze step not run"},
        {"title": "Delta threshold sweep", "png": X.plot_threshold_sweep(run, cfg), "missing": "analyze step not run"},
        {"title": "Cycles per frame over real episodes", "png": plot_cycles(s, frames), "missing": "cosim step not run"},
        {"title": f"Resources vs {s['capacity']['device'] or cfg.hls.part} capacity (yosys estimate)",
         "png": X.plot_resources(s, s["capacity"]), "missing": "rtl step not run or part unknown"},
        {"title": "Size: dense fp32 vs stored", "png": plot_compression(quant), "missing": "quantize step not run"},
    ]
    sweep_png = p / "analyze" / "sweep.png"  # analyze.sweep_bits: drawn by quantize/sweep.py
    if sweep_png.exists() and ana:
        plots.append({"title": "Return vs compression over levels x weight bits (cf. 2025 paper, up to 400x)",
                      "png": base64.b64encode(sweep_png.read_bytes()).decode(), "missing": "no swept point"})
    layer_rows = []
    layer_header = ["layer", "dense mults", "nonzero weights", "significant mean", "fraction"]
    for name, row in (pick(ana, "layers", default={}) or {}).items():
        layer_rows.append([
            name,
            _fmt(row.get("dense")),
            _fmt(row.get("nnz")),
            _fmt(row.get("golden_significant_mean"), "{:,.1f}"),
            _fmt(row.get("golden_fraction"), "{:.4f}"),
        ])
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
        cards=cards,
        verification=verification,
        plots=plots,
        layer_rows=layer_rows,
        layer_header=layer_header,
        lat=s["latency"],
        cap=s["capacity"],
        prec=s["hls_precisions"],
        prov=s["provenance"],
        config_yaml=X.config_yaml(cfg),
        imported=s.get("imported"),
        backend_rows=backend_rows,
        backend_header=TABLE_HEADER,
        recommendation=(s.get("recommendation") or {}).get("line") or "",
        da4ml_note=d4.get("delta") if d4.get("enabled") else (f"da4ml back end not run ({d4.get('reason')})" if d4.get("reason") else ""),
        hardware_forms=_hardware_forms(p),
    )


def _hardware_forms(run_dir: Path) -> list[dict[str, str]]:
    """One row per hardware form (board/forms.py): cycles, clock, host latency p50 / p99."""
    from rl2fpga.board.forms import hardware_forms

    return hardware_forms(run_dir)


