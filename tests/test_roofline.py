"""Co-simulation statistics: the roofline max(significant MACs / lanes, input bytes / bytes per
beat) per frame beside the MAC bound (rtl_tests/steps.py)."""

from __future__ import annotations

from rl2fpga.hls.cosim.latency import latency_stats


def test_roofline_takes_the_larger_of_macs_and_input():
    # frame 0: 28,224 bytes (a full stack) at 8 B/cycle = 3,528 > 100 MACs / 4; frame 1: 7,056
    # bytes = 882 < 4,000 MACs / 4 = 1,000; frame 2: 882 > 400 / 4
    frames = [{"cycles": 4000, "golden_macs": [60, 40], "input_bytes": 28224},
              {"cycles": 1500, "golden_macs": [3000, 1000], "input_bytes": 7056},
              {"cycles": 1000, "golden_macs": [300, 100], "input_bytes": 7056}]
    s = latency_stats(frames, [10_000, 5_000], lanes=4, clock_mhz=100.0, bytes_per_cycle=8)
    assert s["input_cycles"]["max"] == 3528 and s["input_cycles"]["min"] == 882
    assert s["roofline_cycles"]["median"] == 1000  # median of [3528, 1000, 882]
    assert s["lower_bound_cycles"]["median"] == 100  # median of [25, 1000, 100]
    assert s["median_over_roofline"] == 1500 / 1000
    assert s["median_ratio_to_own_roofline"] == sorted([4000 / 3528, 1500 / 1000, 1000 / 882])[1]


def test_without_a_stream_width_the_roofline_is_the_mac_bound():
    frames = [{"cycles": 50, "golden_macs": [40, 8]}]
    s = latency_stats(frames, [100], lanes=4, clock_mhz=100.0)
    assert s["roofline_cycles"]["median"] == s["lower_bound_cycles"]["median"] == 12


def test_per_layer_lanes_bound_sums_each_layers_macs_over_its_lanes():
    """With lanes per layer the MAC bound is sum_k MACs_k / lanes_k (each layer's own lanes);
    with equal counts it is the single-count bound."""
    frames = [{"cycles": 90, "golden_macs": [40, 9, 6]}]
    s = latency_stats(frames, [400, 90, 12], lanes=[4, 3, 1], clock_mhz=100.0)
    assert s["lower_bound_cycles"]["median"] == 40 / 4 + 9 / 3 + 6 / 1 == 19
    assert s["dense_equivalent_cycles"] == 100 + 30 + 12
    assert s["lanes"] == [4, 3, 1]
    same = latency_stats(frames, [400, 90, 12], lanes=[4, 4, 4], clock_mhz=100.0)
    one = latency_stats(frames, [400, 90, 12], lanes=4, clock_mhz=100.0)
    assert same["lower_bound_cycles"] == one["lower_bound_cycles"] and same["lanes"] == 4
    assert same["dense_equivalent_cycles"] == one["dense_equivalent_cycles"] == 126
