"""The typed run folder (rl2fpga.artifacts), the one rollout loop (rl2fpga.train.rollout) and
the import graph of rl2fpga/ (no cycle through a function-level import).

The rollout tests compare the callers of the new loop with the loops they replaced, written
out here as they were (seeding, step order, max_steps and step budgets), on the same seeds."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rl2fpga.artifacts import (
    STEP_ORDER,
    BoardSummary,
    CosimFrames,
    PruneLevels,
    QuantizeSummary,
    RunArtifacts,
    RunLayout,
    TrainSummary,
    read_json,
)
from rl2fpga.config import EnvConfig, RunConfig
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.run import Run

REPO = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------- layout


def test_layout_names_the_documented_run_folder(tmp_path: Path) -> None:
    lay = RunLayout(tmp_path / "r")
    r = tmp_path / "r"
    assert lay.config == r / "config.yaml" and lay.summary == r / "summary.json" and lay.report_html == r / "report.html"
    assert lay.train_model == r / "train/model.keras" and lay.train_eval == r / "train/eval.json"
    assert lay.prune_levels == r / "prune/levels.json" and lay.prune_selected == r / "prune/selected.json"
    assert lay.quantize_golden == r / "quantize/golden" and lay.quantize_formats == r / "quantize/golden/formats.json"
    assert lay.rtl_design == r / "rtl/design.json" and lay.cosim_latency == r / "cosim/latency.json"
    assert lay.board_summary_for("emulator") == r / "board/summary_emulator.json"
    assert lay.summary_of("da4ml") == r / "da4ml/summary.json" and lay.done_marker("hls") == r / "hls/.done"
    assert TrainSummary.path(lay) == r / "train/summary.json" and CosimFrames.path(lay) == r / "cosim/frames.json"
    assert STEP_ORDER[0] == "train" and STEP_ORDER[-1] == "report" and len(set(STEP_ORDER)) == 10


def test_artifact_round_trip_keeps_the_json_on_disk(tmp_path: Path) -> None:
    lay = RunLayout(tmp_path)
    doc = {"prune_level": 3, "sparsity": 0.488, "compression": {"ratio": 32.0}, "threshold_int": [3, 1, 0]}
    p = QuantizeSummary(doc).save(lay)
    assert p == tmp_path / "quantize" / "summary.json"
    assert json.loads(p.read_text()) == doc  # the document, not a wrapper around it
    back = QuantizeSummary.load(lay)
    assert back is not None and back.data == doc and back.compression == {"ratio": 32.0}
    assert back.get("compression.ratio") == 32.0 and back.get("nothing.here", default=7) == 7


def test_board_summary_is_kept_per_target_and_as_latest(tmp_path: Path) -> None:
    lay = RunLayout(tmp_path)
    (tmp_path / "board").mkdir()
    BoardSummary({"target": "emulator", "return_mean": 5.0}).save_for_target(lay)
    BoardSummary({"target": "reference", "return_mean": 7.0}).save_for_target(lay)
    assert read_json(tmp_path / "board" / "summary_emulator.json")["return_mean"] == 5.0
    assert read_json(tmp_path / "board" / "summary.json")["target"] == "reference"


def test_missing_and_corrupt_artifacts(tmp_path: Path) -> None:
    lay = RunLayout(tmp_path)
    assert PruneLevels.load(lay) is None  # the report shows it as not run
    with pytest.raises(Rl2fpgaError) as e:
        PruneLevels.require(lay)
    msg = str(e.value)
    assert "\n" not in msg and "prune/levels.json is missing" in msg and f"rl2fpga prune {tmp_path}" in msg
    (tmp_path / "prune").mkdir()
    (tmp_path / "prune" / "levels.json").write_text("{not json")
    assert PruneLevels.load(lay) is None
    with pytest.raises(Rl2fpgaError, match="corrupt"):
        PruneLevels.require(lay)


def test_run_artifacts_skip_stale_steps(tmp_path: Path) -> None:
    lay = RunLayout(tmp_path)
    TrainSummary({"eval_return_mean": 1.0}).save(lay)
    QuantizeSummary({"sparsity": 0.5}).save(lay)
    a = RunArtifacts.load(lay)
    assert a.train is not None and a.quantize is not None and a.board is None
    b = RunArtifacts.load(lay, skip={"quantize"})
    assert b.train is not None and b.quantize is None


def test_run_uses_the_layout(tmp_path: Path) -> None:
    run = Run.create(RunConfig(name="lay"), runs_dir=tmp_path)
    assert run.layout.config.exists() and run.layout.root == run.path
    run.dir("train")
    run.mark_done("train", 1.5)
    assert run.layout.done_marker("train").exists() and run.timings() == {"train": 1.5}


# ---------------------------------------------------------------------------- rollout


class Wobble:
    """A deterministic policy that depends on the observation and on its own state (so a wrong
    reset, a skipped step or a reordered observation changes the episodes)."""

    def __init__(self, continuous: bool = False):
        self.t = 0
        self.continuous = continuous
        self.seen: list[float] = []

    def reset(self) -> None:
        self.t = 0

    def __call__(self, obs: np.ndarray) -> Any:
        self.t += 1
        self.seen.append(float(np.sum(obs)))
        if self.continuous:
            return np.array([np.clip(np.sin(self.t) - obs[2], -2, 2)], np.float32)
        return int((obs[2] + 0.3 * obs[3] + 0.01 * np.sin(self.t)) > 0)


def _old_run_stateful(policy: Any, env_cfg: EnvConfig, seed: int, episodes: int, max_steps: int | None) -> dict[str, Any]:
    """quantize.quantizer.run_stateful before the rollout (commit 32510d1)."""
    from rl2fpga.train.envs import make_env

    env = make_env(env_cfg, seed, training=False)
    returns, lengths = [], []
    try:
        for i in range(episodes):
            obs, _ = env.reset(seed=seed + i)
            policy.reset()
            total, n = 0.0, 0
            while max_steps is None or n < max_steps:
                obs, r, term, trunc, _ = env.step(policy(obs))
                total += float(r)
                n += 1
                if term or trunc:
                    break
            returns.append(total)
            lengths.append(n)
    finally:
        env.close()
    return {"returns": returns, "mean": float(np.mean(returns)), "std": float(np.std(returns)), "lengths": lengths}


def _old_evaluate(policy: Any, env_cfg: EnvConfig, seed: int, episodes: int, max_steps: int | None) -> tuple[list[float], list[int], list[np.ndarray]]:
    """train.evaluate.run_episode / evaluate before the rollout: numpy's sum of the rewards."""
    from rl2fpga.train.envs import make_env

    env = make_env(env_cfg, seed, training=False)
    rets, lens, first_obs = [], [], []
    try:
        for i in range(episodes):
            obs, _ = env.reset(seed=seed + i)
            rewards, steps, observations = [], 0, []
            while max_steps is None or steps < max_steps:
                action = policy(obs)
                observations.append(obs)
                obs, reward, terminated, truncated, _ = env.step(action)
                rewards.append(float(reward))
                steps += 1
                if terminated or truncated:
                    break
            rets.append(float(np.asarray(rewards, np.float64).sum()))
            lens.append(steps)
            first_obs.append(np.stack(observations))
    finally:
        env.close()
    return rets, lens, first_obs


