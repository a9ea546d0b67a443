"""Issue 16, the 2023 paper's six Atari games: the five new configs (they load, their env resolves,
their headers' action counts are the env's), the per-level returns with delta updates over
``analyze.level_episodes`` whole episodes, the README's Atari table (rows from excerpts, the
within-5 % selection) and the training benchmark's package assembly of an old commit."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from run_fixtures import fake_train
from test_report_provenance import _readme_tables

from rl2fpga.cli import main
from rl2fpga.config import RunConfig, load_config
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.run import Run

REPO = Path(__file__).resolve().parent.parent
GAMES = {"spaceinvaders": "SpaceInvaders", "krull": "Krull", "freeway": "Freeway", "robotank": "Robotank", "enduro": "Enduro"}


@pytest.mark.parametrize("name", sorted(GAMES))
def test_game_config_loads_and_its_header_matches_the_env(name: str) -> None:
    import ale_py
    import gymnasium as gym

    from rl2fpga.train.envs import env_spec

    path = REPO / "configs" / f"{name}.yaml"
    cfg = load_config(path)
    assert cfg.name == name and cfg.env.id == f"ALE/{GAMES[name]}-v5"
    gym.register_envs(ale_py)
    env = gym.make(cfg.env.id)  # the game itself, not through rl2fpga's wrappers
    n, meanings = int(env.action_space.n), env.unwrapped.get_action_meanings()
    env.close()
    assert env_spec(cfg.env).n_actions == n  # the id resolves through make_env; the network's output width
    header = path.read_text()
    assert re.search(r"-> dense 512 -> dense (\d+)\n# \((\d+) ALE actions", header).groups() == (str(n), str(n))
    assert ("FIRE exists" in header) == ("FIRE" in meanings) and ("FIRE does not exist" in header) == ("FIRE" not in meanings)
    assert re.search(r"# Random policy: -?[\d.]+ \+- [\d.]+ \(std\) over 10 episodes, seeds 10000\.\.10009", header)


@pytest.mark.parametrize("name", sorted(GAMES))
def test_game_config_evaluates_every_level_on_30_episodes(name: str) -> None:
    cfg = load_config(REPO / "configs" / f"{name}.yaml")
    p, q, a, t = cfg.prune, cfg.quantize, cfg.analyze, cfg.train
    assert (p.method, p.finetune, p.rounds, p.final_sparsity) == ("gradual", "distill", 4, 0.92)
    assert (p.distill_steps, p.distill_episodes, p.distill_temperature, p.keep_return_fraction) == (4000, 5, 0.01, 0.95)
    assert (t.algo, t.network, t.eval_episodes, q.delta_episodes, a.level_episodes) == ("dqn", "atari", 30, 30, 30)
    # Breakout falls back to less sparse levels until the golden agent with delta updates keeps
    # the return (its 53 % level, measured to fit); the others keep the selected level
    assert (q.weight_bits, q.threshold, q.fallback_levels) == (8, 0.01, 2 if name == "breakout" else 0)
    assert cfg.env.max_episode_steps == 4500 and a.frontier is False
    study = {0.001, 0.005, 0.01, 0.05}
    assert study <= set(a.thresholds) if name in ("krull", "spaceinvaders") else 0.01 in a.thresholds
    # the threshold study's returns over the same 30 whole episodes for the paper's two games
    assert a.threshold_episodes == (30 if name in ("krull", "spaceinvaders") else None)


def _level_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str], level_episodes: int | None) -> tuple[Run, list[dict]]:
    """A tiny CartPole run (an untrained 4-16-16-2 Q-network, prune.method none) and the analysis's
    sweep over its levels at T = 0, analysed episodes capped at 5 steps."""
    from rl2fpga.quantize.analyze import _Analysis
    from rl2fpga.train.trainer import load_train_outputs

    cfg = RunConfig()
    cfg.name, cfg.seed, cfg.prune.method = "lv", 0, "none"
    cfg.train.eval_episodes, cfg.quantize.threshold = 3, 0.0
    cfg.analyze.episodes, cfg.analyze.max_steps, cfg.analyze.level_episodes = 1, 5, level_episodes
    run = Run.create(cfg, runs_dir=tmp_path)
    fake_train(run)
    assert main(["prune", str(run.path)]) == 0, capsys.readouterr().err
    _, spec, _ = load_train_outputs(run)
    an = _Analysis(run.path, cfg, spec, None, None, [0.0])  # the sweep reads neither the golden model nor its counts
    return run, an.sparsity_sweep(json.loads((run.path / "prune" / "levels.json").read_text())["levels"])


def test_level_delta_returns_play_level_episodes_whole_episodes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rl2fpga.quantize.prune import load_level
    from rl2fpga.train.evaluate import evaluate, greedy_policy

    run, per_level = _level_sweep(tmp_path, capsys, 4)
    assert [len(lv["delta_returns"]) for lv in per_level] == [4] * len(per_level)
    # T = 0 transmits every change, so the DeltaNetwork acts as the float agent: its returns are the
    # float agent's on the evaluation seeds 10000.., uncapped (analyze.max_steps = 5 does not apply)
    model = load_level(run.path, 0)[0]
    ref = evaluate(greedy_policy(model), run.config().env, 10_000, 4)
    assert per_level[0]["delta_returns"] == ref.returns and max(ref.returns) > 5


def test_level_delta_returns_default_to_analyze_episodes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, per_level = _level_sweep(tmp_path, capsys, None)
    assert [len(lv["delta_returns"]) for lv in per_level] == [1] * len(per_level)
    assert all(r <= 5 for lv in per_level for r in lv["delta_returns"])  # capped at analyze.max_steps, as before


def test_level_episodes_below_one_is_refused() -> None:
    from rl2fpga.config import apply_overrides
    from rl2fpga.validate import validate_config

    for ok in ("null", "30"):
        validate_config(apply_overrides(RunConfig(), [f"analyze.level_episodes={ok}"]), check_env=False)
    with pytest.raises(Rl2fpgaError, match=r"'analyze.level_episodes' = 0 is out of range; it must be >= 1 \(or null"):
        validate_config(apply_overrides(RunConfig(), ["analyze.level_episodes=0"]), check_env=False)


def _excerpt(env: str, dense: float, std: float, levels: list[tuple[float, float | None, float]], algo: str = "dqn") -> dict:
    """The fields of build_summary's summary.json (via the excerpt) that the Atari table reads."""
    return {"env": env, "algo": algo,
            "train": {"eval_return_mean": dense, "eval_return_std": std, "eval_episodes": 25, "random_return_mean": 1.5},
            "levels": [{"level": i, "sparsity": s, "eval_return_mean": dense, "eval_return_mean_delta": d, "significant_fraction": f}
                       for i, (s, d, f) in enumerate(levels)],
            "selected": {"level": 2, "sparsity": 0.81, "eval_return_mean_delta": 15.0, "threshold": 0.01, "weight_bits": 8,
                         "layer_weight_bits": [8, 8, 8, 4, 8]},
            "multiplications": {"reduction": 120.0, "reduction_vs_reference": 125.0}}


