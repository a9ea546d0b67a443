"""Sweeps: many pipeline runs over a grid and/or a random search of config keys, run by Ray Tune.

    rl2fpga sweep SWEEP.yaml [--address ADDR] [--resume] [--runs-dir DIR]

A sweep file names a base config, the keys to vary (dotted, as ``--set`` spells them), the range
of steps each trial runs, the CPUs per trial and where results go::

    name: cartpole-bits                 # folder <runs-dir>/<storage>/<name>/
    base: ../configs/cartpole.yaml      # a config YAML (relative to this file); none: the default
    set: {train.total_steps: 20000}     # fixed overrides of the base
    grid:                               # every combination
      quantize.weight_bits: [8, 6, 4, 3]
      quantize.threshold: [0.0, 0.01]
    random:                             # `samples` draws, each combined with every grid point
      samples: 2
      space: {prune.rate: {uniform: [0.1, 0.3]}, seed: {choice: [0, 1]}}
    steps: {from: train, to: analyze}
    cpus_per_trial: 1
    max_concurrent: null                # at most this many trials at once (null: as CPUs allow)
    storage: sweeps                     # under the runs root (--runs-dir)
    seed: 0                             # seeds the random draws (not the trials: sweep `seed`)

Artifact reuse. Each step depends on its own config sections and on everything before it
(:data:`STEP_SECTIONS`); a trial's key at a step is the hash of those sections. Trials whose keys
agree up to a step share that prefix: it runs once in a *stem* run folder (``stems/``), and each
trial's folder (``trials/tNNN``) starts from a copy of the stem's step folders (their ``.done``
markers included) and runs from the first step where it differs. Stems nest (one train for all,
one prune per prune setting, ...) and run as Ray tasks before the trials, which Ray Tune runs.

Each trial writes ``trial.json`` (status, one-line error, the summary) when it ends; a failed
trial does not stop the sweep. ``--resume`` reads these files and runs only the trials that have
none, continuing a half-finished trial from its first step without a ``.done`` marker. At the end
the sweep writes ``results.csv``, ``results.json`` and ``report.html`` (Pareto fronts per env).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import io
import itertools
import json
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from rl2fpga.artifacts import STEP_ORDER
from rl2fpga.config import RunConfig, from_dict, load_config, to_dict
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.fsutil import atomic_write_json, atomic_write_text

# the config sections each step reads (besides everything earlier steps read): a step's artifact
# key hashes these sections of its own step and of all earlier steps
STEP_SECTIONS: dict[str, tuple[str, ...]] = {
    "train": ("seed", "env", "train"),
    "prune": ("prune",),
    "quantize": ("quantize",),
    "analyze": ("analyze",),
    "hls": ("hls",),
    "rtl": ("rtl",),
    "cosim": ("cosim",),
    "board": ("board",),
    "da4ml": ("da4ml",),
    "report": (),
}
NOT_SWEPT = ("name",)  # the run name is set per trial

SWEEP_FIELDS = {
    "name": "sweep name, the folder <runs-dir>/<storage>/<name> (default: the file's stem)",
    "base": "config YAML the trials start from, relative to the sweep file (default: the embedded config)",
    "set": "mapping of dotted config keys to fixed values applied to the base",
    "grid": "mapping of dotted config keys to lists of values; every combination is a trial",
    "random": "{samples: N, space: {key: {choice|uniform|loguniform|randint: [...]}}}",
    "steps": "{from: STEP, to: STEP}: the steps every trial runs (default: the whole pipeline)",
    "cpus_per_trial": "CPUs Ray reserves for each trial (default 1)",
    "max_concurrent": "at most this many trials at once (default: as many as the CPUs allow)",
    "storage": "folder under the runs root (--runs-dir) that holds the sweep (default: sweeps)",
    "seed": "seed of the random draws (default 0)",
}
DISTRIBUTIONS = ("choice", "uniform", "loguniform", "randint")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


# ----------------------------------------------------------------------------- the plan


@dataclasses.dataclass
class Trial:
    id: str
    params: dict[str, Any]
    config: dict[str, Any]
    keys: list[str]  # artifact key per step of the range
    stem: str | None = None  # the stem whose step folders it starts from
    start: int = 0  # index (into Plan.steps) of its first own step


@dataclasses.dataclass
class Stem:
    id: str
    depth: int  # index (into Plan.steps) of the last step it holds
    parent: str | None
    config: dict[str, Any]
    trials: list[str]


@dataclasses.dataclass
class Plan:
    name: str
    sweep_dir: str
    steps: list[str]
    cpus_per_trial: float
    max_concurrent: int | None
    trials: list[Trial]
    stems: list[Stem]
    source: str = ""

    # -- paths
    @property
    def root(self) -> Path:
        return Path(self.sweep_dir)

    def trial_dir(self, tid: str) -> Path:
        return self.root / "trials" / tid

    def stem_dir(self, sid: str) -> Path:
        return self.root / "stems" / sid

    def trial(self, tid: str) -> Trial:
        return next(t for t in self.trials if t.id == tid)

    def stem(self, sid: str) -> Stem:
        return next(s for s in self.stems if s.id == sid)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Plan:
        d = dict(d)
        d["trials"] = [Trial(**t) for t in d["trials"]]
        d["stems"] = [Stem(**s) for s in d["stems"]]
        return cls(**d)

    def fingerprint(self) -> str:
        """What must not change between a sweep and its --resume: the trials and the steps."""
        return _hash({"steps": self.steps, "trials": [(t.id, t.config) for t in self.trials]})


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def step_keys(cfg: dict[str, Any], steps: list[str]) -> list[str]:
    """Artifact key of each step in ``steps``: a hash of the config sections it and every earlier
    step of the pipeline depend on."""
    keys = []
    for name in steps:
        upto = STEP_ORDER[: STEP_ORDER.index(name) + 1]
        sections = {sec: cfg[sec] for s in upto for sec in STEP_SECTIONS[s]}
        keys.append(_hash(sections)[:16])
    return keys


def _set_key(d: dict[str, Any], key: str, value: Any, where: str) -> None:
    parts = key.split(".")
    node = d
    for p in parts[:-1]:
        if not isinstance(node, dict) or not isinstance(node.get(p), dict):
            raise Rl2fpgaError(f"{where}: unknown config key '{key}'; see `rl2fpga config` for the keys")
        node = node[p]
    if not isinstance(node, dict) or parts[-1] not in node or isinstance(node[parts[-1]], dict):
        raise Rl2fpgaError(f"{where}: unknown config key '{key}'; see `rl2fpga config` for the keys")
    node[parts[-1]] = value


def _check_keys(mapping: Any, what: str, src: Path) -> dict[str, Any]:
    if mapping is None:
        return {}
    if not isinstance(mapping, dict):
        raise Rl2fpgaError(f"sweep file {src}: '{what}' must be a mapping of dotted config keys, got {type(mapping).__name__}")
    for k in mapping:
        if not isinstance(k, str):
            raise Rl2fpgaError(f"sweep file {src}: '{what}' key {k!r} must be a dotted config key such as quantize.weight_bits")
        if k in NOT_SWEPT:
            raise Rl2fpgaError(f"sweep file {src}: '{what}' cannot set '{k}' (each trial gets its own run name)")
        _set_key(to_dict(RunConfig()), k, None, f"sweep file {src}: '{what}'")
    return mapping


def _draw(spec: Any, key: str, rng: Any, src: Path) -> Any:
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
        raise Rl2fpgaError(f"sweep file {src}: random.space.{key} must be one of "
                           f"{{choice: [...]}}, {{uniform: [lo, hi]}}, {{loguniform: [lo, hi]}}, {{randint: [lo, hi]}}")
    kind, args = next(iter(spec.items()))
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise Rl2fpgaError(f"sweep file {src}: random.space.{key}.choice must be a non-empty list")
        return args[int(rng.integers(len(args)))]
    if (not isinstance(args, list) or len(args) != 2
            or not all(isinstance(a, int | float) and not isinstance(a, bool) for a in args) or not args[0] < args[1]):
        raise Rl2fpgaError(f"sweep file {src}: random.space.{key}.{kind} must be [lo, hi] with numbers lo < hi")
    lo, hi = args
    if kind == "uniform":
        return float(rng.uniform(lo, hi))
    if kind == "loguniform":
        if lo <= 0:
            raise Rl2fpgaError(f"sweep file {src}: random.space.{key}.loguniform needs lo > 0")
        import math

        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    if not (isinstance(lo, int) and isinstance(hi, int)):
        raise Rl2fpgaError(f"sweep file {src}: random.space.{key}.randint needs integers [lo, hi)")
    return int(rng.integers(lo, hi))


def _read_sweep_file(src: Path) -> dict[str, Any]:
    """The sweep file as a mapping with known keys only."""
    if not src.is_file():
        raise Rl2fpgaError(f"sweep file {src} not found; pass a YAML sweep file (see `rl2fpga sweep --help`)")
    try:
        data = yaml.safe_load(src.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise Rl2fpgaError(f"sweep file {src} is not valid YAML{where}; fix the syntax") from None
    if not isinstance(data, dict):
        raise Rl2fpgaError(f"sweep file {src} must be a YAML mapping with keys: {', '.join(SWEEP_FIELDS)}")
    unknown = sorted(set(map(str, data)) - set(SWEEP_FIELDS))
    if unknown:
        raise Rl2fpgaError(f"sweep file {src}: unknown key '{unknown[0]}'; known keys: {', '.join(SWEEP_FIELDS)}")
    return data


def _base_dict(data: dict[str, Any], src: Path) -> dict[str, Any]:
    """The base config (``base`` file or the defaults) with ``set`` applied, as a dict."""
    base = data.get("base")
    if base is None:
        base_cfg = RunConfig()
    elif isinstance(base, str):
        base_path = Path(base) if Path(base).is_absolute() else src.parent / base
        base_cfg = load_config(base_path)
    else:
        raise Rl2fpgaError(f"sweep file {src}: base must be the path of a config YAML, got {base!r}")
    base_d = to_dict(base_cfg)
    for k, v in _check_keys(data.get("set"), "set", src).items():
        _set_key(base_d, k, v, f"sweep file {src}: 'set'")
    return base_d


def _search_space(data: dict[str, Any], src: Path) -> tuple[dict[str, list[Any]], dict[str, Any], int]:
    """(grid, random space, random samples)."""
    grid = _check_keys(data.get("grid"), "grid", src)
    for k, vals in grid.items():
        if not isinstance(vals, list) or not vals:
            raise Rl2fpgaError(f"sweep file {src}: grid.{k} must be a non-empty list of values")
    rnd = data.get("random") or {}
    if not isinstance(rnd, dict) or set(rnd) - {"samples", "space"}:
        raise Rl2fpgaError(f"sweep file {src}: random must be a mapping {{samples: N, space: {{key: distribution}}}}")
    space = _check_keys(rnd.get("space"), "random.space", src)
    samples = rnd.get("samples", 1 if space else 0)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < (1 if space else 0):
        raise Rl2fpgaError(f"sweep file {src}: random.samples must be a positive integer, got {samples!r}")
    both = sorted(set(grid) & set(space))
    if both:
        raise Rl2fpgaError(f"sweep file {src}: '{both[0]}' is in both grid and random.space; keep it in one")
    return grid, space, samples


def _scheduling(data: dict[str, Any], src: Path) -> tuple[int, float, int | None]:
    """(seed, cpus_per_trial, max_concurrent)."""
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise Rl2fpgaError(f"sweep file {src}: seed must be an integer, got {seed!r}")
    cpus = data.get("cpus_per_trial", 1)
    if isinstance(cpus, bool) or not isinstance(cpus, int | float) or cpus <= 0:
        raise Rl2fpgaError(f"sweep file {src}: cpus_per_trial must be a positive number, got {cpus!r}")
    maxc = data.get("max_concurrent")
    if maxc is not None and (isinstance(maxc, bool) or not isinstance(maxc, int) or maxc < 1):
        raise Rl2fpgaError(f"sweep file {src}: max_concurrent must be a positive integer or null, got {maxc!r}")
    return seed, float(cpus), maxc


def _sweep_steps(data: dict[str, Any], src: Path) -> list[str]:
    steps_spec = data.get("steps") or {}
    if not isinstance(steps_spec, dict) or set(steps_spec) - {"from", "to"}:
        raise Rl2fpgaError(f"sweep file {src}: steps must be a mapping {{from: STEP, to: STEP}}")
    first, last = steps_spec.get("from", STEP_ORDER[0]), steps_spec.get("to", STEP_ORDER[-1])
    for s in (first, last):
        if s not in STEP_ORDER:
            raise Rl2fpgaError(f"sweep file {src}: unknown step {s!r}; steps are: {', '.join(STEP_ORDER)}")
    if first != STEP_ORDER[0]:
        raise Rl2fpgaError(f"sweep file {src}: steps.from must be {STEP_ORDER[0]} (each sweep trains its own agents, "
                           "once per distinct train config); vary only later keys to reuse one trained agent")
    i0, i1 = STEP_ORDER.index(first), STEP_ORDER.index(last)
    if i1 < i0:
        raise Rl2fpgaError(f"sweep file {src}: steps.to ({last}) comes before steps.from ({first})")
    return STEP_ORDER[i0 : i1 + 1]


def _sweep_dir(data: dict[str, Any], name: str, runs_dir: str | Path, src: Path) -> Path:
    storage = data.get("storage", "sweeps")
    if not isinstance(storage, str) or not storage:
        raise Rl2fpgaError(f"sweep file {src}: storage must be a folder name under the runs root")
    root = Path(runs_dir).resolve()
    sweep_dir = (root / storage / name).resolve()
    if not sweep_dir.is_relative_to(root):
        raise Rl2fpgaError(f"sweep file {src}: storage {storage!r} leaves the runs root {root}; "
                           "pass --runs-dir to put the runs root elsewhere (e.g. on shared storage)")
    return sweep_dir


def _trials(name: str, base_d: dict[str, Any], grid: dict[str, list[Any]], space: dict[str, Any], samples: int,
            seed: int, steps: list[str], src: Path) -> list[Trial]:
    """Every grid point x every random draw, each a resolved config."""
    import numpy as np

    rng = np.random.default_rng(seed)
    draws = [{k: _draw(spec, k, rng, src) for k, spec in space.items()} for _ in range(samples)] or [{}]
    points = [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())] if grid else [{}]
    trials = []
    for n, (point, draw) in enumerate(itertools.product(points, draws)):
        tid = f"t{n:03d}"
        params = {**point, **draw}
        d = json.loads(json.dumps(base_d))
        for k, v in params.items():
            _set_key(d, k, v, f"trial {tid}")
        d["name"] = f"{name}-{tid}"
        try:
            cfg = from_dict(RunConfig, d)
        except Rl2fpgaError as e:
            desc = ", ".join(f"{k}={v!r}" for k, v in params.items())
            raise Rl2fpgaError(f"sweep file {src}: trial {tid} ({desc}): {e}") from None
        cd = to_dict(cfg)
        trials.append(Trial(tid, params, cd, step_keys(cd, steps)))
    return trials


def load_sweep(path: str | Path, runs_dir: str | Path = "runs") -> Plan:
    """Read and validate a sweep file; resolve every trial's config and plan the shared stems.
    Every problem is an :class:`Rl2fpgaError` with a one-line message."""
    src = Path(path)
    data = _read_sweep_file(src)
    name = data.get("name", src.stem)
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise Rl2fpgaError(f"sweep file {src}: name {name!r} must be letters, digits, '.', '_' or '-' (no slashes)")
    base_d = _base_dict(data, src)
    grid, space, samples = _search_space(data, src)
    seed, cpus, maxc = _scheduling(data, src)
    steps = _sweep_steps(data, src)
    sweep_dir = _sweep_dir(data, name, runs_dir, src)
    trials = _trials(name, base_d, grid, space, samples, seed, steps, src)
    plan = Plan(name, str(sweep_dir), steps, cpus, maxc, trials, [], source=str(src.resolve()))
    plan_stems(plan)
    return plan


def plan_stems(plan: Plan) -> None:
    """Find the shared prefixes: a stem holds steps 0..d for the trials whose keys agree up to d,
    at every depth where such a group of two or more trials splits (or the range ends)."""
    n = len(plan.steps)
    group: dict[tuple[int, str], list[str]] = {}
    for t in plan.trials:
        for i, k in enumerate(t.keys):
            group.setdefault((i, k), []).append(t.id)
    stems: dict[str, Stem] = {}
    for t in plan.trials:
        parent = None
        t.stem, t.start = None, 0
        for i in range(n):
            members = group[(i, t.keys[i])]
            if len(members) < 2:
                break
            deeper = group.get((i + 1, t.keys[i + 1])) if i + 1 < n else None
            if deeper is not None and deeper == members:
                continue  # the same trials share the next step too: the stem grows
            sid = f"{plan.steps[i]}-{t.keys[i][:12]}"
            if sid not in stems:
                cfg = json.loads(json.dumps(t.config))
                cfg["name"] = f"{plan.name}-stem-{sid}"
                stems[sid] = Stem(sid, i, parent, cfg, list(members))
            parent = sid
            t.stem, t.start = sid, i + 1
    plan.stems = sorted(stems.values(), key=lambda s: (s.depth, s.id))


# ----------------------------------------------------------------------------- executing


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr (file descriptors included: TensorFlow's C++ logs)
    to ``path`` while a trial runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(path, "a") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _one_line(e: BaseException) -> str:
    if isinstance(e, Rl2fpgaError):
        msg = str(e)
    else:
        msg = f"{type(e).__name__}: {e}"
    return " ".join(msg.split()) or type(e).__name__


def _done_marker(run_dir: Path, step: str) -> str | None:
    m = run_dir / step / ".done"
    return m.read_text() if m.exists() else None


def adopt_steps(src: Path, dst: Path, steps: list[str]) -> None:
    """Copy finished step folders from ``src`` into ``dst`` (their ``.done`` markers, and so
    their timestamps, included); a step already there with the same marker is kept."""
    for step in steps:
        mark = _done_marker(src, step)
        if mark is None:
            raise Rl2fpgaError(f"shared step '{step}' has not finished in {src}; rerun the sweep with --resume")
        if _done_marker(dst, step) == mark:
            continue
        dst.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{step}.", suffix=".tmp", dir=dst))
        try:
            shutil.copytree(src / step, tmp / step, symlinks=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        target = dst / step
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp / step, target)
        shutil.rmtree(tmp, ignore_errors=True)


def _limit_threads(cpus: float) -> None:
    """Keep TensorFlow to the CPUs Ray reserved for this trial (before TF initialises)."""
    n = max(1, int(cpus))
    try:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(n)
    except (RuntimeError, ImportError):
        pass


def _env_setup() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as the CLI (rl2fpga/cli.py)


def _run_steps(run_dir: Path, cfg_d: dict[str, Any], steps: list[str]) -> list[str]:
    """Run ``steps`` (consecutive) in ``run_dir``, from the first without a ``.done`` marker."""
    from rl2fpga.pipeline import run_pipeline
    from rl2fpga.run import Run

    cfg = from_dict(RunConfig, cfg_d)
    run = Run.create(cfg, path=run_dir)
    todo = [s for s in steps if not run.done(s)]
    if not todo:
        return []
    first = steps[min(steps.index(s) for s in todo)]
    ran = steps[steps.index(first):]
    run_pipeline(run, cfg, start=first, stop=steps[-1])
    return ran


def run_stem(plan_d: dict[str, Any], sid: str, parent_error: str | None = None, limit_threads: bool = True) -> str | None:
    """Build one stem (its parent's step folders, then its own steps); return None or the
    one-line error."""
    if parent_error is not None:
        return parent_error
    _env_setup()
    plan = Plan.from_json(plan_d)
    stem = plan.stem(sid)
    d = plan.stem_dir(sid)
    p0 = 0
    try:
        with _output_to(d / "log.txt"):
            if limit_threads:
                _limit_threads(plan.cpus_per_trial)
            if stem.parent is not None:
                p0 = plan.stem(stem.parent).depth + 1
                adopt_steps(plan.stem_dir(stem.parent), d, plan.steps[:p0])
            atomic_write_json(d / "stem.json", {"stem": sid, "steps": plan.steps[: stem.depth + 1], "trials": stem.trials,
                                                "parent": stem.parent})
            _run_steps(d, stem.config, plan.steps[p0 : stem.depth + 1])
        return None
    except Exception as e:  # noqa: BLE001 - one line for the table, the traceback in the log
        with open(d / "log.txt", "a") as f:
            traceback.print_exc(file=f)
        return f"shared steps {plan.steps[p0]}..{plan.steps[stem.depth]} (stem {sid}) failed: {_one_line(e)}"


def trial_record(plan: Plan, tid: str) -> dict[str, Any] | None:
    p = plan.trial_dir(tid) / "trial.json"
    if not p.exists():
        return None
    try:
        rec = json.loads(p.read_text())
    except json.JSONDecodeError:
        return None
    return rec if isinstance(rec, dict) and rec.get("status") in ("finished", "error") else None


def _write_record(plan: Plan, trial: Trial, status: str, error: str | None, seconds: float,
                  ran: list[str], summary: dict[str, Any] | None) -> dict[str, Any]:
    rec = {
        "trial": trial.id,
        "status": status,
        "error": error,
        "params": trial.params,
        "seconds": round(seconds, 3),
        "ran_steps": ran,
        "reused_steps": plan.steps[: trial.start],
        "stem": trial.stem,
        "finished": time.time(),
        "summary": summary,
    }
    atomic_write_json(plan.trial_dir(trial.id) / "trial.json", rec)
    return rec


def run_trial(plan_d: dict[str, Any], tid: str, stem_error: str | None = None, limit_threads: bool = True) -> dict[str, Any]:
    """Run one trial to its end (or resume it); write and return its ``trial.json`` record. Never
    raises for a failure of the pipeline: the record says ``error`` with a one-line message."""
    _env_setup()
    plan = Plan.from_json(plan_d)
    trial = plan.trial(tid)
    done = trial_record(plan, tid)
    if done is not None:
        return done
    d = plan.trial_dir(tid)
    d.mkdir(parents=True, exist_ok=True)
    if stem_error is not None:
        return _write_record(plan, trial, "error", stem_error, 0.0, [], None)
    t0 = time.perf_counter()
    ran: list[str] = []
    try:
        with _output_to(d / "log.txt"):
            if limit_threads:
                _limit_threads(plan.cpus_per_trial)
            if trial.stem is not None:
                adopt_steps(plan.stem_dir(trial.stem), d, plan.steps[: trial.start])
            ran = _run_steps(d, trial.config, plan.steps[trial.start :])
            from rl2fpga.report import build_summary
            from rl2fpga.run import Run

            summary = build_summary(Run.open(d), from_dict(RunConfig, trial.config))
    except Exception as e:  # noqa: BLE001 - recorded, the sweep goes on
        with open(d / "log.txt", "a") as f:
            traceback.print_exc(file=f)
        return _write_record(plan, trial, "error", _one_line(e), time.perf_counter() - t0, ran, None)
    return _write_record(plan, trial, "finished", None, time.perf_counter() - t0, ran, summary)


def _tune_trainable(config: dict[str, Any], plan: dict[str, Any]) -> None:
    from ray import tune

    rec = run_trial(plan, config["trial"])
    tune.report({"status": rec["status"], "error": rec["error"] or "", "seconds": rec["seconds"]})


def _ray_stem_task(plan_d: dict[str, Any], sid: str, parent_error: str | None) -> str | None:
    return run_stem(plan_d, sid, parent_error)


def _progress(rec: dict[str, Any]) -> str:
    if rec["status"] == "error":
        return f"[sweep] {rec['trial']} error: {rec['error']}"
    s = rec.get("summary") or {}
    sel = s.get("selected") or {}
    ret = sel.get("eval_return_mean_delta", sel.get("eval_return_mean"))
    bits = (s.get("compression") or {}).get("stored_bits")
    extra = (f", return {ret:.1f}" if isinstance(ret, int | float) else "") + (f", {bits / 8:,.0f} bytes" if bits else "")
    return f"[sweep] {rec['trial']} finished in {rec['seconds']:.0f} s (ran {', '.join(rec['ran_steps']) or 'nothing'}){extra}"


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _stems_serial(plan: Plan) -> dict[str, str | None]:
    errors: dict[str, str | None] = {}
    for s in plan.stems:  # sorted by depth: parents first
        errors[s.id] = run_stem(plan.to_json(), s.id, errors.get(s.parent) if s.parent else None, limit_threads=False)
        _say(f"[sweep] stem {s.id}: " + ("ok" if errors[s.id] is None else errors[s.id]))
    return errors


def _stems_ray(plan: Plan) -> dict[str, str | None]:
    import ray

    task = ray.remote(num_cpus=plan.cpus_per_trial, max_retries=0)(_ray_stem_task)
    plan_ref = ray.put(plan.to_json())
    refs: dict[str, Any] = {}
    for s in plan.stems:  # parents first; a child task waits for its parent's result
        refs[s.id] = task.remote(plan_ref, s.id, refs[s.parent] if s.parent else None)
    errors = {}
    for sid, ref in refs.items():
        try:
            errors[sid] = ray.get(ref)
        except Exception as e:  # noqa: BLE001 - a worker that died
            errors[sid] = f"stem {sid} failed: {_one_line(e)}"
        _say(f"[sweep] stem {sid}: " + ("ok" if errors[sid] is None else errors[sid]))
    return errors


def _trials_ray(plan: Plan, todo: list[str], attempt: int) -> None:
    # the sweep prints one line per trial; Tune's own tables and banners stay off
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    from ray import tune

    class _Progress(tune.Callback):
        def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            rec = trial_record(plan, trial.config["trial"])
            if rec is not None:
                _say(_progress(rec))

    trainable = tune.with_resources(tune.with_parameters(_tune_trainable, plan=plan.to_json()),
                                    {"cpu": plan.cpus_per_trial})
    tuner = tune.Tuner(
        trainable,
        param_space={"trial": tune.grid_search(todo)},
        tune_config=tune.TuneConfig(max_concurrent_trials=plan.max_concurrent, reuse_actors=True),
        run_config=tune.RunConfig(
            name=f"attempt-{attempt}",
            storage_path=str(plan.root / "tune"),
            failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
            verbose=0,
            callbacks=[_Progress()],
        ),
    )
    grid = tuner.fit()
    for res in grid:
        tid = (res.config or {}).get("trial")
        if tid is not None and res.error is not None and trial_record(plan, tid) is None:
            # the worker itself died (killed, out of memory): record it here
            rec = _write_record(plan, plan.trial(tid), "error", f"trial process failed: {_one_line(res.error)}", 0.0, [], None)
            _say(_progress(rec))


@contextlib.contextmanager
def ray_session(address: str | None, num_cpus: int | None = None) -> Iterator[None]:
    """Connect to ``address`` (or $RAY_ADDRESS), else start a local Ray with this machine's CPUs;
    shut it down at the end when this call started it."""
    import logging

    import ray

    if ray.is_initialized():
        yield
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING,
                              "log_to_driver": False, "configure_logging": True}
    if address is None:
        kwargs.update(num_cpus=num_cpus or os.cpu_count() or 1, object_store_memory=100 * 1024 * 1024)
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise Rl2fpgaError(f"cannot connect to the Ray cluster at {address} ({_one_line(e)}); "
                           "start it with `ray start --head` or drop --address for a local Ray") from None
    try:
        yield
    finally:
        ray.shutdown()


def _check_resources(plan: Plan, backend: str) -> None:
    if backend != "ray":
        return
    import ray

    cpus = ray.cluster_resources().get("CPU", 0)
    if plan.cpus_per_trial > cpus:
        raise Rl2fpgaError(f"cpus_per_trial={plan.cpus_per_trial:g} but the Ray cluster has {cpus:g} CPUs; "
                           "lower cpus_per_trial or add workers")


def run_sweep(path: str | Path, runs_dir: str | Path = "runs", address: str | None = None, resume: bool = False,
              backend: str = "ray", num_cpus: int | None = None) -> dict[str, Any]:
    """Plan, run (stems, then trials) and tabulate a sweep. ``backend="serial"`` runs everything
    one after another in this process, TensorFlow free to use every core (the baseline of
    ``benchmarks/sweep_local.py``); ``num_cpus`` caps a local Ray (default: this machine's)."""
    plan = load_sweep(path, runs_dir)
    state_path = plan.root / "sweep.json"
    if state_path.exists():
        try:
            state = json.loads(state_path.read_text())
        except json.JSONDecodeError:
            raise Rl2fpgaError(f"{state_path} is corrupt; delete the folder {plan.root} to start the sweep again") from None
        if not resume:
            raise Rl2fpgaError(f"sweep '{plan.name}' already exists in {plan.root}; pass --resume to finish it, "
                               "or change its name")
        if state.get("fingerprint") != plan.fingerprint():
            raise Rl2fpgaError(f"the trials of {path} differ from those of the sweep in {plan.root}; "
                               "restore the sweep file, or give the changed sweep another name")
        attempt = int(state.get("attempts", 0)) + 1
    else:
        if resume:
            raise Rl2fpgaError(f"nothing to resume: no sweep '{plan.name}' in {plan.root.parent}; run it without --resume")
        attempt = 1
    t0 = time.perf_counter()
    todo = [t.id for t in plan.trials if trial_record(plan, t.id) is None]
    needed = {t.stem for t in plan.trials if t.id in todo and t.stem}
    stems_needed = set()
    for sid in needed:
        while sid is not None:
            stems_needed.add(sid)
            sid = plan.stem(sid).parent
    sub = dataclasses.replace(plan, stems=[s for s in plan.stems if s.id in stems_needed])

    ctx = ray_session(address, num_cpus) if backend == "ray" else contextlib.nullcontext()
    with ctx:
        _check_resources(plan, backend)  # Ray is up (or reachable) before anything is written
        plan.root.mkdir(parents=True, exist_ok=True)
        atomic_write_json(state_path, {"fingerprint": plan.fingerprint(), "attempts": attempt, "plan": plan.to_json()})
        _say(f"[sweep] {plan.name}: {len(plan.trials)} trials, steps {plan.steps[0]}..{plan.steps[-1]}, "
             f"{len(plan.stems)} shared stem(s), results in {plan.root}")
        if len(todo) < len(plan.trials):
            _say(f"[sweep] {len(plan.trials) - len(todo)} trial(s) already ended; running {len(todo)}")
        stem_err = (_stems_ray(sub) if backend == "ray" else _stems_serial(sub)) if sub.stems else {}
        runnable = []
        for tid in todo:
            t = plan.trial(tid)
            err = stem_err.get(t.stem) if t.stem else None
            if err is not None:
                _say(_progress(run_trial(plan.to_json(), tid, stem_error=err)))
            else:
                runnable.append(tid)
        if runnable:
            if backend == "ray":
                _trials_ray(plan, runnable, attempt)
            else:
                for tid in runnable:
                    _say(_progress(run_trial(plan.to_json(), tid, limit_threads=False)))
    wall = time.perf_counter() - t0
    table = write_results(plan)
    n_ok = sum(r["status"] == "finished" for r in table)
    n_err = sum(r["status"] == "error" for r in table)
    _say(f"[sweep] {plan.name}: {n_ok} finished, {n_err} error(s), "
         f"{len(table) - n_ok - n_err} not run, {wall:.0f} s; {plan.root / 'report.html'}")
    return {"plan": plan, "table": table, "seconds": wall}


# ----------------------------------------------------------------------------- results


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts to dotted keys; lists stay values (JSON text in the CSV)."""
    out: dict[str, Any] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, dict) and v:
                out.update(flatten(v, key))
            else:
                out[key] = v
    return out


def trial_return(row: dict[str, Any]) -> float | None:
    """The return the hardware would get: golden integer model with delta updates, else without."""
    for k in ("selected.eval_return_mean_delta", "selected.eval_return_mean"):
        v = row.get(k)
        if isinstance(v, int | float):
            return float(v)
    return None


def stored_bytes(row: dict[str, Any]) -> float | None:
    v = row.get("compression.stored_bits")
    return float(v) / 8 if isinstance(v, int | float) else None


# (name, x key or function, y key or function, x smaller is better, y larger is better, labels)
FRONTS: list[tuple[str, str, str, bool, bool, str, str]] = [
    ("return_vs_bytes", "stored_bytes", "return", True, True, "stored bytes (every index bit counted)", "return (golden, delta)"),
    ("return_vs_mults", "multiplications.significant_mean", "return", True, True,
     "significant multiplications per step", "return (golden, delta)"),
    ("cycles_vs_lut", "rtl.lut", "rtl.cycles_median", True, False, "LUT (yosys estimate)", "median cycles per frame"),
]


def _metric(row: dict[str, Any], key: str) -> float | None:
    if key == "return":
        return trial_return(row)
    if key == "stored_bytes":
        return stored_bytes(row)
    v = row.get(key)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def pareto_front(points: list[tuple[float, float]], x_min: bool = True, y_max: bool = True) -> list[int]:
    """Indices of the points no other point dominates (x smaller/larger, y larger/smaller as
    given: at least as good in both and better in one); the compression frontier's selection."""
    from rl2fpga.quantize.frontier import pareto_indices

    return pareto_indices(points, (not x_min, y_max))


def write_results(plan: Plan) -> list[dict[str, Any]]:
    """``results.json`` and ``results.csv`` (one row per trial: id, status, error, the swept
    keys as ``param.<key>``, every summary key flattened, Pareto membership) and ``report.html``."""
    from rl2fpga import GENERATED_HEADER

    rows: list[dict[str, Any]] = []
    for t in plan.trials:
        rec = trial_record(plan, t.id)
        row: dict[str, Any] = {"trial": t.id, "status": rec["status"] if rec else "not run",
                               "error": (rec or {}).get("error"), "seconds": (rec or {}).get("seconds"),
                               "ran_steps": (rec or {}).get("ran_steps"), "stem": t.stem}
        row.update({f"param.{k}": v for k, v in t.params.items()})
        row.update(flatten((rec or {}).get("summary") or {}))
        rows.append(row)
    for name, xk, yk, x_min, y_max, _, _ in FRONTS:
        for env in sorted({r.get("env") for r in rows if r.get("env")}):
            idx = [i for i, r in enumerate(rows) if r["status"] == "finished" and r.get("env") == env
                   and _metric(r, xk) is not None and _metric(r, yk) is not None]
            pts = [(_metric(rows[i], xk), _metric(rows[i], yk)) for i in idx]
            on = {idx[j] for j in pareto_front(pts, x_min, y_max)}  # type: ignore[arg-type]
            for i in idx:
                rows[i][f"pareto.{name}"] = i in on
    atomic_write_json(plan.root / "results.json", {"generated": GENERATED_HEADER, "sweep": plan.name,
                                                   "steps": plan.steps, "trials": rows})
    cols: list[str] = []
    for r in rows:
        cols.extend(k for k in r if k not in cols)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in r.items()})
    atomic_write_text(plan.root / "results.csv", buf.getvalue())
    atomic_write_text(plan.root / "report.html", render_report(plan, rows))
    return rows


