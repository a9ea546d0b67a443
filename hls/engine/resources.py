"""Resource estimate of the sparse delta engine with yosys (``synth_xilinx -family xc7``).

Counts LUTs (logic and LUT RAM), flip-flops, DSP48E1 and block RAM (RAMB36E1 + RAMB18E1 / 2)
from yosys' ``stat`` and compares them with the xc7z020 (PYNQ-Z2). The engine's memories must
infer as block RAM: :func:`estimate` reports ``bram_inferred`` and the memories left as logic.

Two methods: :func:`estimate` synthesises the whole design flattened (exact for yosys, but hours
and gigabytes for a 16-lane CNN); :func:`estimate_by_module` synthesises every distinct module
once, keeping the hierarchy, and sums by instance count (``METHOD_BY_MODULE`` says how).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from rl2fpga.errors import Rl2fpgaError, ToolMissing
from rl2fpga.fsutil import atomic_write_text

XC7Z020 = {"lut": 53_200, "ff": 106_400, "dsp": 220, "bram36": 140}

# INV cells are counted as LUT1s (conservative: most are absorbed into neighbouring LUTs)
_LUT_CELLS = re.compile(r"^(LUT[1-6]|INV|RAM(32|64|128|256)[XM0-9A-Z]*|SRL(16|32)E?|MUXF[78])$")
_FF_CELLS = {"FDRE", "FDSE", "FDCE", "FDPE"}


def hierarchy_totals(text: str) -> str:
    """The totals of a hierarchical ``stat -top`` (its "design hierarchy" section, cells summed by
    instance count); a flat ``stat`` is returned whole."""
    marker = "=== design hierarchy ==="
    if marker not in text:
        return text
    tail = text.split(marker, 1)[1]
    # the section lists the instance tree first, then "Number of wires/cells" and the cell counts
    cut = tail.find("Number of cells")
    return tail[cut:] if cut >= 0 else tail


def parse_stat(text: str) -> dict[str, Any]:
    """Cell counts of the top module's (flattened) ``stat`` output."""
    cells: dict[str, int] = {}
    for m in re.finditer(r"^\s+(\S+)\s+(\d+)\s*$", text, re.M):
        name, n = m.group(1), int(m.group(2))
        if name.startswith("$") or name[0].isupper():
            cells[name] = cells.get(name, 0) + n
    lut = sum(n for c, n in cells.items() if _LUT_CELLS.match(c) and not c.startswith("MUXF"))
    return {
        "lut": lut,
        "ff": sum(n for c, n in cells.items() if c in _FF_CELLS),
        "dsp": cells.get("DSP48E1", 0),
        "bram36": cells.get("RAMB36E1", 0) + 0.5 * cells.get("RAMB18E1", 0),
        "lutram_cells": sum(n for c, n in cells.items() if c.startswith("RAM") and not c.startswith("RAMB")),
        "cells": cells,
    }


def estimate(sv_files: list[Path], top: str, work_dir: Path, log_path: Path | None = None,
             timeout_s: float = 3600.0) -> dict[str, Any]:
    """Run yosys in ``work_dir`` (where the ``$readmemh`` images are) and return the estimate."""
    script = (
        f"read_verilog -defer -sv {' '.join(p.name for p in sv_files)}; "
        f"hierarchy -top {top}; synth_xilinx -family xc7 -top {top} -flatten; "
        "tee -o yosys_stat.txt stat"
    )
    est = _run_yosys(script, work_dir, log_path, timeout_s)
    est["method"] = "whole design, flattened (yosys synth_xilinx -family xc7 -flatten)"
    return est


METHOD_BY_MODULE = (
    "by module: yosys synth_xilinx -family xc7 without -flatten synthesises each distinct module "
    "parameterisation once (memories inferred as block RAM or LUT RAM in their own module, as in "
    "the flat run) and `stat -top` sums the cells by instance count; the lanes of a layer differ "
    "only in the contents of their weight and shift images (same depths and widths), so every "
    "lane is elaborated as lane 0 and synthesised once per layer; no optimisation across module "
    "boundaries (constant ports stay logic), so it errs high against the flat run")


def estimate_by_module(sv_files: list[Path], top: str, work_dir: Path, log_path: Path | None = None,
                       timeout_s: float = 3600.0) -> dict[str, Any]:
    """The estimate of :func:`estimate` by :data:`METHOD_BY_MODULE`: copies of the sources in
    ``work_dir``/by_module (the layer's lanes all elaborated as lane 0), yosys run in
    ``work_dir`` (where the ``$readmemh`` images are)."""
    import re as _re

    src = work_dir / "by_module"
    src.mkdir(parents=True, exist_ok=True)
    names = []
    for p in sv_files:
        text = p.read_text()
        if p.name == "rl2fpga_layer.sv":
            text, n = _re.subn(r"\.LANE\(l\)", ".LANE(0)", text)
            if n != 1:
                raise Rl2fpgaError(f"{p}: expected one lane instance with .LANE(l) for the by-module estimate; regenerate the engine")
        atomic_write_text(src / p.name, text)
        names.append(f"{src.name}/{p.name}")
    script = (
        f"read_verilog -defer -sv {' '.join(names)}; "
        f"hierarchy -top {top}; synth_xilinx -family xc7 -top {top}; "
        f"tee -o yosys_stat.txt stat -top {top}"
    )
    est = _run_yosys(script, work_dir, log_path, timeout_s)
    est["method"] = METHOD_BY_MODULE
    return est


def _run_yosys(script: str, work_dir: Path, log_path: Path | None, timeout_s: float) -> dict[str, Any]:
    """Run a yosys script that writes ``yosys_stat.txt`` in ``work_dir``; the parsed estimate."""
    if shutil.which("yosys") is None:
        raise ToolMissing("yosys is not on PATH; install it (apt install yosys) or set rtl.synth=false")
    stat_file = work_dir / "yosys_stat.txt"
    if stat_file.exists():
        stat_file.unlink()
    try:
        res = subprocess.run(["yosys", "-q", "-p", script], cwd=work_dir, capture_output=True, text=True,
                             timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise Rl2fpgaError(f"yosys did not finish within {timeout_s:.0f} s; set rtl.synth=false to skip the estimate") from None
    log = script + "\n" + res.stdout + res.stderr
    if log_path is not None:
        atomic_write_text(log_path, log)
    if res.returncode != 0 or not stat_file.exists():
        first = next((ln for ln in (res.stdout + res.stderr).splitlines() if "ERROR" in ln), "see the log")
        raise Rl2fpgaError(f"yosys synthesis of the engine failed: {first.strip()}; see {log_path or 'the log'}")
    est = parse_stat(hierarchy_totals(stat_file.read_text()))
    est["capacity"] = dict(XC7Z020)
    est["utilisation"] = {k: round(est[k] / XC7Z020[k], 4) for k in XC7Z020}
    est["fits_xc7z020"] = all(est[k] <= XC7Z020[k] for k in XC7Z020)
    # memories that yosys could not map to block RAM stay as $mem cells or become LUT RAM
    est["unmapped_memories"] = sum(n for c, n in est["cells"].items() if c.startswith("$mem"))
    est["bram_inferred"] = est["bram36"] > 0 and est["unmapped_memories"] == 0
    return est