def test_atari_table_rows_and_the_within_5_percent_selection(tmp_path: Path) -> None:
    rt = _readme_tables()
    # dense 20 +- 0.5: 5 % (1.0) is the wider margin, so 19.0 keeps and 18.9 does not
    brk = _excerpt("ALE/Breakout-v5", 20.0, 0.5, [(0.0, 19.5, 0.02), (0.53, 19.0, 0.0125), (0.81, 18.9, 0.008), (0.92, None, None)])
    # dense 100 +- 20: one std (20) is wider than 5 %, so 80.0 at 81 % keeps; 79.0 at 92 % does not
    enduro = _excerpt("ALE/Enduro-v5", 100.0, 20.0, [(0.0, 99.0, 0.1), (0.53, 70.0, 0.05), (0.81, 80.0, 0.04), (0.92, 79.0, 0.01)])
    none = _excerpt("ALE/Krull-v5", 100.0, 1.0, [(0.0, 50.0, 0.1)])
    md = rt.render_atari({"enduro": enduro, "breakout": brk, "krull": none, "pend": _excerpt("Pendulum-v1", 1, 1, [], "sac"),
                          "hop": _excerpt("ALE/Pong-v5", 1, 1, [], "sac")})
    rows = [ln for ln in md.splitlines() if ln.startswith("| [")]
    assert [r.split("]")[0] for r in rows] == ["| [Breakout", "| [Enduro", "| [Krull"]  # the paper's order, SAC left out
    b, e, k = rows
    assert "(configs/breakout.yaml)" in b and "20.0 +- 0.1 (25)" in b  # s.e. = 0.5 / sqrt(25)
    assert "| 53.0 %: 19.0 | 80.0x |" in b  # 1 / 0.0125
    assert "| 81.0 %: 80.0 | 25.0x |" in e and "| 4.0 %" not in e  # 1 / 0.04
    assert "| none | - |" in k
    assert "81.0 %: 15.0 | 125.0x | not run |" in b  # the deployed model: its golden reduction vs the dense agent, no size
    assert "0.018 -> 0.009" in b and "20-100x (all games)" in e and "20-100x (all games)" in k
    assert all(r.count("|") == 11 for r in rows)  # ten columns
    assert "| not run | not run |" in e  # no quantize sizes nor co-simulation in its excerpt
    # the deployed model's zero share once quantized and its size counting every stored bit
    brk["compression"] = {"zero_fraction": 0.934, "ratio": 24.87}
    b1 = next(ln for ln in rt.render_atari({"breakout": brk}).splitlines() if ln.startswith("| ["))
    assert "| 81.0 % (93.4 % zero at 8/8/8/4/8 bits): 15.0 | 125.0x | 24.9x |" in b1
    # the engine column from the excerpt's rtl section: cycles vs dense, the bound and the roofline
    brk["rtl"] = {"cycles_median": 1800.0, "cycles_dense": 360000.0, "cycles_bound_median": 600.0,
                  "cycles_roofline_median": 900.0, "cosim_frames": 200, "cosim_mismatches": 0, "mac_mismatches": 0}
    b2 = next(ln for ln in rt.render_atari({"breakout": brk}).splitlines() if ln.startswith("| ["))
    assert ("| 1,800, 1/200 of dense, 3.00x the MAC bound, 2.00x the roofline (200 frames, 0 mismatches, "
            "MAC counters == golden) |") in b2
    brk["rtl"]["mac_mismatches"] = 3
    assert "MAC counters 3 off" in rt.render_atari({"breakout": brk})


