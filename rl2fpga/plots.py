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
