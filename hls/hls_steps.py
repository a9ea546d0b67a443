"""The ``hls`` pipeline step: golden model -> hls4ml project -> C simulation vs golden -> (build).

``rl2fpga hls RUN_DIR --backend Vitis|Vivado|VivadoAccelerator [--board pynq-z2]`` writes

  hls/<backend>/      the hls4ml project (build script, firmware, weights, testbench + data;
                      the PYNQ-Z2 block design and Python driver for VivadoAccelerator)
  hls/csim.json       C simulation vs golden on real frames, delta stage active and inactive
  hls/summary.json    backend, frames, mismatches, nonzero weights, precisions, build figures

The vendor build runs only when its tool is on PATH; otherwise one notice says so.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from rl2fpga import __version__
from rl2fpga.config import RunConfig
from rl2fpga.errors import Rl2fpgaError, ToolMissing
from rl2fpga.fsutil import atomic_write_json, atomic_write_text
from rl2fpga.hls import hls4ml_flow as flow
from rl2fpga.hls.reports import check_project_files, synthesis_figures
from rl2fpga.quantize.golden import GoldenModel
from rl2fpga.run import Run

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


def hls_step(run: Run, cfg: RunConfig) -> None:
    hcfg = cfg.hls
    console = _console()
    t0 = time.perf_counter()
    quantize_dir = run.require("quantize")
    golden = GoldenModel.load(quantize_dir / "golden")
    qmodel_file = check_quantized_model(quantize_dir, golden)

    out = run.dir("hls")
    project_dir = out / hcfg.backend.lower()
    if project_dir.exists():
        shutil.rmtree(project_dir)
    console.print(f"converting with hls4ml ({hcfg.backend}, {flow.io_type_for(golden)})")
    project = flow.convert(golden, hcfg, project_dir)
    t_convert = time.perf_counter() - t0

    console.print(f"collecting {hcfg.csim_frames} real frames from {cfg.env.id}")
    frames, starts = flow.collect_frames(cfg.env, golden, hcfg.csim_frames, cfg.seed)
    t1 = time.perf_counter()
    tb_frames = write_testbench_data(project, golden, frames, starts)
    csim = flow.CSim(project, golden)  # compile() writes the project, then builds the library
    t_compile = time.perf_counter() - t1

    with_delta = flow.compare_with_golden(csim, frames, starts)
    without_delta = flow.compare_with_golden(csim, frames, starts, thresholds=[0] * len(golden.layers))
    weights = flow.check_written_weights(project, golden)
    files = check_project_files(project.out_dir, project.backend, flow.PROJECT_NAME)
    if files["missing"]:
        raise Rl2fpgaError(f"hls4ml project in {project.out_dir} lacks {', '.join(files['missing'][:5])}; this is a bug in the flow")
    delta_changes = int((with_delta.golden_outputs != without_delta.golden_outputs).any(axis=1).sum())

    csim_json = {
        "frames": int(len(frames)),
        "episodes": int(starts.sum()),
        "mismatches": with_delta.mismatches + without_delta.mismatches,
        "delta_active": with_delta.to_json(),
        "delta_inactive": without_delta.to_json(),
        "frames_where_delta_changes_output": delta_changes,
    }
    atomic_write_json(out / "csim.json", csim_json)
    build = vendor_build(project, cfg)
    summary = {
        "rl2fpga_version": __version__,
        "backend": project.backend,
        "board": hcfg.board if project.backend == "VivadoAccelerator" else None,
        "part": hcfg.part,
        "io_type": project.io_type,
        "strategy": hcfg.strategy,
        "project_dir": str(project.out_dir.relative_to(run.path)),
        "quantized_model": qmodel_file,
        "csim_frames": int(len(frames)),
        "csim_mismatches": csim_json["mismatches"],
        "testbench_frames": tb_frames,
        "delta_stages": [golden.layers[k].name for k in project.stages],
        "thresholds": golden.thresholds,
        "weights": weights,
        "precisions": project.precisions,
        "convert_seconds": round(t_convert, 2),
        "compile_seconds": round(t_compile, 2),
        "build": build,
    }
    atomic_write_json(out / "summary.json", summary)
    if csim_json["mismatches"]:
        first = with_delta.first_mismatch if with_delta.mismatches else without_delta.first_mismatch
        raise Rl2fpgaError(
            f"C simulation differs from the golden model on {csim_json['mismatches']} frames (first: frame {first}); "
            f"see {out / 'csim.json'}"
        )
    console.print(
        f"C simulation == golden on {len(frames)} frames x 2 thresholds; "
        f"delta stage changes the output on {delta_changes} frames",
        soft_wrap=True,
    )
