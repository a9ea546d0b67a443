"""One row per hardware form of a run, for the report: engine cycles (at the clock assumed),
the host's per-step latency through the driver (p50 / p99), the input the design really takes
(stream width, frame stack) and its roofline. Reads the run folder's step summaries only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _num(v: Any, spec: str = "{:,.0f}") -> str:
    return "-" if v is None else spec.format(v)


def hardware_forms(run_dir: Path) -> list[dict[str, str]]:
    """Rows: form, engine cycles (median / p99), time at the clock, host latency p50 / p99,
    input, notes. Forms whose step did not run are left out."""
    p = Path(run_dir)
    rows: list[dict[str, str]] = []
    hls, rtl = _load(p / "hls" / "summary.json"), _load(p / "rtl" / "summary.json")
    lat, cos, brd = _load(p / "cosim" / "latency.json"), _load(p / "cosim" / "summary.json"), _load(p / "board" / "summary.json")
    if hls:
        build = hls.get("build") or {}
        lc = build.get("latency_cycles") if isinstance(build, dict) else None
        cyc = lc.get("worst") if isinstance(lc, dict) else None
        rows.append({"form": f"hls4ml ({hls.get('backend', '?')})", "cycles": _num(cyc), "time": "-", "host": "-",
                     "input": "float32 stream (overlay) / ap_fixed ports",
                     "notes": f"C simulation {hls.get('csim_frames', '-')} frames, {hls.get('csim_mismatches', '-')} mismatches"
                              + ("" if cyc is not None else "; cycles need the vendor report")})
    if lat:
        clock = lat.get("clock_mhz") or 100.0
        cyc = lat.get("cycles") or {}
        med = cyc.get("median")
        design = rtl.get("design") or {}
        bpb = lat.get("bytes_per_cycle") or design.get("input_bytes_per_beat")
        stack = cos.get("frame_stack", design.get("frame_stack"))
        roof = (lat.get("roofline_cycles") or {}).get("median")
        res = rtl.get("resources") if isinstance(rtl.get("resources"), dict) else {}
        rows.append({
            "form": f"RTL sparse delta engine, {lat.get('lanes', '?')} lanes (Verilator co-simulation)",
            "cycles": f"{_num(med)} / {_num(cyc.get('p99'))}",
            "time": "-" if med is None else f"{med / clock:.1f} us at {clock:.0f} MHz",
            "host": "-",
            "input": f"{bpb}-byte beats" + (", frame stack in fabric" if stack else ""),
            "notes": (f"roofline median {_num(roof)} ({_num(lat.get('median_over_roofline'), '{:.2f}')}x); "
                      f"MAC bound median {_num((lat.get('lower_bound_cycles') or {}).get('median'))}"
                      + (f"; {res.get('lut')} LUT, {res.get('ff')} FF, {res.get('dsp')} DSP, {res.get('bram36')} BRAM36"
                         if res else "")),
        })
    if brd:
        host = brd.get("latency_us") or {}
        cps = brd.get("cycles_per_step") or {}
        clock = brd.get("clock_mhz") or 100.0
        rows.append({
            "form": f"board target {brd.get('target', '?')} ({brd.get('engine', '?')}) through the PYNQ driver",
            "cycles": f"{_num(cps.get('p50'))} / {_num(cps.get('p99'))}" if cps else "-",
            "time": "-" if not cps else f"{cps.get('p50', 0) / clock:.1f} us at {clock:.0f} MHz",
            "host": f"{_num(host.get('p50'), '{:,.1f}')} / {_num(host.get('p99'), '{:,.1f}')} us" if host else "-",
            "input": "as the engine",
            "notes": f"{brd.get('steps', '-')} steps, {brd.get('action_mismatches', '-')} action mismatches"
                     + ("; host latency of a simulated board is simulation time, not the board's" if brd.get("target") == "emulator" else ""),
        })
    return rows
