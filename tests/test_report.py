"""summary.json keys and the self-contained report, from hand-written step outputs."""

import json
import re

from rl2fpga.config import RunConfig
from rl2fpga.fsutil import atomic_write_json
from rl2fpga.run import Run
from rl2fpga.stages.report import report_step

REQUIRED = {
    "": ["env", "algo", "train", "levels", "selected", "compression", "multiplications", "hls", "rtl", "board", "timings_s"],
    "train": ["eval_return_mean"],
    "selected": ["sparsity", "weight_bits", "threshold_int", "eval_return_mean", "eval_return_mean_delta"],
    "compression": ["dense_bits", "stored_bits", "ratio"],
    "multiplications": ["dense", "significant_mean", "reduction"],
    "hls": ["backend", "csim_frames", "csim_mismatches"],
    "rtl": ["lanes", "cosim_frames", "cosim_mismatches", "cycles_median", "cycles_p99", "cycles_dense",
            "cycles_bound_median", "lut", "ff", "dsp", "bram36"],
    "board": ["target", "episodes", "action_mismatches", "return_mean"],
}


def _fake_run(tmp_path):
    """Step outputs in the formats the steps write (values made up, so the mapping is checked)."""
    cfg = RunConfig(name="fake")
    cfg.quantize.threshold = 0.01  # the analyze outputs below are at T = 0.01 (the default is 0.02)
    run = Run.create(cfg, runs_dir=tmp_path)
    w = lambda step, name, obj: atomic_write_json(run.dir(step) / name, obj)  # noqa: E731
    # each step's outputs, then its .done, in pipeline order (finishing a step invalidates later ones)
    w("train", "summary.json", {"eval_return_mean": 498.5, "steps": 1000})
    w("train", "metrics.json", {"evals": [{"step": 500, "mean": 100.0, "std": 20.0}, {"step": 1000, "mean": 498.5, "std": 3.0}],
                                "episodes": [{"step": 100 * i, "return": 20.0 * i} for i in range(1, 10)], "selected_step": 1000})
    run.mark_done("train", 1.0)
    w("prune", "levels.json", {"method": "imp", "levels": [
        {"level": i, "round": i, "sparsity": 1 - 0.8**i, "eval_return_mean": 500 - i} for i in range(4)]})
    run.mark_done("prune", 1.0)
    w("quantize", "summary.json", {
        "prune_level": 3, "sparsity": 0.488, "weight_bits": 8, "act_bits": 8, "threshold": 0.01,
        "threshold_int": [3, 1, 0], "eval_return_mean": 497.0, "eval_return_mean_delta": 495.0,
        "compression": {"dense_fp32_bits": 32000, "stored_bits": 1000, "ratio": 32.0, "sparsity": 0.75,
                        "format": {"fc1": "rel", "out": "dense"}},
        "golden_equals_qkeras_states": 1000, "float32_exact_proved": True,
    })
    w("quantize", "compression.json", {"layers": {"fc1": {"dense_fp32_bits": 16000, "stored_bits": 400},
                                                   "out": {"dense_fp32_bits": 16000, "stored_bits": 600}}})
    run.mark_done("quantize", 1.0)
    w("analyze", "summary.json", {
        "multiplications": {"dense": 4352, "significant_mean": 217.6, "reduction": 20.0},
        "per_level": [{"level": i, "sparsity": 1 - 0.8**i, "return_mean": 500 - i, "delta_return_mean": 490 - i,
                       "fraction": {"0": 0.3 - 0.05 * i, "0.01": 0.1 - 0.02 * i}} for i in range(4)],
        "per_threshold": {"0": {"T": 0.0, "golden_fraction": 0.3, "float_fraction": 0.31, "float_delta_return_mean": 500},
                          "0.01": {"T": 0.01, "golden_fraction": 0.05, "float_fraction": 0.06, "float_delta_return_mean": 470}},
        "layers": {"fc1": {"dense": 256, "nnz": 30, "golden_significant_mean": 20.5, "golden_fraction": 0.08}},
        "random_policy": {"return_mean": 21.5, "return_std": 9.0, "episodes": 30, "seed": 10000},
    })
    w("hls", "summary.json", {"backend": "Vitis", "csim_frames": 500, "csim_mismatches": 0,
                              "precisions": {"fc1": {"weight": "ap_fixed<8,1>", "result": "ap_ufixed<8,3>"}}})
    w("rtl", "summary.json", {"lanes": 4, "resources": {"lut": 1234, "ff": 2345, "dsp": 4, "bram36": 2}})
    w("cosim", "summary.json", {"frames": 4, "mismatches": 0, "cycles_median": 80})
    w("cosim", "latency.json", {"lanes": 4, "clock_mhz": 100.0, "cycles": {"median": 80, "p99": 120},
                                "dense_equivalent_cycles": 1088, "lower_bound_cycles": {"median": 60}})
    w("cosim", "frames.json", [{"cycles": c, "macs": [1, 2], "golden_macs": [1, 2]} for c in (70, 80, 90, 120)])
    w("board", "summary.json", {"target": "emulator", "episodes": 3, "steps": 1500, "action_mismatches": 0, "return_mean": 500.0,
                                "returns": [500.0] * 3, "golden_returns": [500.0] * 3, "golden_return_mean": 500.0,
                                "latency_us": {"mean": 380.0, "p50": 376.0, "p99": 512.0}})
    return run


