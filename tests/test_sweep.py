"""``rl2fpga sweep``: sweep-file validation, shared-prefix planning, Pareto fronts, and a real
4-trial CartPole sweep on local Ray that is killed mid-way and resumed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from rl2fpga.cli import main
from rl2fpga.config import RunConfig
from rl2fpga.pipeline import STEP_ORDER
from rl2fpga.sweep import STEP_SECTIONS, load_sweep, pareto_front

# tiny budgets: a 1,500-step DQN, no pruning retrain, 50 QAT steps, a 50-step analysis
TINY = {
    "train.total_steps": 1500, "train.eval_every": 0, "train.eval_episodes": 2, "train.early_stop_return": None,
    "train.hidden": [16, 16], "train.dqn.learning_starts": 200, "prune.method": "none",
    "quantize.qat_steps": 50, "quantize.calib_episodes": 2, "quantize.delta_episodes": 2,
    "quantize.check_states": 40, "quantize.dagger_rounds": 0, "quantize.fallback_levels": 0,
    "analyze.episodes": 1, "analyze.max_steps": 50,
}


@pytest.fixture(autouse=True)
def _no_ray_left():
    yield
    import ray

    if ray.is_initialized():
        ray.shutdown()


def _write(tmp_path: Path, doc: dict, name: str = "sw.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(doc, sort_keys=False))
    return p


def _errors(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.strip().splitlines() if line.strip()]


# ----------------------------------------------------------------------------- fast


def test_step_sections_cover_every_config_key():
    """Every config section belongs to exactly one step, so no key can be missed by the reuse
    keys (a new section must be added to STEP_SECTIONS)."""
    import dataclasses

    fields = {f.name for f in dataclasses.fields(RunConfig)} - {"name"}
    owned = [s for step in STEP_ORDER for s in STEP_SECTIONS[step]]
    assert set(STEP_SECTIONS) == set(STEP_ORDER)
    assert sorted(owned) == sorted(fields)


@pytest.mark.parametrize("doc, expect", [
    ({"grid": {"quantize.weight_bitz": [8]}}, "unknown config key 'quantize.weight_bitz'"),
    ({"grid": {"quantize.weight_bits": 8}}, "grid.quantize.weight_bits must be a non-empty list"),
    ({"grid": {"quantize.weight_bits": [8, "eight"]}}, "trial t001"),
    ({"grid": {"name": ["a"]}}, "cannot set 'name'"),
    ({"gird": {}}, "unknown key 'gird'"),
    ({"steps": {"to": "synthesis"}}, "unknown step 'synthesis'"),
    ({"steps": {"from": "quantize"}}, "steps.from must be train"),
    ({"storage": "../../elsewhere"}, "leaves the runs root"),
    ({"name": "a/b"}, "name 'a/b'"),
    ({"cpus_per_trial": 0}, "cpus_per_trial must be a positive number"),
    ({"random": {"samples": 2, "space": {"prune.rate": {"normal": [0, 1]}}}}, "random.space.prune.rate must be one of"),
    ({"grid": {"seed": [0]}, "random": {"space": {"seed": {"choice": [1]}}}}, "in both grid and random.space"),
    ({"base": "missing.yaml"}, "missing.yaml not found"),
])
def test_bad_sweep_files_fail_on_one_line(tmp_path, capsys, doc, expect):
    f = _write(tmp_path, doc)
    rc = main(["sweep", str(f), "--runs-dir", str(tmp_path / "runs")])
    err = _errors(capsys)
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and expect in err[0], err
    assert not (tmp_path / "runs").exists()  # nothing written


def test_existing_sweep_needs_resume_and_the_same_trials(tmp_path, capsys):
    f = _write(tmp_path, {"name": "s", "set": TINY, "grid": {"quantize.weight_bits": [8, 6]}})
    rc = main(["sweep", str(f), "--runs-dir", str(tmp_path / "runs"), "--resume"])
    err = _errors(capsys)
    assert rc == 2 and len(err) == 1 and "nothing to resume" in err[0]
    state = tmp_path / "runs" / "sweeps" / "s" / "sweep.json"
    state.parent.mkdir(parents=True)
    plan = load_sweep(f, tmp_path / "runs")
    state.write_text(json.dumps({"fingerprint": plan.fingerprint(), "attempts": 1}))
    rc = main(["sweep", str(f), "--runs-dir", str(tmp_path / "runs")])
    err = _errors(capsys)
    assert rc == 2 and len(err) == 1 and "already exists" in err[0] and "--resume" in err[0]
    f2 = _write(tmp_path, {"name": "s", "set": TINY, "grid": {"quantize.weight_bits": [8, 4]}})
    rc = main(["sweep", str(f2), "--runs-dir", str(tmp_path / "runs"), "--resume"])
    err = _errors(capsys)
    assert rc == 2 and len(err) == 1 and "differ" in err[0]
    assert json.loads(state.read_text())["attempts"] == 1  # untouched


def test_plan_shares_train_once_and_prune_per_setting(tmp_path):
    """2 prune rates x 2 weight widths: one train stem, two prune stems under it, and every
    trial starts at quantize from its prune stem."""
    f = _write(tmp_path, {"set": TINY, "steps": {"to": "analyze"},
                          "grid": {"prune.rate": [0.2, 0.3], "quantize.weight_bits": [8, 6]}})
    plan = load_sweep(f, tmp_path / "runs")
    assert len(plan.trials) == 4
    train_stems = [s for s in plan.stems if s.id.startswith("train-")]
    prune_stems = [s for s in plan.stems if s.id.startswith("prune-")]
    assert len(train_stems) == 1 and len(prune_stems) == 2 and len(plan.stems) == 3
    assert all(s.parent == train_stems[0].id for s in prune_stems)
    assert all(plan.steps[t.start] == "quantize" for t in plan.trials)
    by_rate = {}
    for t in plan.trials:
        by_rate.setdefault(t.params["prune.rate"], set()).add(t.stem)
    assert all(len(v) == 1 for v in by_rate.values()) and len({next(iter(v)) for v in by_rate.values()}) == 2
    # a train key changes every key after it: a seed grid shares nothing
    f = _write(tmp_path, {"set": TINY, "grid": {"seed": [0, 1]}}, "s2.yaml")
    assert load_sweep(f, tmp_path / "runs").stems == []


def test_random_draws_are_seeded_and_crossed_with_the_grid(tmp_path):
    doc = {"set": TINY, "grid": {"quantize.weight_bits": [8, 6]}, "seed": 3,
           "random": {"samples": 3, "space": {"quantize.threshold": {"uniform": [0.0, 0.05]},
                                              "analyze.max_steps": {"randint": [10, 20]}}}}
    a = load_sweep(_write(tmp_path, doc), tmp_path / "runs")
    b = load_sweep(_write(tmp_path, doc, "b.yaml"), tmp_path / "runs")
    assert [t.params for t in a.trials] == [t.params for t in b.trials] and len(a.trials) == 6
    draws = {(t.params["quantize.threshold"], t.params["analyze.max_steps"]) for t in a.trials}
    assert len(draws) == 3  # each draw with both widths
    assert all(0.0 <= t.params["quantize.threshold"] < 0.05 and 10 <= t.params["analyze.max_steps"] < 20 for t in a.trials)
    assert all(isinstance(t.config["analyze"]["max_steps"], int) for t in a.trials)


def test_pareto_front():
    # (bytes, return): smaller bytes and larger return are better
    pts = [(100.0, 500.0), (50.0, 480.0), (60.0, 470.0), (20.0, 100.0), (200.0, 500.0), (50.0, 480.0)]
    assert pareto_front(pts) == [0, 1, 3, 5]  # (60, 470) is beaten by (50, 480); (200, 500) by (100, 500)
    # (LUT, cycles): both smaller is better
    assert pareto_front([(10.0, 5.0), (5.0, 10.0), (10.0, 10.0)], x_min=True, y_max=False) == [0, 1]


# ----------------------------------------------------------------------------- a real sweep


def _ray_processes(tag: str) -> list[int]:
    """Processes of the Ray started with RAY_TMPDIR=tag: its services name the folder on their
    command line; its workers and agents (renamed ``ray::...``) inherit the variable."""
    import psutil

    out = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any(tag in a for a in p.info["cmdline"] or []) or p.environ().get("RAY_TMPDIR") == tag:
                out.append(p.info["pid"])
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return out


def _wait_until(cond, what: str, timeout: float = 900.0, proc: subprocess.Popen | None = None, log: Path | None = None):
    t0 = time.time()
    while not cond():
        if proc is not None and proc.poll() is not None and not cond():
            pytest.fail(f"the sweep exited ({proc.returncode}) before {what}: {log.read_text()[-3000:] if log else ''}")
        if time.time() - t0 > timeout:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def _sweep_cmd(f: Path, runs: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "rl2fpga.cli", "sweep", str(f), "--runs-dir", str(runs), *extra]


def _markers(d: Path) -> dict[str, str]:
    return {s: (d / s / ".done").read_text() for s in STEP_ORDER if (d / s / ".done").exists()}


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
    """A 4-trial CartPole sweep over quantize.weight_bits (1 bit is invalid) on local Ray with 2
    CPUs: killed (SIGKILL to its process group) once a trial has ended, then --resume."""
    tmp = tmp_path_factory.mktemp("sweep")
    runs = tmp / "runs"
    f = _write(tmp, {"name": "kr", "set": TINY, "steps": {"from": "train", "to": "analyze"},
                     "grid": {"quantize.weight_bits": [8, 1, 6, 4]}, "cpus_per_trial": 1})
    sweep_dir = runs / "sweeps" / "kr"
    tag = f"/tmp/rl2t-{uuid.uuid4().hex[:8]}"  # Ray's temp dir: every Ray process of these runs names it
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # a local Ray, never a cluster
    env["RAY_TMPDIR"] = tag
    log1 = tmp / "first.log"

    def ended() -> dict[str, dict]:
        out = {}
        for p in sorted((sweep_dir / "trials").glob("*/trial.json")):
            try:
                out[p.parent.name] = json.loads(p.read_text())
            except json.JSONDecodeError:
                continue
        return out

    with open(log1, "w") as fh:
        p = subprocess.Popen(_sweep_cmd(f, runs), stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        _wait_until(lambda: any(r["status"] == "finished" for r in ended().values()),
                    "a trial finished", proc=p, log=log1)
        seen = _ray_processes(tag)  # raylet, GCS, workers of the running sweep
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    before = ended()
    before_markers = {t: _markers(sweep_dir / "trials" / t) for t in before}
    before_records = {t: (sweep_dir / "trials" / t / "trial.json").read_text() for t in before}
    _wait_until(lambda: not _ray_processes(tag), "the killed sweep's Ray processes to exit", timeout=120)

    log2 = tmp / "resume.log"
    with open(log2, "w") as fh:
        rc = subprocess.call(_sweep_cmd(f, runs, "--resume"), stdout=fh, stderr=subprocess.STDOUT, env=env)
    _wait_until(lambda: not _ray_processes(tag), "the resumed sweep's Ray processes to exit", timeout=120)
    shutil.rmtree(tag, ignore_errors=True)  # Ray's session folders
    return {"dir": sweep_dir, "rc": rc, "log": log2.read_text(), "before": before, "before_markers": before_markers,
            "before_records": before_records, "seen": seen, "strays": _ray_processes(tag)}


@pytest.mark.slow
def test_failed_trial_is_recorded_and_the_others_finish(killed_and_resumed):
    k = killed_and_resumed
    assert k["rc"] == 0, k["log"][-3000:]
    res = json.loads((k["dir"] / "results.json").read_text())["trials"]
    status = {r["trial"]: r["status"] for r in res}
    assert sorted(status.values()) == ["error", "finished", "finished", "finished"]
    err = next(r for r in res if r["status"] == "error")
    assert err["param.quantize.weight_bits"] == 1
    assert "quantize.weight_bits=1 is unsupported" in err["error"] and "\n" not in err["error"]
    for r in res:
        if r["status"] == "finished":  # every trial's summary keys, flattened
            assert r["env"] == "CartPole-v1" and r["selected.weight_bits"] == r["param.quantize.weight_bits"]
            assert r["compression.stored_bits"] > 0 and r["multiplications.significant_mean"] > 0
    csv_text = (k["dir"] / "results.csv").read_text()
    header = csv_text.splitlines()[0].split(",")
    assert "compression.stored_bits" in header and "pareto.return_vs_bytes" in header
    assert len(csv_text.strip().splitlines()) == 5
    html = (k["dir"] / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>\n<!-- generated by rl2fpga") and "data:image/png;base64" in html
    assert "quantize.weight_bits=1 is unsupported" in html


@pytest.mark.slow
def test_resume_does_not_rerun_ended_trials(killed_and_resumed):
    k = killed_and_resumed
    assert 1 <= len(k["before"]) < 4, "the kill came after every trial had ended: nothing to resume"
    for t, markers in k["before_markers"].items():
        d = k["dir"] / "trials" / t
        assert _markers(d) == markers  # .done timestamps unchanged
        assert (d / "trial.json").read_text() == k["before_records"][t]
    after = {p.parent.name for p in (k["dir"] / "trials").glob("*/trial.json")}
    assert len(after) == 4 and set(k["before"]) < after
    assert "already ended; running" in k["log"]
    assert len(k["seen"]) >= 3  # the check below can see Ray's processes ...
    assert k["strays"] == []  # ... and none of either run is left


@pytest.mark.slow
def test_quantize_only_trials_share_one_train_and_one_prune(killed_and_resumed):
    d = killed_and_resumed["dir"]
    finished = [t for t in (d / "trials").iterdir() if json.loads((t / "trial.json").read_text())["status"] == "finished"]
    run_dirs = [*finished, *(d / "stems").iterdir()]
    # a step's .done holds its wall time and the time it finished: equal markers = one execution
    for step in ("train", "prune"):
        executions = {(r / step / ".done").read_text() for r in run_dirs}
        assert len(executions) == 1, step
        assert all((r / step / "model.keras").exists() or any((r / step).iterdir()) for r in run_dirs)
    for step in ("quantize", "analyze"):
        assert len({(t / step / ".done").read_text() for t in finished}) == len(finished) == 3
    assert [s.name for s in (d / "stems").iterdir()] == [next(iter((d / "stems").iterdir())).name]
    assert not (next((d / "stems").iterdir()) / "quantize").exists()  # the stem stops before quantize


def test_shipped_sweep_files_plan_one_stem_per_shared_prefix():
    """configs/sweeps/*.yaml load; the CartPole one (weight bits x threshold) trains and prunes
    once and runs quantize + analyze per trial."""
    files = sorted((Path(__file__).parent.parent / "configs" / "sweeps").glob("*.yaml"))
    assert files
    plans = {f.stem: load_sweep(f, "runs") for f in files}
    cp = plans["cartpole"]
    assert len(cp.trials) == 16 and cp.steps == ["train", "prune", "quantize", "analyze"]
    assert [s.id.split("-")[0] for s in cp.stems] == ["prune"]
    assert {tuple(sorted(t.params.items())) for t in cp.trials} == {
        (("quantize.threshold", T), ("quantize.weight_bits", b)) for b in (8, 6, 4, 3) for T in (0.0, 0.005, 0.01, 0.05)}
