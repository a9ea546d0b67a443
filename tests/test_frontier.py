"""The compression frontier (quantize/frontier.py): Pareto selection on hand-made points, and on a
tiny CartPole run (untrained 16-16 teacher, one 4-4 student and its pruned copy, 8- and 4-bit
weights, every storage format) that every front point's stored bits are the bits of the memory
images the engine generator writes for it, that the front is exactly the non-dominated points,
and that the report draws it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from run_fixtures import fake_train

from rl2fpga.quantize.frontier import front, pareto_indices
from rl2fpga.sweep import pareto_front

MAX_MIN_MIN = (True, False, False)  # (return, bytes, multiplications)


def test_a_dominated_point_is_dropped() -> None:
    pts = [(500.0, 100.0, 50.0), (490.0, 120.0, 60.0), (400.0, 80.0, 70.0)]
    # (490, 120, 60) is worse than (500, 100, 50) in all three
    assert pareto_indices(pts, MAX_MIN_MIN) == [0, 2]
    # better in one, equal in the others is enough to dominate
    assert pareto_indices([(500.0, 100.0, 50.0), (500.0, 100.0, 51.0)], MAX_MIN_MIN) == [0]


def test_ties_stay_in_the_pareto_set_and_the_frontier_keeps_the_first() -> None:
    pts = [(500.0, 100.0, 50.0), (500.0, 100.0, 50.0), (10.0, 200.0, 90.0)]
    assert pareto_indices(pts, MAX_MIN_MIN) == [0, 1]
    points = [{"id": i, "return_mean": r, "stored_bits": b, "significant_mean": m}
              for i, (r, b, m) in zip(("auto", "dense", "csc"), pts, strict=True)]
    assert front(points) == ["auto"]  # the two formats of equal size: one point, the first


def test_the_third_objective_keeps_a_point_two_would_drop() -> None:
    pts = [(500.0, 100.0, 50.0), (400.0, 150.0, 10.0)]  # worse return and bytes, fewer multiplications
    assert pareto_indices(pts, MAX_MIN_MIN) == [0, 1]
    assert pareto_indices([p[:2] for p in pts], (True, False)) == [0]


def test_failed_points_are_off_the_front() -> None:
    points = [{"id": "a", "return_mean": 1.0, "stored_bits": 10, "significant_mean": 5.0},
              {"id": "b", "error": "float32 QKeras cannot be exact"}]
    assert front(points) == ["a"]


def test_the_ray_sweep_uses_the_same_selection() -> None:
    pts = [(100.0, 500.0), (50.0, 480.0), (60.0, 470.0), (50.0, 480.0)]  # (bytes, return)
    assert pareto_front(pts) == pareto_indices([(y, x) for x, y in pts], (True, False)) == [0, 1, 3]


# ----------------------------------------------------------------------------- a tiny run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rl2fpga.cli import main
    from rl2fpga.config import RunConfig
    from rl2fpga.run import Run

    cfg = RunConfig()
    cfg.name = "fr"
    p, q, a = cfg.prune, cfg.quantize, cfg.analyze
    p.method, p.student_hidden, p.student_dagger_rounds, p.student_prune_rounds, p.rate = "student", [[4, 4]], 1, 1, 0.5
    p.distill_steps, p.distill_episodes, p.distill_max_steps, p.keep_return_fraction = 30, 1, 40, 0.0
    q.weight_bits, q.qat_steps, q.calib_episodes, q.delta_episodes, q.check_states = 8, 30, 1, 3, 30
    a.episodes, a.max_steps, a.frontier_bits = 1, 30, [8, 4]
    run = Run.create(cfg, runs_dir=tmp_path_factory.mktemp("frontier"))
    fake_train(run)
    for step in ("prune", "quantize", "analyze", "report"):
        assert main([step, str(run.path)]) == 0, step
    return run.path


def _summary(run_path: Path) -> dict[str, Any]:
    return json.loads((run_path / "summary.json").read_text())["compression"]


@pytest.mark.slow
def test_every_level_width_and_format_is_a_point(tiny_run: Path) -> None:
    c = _summary(tiny_run)
    levels = json.loads((tiny_run / "prune" / "levels.json").read_text())["levels"]
    assert len(levels) == 3  # the teacher, the 4-4 student, the pruned student
    got = sorted((p["level"], p["weight_bits"], p["format"]) for p in c["frontier_candidates"])
    assert got == sorted((lv["level"], b, f) for lv in levels for b in (8, 4) for f in ("auto", "csc", "rel", "bitmap", "dense"))
    assert c["frontier_setup"]["episodes"] == 3 and c["frontier_setup"]["dense"]["fp32_bits"] == (4 * 16 + 16 + 16 * 16 + 16 + 16 * 2 + 2) * 32
    # the deployed model is the quantize step's, with its size and its return with delta updates
    q = json.loads((tiny_run / "quantize" / "summary.json").read_text())
    sel = [p for p in c["frontier_candidates"] if p.get("selected")]
    assert len(sel) == 1 and sel[0]["level"] == q["prune_level"] and sel[0]["weight_bits"] == 8
    assert sel[0]["stored_bits"] == q["compression"]["stored_bits"]
    assert sel[0]["return_mean"] == q["eval_return_mean_delta"]


@pytest.mark.slow
def test_front_points_store_the_bits_of_their_memory_images(tiny_run: Path, tmp_path: Path) -> None:
    from rl2fpga.core.golden import GoldenModel
    from rl2fpga.hls.engine.formats import measure_images
    from rl2fpga.hls.engine.generator import generate

    c = _summary(tiny_run)
    assert c["frontier"]
    for p in c["frontier"]:
        gm = GoldenModel.load(tiny_run / "analyze" / p["golden"])
        assert [la.w_fmt.bits for la in gm.layers] == p["layer_weight_bits"]
        d = generate(gm, tmp_path / p["id"], lanes=4, fmt=p["format"])
        image_bits = sum(measure_images(tmp_path / p["id"]).values())
        std = gm.standardize.stored_bits(gm.in_fmt.bits) if gm.standardize is not None else 0
        assert p["level"] == 0 or std > 0  # students read standardised inputs
        assert image_bits == p["image_bits"] and image_bits + std == p["stored_bits"], p["id"]
        assert {la.name: la.format for la in d.layers} == p["formats"]
        assert p["ratio"] == pytest.approx(p["dense_fp32_bits"] / p["stored_bits"])
        assert p["ratio_values_only"] == pytest.approx(p["dense_fp32_bits"] / p["values_only_bits"])


@pytest.mark.slow
def test_front_points_return_what_their_golden_model_plays(tiny_run: Path) -> None:
    """Replaying a front point's saved golden model with delta updates on the frontier's seeds
    gives its recorded returns and multiplications."""
    import numpy as np

    from rl2fpga.config import RunConfig
    from rl2fpga.core.golden import GoldenModel
    from rl2fpga.quantize.quantizer import GoldenPolicy, run_stateful

    c = _summary(tiny_run)
    setup, p = c["frontier_setup"], c["frontier"][0]
    gm = GoldenModel.load(tiny_run / "analyze" / p["golden"])
    gm.set_thresholds(p["threshold_int"])
    pol = GoldenPolicy(gm, True)
    ev = run_stateful(pol, RunConfig().env, setup["seed"], setup["episodes"])
    assert ev["mean"] == p["return_mean"] and len(ev["returns"]) == p["episodes"] == 3
    assert float(np.mean([st.total_macs for st in pol.stats])) == pytest.approx(p["significant_mean"])


@pytest.mark.slow
def test_the_front_is_exactly_the_non_dominated_points(tiny_run: Path) -> None:
    c = _summary(tiny_run)
    cands = [p for p in c["frontier_candidates"] if "error" not in p]
    key = [("return_mean", 1), ("stored_bits", -1), ("significant_mean", -1)]

    def dominates(a: dict[str, Any], b: dict[str, Any]) -> bool:
        ge = all(s * a[k] >= s * b[k] for k, s in key)
        return ge and any(s * a[k] > s * b[k] for k, s in key)

    front_ids = [p["id"] for p in c["frontier"]]
    assert sorted(front_ids) == sorted(p["id"] for p in cands if p["on_front"])
    assert [p["stored_bits"] for p in c["frontier"]] == sorted(p["stored_bits"] for p in c["frontier"])
    for p in cands:
        beaten = any(dominates(q, p) for q in cands)
        if p["on_front"]:
            assert not beaten, p["id"]
        else:  # dominated, or equal in every objective to a front point (another format of the same size)
            assert beaten or any(all(q[k] == p[k] for k, _ in key) for q in c["frontier"]), p["id"]


@pytest.mark.slow
def test_the_report_draws_the_frontier(tiny_run: Path) -> None:
    html = (tiny_run / "report.html").read_text()
    i = html.index("<h2>Compression frontier: return with delta updates vs stored bytes")
    assert html[i:].split("</section>")[0].count("data:image/png;base64,") == 1
    assert "Compression frontier: the Pareto points" in html
    assert (tiny_run / "analyze" / "frontier.png").stat().st_size > 1000
    rows = [line for line in (tiny_run / "analyze" / "frontier.md").read_text().splitlines() if line.startswith("| ")]
    assert len(rows) - 1 == len(_summary(tiny_run)["frontier_candidates"])  # a header, then one row a point


@pytest.mark.parametrize(("key", "value", "needle"), [("frontier_bits", [1], "analyze.frontier_bits has 1"),
                                                      ("frontier_formats", ["zip"], "analyze.frontier_formats has 'zip'"),
                                                      ("frontier_formats", [], "analyze.frontier_formats is empty"),
                                                      ("frontier_levels", [7], "analyze.frontier_levels has level 7")])
def test_bad_frontier_settings_are_one_line_errors(key: str, value: Any, needle: str) -> None:
    from rl2fpga.config import RunConfig
    from rl2fpga.errors import Rl2fpgaError
    from rl2fpga.quantize.frontier import check_frontier_config

    cfg = RunConfig()
    check_frontier_config(cfg, [{"level": 0}, {"level": 1}])  # the defaults are fine
    setattr(cfg.analyze, key, value)
    with pytest.raises(Rl2fpgaError, match=needle) as e:
        check_frontier_config(cfg, [{"level": 0}, {"level": 1}])
    assert "\n" not in str(e.value)


def _readme_tables() -> Any:
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "scripts" / "readme_tables.py"
    spec = importlib.util.spec_from_file_location("readme_tables_frontier", path)
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def test_readme_block_and_plot_come_from_the_excerpt(tmp_path: Path) -> None:
    rt = _readme_tables()
    pt = {"id": "L01_b4_auto", "method": "student 8x8", "network": "4-8-8-2", "level": 1, "weight_bits": 4, "format": "auto",
          "formats": {"fc1": "dense", "out": "csc"}, "stored_bits": 777, "stored_bytes": 97.125, "ratio": 123.4,
          "ratio_values_only": 150.5, "significant_mean": 54.25, "return_mean": 498.5, "return_se": 1.25, "keeps": True,
          "on_front": True, "selected": True}
    off = {**pt, "id": "L00_b8_csc", "level": 0, "weight_bits": 8, "format": "csc", "stored_bytes": 9000.0, "on_front": False}
    setup = {"threshold": 0.02, "episodes": 30, "seed": 10000, "keep_return_fraction": 0.95, "paper_ratio": 400.0,
             "dense": {"stored_bytes": 18440.0, "return_mean": 500.0}}
    e = {"env": "CartPole-v1", "compression": {"frontier": [pt], "frontier_candidates": [pt, off], "frontier_setup": setup}}
    md = rt.render_frontier("fake", e)
    assert "| L01_b4_auto (deployed) | student 8x8 | 4-8-8-2 | 4 | fc1 dense, out csc | 97.1 | 123.4x (150.5x) | 54.2 | 498.5 +- 1.2 |" in md
    assert "L00_b8_csc" not in md and "2 points" in md and "46.1 bytes" in md  # 18,440 / 400
    assert "docs/summaries/fake_frontier.png" in md
    assert "No compression frontier" in rt.render_frontier("fake", {"compression": {}})
    (tmp_path / "fake.json").write_text(json.dumps(e))
    readme = "x\n<!-- readme_tables:fake-frontier begin -->\nold\n<!-- readme_tables:fake-frontier end -->\n"
    assert rt.regenerate(readme, tmp_path) == readme.replace("old\n", md + "\n")
    (png,) = rt.write_plots(tmp_path)
    assert png.name == "fake_frontier.png" and png.read_bytes()[:4] == b"\x89PNG"
