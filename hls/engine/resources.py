"""Resource estimate of the sparse delta engine with yosys (``synth_xilinx -family xc7``).

Counts LUTs (logic and LUT RAM), flip-flops, DSP48E1 and block RAM (RAMB36E1 + RAMB18E1 / 2)
from yosys' ``stat`` and compares them with the xc7z020 (PYNQ-Z2). The engine's memories must
infer as block RAM: :func:`estimate` reports ``bram_inferred`` and the memories left as logic.
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
    if shutil.which("yosys") is None:
        raise ToolMissing("yosys is not on PATH; install it (apt install yosys) or set rtl.synth=false")
    stat_file = work_dir / "yosys_stat.txt"
    script = (
        f"read_verilog -defer -sv {' '.join(p.name for p in sv_files)}; "
        f"hierarchy -top {top}; synth_xilinx -family xc7 -top {top} -flatten; "
        f"tee -o {stat_file.name} stat"
    )
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
    est = parse_stat(stat_file.read_text())
    est["capacity"] = dict(XC7Z020)
    est["utilisation"] = {k: round(est[k] / XC7Z020[k], 4) for k in XC7Z020}
    est["fits_xc7z020"] = all(est[k] <= XC7Z020[k] for k in XC7Z020)
    # memories that yosys could not map to block RAM stay as $mem cells or become LUT RAM
    est["unmapped_memories"] = sum(n for c, n in est["cells"].items() if c.startswith("$mem"))
    est["bram_inferred"] = est["bram36"] > 0 and est["unmapped_memories"] == 0
    return est
