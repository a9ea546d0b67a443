"""What an hls4ml project contains and what its vendor build reported.

* :func:`check_project_files` - the files each backend must write (build script, firmware,
  weights, testbench, testbench data; PYNQ-Z2 design and Python driver for VivadoAccelerator)
  and every file the build scripts reference (``source``, ``add_files``) must exist;
* :func:`synthesis_figures` - hls4ml's own report reader (``parse_vivado_report``) turned into
  plain numbers: latency and interval in cycles and microseconds, clock, resources.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

PROJECT_FILES: dict[str, list[str]] = {
    "common": [
        "build_prj.tcl",
        "project.tcl",
        "build_lib.sh",
        "firmware/{p}.cpp",
        "firmware/{p}.h",
        "firmware/parameters.h",
        "firmware/defines.h",
        "firmware/nnet_utils/rl2fpga_delta.h",
        "{p}_test.cpp",
        "{p}_bridge.cpp",
        "tb_data/tb_input_features.dat",
        "tb_data/tb_output_predictions.dat",
    ],
    "Vitis": [],
    "Vivado": [],
    "VivadoAccelerator": ["design.tcl", "axi_stream_driver.py", "firmware/{p}_axi.cpp", "firmware/{p}_axi.h"],
}

# what the build scripts reference that the vendor build itself creates (not project inputs)
BUILD_PRODUCTS = (re.compile(r"_prj/"), re.compile(r"_vivado_accelerator/"), re.compile(r"^run_sim\.tcl$"))

_SOURCE = re.compile(r"source\s+\[file join \$tcldir ([^\]\s]+)\]|^\s*source\s+([^\s\[\]\"{}]+)\s*$", re.M)
_ADD_FILES = re.compile(r"add_files\s+(?:-\w+\s+)*([^\s\"]+)")


def referenced_files(project_dir: str | Path, project_name: str) -> list[str]:
    """Paths (relative to the project) that the Tcl build scripts source or add."""
    refs: list[str] = []
    for script in sorted(Path(project_dir).glob("*.tcl")):
        text = script.read_text()
        for m in _SOURCE.finditer(text):
            refs.append(m.group(1) or m.group(2))
        refs.extend(m.group(1) for m in _ADD_FILES.finditer(text))
    out = []
    for r in refs:
        r = r.replace("${project_name}", project_name).removeprefix("./")
        if not any(p.search(r) for p in BUILD_PRODUCTS) and r not in out:
            out.append(r)
    return out


def check_project_files(project_dir: str | Path, backend: str, project_name: str) -> dict[str, list[str]]:
    """``{"expected": [...], "referenced": [...], "missing": [...]}`` for a written project."""
    project_dir = Path(project_dir)
    expected = [f.format(p=project_name) for f in PROJECT_FILES["common"] + PROJECT_FILES[backend]]
    weights = sorted(str(p.relative_to(project_dir)) for p in (project_dir / "firmware" / "weights").glob("*.h"))
    expected += weights
    referenced = referenced_files(project_dir, project_name)
    missing = [f for f in expected + referenced if not (project_dir / f).exists()]
    if not weights:
        missing.append("firmware/weights/*.h")
    return {"expected": expected, "referenced": referenced, "missing": missing}


def _num(v: Any) -> float | int | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return int(f) if f.is_integer() else f


def synthesis_figures(project_dir: str | Path) -> dict[str, Any] | None:
    """Latency and resources from the vendor reports (None when there is no synthesis report)."""
    from hls4ml.report import parse_vivado_report

    with contextlib.redirect_stdout(io.StringIO()):
        report = parse_vivado_report(str(project_dir))
    if not report or "CSynthesisReport" not in report:
        return None
    r = report["CSynthesisReport"]
    clock = _num(r.get("EstimatedClockPeriod")) or _num(r.get("TargetClockPeriod"))
    resources = {k: _num(v) for k, v in r.items() if k in ("BRAM_18K", "DSP", "FF", "LUT", "URAM")}
    available = {k.removeprefix("Available"): _num(v) for k, v in r.items() if k.startswith("Available")}
    best, worst = _num(r.get("BestLatency")), _num(r.get("WorstLatency"))
    out: dict[str, Any] = {
        "target_clock_ns": _num(r.get("TargetClockPeriod")),
        "estimated_clock_ns": _num(r.get("EstimatedClockPeriod")),
        "latency_cycles": {"best": best, "worst": worst},
        "interval_cycles": {"min": _num(r.get("IntervalMin")), "max": _num(r.get("IntervalMax"))},
        "latency_us": {
            "best": None if best is None or clock is None else best * clock / 1000.0,
            "worst": None if worst is None or clock is None else worst * clock / 1000.0,
        },
        "resources": resources,
        "available": available,
        "utilisation": {k: (v / available[k] if available.get(k) else None) for k, v in resources.items() if v is not None},
    }
    if "CosimReport" in report:
        out["cosim"] = {k: _num(v) if _num(v) is not None else v for k, v in report["CosimReport"].items()}
    if "VivadoSynthReport" in report:
        out["vivado_synth"] = {k: _num(v) for k, v in report["VivadoSynthReport"].items()}
    return out