def _plot_front(rows: list[dict[str, Any]], xk: str, yk: str, x_min: bool, y_max: bool,
                xlabel: str, ylabel: str, front_key: str) -> str | None:
    from rl2fpga.plots import new_figure as _fig
    from rl2fpga.plots import png_base64 as _png

    pts = [(r, _metric(r, xk), _metric(r, yk)) for r in rows if r["status"] == "finished"]
    pts = [p for p in pts if p[1] is not None and p[2] is not None]
    if not pts:
        return None
    fig, ax = _fig(5.6, 3.6)
    ax.scatter([p[1] for p in pts], [p[2] for p in pts], s=22, color="tab:blue", alpha=0.6, label="trial")
    front = sorted((p for p in pts if p[0].get(front_key)), key=lambda p: p[1])
    if front:
        # the staircase that bounds the dominated region
        ax.plot([p[1] for p in front], [p[2] for p in front], "o-", color="tab:red", ms=6, drawstyle="steps-post",
                label="Pareto front")
        same: dict[tuple[float, float], list[dict[str, Any]]] = {}
        for r, x, y in front:  # trials on the same point get one label: differing values joined by /
            same.setdefault((x, y), []).append(r)
        for (x, y), rs in same.items():
            parts = []
            for k in (k for k in rs[0] if k.startswith("param.")):
                vals = list(dict.fromkeys(str(r.get(k)) for r in rs))
                parts.append(f"{k.split('.')[-1]}={'/'.join(vals)}")
            ax.annotate(", ".join(parts) or "/".join(r["trial"] for r in rs), (x, y), textcoords="offset points",
                        xytext=(4, -10 if y_max else 4), fontsize=6.5)
    xs = [p[1] for p in pts]
    if min(xs) > 0 and max(xs) / min(xs) > 20:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return _png(fig)


