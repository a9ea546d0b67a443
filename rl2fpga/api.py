"""The Python API: bring a trained policy, get verified firmware.

    import rl2fpga

    c = rl2fpga.compile("policy.onnx", "CartPole-v1", run_dir="runs/my_policy")
    c.golden                 # the integer golden model (quantize/golden)
    c.hls_project()          # hls4ml project + C simulation vs golden  -> hls/summary.json
    c.engine()               # the sparse delta engine (SystemVerilog)   -> rtl/summary.json
    c.cosim(frames=200)      # Verilator co-simulation vs golden         -> cosim/summary.json
    c.report()               # runs/my_policy/report.html

:func:`compile` imports the policy (``.keras`` / ``.h5`` Keras or QKeras, ``.onnx``, or an
in-memory ``tf.keras.Model``) into ``run_dir/train/`` in place of the training step, then runs
``prune`` and ``quantize`` (or, with ``start="quantize"``, skips pruning: ``prune.method=none``).
Each method runs one pipeline step on the same run directory, exactly as the command line does
(``rl2fpga run --model FILE --env ID``), so a notebook and the CLI produce the same folder.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from rl2fpga.artifacts import ImportedRecord, QuantizeSummary, TrainEnv, TrainEval, TrainSummary
from rl2fpga.config import RunConfig, apply_overrides, load_config
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.fsutil import atomic_dir, read_json
from rl2fpga.pipeline import run_pipeline
from rl2fpga.run import Run

IMPORT_RECORD = ImportedRecord.FILE  # in train/: marks a run whose policy was brought, not trained
# an imported policy has no training checkpoints and no replay: prune by distilling from it
IMPORTED_DEFAULTS = ["prune.method=gradual", "prune.finetune=distill"]
START_STEPS = ("prune", "quantize")


def _as_config(config: RunConfig | str | Path | dict[str, Any] | None) -> tuple[RunConfig, bool]:
    """(config, whether the user gave one)."""
    if config is None:
        return RunConfig(), False
    if isinstance(config, RunConfig):
        return config, True
    if isinstance(config, dict):
        from rl2fpga.config import from_dict

        return from_dict(RunConfig, config), True
    return load_config(config), True


def _safe_name(stem: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._") or "policy"
    return name[:64]


def imported_config(cfg: RunConfig, env_id: str, given: bool, start: str, sets: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """The run config of an imported policy: the env, the algorithm its action space implies,
    distillation pruning unless the user chose a method, ``prune.method=none`` from quantize."""
    from rl2fpga.train.envs import env_spec

    if start not in START_STEPS:
        raise Rl2fpgaError(f"an imported policy starts at prune or quantize, not '{start}'; use --from prune or --from quantize")
    base = [] if given else list(IMPORTED_DEFAULTS)
    cfg = apply_overrides(cfg, base + [f"env.id={env_id}"] + list(sets))
    spec = env_spec(cfg.env)
    cfg = apply_overrides(cfg, [f"train.algo={'dqn' if spec.discrete else 'sac'}"])
    if start == "quantize":
        cfg = apply_overrides(cfg, ["prune.method=none"])
    if cfg.prune.method == "imp" and cfg.prune.rewind == "checkpoint":
        raise Rl2fpgaError("prune.method=imp rewinds to a training checkpoint, which an imported policy does not have; "
                           "use prune.method=gradual with prune.finetune=distill, prune.method=none, or prune.rewind=init")
    return cfg


def import_policy(run: Run, cfg: RunConfig, model: Any, log: bool = True) -> dict[str, Any]:
    """Write ``run/train/`` from a policy file or a tf.keras model, as the train step would:
    ``model.keras`` (the canonical chain), ``init_model.keras`` (a seeded fresh initialisation,
    for ``prune.rewind=init``), ``env.json``, ``eval.json``, ``summary.json`` and
    ``imported.json`` (source file, its sha256, what was folded). Atomic: a failure leaves an
    earlier ``train/`` intact."""
    import tensorflow as tf

    from rl2fpga.importers import ImportedPolicy, build_keras, check_against_env, read_policy
    from rl2fpga.train.envs import env_spec
    from rl2fpga.train.evaluate import deterministic_actor, evaluate, greedy_policy
    from rl2fpga.train.training import EVAL_SEED_OFFSET, save_keras

    t0 = time.perf_counter()
    spec = env_spec(cfg.env)
    if isinstance(model, ImportedPolicy):
        pol = model
    elif isinstance(model, str | Path):
        pol = read_policy(model)
    elif isinstance(model, tf.keras.Model):
        from rl2fpga.importers.keras_import import policy_from_model, verify_same_function

        pol = policy_from_model(model, model.name)
        pol.source.update({"file": None, "in_memory": model.name})
        if pol.source["format"] == "keras":
            verify_same_function(pol, model, build_keras(pol))
    else:
        raise Rl2fpgaError(f"model must be a path to a .keras/.h5/.onnx file or a tf.keras.Model, got {type(model).__name__}")
    pol.fold_input_scale(pixels=spec.obs_dtype == "uint8")
    canon = build_keras(pol)
    check_against_env(pol, canon, spec)
    tf.keras.utils.set_random_seed(cfg.seed)
    init = tf.keras.models.clone_model(canon)  # fresh seeded initialisation, same architecture
    policy = greedy_policy(canon) if spec.discrete else deterministic_actor(canon, spec)
    seed = cfg.seed + EVAL_SEED_OFFSET
    ev = evaluate(policy, cfg.env, seed, cfg.train.eval_episodes)
    record = {**pol.source, "output_tanh_removed": pol.output_tanh,
              "layers": [la.kind + ("+relu" if la.relu else "") for la in pol.layers],
              "input_shape": list(pol.input_shape)}
    lay = run.layout
    with atomic_dir(lay.step("train")) as out:
        save_keras(canon, out / lay.train_model.name)
        save_keras(init, out / lay.train_init_model.name)
        TrainEnv(spec.to_dict()).save_in(out)
        TrainEval({**ev.to_dict(), "seed": seed, "episodes": cfg.train.eval_episodes}).save_in(out)
        ImportedRecord(record).save_in(out)
        TrainSummary({
            "eval_return_mean": ev.mean, "eval_return_std": ev.std, "steps": 0,
            "seconds": round(time.perf_counter() - t0, 3), "selected_step": None,
            "algo": cfg.train.algo, "env": cfg.env.id, "imported": record,
        }).save_in(out)
    run.mark_done("train", time.perf_counter() - t0)
    if log:
        print(f"import: {record.get('file') or record.get('in_memory')} ({record['format']}) -> {canon.count_params():,} parameters, "
              f"{spec.id} return {ev.mean:.1f} +- {ev.std:.1f} over {len(ev.returns)} episodes")
    return record


def _preread(model: Any) -> Any:
    """A policy file read into an ImportedPolicy (errors before anything is written)."""
    if isinstance(model, str | Path):
        from rl2fpga.importers import read_policy

        return read_policy(model)
    return model


def is_imported(run: Run) -> bool:
    return run.layout.train_imported.exists()


class CompiledPolicy:
    """A run directory holding an imported (or trained) policy; each method runs one step."""

    def __init__(self, run: Run, cfg: RunConfig):
        self.run = run
        self.config = cfg

    @property
    def run_dir(self) -> Path:
        return self.run.path

    def __repr__(self) -> str:
        return f"CompiledPolicy({self.config.env.id}, run_dir='{self.run.path}')"

    # -- artefacts ------------------------------------------------------------------------
    @property
    def golden(self) -> Any:
        """The integer golden model (``quantize/golden``) with its delta thresholds."""
        from rl2fpga.core.golden import GoldenModel

        self.run.require("quantize")
        return GoldenModel.load(self.run.layout.quantize_golden)

    @property
    def summary(self) -> dict[str, Any]:
        """``quantize/summary.json``: sparsity, formats, returns, multiplications, compression."""
        self.run.require("quantize")
        return QuantizeSummary.require(self.run.layout).data

    def keras_model(self) -> Any:
        """The imported float model (canonical chain)."""
        from rl2fpga.train.trainer import load_trained

        return load_trained(self.run)[0]

    def qkeras_model(self) -> Any:
        from rl2fpga.quantize.qkeras_model import load_qmodel

        self.run.require("quantize")
        return load_qmodel(self.run.layout.quantize_qmodel)

    # -- steps ----------------------------------------------------------------------------
    def _step(self, step: str, sets: list[str]) -> dict[str, Any]:
        cfg = apply_overrides(self.config, sets)
        if sets:
            Run.create(cfg, path=self.run.path)
            self.config = cfg
        run_pipeline(self.run, cfg, start=step, stop=step)
        summary = self.run.layout.summary_of(step)
        return read_json(summary) if summary.exists() else {}

    def analyze(self, episodes: int | None = None) -> dict[str, Any]:
        return self._step("analyze", [] if episodes is None else [f"analyze.episodes={episodes}"])

    def hls_project(self, backend: str | None = None, csim_frames: int | None = None, board: str | None = None) -> dict[str, Any]:
        """hls4ml project from the golden formats, C simulation vs golden (``hls/``)."""
        sets = [f"hls.backend={backend}"] if backend else []
        sets += [f"hls.csim_frames={csim_frames}"] if csim_frames is not None else []
        sets += [f"hls.board={board}"] if board else []
        return self._step("hls", sets)

    def engine(self, lanes: int | None = None, synth: bool | None = None) -> dict[str, Any]:
        """The sparse delta engine in SystemVerilog, linted, with a yosys estimate (``rtl/``)."""
        sets = [f"rtl.lanes={lanes}"] if lanes is not None else []
        sets += [f"rtl.synth={'true' if synth else 'false'}"] if synth is not None else []
        return self._step("rtl", sets)

    def cosim(self, frames: int | None = None) -> dict[str, Any]:
        """The engine in Verilator vs the golden model on real frames (``cosim/``); builds the
        engine first when the rtl step has not run."""
        if not self.run.done("rtl"):
            self.engine()
        return self._step("cosim", [f"cosim.frames={frames}"] if frames is not None else [])

    def board(self, target: str | None = None, episodes: int | None = None) -> dict[str, Any]:
        sets = [f"board.target={target}"] if target else []
        sets += [f"board.episodes={episodes}"] if episodes is not None else []
        return self._step("board", sets)

    def report(self) -> Path:
        """``summary.json`` and ``report.html`` of everything that ran; returns the HTML path."""
        self._step("report", [])
        return self.run.path / "report.html"


def compile(  # noqa: A001 (the name users expect, as in hls4ml / Keras)
    model: Any,
    env_id: str,
    config: RunConfig | str | Path | dict[str, Any] | None = None,
    run_dir: str | Path | None = None,
    *,
    start: str = "prune",
    stop: str = "quantize",
    overrides: list[str] | tuple[str, ...] = (),
    runs_dir: str | Path = "runs",
) -> CompiledPolicy:
    """Import ``model`` for ``env_id`` and run the pipeline from ``start`` (prune or quantize)
    to ``stop`` (default quantize: the golden model exists). ``config``: a RunConfig, a YAML
    path, a dict, or None (defaults, with distillation pruning). ``overrides``:
    ``section.key=value`` strings as ``--set`` takes them. ``run_dir`` defaults to
    ``runs_dir/<model file stem>``."""
    cfg, given = _as_config(config)
    cfg = imported_config(cfg, env_id, given, start, overrides)
    model = _preread(model)  # a bad file fails before any run directory is created
    if run_dir is None:
        stem = Path(model.source.get("file") or "policy").stem if hasattr(model, "source") else getattr(model, "name", "policy")
        cfg = apply_overrides(cfg, [f"name={_safe_name(stem)}"])
        run = Run.create(cfg, runs_dir=runs_dir)
    else:
        cfg = apply_overrides(cfg, [f"name={_safe_name(Path(run_dir).name)}"])
        run = Run.create(cfg, path=run_dir)
    from rl2fpga.logs import run_log

    with run_log(run.path):
        import_policy(run, cfg, model)
    run_pipeline(run, cfg, start="prune", stop=stop)
    return CompiledPolicy(run, cfg)


def run_model_cli(model: str | None, env_id: str | None, config: str | None, name: str | None, runs_dir: str,
                  start: str | None, stop: str | None, sets: list[str]) -> tuple[Run, dict[str, float]]:
    """``rl2fpga run --model FILE --env ID [CONFIG] [--from prune|quantize] [--to STEP]``."""
    if not model or not env_id:
        raise Rl2fpgaError("--model and --env go together: rl2fpga run --model policy.onnx --env CartPole-v1")
    if config is not None and Path(config).is_dir():
        raise Rl2fpgaError(f"{config} is a run directory; with --model pass a YAML config (or none), or resume with `rl2fpga run {config}`")
    cfg, given = _as_config(config)
    cfg = imported_config(cfg, env_id, given, start or "prune", sets)
    pol = _preread(model)  # a bad file fails before any run directory is created
    cfg = apply_overrides(cfg, [f"name={_safe_name(name or Path(model).stem)}"])
    run = Run.create(cfg, runs_dir=runs_dir)
    from rl2fpga.logs import run_log

    with run_log(run.path):
        import_policy(run, cfg, pol)
    times = run_pipeline(run, cfg, start="prune", stop=stop)
    return run, times


def open_run(run_dir: str | Path) -> CompiledPolicy:
    """A CompiledPolicy for an existing run directory (trained or imported)."""
    run = Run.open(run_dir)
    return CompiledPolicy(run, run.config())
