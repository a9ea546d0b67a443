"""The ``train`` pipeline step: train the agent the config names and write ``runs/<name>/train/``.

Artifacts: ``model.keras`` (the deployable chain model: DQN Q-network or SAC actor mean),
``init_model.keras`` (initial weights, for rewinding), ``checkpoints/`` (an early one at 10 % of
training plus every ``train.checkpoint_every`` steps), ``agent/`` (SAC: the whole agent),
``metrics.json``, ``tb/`` (TensorBoard), ``eval.json``, ``env.json`` (the EnvSpec) and
``summary.json`` (eval_return_mean, eval_return_std, steps, seconds).

While training runs everything goes to a hidden temp folder beside ``train/``
(``runs/<name>/.train.*.tmp/``, point TensorBoard there) that replaces ``train/`` on success.
``model.keras`` is the model of the best periodic evaluation (``selected_step`` in
summary.json); ``eval.json`` re-evaluates it on other seeds (seed + 10000 + i).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import tensorflow as tf

from rl2fpga.artifacts import TRAIN_MODEL, TrainEnv
from rl2fpga.config import RunConfig
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.run import Run
from rl2fpga.train.envs import EnvSpec, check_algo, env_spec
from rl2fpga.train.training import TrainResult


def train(cfg: RunConfig, out_dir: Path | None, progress: bool = True) -> TrainResult:
    """Train with the algorithm the config names (checks the action space first)."""
    spec = env_spec(cfg.env)
    check_algo(cfg.train.algo, spec)
    if out_dir is not None:
        TrainEnv(spec.to_dict()).save_in(out_dir)
    if cfg.train.algo == "dqn":
        from rl2fpga.train.dqn import train_dqn

        return train_dqn(cfg, out_dir, progress=progress)
    from rl2fpga.train.sac import train_sac

    return train_sac(cfg, out_dir, progress=progress)


def load_trained(run_or_dir: Run | Path) -> tuple[tf.keras.Model, EnvSpec]:
    """The trained deployable model and its EnvSpec from a run (or a train/ folder)."""
    d = run_or_dir.layout.step("train") if isinstance(run_or_dir, Run) else Path(run_or_dir)
    model_path, spec_path = d / TRAIN_MODEL, d / TrainEnv.FILE
    if not model_path.exists() or not spec_path.exists():
        raise Rl2fpgaError(f"{d} has no trained model; run `rl2fpga train` (or the train step) first")
    from rl2fpga.safety import load_keras_model

    model = load_keras_model(model_path)
    return model, EnvSpec.from_dict(json.loads(spec_path.read_text()))


def require_files(paths: list[Path], step: str, run: Run) -> None:
    """One-line error for the first missing path (see :meth:`RunLayout.require`)."""
    run.layout.require(step, *paths)


def load_train_outputs(run: Run) -> tuple[Any, Any, dict[str, Any]]:
    """The trained model, its EnvSpec and its evaluation, or a one-line error."""
    from rl2fpga.quantize.prune import read_eval

    lay = run.layout
    lay.require("train", lay.train_model, lay.train_env, lay.train_eval)
    try:
        model, spec = load_trained(run)
    except (OSError, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise Rl2fpgaError(f"the trained model in {lay.step('train')} is corrupt ({first}); rerun `rl2fpga train`") from None
    return model, spec, read_eval(lay.train_eval)