def render_report(plan: Plan, rows: list[dict[str, Any]]) -> str:
    import jinja2

    from rl2fpga import GENERATED_HEADER, __version__

    envs = sorted({r.get("env") for r in rows if r.get("env")})
    sections = []
    for env in envs:
        er = [r for r in rows if r.get("env") == env]
        plots = []
        for name, xk, yk, x_min, y_max, xl, yl in FRONTS:
            plots.append({"title": f"{yl} vs {xl}", "png": _plot_front(er, xk, yk, x_min, y_max, xl, yl, f"pareto.{name}"),
                          "missing": "no trial has both figures (run the steps that measure them)"})
        sections.append({"env": env, "plots": plots})
    param_keys = [k for k in (rows[0] if rows else {}) if k.startswith("param.")]
    header = ["trial", "status", *[k[len("param."):] for k in param_keys], "return", "stored bytes",
              "signif. mults", "reduction", "cycles (median)", "LUT", "seconds"]

    def fmt(v: Any) -> str:
        if v is None:
            return "–"
        if isinstance(v, float):
            return f"{v:,.4g}"
        if isinstance(v, int) and not isinstance(v, bool):
            return f"{v:,}"
        return str(v)

    table = []
    for r in rows:
        table.append({"cls": {"finished": "ok", "error": "bad"}.get(r["status"], "na"),
                      "front": any(r.get(f"pareto.{f[0]}") for f in FRONTS),
                      "cells": [r["trial"], r["status"], *[fmt(r.get(k)) for k in param_keys], fmt(trial_return(r)),
                                fmt(stored_bytes(r)), fmt(r.get("multiplications.significant_mean")),
                                fmt(r.get("multiplications.reduction")), fmt(r.get("rtl.cycles_median")),
                                fmt(r.get("rtl.lut")), fmt(r.get("seconds"))]})
    errors = [{"trial": r["trial"], "error": r["error"]} for r in rows if r["status"] == "error"]
    n = {s: sum(r["status"] == s for r in rows) for s in ("finished", "error", "not run")}
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                             undefined=jinja2.StrictUndefined, autoescape=True)
    return env.get_template("sweep_report.html.j2").render(
        header=GENERATED_HEADER, version=__version__, name=plan.name, steps=plan.steps,
        generated=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), counts=n, n_trials=len(rows),
        n_stems=len(plan.stems), sections=sections, table_header=header, table=table, errors=errors)