def test_atari_table_without_runs_and_in_the_readme(tmp_path: Path) -> None:
    rt = _readme_tables()
    assert "no dqn atari run" in rt.render_atari({"h": _excerpt("Hopper-v5", 1.0, 1.0, [], "sac")}).lower()
    readme = "x\n<!-- readme_tables:atari begin -->\nOLD-NUMBERS\n<!-- readme_tables:atari end -->\n"
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "spaceinvaders.json").write_text(json.dumps(_excerpt("ALE/SpaceInvaders-v5", 300.0, 50.0, [(0.0, 290.0, 0.065)])))
    out = rt.regenerate(readme, tmp_path / "s")
    assert "OLD-NUMBERS" not in out and "| [SpaceInvaders](configs/spaceinvaders.yaml) |" in out and "0.065 -> 0.022" in out
    text = (REPO / "README.md").read_text()
    assert "## Six Atari games (issue 16)" in text and "<!-- readme_tables:atari begin -->" in text


def test_benchmark_assembles_a_commit_that_imports_from_its_own_tree(tmp_path: Path) -> None:
    """benchmarks/train_atari.py --baseline-commit: HEAD's tree, assembled as its pyproject maps it,
    imports from the temporary folder, not from the editable install."""
    sys.path.insert(0, str(REPO))
    try:
        from benchmarks.train_atari import baseline_package, run_child
    finally:
        sys.path.pop(0)
    pkg, src = baseline_package("HEAD", tmp_path / "b")
    got = run_child(pkg, src, "probe")
    assert got["config"] == str(pkg / "rl2fpga" / "config.py")
    assert got["train"] == str(pkg / "rl2fpga" / "train" / "__init__.py")  # train/ mapped in as rl2fpga.train
    assert (src / "configs" / "breakout.yaml").exists()
    assert got["exploration_steps"] == load_config(src / "configs" / "breakout.yaml").train.dqn.exploration_steps > 1
    assert run_child(pkg, src, "probe", sets=["train.dqn.exploration_steps=1"])["exploration_steps"] == 1  # --greedy


def test_benchmark_steady_rate_removes_the_one_time_costs() -> None:
    """--steady: two learning lengths with the same one-time cost C and per-step cost p give 1 / p,
    which neither length's own rate S / (C + p S) does."""
    sys.path.insert(0, str(REPO))
    try:
        from benchmarks.train_atari import steady_rate
    finally:
        sys.path.pop(0)
    one_time, per_step = 4.0, 1 / 300
    steps = [3000, 9000]
    rates = [s / (one_time + per_step * s) for s in steps]
    assert rates[0] < 220 and rates[1] < 270  # each length alone reads low
    assert steady_rate(steps, rates) == pytest.approx(300.0, rel=1e-9)
    assert steady_rate([2000, 6000], [250.0, 250.0]) == pytest.approx(250.0)  # no one-time cost: unchanged


