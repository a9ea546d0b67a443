"""The report's provenance, checks, latency, capacity and precisions, and the README tables
regenerated from the committed summary excerpt."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from test_report import _fake_run

from rl2fpga.config import apply_overrides
from rl2fpga.fsutil import atomic_write_json
from rl2fpga.run import Run
from rl2fpga.stages.report import report_step

REPO = Path(__file__).resolve().parent.parent


def test_report_has_provenance_checks_latency_and_precisions(tmp_path: Path) -> None:
    run = _fake_run(tmp_path)
    report_step(run, run.config())
    s = json.loads((run.path / "summary.json").read_text())
    prov = s["provenance"]
    assert prov["packages"]["tensorflow-cpu"] == metadata.version("tensorflow-cpu")
    assert prov["machine"]["cores"] >= 1 and prov["machine"]["python"] == ".".join(map(str, sys.version_info[:3]))
    if shutil.which("git") and (REPO / ".git").exists():
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
        assert prov["git"]["commit"] == head
    checks = {c["check"].split(" ")[0]: c for c in s["checks"]}
    assert checks["QKeras"]["count"] == 1000 and checks["QKeras"]["verdict"] == "pass"
    assert checks["hls4ml"]["count"] == 500 and checks["hls4ml"]["mismatches"] == 0
    assert s["latency"]["host_us"]["p50"] == 376.0 and s["latency"]["engine_cycles"]["median"] == 80
    assert s["latency"]["engine_us"]["median"] == pytest.approx(0.8)  # 80 cycles at 100 MHz
    html = (run.path / "report.html").read_text()
    for text in ("QKeras model == golden", "376", "assumed", "xc7z020", "ap_fixed&lt;8,1&gt;", "name: fake",
                 metadata.version("hls4ml"), "Training curve"):
        assert text in html, text


def test_a_failed_check_reads_fail(tmp_path: Path) -> None:
    run = _fake_run(tmp_path)
    atomic_write_json(run.dir("hls") / "summary.json", {"backend": "Vitis", "csim_frames": 500, "csim_mismatches": 3})
    report_step(run, run.config())
    s = json.loads((run.path / "summary.json").read_text())
    row = next(c for c in s["checks"] if c["check"].startswith("hls4ml"))
    assert row["verdict"] == "FAIL" and row["mismatches"] == 3


def test_capacity_follows_the_part_in_the_config(tmp_path: Path) -> None:
    run = _fake_run(tmp_path)
    cfg = apply_overrides(run.config(), ["hls.part=xczu3eg-sbva484-1-e"])
    Run.create(cfg, path=run.path)
    report_step(run, cfg)
    cap = json.loads((run.path / "summary.json").read_text())["capacity"]
    assert cap["device"] == "xczu3eg"
    lut = next(r for r in cap["rows"] if r["resource"] == "lut")
    assert lut["available"] == 70_560 and lut["used"] == 1234
    cfg = apply_overrides(cfg, ["hls.part=xcvu9p-flga2104-2-i"])  # not in the table: shown, not guessed
    report_step(run, cfg)
    cap = json.loads((run.path / "summary.json").read_text())["capacity"]
    assert cap["known"] is False and all(r["available"] is None for r in cap["rows"])


def _readme_tables():  # noqa: ANN202
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import readme_tables
    finally:
        sys.path.pop(0)
    return readme_tables


def _fake_excerpt(tmp_path: Path):  # noqa: ANN202
    """The readme_tables module and the excerpt of a reported fake run."""
    rt = _readme_tables()
    run = _fake_run(tmp_path)
    report_step(run, run.config())
    return rt, rt.excerpt(run.path)


def test_readme_tables_are_regenerated_from_the_committed_excerpt() -> None:
    rt = _readme_tables()
    text = (REPO / "README.md").read_text()
    excerpts = sorted((REPO / "docs" / "summaries").glob("*.json"))
    assert excerpts, "docs/summaries/*.json is missing"
    for e in excerpts:
        assert f"<!-- readme_tables:{e.stem} begin -->" in text, e.stem
    assert rt.regenerate(text) == text, "README.md differs from docs/summaries; run python scripts/readme_tables.py"


def test_readme_table_quotes_the_excerpt(tmp_path: Path) -> None:
    rt, e = _fake_excerpt(tmp_path)
    md = rt.render("fake", e)
    assert "**20.0x fewer**" in md and "**32.0x**" in md and "1,234 LUT" in md
    assert e["measured"]["machine"]["cpu"] in md
    readme = "x\n<!-- readme_tables:fake begin -->\nold numbers\n<!-- readme_tables:fake end -->\ny\n"
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "fake.json").write_text(json.dumps(e))
    out = rt.regenerate(readme, tmp_path / "s")
    assert "old numbers" not in out and md in out and out.startswith("x\n") and out.endswith("y\n")


def test_mujoco_table_has_a_row_per_sac_excerpt(tmp_path: Path) -> None:
    rt = _readme_tables()

    def exc(env: str, algo: str, dense: float, std: float, delta: float, ratio: float) -> dict:
        return {"env": env, "algo": algo,
                "train": {"eval_return_mean": dense, "eval_return_std": std, "eval_episodes": 25, "random_return_mean": -3.0},
                "selected": {"network": "5-8-8-2", "weight_bits": 8, "eval_return_mean_delta": delta},
                "compression": {"ratio": ratio, "ratio_values_only": ratio + 1,
                                "frontier": [{"id": "L01_b4_auto", "keeps": True, "stored_bits": 10, "ratio": 2 * ratio, "return_mean": 7.0},
                                             {"id": "L01_b2_auto", "keeps": False, "stored_bits": 5, "ratio": 4 * ratio, "return_mean": 1.0}]},
                "multiplications": {"significant_mean": 12.5, "reference_dense": 4000},
                "hls": {"csim_mismatches": 0}, "rtl": {"cosim_mismatches": 0, "cycles_median": 77, "lanes": 4},
                "board": {"action_mismatches": 1}}

    md = rt.render_mujoco({"b": exc("Walker2d-v5", "sac", 200.0, 50.0, 190.0, 150.0),
                           "a": exc("Ant-v5", "sac", 400.0, 10.0, 300.0, 99.0),
                           "c": exc("CartPole-v1", "dqn", 500.0, 0.0, 500.0, 10.0)})
    rows = [ln for ln in md.splitlines() if ln.startswith("| [")]
    assert [r.split("]")[0] for r in rows] == ["| [Ant-v5", "| [Walker2d-v5"]  # sorted by env, DQN left out
    walker = rows[1]
    assert "200.0 +- 10.0" in walker  # s.e. = 50 / sqrt(25)
    assert "190.0 (95.0 %)" in walker and "**150.0x** (151.0x)" in walker
    assert "L01_b4_auto: 300.0x" in walker and "L01_b2_auto" not in walker  # the smallest point that keeps the return
    assert "0 / 0 / 1" in walker and "12.5 of 4,000" in walker and "77 (4 lanes)" in walker
    readme = "x\n<!-- readme_tables:mujoco begin -->\nOLD-NUMBERS\n<!-- readme_tables:mujoco end -->\n"
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "w.json").write_text(json.dumps(exc("Walker2d-v5", "sac", 200.0, 50.0, 190.0, 150.0)))
    out = rt.regenerate(readme, tmp_path / "s")
    assert "OLD-NUMBERS" not in out and "[Walker2d-v5](configs/w.yaml)" in out


def test_a_run_stopped_at_analyze_names_its_missing_steps_instead_of_not_run_rows(tmp_path: Path) -> None:
    rt, e = _fake_excerpt(tmp_path)
    full = rt.render("fake", e)
    assert "hls4ml C simulation vs golden" in full and "stops before them): hls" not in full
    e["timings_s"] = {"train": 10.0, "prune": 20.0, "quantize": 5.0, "analyze": 7.0}
    for key in ("hls", "rtl", "board", "backends"):  # what a run stopped at analyze has of them
        e[key] = {}
    short = rt.render("fake", e)
    assert "not run frames" not in short and "not run LUT" not in short  # no rows of "not run" figures
    for figure in ("hls4ml C simulation", "RTL co-simulation", "yosys", "closed loop", "host latency"):
        assert figure not in short, figure
    assert "Not run (the command stops before them): hls, rtl, cosim, board, da4ml." in short
    assert "QKeras == golden" in short and "train 10 s, prune 20 s" in short
