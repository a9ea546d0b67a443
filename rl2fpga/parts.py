"""FPGA capacities by part, one table: the report compares the engine's estimate with the part
named in the config (``hls.part``), not a hard-coded xc7z020.

Figures from the AMD/Xilinx product tables (7-series: DS190; Zynq UltraScale+: DS891): LUTs,
flip-flops, DSP slices, 36 Kb block RAMs.
"""

from __future__ import annotations

from typing import Any

# device (part number prefix) -> capacity; boards that carry it in the comment
PARTS: dict[str, dict[str, Any]] = {
    "xc7z007s": {"lut": 14_400, "ff": 28_800, "dsp": 66, "bram36": 50, "family": "Zynq-7000"},
    "xc7z010": {"lut": 17_600, "ff": 35_200, "dsp": 80, "bram36": 60, "family": "Zynq-7000"},  # Zybo Z7-10
    "xc7z020": {"lut": 53_200, "ff": 106_400, "dsp": 220, "bram36": 140, "family": "Zynq-7000"},  # PYNQ-Z2, PYNQ-Z1
    "xc7a35t": {"lut": 20_800, "ff": 41_600, "dsp": 90, "bram36": 50, "family": "Artix-7"},  # Arty A7-35
    "xc7a100t": {"lut": 63_400, "ff": 126_800, "dsp": 240, "bram36": 135, "family": "Artix-7"},
    "xczu3eg": {"lut": 70_560, "ff": 141_120, "dsp": 360, "bram36": 216, "family": "Zynq UltraScale+"},  # Ultra96
    "xczu7ev": {"lut": 230_400, "ff": 460_800, "dsp": 1_728, "bram36": 312, "family": "Zynq UltraScale+"},  # ZCU104
    "xczu9eg": {"lut": 274_080, "ff": 548_160, "dsp": 2_520, "bram36": 912, "family": "Zynq UltraScale+"},  # ZCU102
}
RESOURCES = ("lut", "ff", "dsp", "bram36")


def capacity(part: str) -> tuple[str, dict[str, Any]] | None:
    """(device, capacity) of a full part number such as ``xc7z020clg400-1``; None if unknown."""
    p = part.lower()
    for dev in sorted(PARTS, key=len, reverse=True):
        if p.startswith(dev):
            return dev, PARTS[dev]
    return None


def utilisation(used: dict[str, Any], part: str) -> list[dict[str, Any]]:
    """Rows (resource, used, available, percent) against ``part``; available None if unknown."""
    cap = capacity(part)
    rows = []
    for k in RESOURCES:
        u = used.get(k)
        if u is None:
            continue
        avail = cap[1][k] if cap else None
        rows.append({"resource": k, "used": u, "available": avail, "percent": None if not avail else 100.0 * u / avail})
    return rows
