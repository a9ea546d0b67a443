"""The back ends side by side (``summary.json["backends"]`` and the report's table) and the
recommendation by the user's goal (``da4ml.goal``: latency, throughput or area).

Read only from what the steps wrote; a back end that did not run is absent, never invented:

* ``engine``: the sparse delta engine (``rtl/summary.json`` yosys estimate, ``cosim/latency.json``
  cycles per frame over real episodes, first input beat -> action beat; one frame at a time,
  so II = latency);
* ``da4ml``: the fully parallel circuit (``da4ml/summary.json``): the whole AXI top's yosys
  estimate, latency first input beat -> action beat measured on the emulated board, II of the
  AXI top (bound by the output stream: n_out + 1 beats per frame); the core alone (II = 1)
  beside it;
* ``hls4ml``: only where a vendor (Vivado/Vitis HLS) synthesis report exists.

LUT x latency is the area-delay product (LUT x cycles). Every figure is at the same clock
(``rtl.clock_mhz``); no back end's timing closure at that clock is verified here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rl2fpga.artifacts import (
    CosimLatency,
    CosimSummary,
    Da4mlSummary,
    HlsSummary,
    RtlSummary,
    RunLayout,
)
from rl2fpga.artifacts import read_json as _load

XC7Z020 = {"lut": 53_200, "ff": 106_400, "dsp": 220, "bram36": 140}


def _fits(row: dict[str, Any]) -> bool | None:
    vals = [row.get(k) for k in XC7Z020]
    if any(v is None for v in vals):
        return None
    return all(row[k] <= XC7Z020[k] for k in XC7Z020)


def _finish(row: dict[str, Any]) -> dict[str, Any]:
    lat, lut = row.get("latency_cycles"), row.get("lut")
    row["lut_x_latency"] = None if lat is None or lut is None else round(lut * lat)
    if row.get("fits_part") is None:
        row["fits_part"] = _fits(row)
    return row


def backends(run_path: Path, clock_mhz: float) -> dict[str, dict[str, Any]]:
    lay = RunLayout(Path(run_path))
    out: dict[str, dict[str, Any]] = {}
    rtl, lat, cos = _load(RtlSummary.path(lay)), _load(CosimLatency.path(lay)), _load(CosimSummary.path(lay))
    if rtl and isinstance(rtl.get("resources"), dict) and lat:
        r = rtl["resources"]
        med = lat.get("cycles", {}).get("median")
        out["engine"] = _finish({
            "lut": r.get("lut"), "ff": r.get("ff"), "dsp": r.get("dsp"), "bram36": r.get("bram36"),
            "latency_cycles": med, "latency_p99_cycles": lat.get("cycles", {}).get("p99"),
            "ii_cycles": med, "fits_part": r.get("fits_xc7z020"),
            "verified_frames": (cos or {}).get("frames"), "mismatches": (cos or {}).get("mismatches"),
            "delta": True, "note": f"{lat.get('lanes')} lanes, event-driven; latency = median cycles per frame over real episodes",
        })
    d = _load(Da4mlSummary.path(lay))
    if d and d.get("enabled") and isinstance(d.get("resources"), dict):
        top, core = d["resources"]["top"], d["resources"]["core"]
        out["da4ml"] = _finish({
            "lut": top.get("lut"), "ff": top.get("ff"), "dsp": top.get("dsp"), "bram36": top.get("bram36"),
            "latency_cycles": d.get("axi_latency_cycles"), "ii_cycles": d.get("axi_ii_cycles"),
            "fits_part": top.get("fits_xc7z020"),
            "core": {"lut": core.get("lut"), "ff": core.get("ff"), "dsp": core.get("dsp"),
                     "latency_cycles": d.get("latency_cycles"), "ii_cycles": 1,
                     "lut_x_latency": None if core.get("lut") is None else core["lut"] * d.get("latency_cycles", 0)},
            "verified_frames": d.get("cosim_frames"), "mismatches": d.get("cosim_mismatches"),
            "delta": False, "note": "fully parallel (da4ml), delta off; latency = first input beat -> action beat",
        })
    h = _load(HlsSummary.path(lay))
    build = (h or {}).get("build") or {}
    if build.get("status") == "built":
        r = build.get("resources", {})
        worst = (build.get("latency_cycles") or {}).get("worst")
        out["hls4ml"] = _finish({
            "lut": r.get("LUT"), "ff": r.get("FF"), "dsp": r.get("DSP"),
            "bram36": None if r.get("BRAM_18K") is None else r["BRAM_18K"] / 2,
            "latency_cycles": worst, "ii_cycles": (build.get("interval_cycles") or {}).get("max"),
            "verified_frames": (h or {}).get("csim_frames"), "mismatches": (h or {}).get("csim_mismatches"),
            "delta": True, "note": f"{build.get('tool')} synthesis report (estimate)",
        })
    for row in out.values():
        row["latency_us"] = None if row.get("latency_cycles") is None else row["latency_cycles"] / clock_mhz
    return out


def recommend(rows: dict[str, dict[str, Any]], goal: str) -> dict[str, Any]:
    """The back end for ``goal`` among those that fit the xc7z020 and were verified bit-exact,
    and the constraint that decided it."""
    key = {"latency": "latency_cycles", "throughput": "ii_cycles", "area": "lut"}[goal]
    unit = {"latency": "cycles per inference", "throughput": "cycles between inferences (II)", "area": "LUTs"}[goal]
    cands, excluded = {}, []
    for name, r in rows.items():
        if r.get(key) is None:
            excluded.append(f"{name} has no {unit} figure")
        elif r.get("fits_part") is False:
            over = [k.upper() for k in XC7Z020 if r.get(k) is not None and r[k] > XC7Z020[k]]
            excluded.append(f"{name} does not fit the xc7z020 ({', '.join(over)} over)")
        elif r.get("mismatches") not in (0, None) or not r.get("verified_frames"):
            excluded.append(f"{name} is not verified bit-exact")
        else:
            cands[name] = r
    if not cands:
        return {"goal": goal, "backend": None, "constraint": "; ".join(excluded) or "no back end ran",
                "line": f"goal {goal}: no back end qualifies ({'; '.join(excluded) or 'none ran'})"}
    order = sorted(cands, key=lambda n: (cands[n][key], cands[n].get("lut") or 0))
    best = order[0]
    if len(order) > 1:
        second = order[1]
        a, b = cands[best][key], cands[second][key]
        why = f"{unit}: {best} {a:,.0f} vs {second} {b:,.0f} ({b / a:.1f}x)" if a else f"{unit}: {best} {a} vs {second} {b}"
    else:
        why = f"{unit}: {best} {cands[best][key]:,.0f}; the only back end that qualifies"
    constraint = why + (f"; {'; '.join(excluded)}" if excluded else "")
    return {"goal": goal, "backend": best, "constraint": constraint,
            "line": f"For {goal}, use {best}: {constraint}."}


def table_rows(rows: dict[str, dict[str, Any]]) -> list[list[str]]:
    """The report's back-end table (strings)."""

    def f(v: Any, spec: str = "{:,.0f}") -> str:
        if v is None:
            return "n/a"
        if isinstance(v, bool):
            return "yes" if v else "no"
        return spec.format(v)

    out = []
    for name, r in rows.items():
        out.append([name, f(r.get("lut")), f(r.get("ff")), f(r.get("dsp")), f(r.get("bram36"), "{:g}"),
                    f(r.get("latency_cycles")), f(r.get("ii_cycles")), f(r.get("lut_x_latency")),
                    f(r.get("fits_part")), "on" if r.get("delta") else "off", r.get("note", "")])
        core = r.get("core")
        if core:
            out.append([f"{name} core", f(core.get("lut")), f(core.get("ff")), f(core.get("dsp")), "n/a",
                        f(core.get("latency_cycles")), f(core.get("ii_cycles")), f(core.get("lut_x_latency")),
                        "", "off", "the da4ml pipeline alone, without the AXI wrapper"])
    return out


TABLE_HEADER = ["back end", "LUT", "FF", "DSP", "BRAM36", "latency (cycles)", "II (cycles)", "LUT x latency",
                "fits xc7z020", "delta", "note"]