@pytest.mark.parametrize("env_id,max_steps", [("CartPole-v1", None), ("CartPole-v1", 30), ("Pendulum-v1", 57)])
def test_stateful_episodes_equal_the_old_loop(env_id: str, max_steps: int | None) -> None:
    from rl2fpga.quantize.quantizer import run_stateful

    cfg = EnvConfig(id=env_id)
    cont = env_id == "Pendulum-v1"
    old_pol, new_pol = Wobble(cont), Wobble(cont)
    old = _old_run_stateful(old_pol, cfg, 11, 3, max_steps)
    new = run_stateful(new_pol, cfg, 11, 3, max_steps)
    assert new == old  # returns summed the same way, bit for bit
    assert new_pol.seen == old_pol.seen  # the same observations, in the same order
    if max_steps is not None:
        assert max(new["lengths"]) <= max_steps
    if cont:
        assert new["lengths"] == [max_steps] * 3 and len(set(new["returns"])) == 3  # float rewards, reseeded


@pytest.mark.parametrize("env_id,max_steps", [("CartPole-v1", None), ("Pendulum-v1", 40)])
def test_evaluate_and_record_equal_the_old_loop(env_id: str, max_steps: int | None) -> None:
    from rl2fpga.train.evaluate import evaluate, record_episode

    cfg = EnvConfig(id=env_id)
    cont = env_id == "Pendulum-v1"
    rets, lens, obs = _old_evaluate(Wobble(cont), cfg, 5, 3, max_steps)
    res = evaluate(Wobble(cont), cfg, 5, 3, max_steps)
    assert res.returns == rets and res.lengths == lens
    ep = record_episode(Wobble(cont), cfg, 6, max_steps)
    assert np.array_equal(ep.observations, _old_evaluate(Wobble(cont), cfg, 6, 1, max_steps)[2][0])
    assert len(ep.actions) == len(ep.rewards) == len(ep.observations)