def test_benchmark_times_a_commit_in_the_environment_its_cli_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--baseline-cli-env: the literal os.environ.setdefault calls of the commit's rl2fpga/cli.py
    (read, never run) reach the child; a value this process already has wins, as setdefault does."""
    sys.path.insert(0, str(REPO))
    try:
        from benchmarks.train_atari import baseline_package, cli_environment, run_child
    finally:
        sys.path.pop(0)
    fake = tmp_path / "fake" / "rl2fpga"
    fake.mkdir(parents=True)
    (fake / "cli.py").write_text(
        "import os\n"
        "def _quiet_tf() -> None:\n"
        "    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')\n"
        "    os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '0')\n"
        "    os.environ.setdefault(name_from_somewhere, '1')\n"  # not a literal: ignored
        "    other.setdefault('NOT_ENV', '1')\n"
        "raise SystemExit('never run')\n")
    assert cli_environment(tmp_path / "fake") == {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0"}
    pkg, src = baseline_package("HEAD", tmp_path / "b")
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    assert run_child(pkg, src, "probe")["onednn"] is None
    assert run_child(pkg, src, "probe", env={"TF_ENABLE_ONEDNN_OPTS": "0"})["onednn"] == "0"
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1")
    assert run_child(pkg, src, "probe", env={"TF_ENABLE_ONEDNN_OPTS": "0"})["onednn"] == "1"
    assert cli_environment(REPO).get("TF_ENABLE_ONEDNN_OPTS") == "1"  # today's CLI turns oneDNN on


@pytest.mark.slow
def test_threshold_study_plays_threshold_episodes_whole_episodes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """analyze.threshold_episodes: the selected level's float DeltaNetwork at every T over that
    many whole evaluation episodes (the threshold study); at T = 0 it is the float agent."""
    from rl2fpga.quantize.prune import load_level
    from rl2fpga.train.evaluate import evaluate, greedy_policy

    cfg = RunConfig()
    cfg.name, cfg.seed, cfg.prune.method = "th", 0, "none"
    cfg.train.eval_episodes = 3
    q = cfg.quantize
    q.weight_bits, q.threshold, q.qat_steps, q.calib_episodes, q.delta_episodes, q.check_states = 8, 0.01, 30, 1, 1, 30
    cfg.analyze.episodes, cfg.analyze.max_steps, cfg.analyze.level_episodes = 1, 5, 1
    cfg.analyze.thresholds, cfg.analyze.threshold_episodes, cfg.analyze.frontier = [0.0, 0.05], 3, False
    run = Run.create(cfg, runs_dir=tmp_path)
    fake_train(run)
    for step in ("prune", "quantize", "analyze"):
        assert main([step, str(run.path)]) == 0, capsys.readouterr().err
    per_t = json.loads((run.path / "analyze" / "summary.json").read_text())["per_threshold"]
    assert sorted(per_t) == ["0", "0.01", "0.05"]
    assert all(len(row["float_delta_returns"]) == 3 for row in per_t.values())
    ref = evaluate(greedy_policy(load_level(run.path, 0)[0]), run.config().env, 10_000, 3)
    assert per_t["0"]["float_delta_returns"] == ref.returns and max(ref.returns) > 5  # uncapped (max_steps = 5)


def _bench_import(name: str):  # noqa: ANN202
    sys.path.insert(0, str(REPO))
    try:
        return __import__(f"benchmarks.{name}", fromlist=["_"])
    finally:
        sys.path.pop(0)


def test_benchmark_cpu_clock_counts_live_child_processes() -> None:
    """The training benchmark's CPU clock includes children still running (the environment worker
    processes of vector_mode async), not only those already waited for."""
    import subprocess
    import time

    import psutil

    cpu_seconds = _bench_import("_marks").cpu_seconds
    burn = "import sys, time\nt = time.process_time()\nwhile time.process_time() - t < 0.4: pass\nsys.stdin.read()"
    c0 = cpu_seconds()
    child = subprocess.Popen([sys.executable, "-c", burn], stdin=subprocess.PIPE)
    try:
        proc = psutil.Process(child.pid)
        while sum(proc.cpu_times()[:2]) < 0.4:  # the child has burnt its CPU and now waits
            time.sleep(0.02)
        assert cpu_seconds() - c0 >= 0.4
    finally:
        child.communicate(b"")
    assert child.returncode == 0


def test_step_marks_read_the_clocks_where_the_runs_bar_passes_each_mark() -> None:
    """--in-run: the first step count at or past each mark of the bar whose total is the run's,
    with the clock then; other bars are ignored, tqdm's own update still runs and is restored."""
    import io

    from tqdm import std as tqdm_std
    from tqdm.auto import tqdm

    marks_mod = _bench_import("_marks")
    ticks = iter(range(0, 1000, 10))  # each clock read is 10 s after the one before
    orig = tqdm_std.tqdm.update
    run, other = tqdm(total=100, file=io.StringIO()), tqdm(total=7, disable=True)  # drawn / not drawn
    with marks_mod.StepMarks(100, [20, 100], clock=lambda: float(next(ticks))) as m:
        for _ in range(13):  # 8 agent steps per iteration: counts 8, 16, 24, ..., 104
            run.update(8)
            other.update(50)  # a bar of another total never counts
        assert m.at[20][:2] == (24, 0.0) and m.at[100][:2] == (104, 10.0)
        assert m.rate(20, 100) == pytest.approx((104 - 24) / 10.0)
        assert m.cpu_ms(20, 100) >= 0.0
    assert tqdm_std.tqdm.update is orig and run.n == 104  # tqdm's update ran; restored afterwards
    short = marks_mod.StepMarks(100, [20, 100])
    with short:
        run2 = tqdm(total=100, disable=True)
        run2.update(30)
    with pytest.raises(RuntimeError, match=r"never reached step marks \[100\]"):
        short.rate(20, 100)
    with pytest.raises(ValueError, match="must rise"):
        marks_mod.StepMarks(100, [50, 20])


