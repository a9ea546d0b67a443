"""Matplotlib figures as base64 PNG text, for the self-contained HTML reports (run and sweep)."""

from __future__ import annotations

import base64
import io
from typing import Any


def new_figure(w: float = 5.6, h: float = 3.4) -> tuple[Any, Any]:
    """A figure and its axes with a light grid (Agg back end: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(w, h))
    ax.grid(alpha=0.3)
    return fig, ax


def png_base64(fig: Any) -> str:
    """``fig`` as base64 PNG text; the figure is closed."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def png_bytes(fig: Any) -> bytes:
    """``fig`` as PNG bytes (no timestamp in the file: the same figure gives the same bytes);
    the figure is closed."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


_BITS_COLORS = {16: "#555555", 8: "#4477aa", 6: "#228833", 4: "#cc3311", 3: "#ee7733", 2: "#aa3377"}
_FORMAT_MARKERS = {"auto": "o", "csc": "s", "rel": "^", "bitmap": "D", "dense": "v"}


def frontier_figure(result: dict[str, Any], title: str) -> Any:
    """Return vs stored bytes (log x) of a compression frontier (``quantize/frontier.py``'s
    result, or the summary's ``compression.frontier_*``): every point (colour: weight bits,
    marker: format), the Pareto front highlighted with its s.e. bars, the dense fp32 agent and
    the 2025 paper's 400x point (the dense agent's bytes / 400 at its return)."""
    from matplotlib.lines import Line2D

    fig, ax = new_figure(6.4, 4.0)
    pts = [p for p in result["points"] if "error" not in p]
    for p in pts:
        bits = p["weight_bits"] if isinstance(p["weight_bits"], int) else max(p["weight_bits"])
        ax.scatter(p["stored_bytes"], p["return_mean"], marker=_FORMAT_MARKERS.get(p["format"], "o"),
                   color=_BITS_COLORS.get(bits, "#777777"), s=22, alpha=1.0 if p["on_front"] else 0.35, zorder=2)
    front = sorted((p for p in pts if p["on_front"]), key=lambda p: p["stored_bytes"])
    if front:
        ax.errorbar([p["stored_bytes"] for p in front], [p["return_mean"] for p in front],
                    yerr=[p["return_se"] for p in front], fmt="none", ecolor="k", elinewidth=0.8, capsize=2, zorder=3)
        ax.scatter([p["stored_bytes"] for p in front], [p["return_mean"] for p in front], s=90, facecolors="none",
                   edgecolors="k", linewidths=1.2, zorder=4)
        for p in front:
            ax.annotate(f"L{p['level']} {p['weight_bits']}b {p['format']}", (p["stored_bytes"], p["return_mean"]),
                        textcoords="offset points", xytext=(5, -11), fontsize=6.5)
    d = result["dense"]
    ax.scatter([d["stored_bytes"]], [d["return_mean"]], marker="*", s=160, color="k", zorder=4)
    paper_x = d["stored_bytes"] / result["paper_ratio"]
    ax.axvline(paper_x, color="#cc3311", ls=":", lw=1)
    ax.scatter([paper_x], [d["return_mean"]], marker="P", s=90, color="#cc3311", zorder=4)
    ax.set_xscale("log")
    ax.set_xlabel("stored bytes (every bit of the engine's images + input standardisation)")
    ax.set_ylabel(f"return, golden agent with delta (T = {result['threshold']:g})")
    ax.set_title(title, fontsize=10)
    bits_seen = sorted({p["weight_bits"] if isinstance(p["weight_bits"], int) else max(p["weight_bits"]) for p in pts}, reverse=True)
    handles = [Line2D([], [], ls="", marker="o", color=_BITS_COLORS.get(b, "#777777"), label=f"{b}-bit weights") for b in bits_seen]
    handles += [Line2D([], [], ls="", marker=m, color="#777777", label=f) for f, m in _FORMAT_MARKERS.items()
                if any(p["format"] == f for p in pts)]
    handles += [Line2D([], [], ls="", marker="o", mfc="none", mec="k", ms=9, label="Pareto front (+- s.e.)"),
                Line2D([], [], ls="", marker="*", color="k", ms=10, label=f"dense fp32 ({d['stored_bytes']:,.0f} B)"),
                Line2D([], [], ls=":", marker="P", color="#cc3311", label=f"2025 paper: {result['paper_ratio']:.0f}x")]
    ax.legend(handles=handles, fontsize=6.5, loc="best", ncol=2)
    return fig
