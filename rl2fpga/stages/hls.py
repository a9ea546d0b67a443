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

from rl2fpga import __version__
from rl2fpga.artifacts import HlsCsim, HlsSummary
from rl2fpga.config import RunConfig
from rl2fpga.core.golden import GoldenModel
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.hls.hls4ml import flow
from rl2fpga.hls.hls4ml.build import check_quantized_model, vendor_build, write_testbench_data
from rl2fpga.hls.hls4ml.reports import check_project_files
from rl2fpga.run import Run


def hls_step(run: Run, cfg: RunConfig) -> None:
    hcfg = cfg.hls
    from rich.console import Console

    console = Console(stderr=True)
    t0 = time.perf_counter()
    quantize_dir = run.require("quantize")
    golden = GoldenModel.load(run.layout.quantize_golden)
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
    HlsCsim(csim_json).save_in(out)
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
    HlsSummary(summary).save_in(out)
    if csim_json["mismatches"]:
        first = with_delta.first_mismatch if with_delta.mismatches else without_delta.first_mismatch
        raise Rl2fpgaError(
            f"C simulation differs from the golden model on {csim_json['mismatches']} frames (first: frame {first}); "
            f"see {run.layout.hls_csim}"
        )
    console.print(
        f"C simulation == golden on {len(frames)} frames x 2 thresholds; "
        f"delta stage changes the output on {delta_changes} frames",
        soft_wrap=True,
    )
