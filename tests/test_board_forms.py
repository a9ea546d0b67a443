"""The report's hardware-forms rows (board/forms.py) from step summaries."""

from __future__ import annotations

import json

from rl2fpga.board.forms import hardware_forms


def test_rows_show_cycles_clock_and_host_latency(tmp_path):
    for folder, data in {
        "cosim/latency.json": {"clock_mhz": 125.0, "lanes": 16, "cycles": {"median": 1500.0, "p99": 2500.0},
                               "bytes_per_cycle": 8, "roofline_cycles": {"median": 882.0}, "median_over_roofline": 1.7,
                               "lower_bound_cycles": {"median": 590.0}},
        "cosim/summary.json": {"frame_stack": True},
        "board/summary.json": {"target": "emulator", "engine": "verilator", "latency_us": {"p50": 812.5, "p99": 1900.0},
                               "cycles_per_step": {"p50": 1500.0, "p99": 2400.0}, "clock_mhz": 125.0, "steps": 30,
                               "action_mismatches": 0},
    }.items():
        (tmp_path / folder).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / folder).write_text(json.dumps(data))
    rows = hardware_forms(tmp_path)
    assert [r["form"].split(",")[0].split(" (")[0] for r in rows] == ["RTL sparse delta engine", "board target emulator"]
    rtl, board = rows
    assert rtl["cycles"] == "1,500 / 2,500" and rtl["time"] == "12.0 us at 125 MHz"
    assert rtl["input"] == "8-byte beats, frame stack in fabric" and "882" in rtl["notes"]
    assert board["host"] == "812.5 / 1,900.0 us" and board["time"] == "12.0 us at 125 MHz"
    assert hardware_forms(tmp_path / "nothing") == []
