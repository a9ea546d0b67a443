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
milliseconds per step are not measured (the old helper does not return them). Keep ``--steps``
in the thousands: the timed difference includes one-time costs (graph tracing, the env threads'
start), which swamp a few hundred steps (200 steps once read 0.53x where 1,500 read 1.79x)."""

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
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "configs" / "breakout.yaml"
# what the child process runs: the commit's package first on sys.path, the editable install's finder gone
CHILD = """
import json, os, sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
pkg, src, mode = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path[:0] = [pkg, src]
import rl2fpga
import rl2fpga.config
import rl2fpga.train
out = {"rl2fpga": rl2fpga.__file__, "config": rl2fpga.config.__file__, "train": rl2fpga.train.__file__,
       "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS")}
if mode == "time":
    from benchmarks._train_util import learning_rate_steps_per_s
    cfg = rl2fpga.config.load_config(src + "/configs/breakout.yaml")
    out["learning"], out["overall"] = learning_rate_steps_per_s(cfg, warmup=1000, steps=int(sys.argv[4]))[:2]
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


def run_child(pkg: Path, src: Path, mode: str, steps: int = 0, env: dict[str, str] | None = None) -> dict:
    """The child process (``mode``: probe = imports only, time = the commit's training loop);
    ``env``: variables set as ``os.environ.setdefault`` would (this process's values win)."""
    child_env = {**(env or {}), **os.environ}
    r = subprocess.run([sys.executable, "-c", CHILD, str(pkg), str(src), mode, str(steps)], cwd=pkg.parent,
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


def _time_one(name: str, c, args: argparse.Namespace, baseline: tuple[Path, Path] | None) -> tuple[float, float | None, float]:  # noqa: ANN001
    """(agent steps/s while learning, CPU ms per agent step or None, mean load average) of one loop."""
    from benchmarks._train_util import learning_rate_steps_per_s

    load0, cpu = os.getloadavg()[0], {}
    if name.startswith("today") and baseline is not None:
        env = cli_environment(baseline[1]) if name == "today-cli" else None
        learning, ms = run_child(*baseline, "time", args.steps, env)["learning"], None
    else:
        learning, _ = learning_rate_steps_per_s(c, warmup=1000, steps=args.steps, cpu=cpu)
        ms = cpu["ms_per_step"]
    return learning, ms, (load0 + os.getloadavg()[0]) / 2


def time_loops(cfg, args: argparse.Namespace) -> None:  # noqa: ANN001
    """Today's loop (or the one at --baseline-commit) and the new default, alternating, while learning."""
    if args.baseline_commit:
        with tempfile.TemporaryDirectory(prefix="rl2fpga_baseline_") as tmp:
            return _time_loops(cfg, args, baseline_package(args.baseline_commit, Path(tmp)))
    return _time_loops(cfg, args, None)


def _time_loops(cfg, args: argparse.Namespace, baseline: tuple[Path, Path] | None) -> None:  # noqa: ANN001
    import numpy as np

    from rl2fpga.config import apply_overrides

    dc = cfg.train.dqn
    base = apply_overrides(cfg, args.baseline_set)
    if args.baseline_cli_env and baseline is None:
        sys.exit("error: --baseline-cli-env needs --baseline-commit (the commit whose rl2fpga/cli.py sets the environment)")
    label = f"commit {args.baseline_commit}" if baseline else "today"
    cli_env = cli_environment(baseline[1]) if baseline is not None and args.baseline_cli_env else None
    cli_label = f"{label} as its rl2fpga run ran it ({' '.join(f'{k}={v}' for k, v in cli_env.items()) or 'no variables'})" if cli_env is not None else ""
    names = ["today", *(["today-cli"] if cli_env is not None else []), "new"]
    rows: dict[str, list[tuple[float, float | None, float]]] = {k: [] for k in names}
    shown = {"today": label, "today-cli": cli_label, "new": "new"}
    for r in range(args.repeats):
        for name in names:
            c = cfg if name == "new" else base
            rows[name].append(_time_one(name, c, args, baseline))
            ms = rows[name][-1][1]
            print(f"  repeat {r + 1}: {shown[name]:5s} {rows[name][-1][0]:6.1f} agent steps/s, "
                  + (f"{ms:.2f} CPU ms per agent step " if ms is not None else "")
                  + f"(load average {rows[name][-1][2]:.1f})", flush=True)
    med = {k: float(np.median([v[0] for v in rows[k]])) for k in rows}
    cpu_med = {k: float(np.median([v[1] for v in rows[k]])) if rows[k][0][1] is not None else float("nan") for k in rows}
    bd = base.train.dqn
    what = (f"the loop at commit {args.baseline_commit} (its configs/breakout.yaml)" if baseline
            else f"num_envs {bd.num_envs}, learner {bd.learner_dtype}")
    print(f"dqn while learning (train_freq {dc.train_freq}, batch {dc.batch_size}, {cfg.train.network} CNN), "
          f"median of {args.repeats}:\n"
          f"  {label}: {what}: {med['today']:.0f} agent steps/s"
          + (f", {cpu_med['today']:.2f} CPU ms per agent step" if not baseline else "") + "\n"
          f"  new:   num_envs {dc.num_envs} ({dc.vector_mode}), learner {dc.learner_dtype}: {med['new']:.0f} agent steps/s "
          f"= {med['new'] / med['today']:.2f}x, {cpu_med['new']:.2f} CPU ms per agent step"
          + (f" = {cpu_med['today'] / cpu_med['new']:.2f}x less" if not baseline else "")
          + f"; 200k agent steps ~ {200_000 / med['new'] / 60:.0f} min "
          f"({label} ~ {200_000 / med['today'] / 60:.0f} min)\n"
          + (f"  {cli_label}: {med['today-cli']:.0f} agent steps/s; new = {med['new'] / med['today-cli']:.2f}x it\n"
             if cli_env is not None else "")
          + f"  load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
