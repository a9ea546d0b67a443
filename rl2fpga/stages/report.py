"""The ``report`` stage: ``summary.json`` assembled from every stage's artifacts and ``report.html``
(see :mod:`rl2fpga.report`)."""

from __future__ import annotations

from rl2fpga.artifacts import ReportRecord
from rl2fpga.config import RunConfig
from rl2fpga.fsutil import atomic_write_json, atomic_write_text
from rl2fpga.report import build_summary, render_html
from rl2fpga.run import Run


def report_step(run: Run, cfg: RunConfig) -> None:
    run.dir("report")
    lay = run.layout
    s = build_summary(run, cfg)
    html = render_html(s, run)
    atomic_write_json(lay.summary, s)
    atomic_write_text(lay.report_html, html)
    ReportRecord({"report": str(lay.report_html)}).save(lay)