# ----------------------------------------------------------------------------- CLI


def add_parser(sub: Any) -> None:
    s = sub.add_parser("sweep", help="run a sweep file's trials on Ray (local by default, --address for a cluster)")
    s.add_argument("sweep_file", help="YAML sweep file (base config, grid/random keys, steps, cpus_per_trial, storage)")
    s.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray on this machine)")
    s.add_argument("--resume", action="store_true", help="finish an interrupted sweep; ended trials are not rerun")
    s.add_argument("--runs-dir", default="runs", help="runs root; the sweep goes to <runs-dir>/<storage>/<name>")


def cli_sweep(args: Any) -> int:
    """Exit 0 when every trial ended (finished or failed: the table says which), 130 when
    interrupted, 1 when some trials did not end; the last two name the --resume command."""
    again = f"rl2fpga sweep {args.sweep_file} --resume" + (f" --runs-dir {args.runs_dir}" if args.runs_dir != "runs" else "")
    hint = f"finish it with `{again}`"
    try:
        out = run_sweep(args.sweep_file, runs_dir=args.runs_dir, address=args.address, resume=args.resume)
    except KeyboardInterrupt:
        print(f"error: sweep interrupted; ended trials are kept, {hint}", file=sys.stderr)
        return 130
    missing = [r["trial"] for r in out["table"] if r["status"] == "not run"]
    if missing:
        print(f"error: {len(missing)} trial(s) did not end ({', '.join(missing[:5])}...); {hint}", file=sys.stderr)
        return 1
    return 0