@pytest.mark.slow
def test_benchmark_child_times_a_commits_loop_in_one_run(tmp_path: Path) -> None:
    """--in-run with --baseline-commit: the child runs that tree's own training loop once on its
    configs/breakout.yaml and reads the clocks at its progress bar (HEAD's tree: the vector loop)."""
    train_atari = _bench_import("train_atari")
    pkg, src = train_atari.baseline_package("HEAD", tmp_path / "b")
    got = train_atari.run_child(pkg, src, "marks", sets=["train.dqn.exploration_steps=1"], marks=(64, 16, 48))
    assert got["train"] == str(pkg / "rl2fpga" / "train" / "__init__.py")
    rate, cpu_ms = got["marks"]
    assert rate > 0 and cpu_ms > 0


def test_threshold_study_reaches_the_games_block_from_the_runs_analyze(tmp_path: Path) -> None:
    """The excerpt keeps analyze's per-threshold rows (sorted by T, episodes counted from the
    returns); the game's README block shows them as a table; fewer than three thresholds: none."""
    rt = _readme_tables()
    run = tmp_path / "krull"
    (run / "analyze").mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps({"name": "krull", "provenance": {}}))
    rows = {str(t): {"T": t, "T_int": [int(t * 200)] * 5, "golden_fraction": f, "float_fraction": f * 1.1,
                     "float_delta_return_mean": r, "float_delta_return_std": 50.0, "float_delta_returns": [r] * 30,
                     "golden_delta_return_mean": (r - 1 if t in (0.0, 0.01) else None)}
            for t, f, r in [(0.05, 0.004, 2500.0), (0.0, 0.05, 3300.0), (0.01, 0.018, 3100.0), (0.001, 0.03, 3250.0)]}
    (run / "analyze" / "summary.json").write_text(json.dumps({"per_threshold": rows, "episodes": 2}))
    e = rt.excerpt(run)
    assert [r["T"] for r in e["threshold_study"]] == [0.0, 0.001, 0.01, 0.05]
    assert {r["episodes"] for r in e["threshold_study"]} == {30}
    md = rt.render("krull", e)
    assert "over 30 whole episodes" in md
    assert "golden return over analyze's 2 recorded episodes (each capped at analyze.max_steps" in md  # not the 30
    assert "| 0.05 | [10, 10, 10, 10, 10] | 0.40 % | 250.0x | 2,500.0 +- 50.0 | - |" in md
    assert "| 0.01 | [2, 2, 2, 2, 2] | 1.80 % | 55.6x | 3,100.0 +- 50.0 | 3,099.0 |" in md
    (run / "analyze" / "summary.json").write_text(json.dumps({"per_threshold": {"0": rows["0.0"], "0.01": rows["0.01"]}}))
    assert rt.excerpt(run)["threshold_study"] is None and "Threshold study" not in rt.render("krull", rt.excerpt(run))