def _old_record_env(env_cfg: EnvConfig, n_frames: int, seed: int, max_episode_steps: int) -> tuple[np.ndarray, list[int]]:
    """train.frames.record_env before the rollout, for vector observations (no FIRE)."""
    from rl2fpga.train.envs import make_env

    env = make_env(env_cfg, seed, training=False)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    frames, starts, steps = [], [0], 0
    try:
        while len(frames) < n_frames:
            frames.append(np.array(obs, dtype=np.float32))
            a = int(rng.integers(env.action_space.n))
            obs, _, term, trunc, _ = env.step(a)
            steps += 1
            if term or trunc or steps >= max_episode_steps:
                obs, _ = env.reset()
                steps = 0
                if len(frames) < n_frames:
                    starts.append(len(frames))
    finally:
        env.close()
    return np.stack(frames), starts


@pytest.mark.parametrize("cap", [10_000, 13])
def test_recorded_frames_equal_the_old_loop(cap: int) -> None:
    from rl2fpga.train.frames import record_env

    cfg = EnvConfig(id="CartPole-v1")
    old_frames, old_starts = _old_record_env(cfg, 150, 3, cap)
    frames, starts = record_env(cfg, 150, 3, max_episode_steps=cap)
    assert np.array_equal(frames, old_frames) and starts == old_starts
    assert len(starts) > 1  # several episodes: the unseeded resets are exercised
    if cap == 13:
        assert starts[:3] == [0, 13, 26]


def _old_play_returns(cfg: RunConfig, model: Any, step_budget: int | None) -> tuple[list[float], list[int]]:
    """board.play.play before the rollout, the golden policy alone: first reset seeded, the rest
    continue; the budget cuts the last episode."""
    from rl2fpga.core.golden import GoldenModel
    from rl2fpga.train.envs import make_env

    golden = model.copy()
    env = make_env(cfg.env, cfg.seed, training=False)
    returns, lengths = [], []
    try:
        for ep in range(cfg.board.episodes):
            if step_budget is not None and sum(lengths) >= step_budget:
                break
            obs, _ = env.reset(seed=cfg.seed) if ep == 0 else env.reset()
            golden.reset()
            total, steps, done = 0.0, 0, False
            cap = cfg.board.max_steps if step_budget is None else min(cfg.board.max_steps, step_budget - sum(lengths))
            while not done and steps < cap:
                y, _ = golden.step(golden.quantize_input(obs))
                obs, reward, terminated, truncated, _ = env.step(GoldenModel.action(y))
                total += float(reward)
                steps += 1
                done = terminated or truncated
            returns.append(total)
            lengths.append(steps)
    finally:
        env.close()
    return returns, lengths


@pytest.mark.parametrize("max_steps,budget", [(40, None), (500, None), (40, 95)])
def test_closed_loop_episodes_equal_the_old_loop(max_steps: int, budget: int | None) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from board_models import balancer

    from rl2fpga.board.play import GoldenBackend, play
    from rl2fpga.config import from_dict

    cfg = from_dict(RunConfig, {"name": "p", "seed": 4, "env": {"id": "CartPole-v1"},
                                "board": {"episodes": 3, "max_steps": max_steps}})
    model = balancer()
    old_ret, old_len = _old_play_returns(cfg, model, budget)
    ref = play(cfg, model, None, step_budget=budget)
    assert ref.returns == old_ret and ref.steps == old_len
    hw = play(cfg, model, GoldenBackend(model), step_budget=budget)  # a back end in lockstep
    assert hw.returns == old_ret and hw.action_mismatches == 0 and len(hw.latency_us) == sum(old_len)
    if budget is not None:
        assert sum(ref.steps) == budget and len(ref.steps) == 3
    elif max_steps == 40:
        assert ref.steps == [40, 40, 40]


def test_rollout_needs_an_end() -> None:
    from rl2fpga.train.rollout import rollout

    with pytest.raises(ValueError, match="never end"):
        rollout(object(), lambda o: 0, seed=0)
