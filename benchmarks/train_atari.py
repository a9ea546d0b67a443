"""Breakout DQN with the papers' CNN: agent steps/s including learning, replay bytes for 1M
transitions (target <= 8 GB) and the random-policy baseline return.

The loop is timed side by side in one run: today's loop (one env, float32 learner, per-step
action selection: ``--baseline-set`` overrides) and the config's default (e.g. 8 envs, bfloat16
learner), alternating ``--repeats`` times, with the load average beside each figure (the machine
is shared: compare the two columns of one run, not figures of different runs).

The "today" column is today's code with one env and a float32 learner, which already has the
shared speed-ups (packed replay sampling, ...), so it is not the loop issue 16 measured. To time
the loop as it was at a commit instead, side by side with the new default, alternating:

    python -m benchmarks train_atari --skip-env --baseline-commit d159a6f --steps 1500 --repeats 2
    python -m benchmarks train_atari --skip-env --baseline-commit d159a6f --baseline-cli-env \
        --steps 2000 --repeats 4 --in-run --greedy

(d159a6f is the last commit before the speed work of issue 16, 579e253.) ``--baseline-cli-env``
adds a third column: the same commit's loop in the environment its ``rl2fpga run`` set before
TensorFlow was imported (read from the commit's ``rl2fpga/cli.py``: its literal
``os.environ.setdefault`` calls; d159a6f's set ``TF_ENABLE_ONEDNN_OPTS=0``, which turns oneDNN's
kernels off, so that column is the loop as users ran it then). The commit's tree is
unpacked with ``git archive`` into a temporary folder, its packages are assembled as its
pyproject's ``package-dir`` map installs them (rl2fpga plus train, quantize, hls, board,
rtl_tests as subpackages), and a child process of the same Python, with the editable install's
finder removed from ``sys.meta_path``, times that commit's own
``benchmarks._train_util.learning_rate_steps_per_s`` on that commit's configs/breakout.yaml
(warm-up 1000 steps, then ``--steps``); the temporary folder is removed afterwards. Its CPU
milliseconds per step are not measured (the old helper does not return them).

Each figure is the extra time of a run that learns for ``--steps`` steps over one that only plays
the warm-up, so it includes one-time costs (graph tracing, oneDNN's kernel generation, the env
thread's start): they swamp a few hundred steps (200 steps once read 0.53x where 1,500 read
1.79x) and still weigh on a few thousand. ``--steady`` also times 3x ``--steps`` and reports
the rate between the two lengths, which excludes them, as a training run of 100k+ steps does.
That difference of two runs' times carries both runs' start-up jitter (tracing, env creation: a
few seconds either way on a busy machine), so ``--in-run`` instead times each loop in ONE run of
1,000 + 3x ``--steps`` steps, with the wall and CPU clocks read at the loop's own progress-bar
updates at learning steps ``--steps`` and 3x ``--steps`` (``benchmarks/_marks.py``; a baseline
commit's loop is read the same way in its child process), and also prints each repeat's ratio of
the same repeat's runs and the lowest of them.
By default epsilon starts at its initial value (the timed steps are almost all random actions,
which skip action selection); ``--greedy`` sets it at its final value from the first learning step,
as after ``exploration_steps`` (the second half of a 200k-step
Breakout run; ~72 % of its actions are greedy). The overrides apply
to every loop, a baseline commit's included (through its own ``apply_overrides``)."""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "configs" / "breakout.yaml"
# what the child process runs: the commit's package first on sys.path, the editable install's finder gone
CHILD = """
import json, os, sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
pkg, src, mode, job = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
sys.path[:0] = [pkg, src]
import rl2fpga
import rl2fpga.config
import rl2fpga.train
out = {"rl2fpga": rl2fpga.__file__, "config": rl2fpga.config.__file__, "train": rl2fpga.train.__file__,
       "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS")}
cfg = rl2fpga.config.apply_overrides(rl2fpga.config.load_config(src + "/configs/breakout.yaml"), job["sets"])
out["exploration_steps"] = cfg.train.dqn.exploration_steps
if mode == "time":
    from benchmarks._train_util import learning_rate_steps_per_s
    out["learning"] = [learning_rate_steps_per_s(cfg, warmup=1000, steps=s)[0] for s in job["steps"]]
if mode == "marks":  # one run, clocks read at its progress bar (benchmarks/_marks.py of this tree, by path)
    import importlib.util
    spec = importlib.util.spec_from_file_location("rl2fpga_bench_marks", job["marks_file"])
    mk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mk)
    try:
        from rl2fpga.train.trainer import train
    except ImportError:  # the module's name before the trainer split (d159a6f)
        from rl2fpga.train.steps import train
    w, a, b = job["warmup"], job["first"], job["last"]
    run = rl2fpga.config.apply_overrides(cfg, job["bench_sets"] + [f"train.total_steps={w + b}"])
    with mk.StepMarks(w + b, [w + a, w + b]) as m:
        train(run, None, progress=False)
    out["marks"] = [m.rate(w + a, w + b), m.cpu_ms(w + a, w + b)]
print("RESULT " + json.dumps(out), flush=True)
"""


