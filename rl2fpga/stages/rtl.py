"""The ``rtl`` pipeline step: golden model -> sparse delta engine (SystemVerilog).

``rl2fpga rtl RUN_DIR --lanes N`` reads ``quantize/golden/`` and writes ``rtl/``:

  *.sv, *.mem        the engine (hand-written modules, generated top, $readmemh images)
  design.json        the generator's parameters per layer
  lint.log           ``verilator --lint-only -Wall`` (must be clean)
  resources.json     yosys ``synth_xilinx -family xc7`` estimate vs the xc7z020 (rtl.synth)
  summary.json       the headline figures

The folder is replaced as a whole only when everything succeeded.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from rl2fpga import __version__
from rl2fpga.artifacts import QuantizeCompression, RtlResources, RtlSummary
from rl2fpga.config import RunConfig
from rl2fpga.core.golden import GoldenModel
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.fsutil import atomic_dir
from rl2fpga.hls.engine.generator import generate, lint, use_frame_stack
from rl2fpga.run import Run


def check_stored_bits(run: Run, folder: Path, planned: int) -> dict[str, Any]:
    """The stored bits read from every ``*.mem`` image in ``folder`` (words x declared width);
    raises unless they equal what the generator planned and what the quantize step reported
    (``compression.stored_bits``, the figure summary.json shows)."""
    from rl2fpga.hls.engine.formats import measure_images

    images = measure_images(folder)
    measured = sum(images.values())
    comp = QuantizeCompression.load(run.layout)
    # image_bits: the total without the host's input standardisation (no engine memory image)
    reported = comp.get("total.image_bits", default=comp.get("total.stored_bits")) if comp else None
    if measured != planned:
        raise Rl2fpgaError(f"rtl: the memory images hold {measured} bits, the generator planned {planned}; "
                           "a .mem file was written outside the image plan (hls/engine/formats.py), fix the generator")
    if reported is not None and int(reported) != measured:
        raise Rl2fpgaError(f"rtl: the memory images hold {measured} bits, quantize reported {reported} stored bits "
                           "(rtl.lanes, rtl.layer_lanes or rtl.format changed since); rerun `rl2fpga run --from quantize`")
    return {"bits": measured, "images": images, "equals_quantize_report": reported is not None}


def rtl_step(run: Run, cfg: RunConfig) -> None:
    from rich.console import Console

    from rl2fpga.errors import ToolMissing
    from rl2fpga.manifest import record_files

    console = Console(stderr=True)
    # missing tools are errors (checked before anything is replaced), not "skipped" figures
    if not shutil.which("verilator"):
        raise ToolMissing("verilator is not on PATH (the rtl step lints the engine with it); install it (apt install verilator)")
    if cfg.rtl.synth and not shutil.which("yosys"):
        raise ToolMissing("yosys is not on PATH (rtl.synth=true estimates resources with it); install it "
                          "(apt install yosys) or set rtl.synth=false")
    run.require("quantize")
    golden = GoldenModel.load(run.layout.quantize_golden)
    summary: dict[str, Any] = {"version": __version__, "lanes": cfg.rtl.lanes,
                               "input_bytes_per_beat": cfg.rtl.input_bytes_per_beat}
    with atomic_dir(run.layout.step("rtl")) as out:
        t0 = time.perf_counter()
        design = generate(golden, out, lanes=cfg.rtl.lanes_arg, input_bytes_per_beat=cfg.rtl.input_bytes_per_beat,
                          frame_stack=use_frame_stack(cfg, golden), fmt=cfg.rtl.format,
                          schedule=cfg.rtl.schedule, row_order=cfg.rtl.row_order)
        summary["generate_s"] = round(time.perf_counter() - t0, 2)
        summary["design"] = design.summary()
        summary["layer_lanes"] = design.layer_lanes
        summary["stored"] = check_stored_bits(run, out, design.stored_bits)
        summary["nnz"] = [layer.nnz() for layer in golden.layers]
        summary["dense_mults"] = golden.dense_mults()
        if shutil.which("verilator"):
            lint(design, out / "lint.log")
            summary["lint"] = "clean"
        else:
            summary["lint"] = "skipped: verilator not on PATH"
            console.print("[yellow]verilator not on PATH: lint skipped")
        if cfg.rtl.synth and shutil.which("yosys"):
            from rl2fpga.hls.engine.resources import estimate

            console.print("yosys synth_xilinx -family xc7 (resource estimate) ...")
            t0 = time.perf_counter()
            est = estimate(design.sv_files, design.top, out, out / "yosys.log")
            est["seconds"] = round(time.perf_counter() - t0, 1)
            RtlResources(est).save_in(out)
            summary["resources"] = {k: est[k] for k in ("lut", "ff", "dsp", "bram36", "fits_xc7z020", "bram_inferred")}
        elif cfg.rtl.synth:
            summary["resources"] = "skipped: yosys not on PATH"
            console.print("[yellow]yosys not on PATH: resource estimate skipped")
        RtlSummary(summary).save_in(out)
        record_files(out)  # sha256 of every generated file, checked before any simulation
    console.print(f"engine: {len(golden.layers)} layers, lanes {' / '.join(map(str, design.layer_lanes))}, lint {summary['lint']}")