def test_summary_has_every_key_with_the_step_values(tmp_path):
    run = _fake_run(tmp_path)
    report_step(run, run.config())
    s = json.loads((run.path / "summary.json").read_text())
    for section, keys in REQUIRED.items():
        node = s if section == "" else s[section]
        for k in keys:
            assert k in node, f"{section}.{k}"
    assert s["rtl"]["lut"] == 1234 and s["rtl"]["cosim_frames"] == 4 and s["rtl"]["cycles_bound_median"] == 60
    assert s["rtl"]["cycles_p99"] == 120 and s["rtl"]["cycles_dense"] == 1088 and s["rtl"]["mac_mismatches"] == 0
    assert s["selected"]["threshold_int"] == [3, 1, 0] and s["selected"]["sparsity"] == 0.488
    assert s["compression"] == {"dense_bits": 32000, "stored_bits": 1000, "ratio": 32.0, "ratio_values_only": None, "zero_fraction": 0.75,
                                "format": {"fc1": "rel", "out": "dense"}, "sweep_best_ratio": None, "sweep_best_ratio_values_only": None, "sweep_best": None,
                                "frontier": None, "frontier_candidates": None, "frontier_setup": None}
    assert [x["eval_return_mean_delta"] for x in s["levels"]] == [490, 489, 488, 487]
    assert s["levels"][1]["significant_fraction"] == 0.08
    assert s["train"]["random_return_mean"] == 21.5 and s["train"]["random_return_std"] == 9.0
    assert [round(x["sparsity"], 3) for x in s["levels"]] == [0.0, 0.2, 0.36, 0.488]
    assert list(s["timings_s"].items()) == [("train", 1.0), ("prune", 1.0), ("quantize", 1.0)]


def test_report_is_self_contained_with_plots(tmp_path):
    run = _fake_run(tmp_path)
    report_step(run, run.config())
    html = (run.path / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 7  # + the training curve
    assert not re.search(r'(src|href)="(http|//|/)', html)
    assert "bit-exact" in html and "not run" not in html


def test_missing_steps_show_not_run(tmp_path):
    run = Run.create(RunConfig(name="empty"), runs_dir=tmp_path)
    report_step(run, run.config())
    s = json.loads((run.path / "summary.json").read_text())
    assert s["rtl"]["cycles_median"] is None and s["levels"] == []
    assert "not run" in (run.path / "report.html").read_text()


def test_report_plots_the_compression_sweep_when_present(tmp_path):
    run = _fake_run(tmp_path)
    rows = [{"level": 0, "sparsity": 0.0, "bits": 8, "ratio": 4.1, "ratio_values_only": 4.2, "return_mean": 500.0, "keeps": True},
            {"level": 3, "sparsity": 0.488, "bits": 4, "ratio": 12.5, "ratio_values_only": 15.0, "return_mean": 480.0, "keeps": True}]
    from rl2fpga.fsutil import atomic_write_bytes
    from rl2fpga.quantize.sweep import sweep_plot

    sweep = {"rows": rows, "best": rows[1], "bits": [8, 4], "keep_return_fraction": 0.95,
             "dense_return_mean": 500.0, "paper_claim_ratio": 400.0}
    atomic_write_bytes(run.dir("analyze") / "sweep.png", sweep_plot(sweep, "CartPole-v1"))
    a = json.loads((run.path / "analyze" / "summary.json").read_text())
    a["compression_sweep"] = {"best": rows[1], "best_ratio": 12.5, "best_ratio_values_only": 15.0}
    atomic_write_json(run.path / "analyze" / "summary.json", a)
    report_step(run, run.config())
    s = json.loads((run.path / "summary.json").read_text())
    assert s["compression"]["sweep_best_ratio"] == 12.5 and s["compression"]["sweep_best"]["bits"] == 4
    html = (run.path / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 8 and "400x" in html