def baseline_package(commit: str, tmp: Path, repo: Path = REPO) -> tuple[Path, Path]:
    """``git archive`` of ``commit`` into ``tmp/src`` and its packages assembled in ``tmp/pkg`` as its
    pyproject's ``package-dir`` map installs them. Returns (pkg, src)."""
    src, pkg = tmp / "src", tmp / "pkg"
    src.mkdir(parents=True)
    r = subprocess.run(["git", "-C", str(repo), "archive", commit], capture_output=True)
    if r.returncode != 0:
        sys.exit(f"error: git archive {commit} failed ({r.stderr.decode().strip()}); pass a commit of this repository")
    with tarfile.open(fileobj=io.BytesIO(r.stdout)) as tar:
        tar.extractall(src, filter="data")
    dirs = tomllib.loads((src / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for name, d in sorted(dirs.items(), key=lambda kv: kv[0].count(".")):  # parents first; nested ones come with them
        dest = pkg.joinpath(*name.split("."))
        if not dest.exists():
            shutil.copytree(src / d, dest)
    return pkg, src


def cli_environment(src: Path) -> dict[str, str]:
    """The environment variables a commit's ``rl2fpga/cli.py`` set with literal
    ``os.environ.setdefault("KEY", "VALUE")`` calls (read with ``ast``, never run)."""
    import ast

    path = src / "rl2fpga" / "cli.py"
    if not path.is_file():
        sys.exit(f"error: {path} not found; --baseline-cli-env needs a commit with rl2fpga/cli.py")
    out: dict[str, str] = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "setdefault"
                and ast.unparse(node.func.value) == "os.environ" and len(node.args) == 2
                and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args)):
            out.setdefault(node.args[0].value, node.args[1].value)
    return out


