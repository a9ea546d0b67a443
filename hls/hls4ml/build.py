"""The hls4ml project around the flow: the quantized model checked against the golden model,
testbench data from real frames, the vendor build when its tool is on PATH. Used by the ``hls``
stage (:mod:`rl2fpga.stages.hls`)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from rl2fpga.config import RunConfig
from rl2fpga.core.golden import GoldenModel
from rl2fpga.errors import Rl2fpgaError, ToolMissing
from rl2fpga.fsutil import atomic_write_text
from rl2fpga.hls.hls4ml import flow
from rl2fpga.hls.hls4ml.reports import synthesis_figures

TB_MAX_VALUES = 200_000  # cap on testbench data (input values), keeps the .dat files small


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def check_quantized_model(quantize_dir: Path, golden: GoldenModel) -> str | None:
    """The QKeras model of the quantize step, when there is one: only mappable layers, and it
    re-extracts to exactly the golden integers the flow converts. Returns its file name."""
    models = [quantize_dir / "qmodel.h5"]
    if not models[0].exists():
        return None
    from rl2fpga.quantize.qkeras_model import golden_from_qkeras, load_qmodel

    qmodel = load_qmodel(models[0])
    flow.check_keras_layers(qmodel)
    again = golden_from_qkeras(qmodel, golden.in_fmt, golden.thresholds)
    for a, b in zip(again.layers, golden.layers, strict=True):
        if not (np.array_equal(a.w, b.w) and np.array_equal(a.b, b.b) and a.out_fmt == b.out_fmt):
            raise Rl2fpgaError(
                f"{models[0].name} and the golden model disagree on layer {b.name}; rerun `rl2fpga quantize`"
            )
    return models[0].name


def write_testbench_data(project: flow.HlsProject, golden: GoldenModel, frames: np.ndarray, starts: np.ndarray) -> int:
    """tb_data/*.dat: the first episode's frames (the testbench calls the top function in order
    from power-up state) and the golden outputs for them, as the floats the testbench reads."""
    ends = np.flatnonzero(starts[1:]) + 1
    n = int(ends[0]) if ends.size else len(frames)
    n = max(1, min(n, TB_MAX_VALUES // int(np.prod(golden.in_shape))))
    g = golden.copy()
    g.reset()
    in_lsb, out_lsb = golden.in_fmt.lsb, golden.layers[-1].out_fmt.lsb
    rows_in, rows_out = [], []
    for x in frames[:n]:
        y, _ = g.step(x)
        rows_in.append(" ".join(repr(float(v) * in_lsb) for v in x.reshape(-1)))
        rows_out.append(" ".join(repr(float(v) * out_lsb) for v in y.reshape(-1)))
    tb = project.out_dir / "tb_data"
    atomic_write_text(tb / "tb_input_features.dat", "\n".join(rows_in) + "\n")
    atomic_write_text(tb / "tb_output_predictions.dat", "\n".join(rows_out) + "\n")
    return n


def vendor_build(project: flow.HlsProject, cfg: RunConfig) -> dict[str, Any]:
    """Synthesis (and optional co-simulation) when the tool is on PATH, else one notice."""
    hcfg = cfg.hls
    if not hcfg.build:
        return {"status": "disabled", "reason": "hls.build=false"}
    try:
        tool = flow.require_vendor_tool(project.backend)
    except ToolMissing as e:
        _console().print(f"[yellow]notice:[/] {e}", soft_wrap=True)
        return {"status": "skipped", "reason": str(e)}
    _console().print(f"building with {tool} (this takes a while)")
    kwargs: dict[str, Any] = {"csim": False, "synth": True, "cosim": hcfg.cosim, "export": project.backend == "VivadoAccelerator"}
    if project.backend == "VivadoAccelerator":
        kwargs["bitfile"] = shutil.which("vivado") is not None
    try:
        project.hls_model.build(**kwargs)
    except Exception as e:  # the vendor flow reports through its logs
        raise Rl2fpgaError(f"{project.backend} build failed ({str(e).splitlines()[0]}); see the logs in {project.out_dir}") from None
    figures = synthesis_figures(project.out_dir)
    if figures is None:
        raise Rl2fpgaError(f"{project.backend} build wrote no synthesis report; see the logs in {project.out_dir}")
    return {"status": "built", "tool": tool, **figures}


