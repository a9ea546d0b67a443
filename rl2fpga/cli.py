"""The ``rl2fpga`` command line.

    rl2fpga run [CONFIG | RUN_DIR] [--from STEP] [--to STEP] [--set key=value ...]
    rl2fpga train [CONFIG] [--set ...]
    rl2fpga prune|quantize|analyze|hls|rtl|cosim|board|report RUN_DIR [step flags] [--set ...]
    rl2fpga config            every config key with its default and meaning
    rl2fpga sweep SWEEP.yaml [--address ADDR] [--resume]   trials on Ray (rl2fpga/sweep.py)

Every failure the user can fix prints one line ``error: ...`` and exits with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rl2fpga import __version__
from rl2fpga.errors import Rl2fpgaError

# step flags that are shortcuts for config overrides: flag -> (config key, type)
STEP_FLAGS: dict[str, dict[str, tuple[str, type]]] = {
    "train": {"--steps": ("train.total_steps", int), "--seed": ("seed", int), "--env": ("env.id", str)},
    "prune": {"--rounds": ("prune.rounds", int), "--method": ("prune.method", str)},
    "quantize": {"--bits": ("quantize.weight_bits", int), "--method": ("quantize.method", str)},
    "analyze": {"--episodes": ("analyze.episodes", int)},
    "hls": {"--backend": ("hls.backend", str), "--board": ("hls.board", str), "--frames": ("hls.csim_frames", int)},
    "rtl": {"--lanes": ("rtl.lanes", int)},
    "cosim": {"--frames": ("cosim.frames", int)},
    "board": {"--target": ("board.target", str), "--episodes": ("board.episodes", int),
              "--action": ("board.action", str), "--engine": ("board.emulator_engine", str)},
    "da4ml": {"--frames": ("da4ml.cosim_frames", int), "--episodes": ("da4ml.episodes", int)},
    "report": {},
}


def _quiet_tf() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # oneDNN on (TensorFlow's own default on x86; its start-up notice is an INFO line, hidden
    # above): with it off, the Atari DQN's bfloat16 learner runs on Eigen's emulated bfloat16
    # kernels, ~7x slower (Breakout: 55 against 380 agent steps/s on 2 cores)
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rl2fpga", description="RL policy -> sparse delta-update FPGA firmware, verified bit for bit.")
    p.add_argument("--version", action="version", version=f"rl2fpga {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("run", help="run the pipeline (the embedded CartPole default without CONFIG)")
    r.add_argument("config", nargs="?", help="YAML config, or an existing run directory to resume")
    r.add_argument("--name", help="run name (default: the config's name)")
    r.add_argument("--runs-dir", default="runs", help="where run directories go")
    r.add_argument("--from", dest="start", help="first step to run (earlier ones are kept)")
    r.add_argument("--to", dest="stop", help="last step to run")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    r.add_argument("--force", action="store_true", help="overwrite the finished steps of an existing run of that name")
    r.add_argument("--model", help="bring your own policy: a .keras/.h5 (Keras or QKeras) or .onnx file, "
                   "imported in place of training (the pipeline starts at prune, or --from quantize)")
    r.add_argument("--env", dest="env_id", help="with --model: the Gymnasium environment id the policy acts in")

    t = sub.add_parser("train", help="create a run directory and train the agent")
    t.add_argument("config", nargs="?", help="YAML config (default: the embedded CartPole config)")
    t.add_argument("--name", help="run name")
    t.add_argument("--runs-dir", default="runs", help="where run directories go")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    t.add_argument("--force", action="store_true", help="overwrite the trained model of an existing run of that name")
    for flag, (key, typ) in STEP_FLAGS["train"].items():
        t.add_argument(flag, type=typ, dest=key.replace(".", "__"), help=f"sets {key}")

    for step in ("prune", "quantize", "analyze", "hls", "rtl", "cosim", "board", "da4ml", "report"):
        s = sub.add_parser(step, help=f"run the {step} step on an existing run directory")
        s.add_argument("run_dir", help="run directory (runs/<name>)")
        s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
        for flag, (key, typ) in STEP_FLAGS[step].items():
            s.add_argument(flag, type=typ, dest=key.replace(".", "__"), help=f"sets {key}")

    from rl2fpga.sweep import add_parser as add_sweep_parser

    add_sweep_parser(sub)

    c = sub.add_parser("config", help="print every config key with its default and meaning")
    c.add_argument("--yaml", action="store_true", help="print the default config as YAML")
    return p


TRANSIENT_KEYS = ("board.action",)


def _transient(cfg: object) -> dict[str, str]:
    out = {}
    for key in TRANSIENT_KEYS:
        node = cfg
        for part in key.split("."):
            node = getattr(node, part)
        out[key] = str(node)
    return out


def _flag_overrides(args: argparse.Namespace, step: str) -> list[str]:
    out = []
    for _flag, (key, _typ) in STEP_FLAGS.get(step, {}).items():
        v = getattr(args, key.replace(".", "__"), None)
        if v is not None:
            out.append(f"{key}={v}")
    return out


def _main(argv: list[str] | None) -> int:
    args = _build_parser().parse_args(argv)
    from rl2fpga.config import apply_overrides, describe, dump_yaml, load_config

    if args.cmd == "config":
        from rl2fpga.config import RunConfig

        if args.yaml:
            print(dump_yaml(RunConfig()), end="")
        else:
            for key, default, doc in describe():
                print(f"{key:34s} {default:18s} {doc}")
        return 0

    _quiet_tf()
    if args.cmd == "sweep":
        from rl2fpga.sweep import cli_sweep

        return cli_sweep(args)
    from rl2fpga.guard import check_overwrite, session, steps_between
    from rl2fpga.lock import run_lock
    from rl2fpga.pipeline import run_pipeline
    from rl2fpga.run import Run
    from rl2fpga.safety import run_folder
    from rl2fpga.validate import validate_config, validate_for_run

    cmdline = " ".join(["rl2fpga", *(sys.argv[1:] if argv is None else argv)])
    # everything is checked before the run folder is touched; the config is written when a
    # step starts (run_pipeline's persist), under the run folder's lock
    if args.cmd == "run" and (args.model or args.env_id):
        from rl2fpga.api import run_model_cli

        run, times = run_model_cli(args.model, args.env_id, args.config, args.name, args.runs_dir,
                                   args.start, args.stop, args.set)
        print(f"run directory: {run.path}  ({sum(times.values()):.1f} s)")
        return 0
    if args.cmd in ("run", "train"):
        src = args.config
        fresh = not (src is not None and Path(src).is_dir())
        if not fresh:
            run = Run.open(src)
            if args.cmd == "run" and args.start is None and run.layout.train_imported.exists():
                args.start = "prune"  # an imported policy is never retrained
            cfg = apply_overrides(run.config(), args.set)
            validate_for_run(cfg, run)
            target = run.path
        else:
            cfg = load_config(src)
            sets = list(args.set) + (_flag_overrides(args, "train") if args.cmd == "train" else [])
            if args.name:
                sets.append(f"name={args.name}")
            cfg = apply_overrides(cfg, sets)
        validate_config(cfg)
        if fresh:
            target = run_folder(args.runs_dir, cfg.name)
        start, stop = ("train", "train") if args.cmd == "train" else (args.start, args.stop)
        names = steps_between(start, stop)
        with session(), run_lock(target, cmdline):
            if fresh:
                check_overwrite(target, names, args.force)
            run = Run.create(cfg, path=target, write_config=False)
            times = run_pipeline(run, cfg, start=start, stop=stop, persist=cfg)
        print(f"run directory: {run.path}  ({sum(times.values()):.1f} s)")
        return 0

    run = Run.open(args.run_dir)
    stored = run.config()
    cfg = apply_overrides(stored, list(args.set) + _flag_overrides(args, args.cmd))
    validate_config(cfg)
    validate_for_run(cfg, run)
    # what a step is asked to do this time (e.g. board --action build) is not saved as the run's config
    persisted = apply_overrides(cfg, [f"{k}={v}" for k, v in _transient(stored).items()])
    with session(), run_lock(run.path, cmdline):
        run_pipeline(run, cfg, start=args.cmd, stop=args.cmd, persist=persisted)
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except Rl2fpgaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; finished steps are kept, resume with --from", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