def run_child(pkg: Path, src: Path, mode: str, steps: Sequence[int] = (), env: dict[str, str] | None = None,
              sets: Sequence[str] = (), marks: tuple[int, int, int] | None = None) -> dict:
    """The child process (``mode``: probe = imports only, time = the commit's training loop on its
    configs/breakout.yaml with ``sets`` applied, once per entry of ``steps``: "learning" is the
    list of its steps/s; marks = one run of that loop, ``marks`` = (warmup, first, last):
    "marks" is [agent steps/s, CPU ms per agent step] between learning steps first and last);
    ``env``: variables set as ``os.environ.setdefault`` would (this process's values win)."""
    from benchmarks._train_util import bench_sets

    child_env = {**(env or {}), **os.environ}
    job = {"steps": [int(s) for s in steps], "sets": list(sets)}
    if marks is not None:
        w, a, b = (int(x) for x in marks)
        job.update(warmup=w, first=a, last=b, bench_sets=bench_sets("dqn", w),
                   marks_file=str(Path(__file__).with_name("_marks.py")))
    job = json.dumps(job)
    r = subprocess.run([sys.executable, "-c", CHILD, str(pkg), str(src), mode, job], cwd=pkg.parent,
                       capture_output=True, text=True, env=child_env)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
    if r.returncode != 0 or not lines:
        sys.exit(f"error: the baseline child failed (exit {r.returncode}): {r.stderr.strip().splitlines()[-1:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default=str(CONFIG))
    ap.add_argument("--steps", type=int, default=2000, help="agent steps timed while learning")
    ap.add_argument("--random-episodes", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=2, help="alternating timings of each loop")
    ap.add_argument("--baseline-set", action="append",
                    default=["train.dqn.num_envs=1", "train.dqn.learner_dtype=float32"],
                    help="overrides that give today's loop")
    ap.add_argument("--set", action="append", default=[], help="overrides of the new default")
    ap.add_argument("--skip-env", action="store_true", help="only time the training loops")
    ap.add_argument("--baseline-commit", metavar="SHA",
                    help="time the loop as it was at this commit (e.g. d159a6f) instead of --baseline-set's")
    ap.add_argument("--baseline-cli-env", action="store_true",
                    help="with --baseline-commit: also time that loop in the environment its rl2fpga run set")
    ap.add_argument("--steady", action="store_true",
                    help="also time 3x --steps and report the rate between the two lengths: one-time costs "
                         "(graph tracing, kernel generation, thread start) excluded, as in a long training run")
    ap.add_argument("--in-run", action="store_true",
                    help="time each loop in ONE run of warmup + 3x --steps learning steps, between learning steps "
                         "--steps and 3x --steps, read at the loop's own progress-bar updates: one-time costs "
                         "excluded without subtracting two runs' times (less noise than --steady)")
    ap.add_argument("--greedy", action="store_true",
                    help="epsilon at its final value from the first learning step (every loop acts greedily, "
                         "as after exploration_steps, most of a training run); default: from its initial value")
    args = ap.parse_args()

    import numpy as np

    from rl2fpga.config import apply_overrides, load_config
    from rl2fpga.train.envs import env_spec, make_env
    from rl2fpga.train.evaluate import evaluate
    from rl2fpga.train.replay import ReplayBuffer, atari_bytes_per_transition

    cfg = apply_overrides(load_config(args.config), args.set)
    if args.skip_env:
        return time_loops(cfg, args)

    # -- replay memory: measured on real buffers, extrapolated to 1M transitions ------------------
    per = atari_bytes_per_transition()
    small, large = (ReplayBuffer(n, (84, 84, 4), np.uint8, (), np.int32, stack=4) for n in (1000, 2000))
    assert large.nbytes() - small.nbytes() == 1000 * per
    print(f"replay: {per} bytes per transition -> {per * 1e6 / 1e9:.3f} GB for 1M transitions "
          f"({'PASS' if per * 1e6 <= 8e9 else 'FAIL'} <= 8 GB); frames stored 4x would need "
          f"{(2 * 4 * 84 * 84) * 1e6 / 1e9:.1f} GB")

    # -- random-policy baseline on the evaluation env --------------------------------------------
    n_actions = env_spec(cfg.env).n_actions
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    res = evaluate(lambda obs: int(rng.integers(n_actions)), cfg.env, seed=10_000, episodes=args.random_episodes)
    print(f"random policy: return {res.mean:.2f} +- {res.std:.2f} over {len(res.returns)} episodes "
          f"(seeds 10000.., {sum(res.lengths) / (time.perf_counter() - t0):.0f} env steps/s)")

    # -- env alone -------------------------------------------------------------------------------
    env = make_env(cfg.env, 0, training=True)
    env.reset(seed=0)
    t0 = time.perf_counter()
    for _ in range(2000):
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            env.reset()
    print(f"env alone (training wrappers): {2000 / (time.perf_counter() - t0):.0f} agent steps/s")
    env.close()

    time_loops(cfg, args)


def steady_rate(steps: Sequence[int], rates: Sequence[float]) -> float:
    """Agent steps/s between two learning lengths: the runs' learning times are ``steps / rates``
    (each including the same one-time costs: graph tracing, oneDNN's kernel generation, the env
    thread's start), so their difference is the time of ``steps[1] - steps[0]`` steps alone."""
    (s1, s2), (r1, r2) = steps, rates
    return (s2 - s1) / max(s2 / r2 - s1 / r1, 1e-9)


GREEDY = ["train.dqn.exploration_steps=1"]  # epsilon at its final value from the first learning step


def _time_one(name: str, c, args: argparse.Namespace, baseline: tuple[Path, Path] | None) -> dict:  # noqa: ANN001
    """One loop's figures: "first" (agent steps/s over the first ``--steps`` steps of learning;
    None with ``--in-run``), "steady" (with ``--steady`` or ``--in-run``: between ``--steps`` and 3x
    as many; else None), "ms" / "ms_steady" (CPU ms per agent step over the same spans; None for a
    baseline commit's two-run figures, whose helper does not measure them) and "load" (mean load
    average)."""
    from benchmarks._train_util import in_run_rate, learning_rate_steps_per_s

    load0, ms = os.getloadavg()[0], None
    child = name.startswith("today") and baseline is not None  # the commit's own loop, in a child process
    env = cli_environment(baseline[1]) if child and name == "today-cli" else None
    sets = GREEDY if args.greedy else ()
    if args.in_run:
        marks = (1000, args.steps, 3 * args.steps)
        rate, cpu = run_child(*baseline, "marks", (), env, sets, marks)["marks"] if child else in_run_rate(c, *marks)
        return {"first": None, "steady": rate, "ms": None, "ms_steady": cpu, "load": (load0 + os.getloadavg()[0]) / 2}
    steps = [args.steps, 3 * args.steps] if args.steady else [args.steps]
    if child:
        rates = run_child(*baseline, "time", steps, env, sets)["learning"]
    else:
        rates, ms = [], []
        for n in steps:
            cpu: dict[str, float] = {}
            rates.append(learning_rate_steps_per_s(c, warmup=1000, steps=n, cpu=cpu)[0])
            ms.append(cpu["ms_per_step"])
    out = {"first": rates[0], "steady": steady_rate(steps, rates) if args.steady else None,
           "ms": ms[0] if ms else None, "ms_steady": None, "load": (load0 + os.getloadavg()[0]) / 2}
    if ms and args.steady:  # CPU ms of the extra steps alone, as for the rate
        out["ms_steady"] = (ms[1] * steps[1] - ms[0] * steps[0]) / (steps[1] - steps[0])
    return out


def time_loops(cfg, args: argparse.Namespace) -> None:  # noqa: ANN001
    """Today's loop (or the one at --baseline-commit) and the new default, alternating, while learning."""
    if args.baseline_commit:
        with tempfile.TemporaryDirectory(prefix="rl2fpga_baseline_") as tmp:
            return _time_loops(cfg, args, baseline_package(args.baseline_commit, Path(tmp)))
    return _time_loops(cfg, args, None)


def _time_loops(cfg, args: argparse.Namespace, baseline: tuple[Path, Path] | None) -> None:  # noqa: ANN001
    import numpy as np

    from rl2fpga.config import apply_overrides

    if args.in_run and args.steady:
        sys.exit("error: --in-run and --steady are two ways of excluding one-time costs; pass one")
    if args.greedy:
        cfg = apply_overrides(cfg, GREEDY)
    dc = cfg.train.dqn
    base = apply_overrides(cfg, args.baseline_set)
    if args.baseline_cli_env and baseline is None:
        sys.exit("error: --baseline-cli-env needs --baseline-commit (the commit whose rl2fpga/cli.py sets the environment)")
    label = f"commit {args.baseline_commit}" if baseline else "today"
    cli_env = cli_environment(baseline[1]) if baseline is not None and args.baseline_cli_env else None
    cli_label = f"{label} as its rl2fpga run ran it ({' '.join(f'{k}={v}' for k, v in cli_env.items()) or 'no variables'})" if cli_env is not None else ""
    names = ["today", *(["today-cli"] if cli_env is not None else []), "new"]
    rows: dict[str, list[dict]] = {k: [] for k in names}
    shown = {"today": label, "today-cli": cli_label, "new": "new"}
    span = f"steps {args.steps}..{3 * args.steps} of learning"
    for r in range(args.repeats):
        for name in names:
            got = _time_one(name, cfg if name == "new" else base, args, baseline)
            rows[name].append(got)
            print(f"  repeat {r + 1}: {shown[name]:5s} "
                  + (f"{got['first']:6.1f} agent steps/s over the first {args.steps} steps of learning"
                     if got["first"] is not None else "")
                  + (f", {got['ms']:.2f} CPU ms per agent step" if got["ms"] is not None else "")
                  + (f"; {got['steady']:6.1f} over {span}" if got["steady"] is not None and got["first"] is not None else "")
                  + (f"{got['steady']:6.1f} agent steps/s over {span} of one run" if got["first"] is None else "")
                  + (f", {got['ms_steady']:.2f} CPU ms" if got["ms_steady"] is not None else "")
                  + f" (load average {got['load']:.1f})", flush=True)
    key = "steady" if args.steady or args.in_run else "first"
    med = {k: float(np.median([v[key] for v in rows[k]])) for k in rows}
    cpu_key = "ms_steady" if args.steady or args.in_run else "ms"
    cpu_med = {k: float(np.median([v[cpu_key] for v in rows[k]])) if rows[k][0][cpu_key] is not None else float("nan")
               for k in rows}
    bd = base.train.dqn
    what = (f"the loop at commit {args.baseline_commit} (its configs/breakout.yaml)" if baseline
            else f"num_envs {bd.num_envs}, learner {bd.learner_dtype}")
    over = (f"{span} of one run" if args.in_run else span + " (one-time costs excluded)") if args.steady or args.in_run \
        else f"the first {args.steps} steps of learning"
    print(f"dqn while learning (train_freq {dc.train_freq}, batch {dc.batch_size}, {cfg.train.network} CNN"
          + (", epsilon at its final value" if args.greedy else ", epsilon from its initial value") + f"), {over}, "
          f"median of {args.repeats}:\n"
          f"  {label}: {what}: {med['today']:.0f} agent steps/s"
          + (f", {cpu_med['today']:.2f} CPU ms per agent step" if cpu_med["today"] == cpu_med["today"] else "") + "\n"
          f"  new:   num_envs {dc.num_envs} ({dc.vector_mode}), learner {dc.learner_dtype}: {med['new']:.0f} agent steps/s "
          f"= {med['new'] / med['today']:.2f}x, {cpu_med['new']:.2f} CPU ms per agent step"
          + (f" = {cpu_med['today'] / cpu_med['new']:.2f}x less" if cpu_med["today"] == cpu_med["today"] else "")
          + f"; 200k agent steps ~ {200_000 / med['new'] / 60:.0f} min "
          f"({label} ~ {200_000 / med['today'] / 60:.0f} min)\n"
          + (f"  {cli_label}: {med['today-cli']:.0f} agent steps/s"
             + (f", {cpu_med['today-cli']:.2f} CPU ms per agent step" if cpu_med["today-cli"] == cpu_med["today-cli"] else "")
             + f"; new = {med['new'] / med['today-cli']:.2f}x it\n"
             if cli_env is not None else "")
          + "".join(f"  new / {shown[k]}, per repeat (same repeat's runs): "
                    + ", ".join(f"{n[key] / t[key]:.2f}x" for n, t in zip(rows["new"], rows[k], strict=True))
                    + f"; lowest {min(n[key] / t[key] for n, t in zip(rows['new'], rows[k], strict=True)):.2f}x\n"
                    for k in names[:-1])
          + f"  load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
