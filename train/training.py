"""Pieces DQN and SAC share: seeding, pruning masks, logging, periodic evaluation with best-model
selection, checkpoints and the artifacts every training writes."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from rl2fpga.artifacts import TRAIN_MODEL, TrainEval, TrainMetrics, TrainSummary
from rl2fpga.config import RunConfig
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.fsutil import atomic_write_bytes
from rl2fpga.train.evaluate import EvalResult, Policy, evaluate

EVAL_SEED_OFFSET = 10_000  # the reported evaluation uses seed + 10_000 + i
SELECT_SEED_OFFSET = 20_000  # periodic evaluations (model selection) use other episodes


@dataclass
class TrainResult:
    model: tf.keras.Model  # the deployable chain model (Q-network or SAC actor mean)
    eval: EvalResult  # final evaluation of ``model`` on seed + EVAL_SEED_OFFSET + i
    steps: int  # environment steps actually run
    seconds: float
    selected_step: int  # the step whose periodic evaluation selected ``model``
    metrics: dict[str, Any] = field(default_factory=dict)
    out_dir: Path | None = None
    masks: dict[str, np.ndarray] | None = None  # pruning during training: the final masks


def seed_everything(seed: int) -> np.random.Generator:
    """Python, NumPy and TF seeds; returns the NumPy generator the agent uses."""
    tf.keras.utils.set_random_seed(seed)
    return np.random.default_rng(seed)


def check_masks(model: tf.keras.Model, masks: dict[str, np.ndarray] | None) -> list[tuple[tf.Variable, tf.Tensor]]:
    """(kernel variable, 0/1 mask) pairs; raises on unknown layers or wrong shapes."""
    if not masks:
        return []
    pairs = []
    for name, mask in masks.items():
        try:
            layer = model.get_layer(name)
        except ValueError:
            names = ", ".join(layer.name for layer in model.layers if hasattr(layer, "kernel"))
            raise Rl2fpgaError(f"pruning mask for unknown layer '{name}'; the model's layers are {names}") from None
        if tuple(mask.shape) != tuple(layer.kernel.shape):
            raise Rl2fpgaError(
                f"pruning mask for '{name}' has shape {tuple(mask.shape)} but the kernel is {tuple(layer.kernel.shape)}; recompute the masks for this model"
            )
        pairs.append((layer.kernel, tf.constant(np.asarray(mask, np.float32))))
    return pairs


def apply_masks(pairs: list[tuple[tf.Variable, tf.Tensor]]) -> None:
    for var, mask in pairs:
        var.assign(var * mask)


def copy_weights_by_name(src: tf.keras.Model, dst: tf.keras.Model) -> None:
    """Copy the weights of every layer of ``src`` that has weights into the same-named layer of ``dst``."""
    for layer in src.layers:
        if not layer.weights:
            continue
        try:
            target = dst.get_layer(layer.name)
        except ValueError:
            raise Rl2fpgaError(f"the given model has a layer '{layer.name}' this agent does not; pass a model built for this config") from None
        shapes = [w.shape for w in target.get_weights()]
        if shapes != [w.shape for w in layer.get_weights()]:
            raise Rl2fpgaError(f"layer '{layer.name}' of the given model has shapes {[w.shape for w in layer.get_weights()]}, expected {shapes}; pass a model built for this config")
        target.set_weights(layer.get_weights())


def save_keras(model: tf.keras.Model, path: Path) -> None:
    """model.save to a temp name beside ``path``, then rename (atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    model.save(tmp)
    atomic_write_bytes(path, tmp.read_bytes())
    tmp.unlink()


class Logger:
    """TensorBoard scalars in ``out_dir/tb`` and a metrics dict for metrics.json."""

    def __init__(self, out_dir: Path | None):
        self.writer = tf.summary.create_file_writer(str(out_dir / "tb")) if out_dir is not None else None
        self.episodes: list[tuple[int, float]] = []  # (step, game return)
        self.evals: list[dict[str, Any]] = []
        self.losses: list[tuple[int, float]] = []

    def scalar(self, name: str, value: float, step: int) -> None:
        if self.writer is not None:
            with self.writer.as_default():
                tf.summary.scalar(name, value, step=step)

    def episode(self, step: int, ret: float) -> None:
        self.episodes.append((step, ret))
        self.scalar("train/episode_return", ret, step)

    def running_return(self, n: int = 20) -> float:
        return float(np.mean([r for _, r in self.episodes[-n:]])) if self.episodes else float("nan")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()


class Selector:
    """Periodic evaluation: keeps the weights of the best-scoring evaluation and says when to stop.
    ``make_policy()`` is called at every evaluation (a policy on the model's current weights)."""

    def __init__(self, cfg: RunConfig, model: tf.keras.Model, make_policy: Callable[[], Policy], logger: Logger):
        self.cfg, self.model, self.make_policy, self.logger = cfg, model, make_policy, logger
        self.best_mean = -np.inf
        self.best_weights: list[np.ndarray] | None = None
        self.best_step = 0
        self.stop = False

    def __call__(self, step: int) -> EvalResult:
        tc = self.cfg.train
        res = evaluate(self.make_policy(), self.cfg.env, self.cfg.seed + SELECT_SEED_OFFSET, tc.eval_episodes)
        self.logger.evals.append({"step": step, "mean": res.mean, "std": res.std})
        self.logger.scalar("eval/return_mean", res.mean, step)
        if res.mean > self.best_mean:
            self.best_mean, self.best_step = res.mean, step
            self.best_weights = [w.copy() for w in self.model.get_weights()]
        if tc.early_stop_return is not None and res.mean >= tc.early_stop_return:
            self.stop = True
        return res

    def restore_best(self) -> None:
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


def checkpoint_steps(cfg: RunConfig, total: int) -> set[int]:
    """Checkpoint every ``checkpoint_every`` steps, and always once early (10 % of training)."""
    steps = {max(1, total // 10)}
    if cfg.train.checkpoint_every > 0:
        steps |= set(range(cfg.train.checkpoint_every, total + 1, cfg.train.checkpoint_every))
    return steps


def progress_bar(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    # disable=None: tqdm draws only on a terminal (a log file would get a redraw per second)
    return tqdm(total=total, disable=None if enabled else True, desc=desc, unit="step", mininterval=1.0, smoothing=0.05)


def finish(
    cfg: RunConfig,
    out_dir: Path | None,
    model: tf.keras.Model,
    policy: Policy,
    selector: Selector,
    logger: Logger,
    steps: int,
    t0: float,
    extra_metrics: dict[str, Any],
    save_extra: Callable[[Path], None] | None = None,
) -> TrainResult:
    """Select the best model, run the reported evaluation and write every artifact."""
    selector.restore_best()
    res = evaluate(policy, cfg.env, cfg.seed + EVAL_SEED_OFFSET, cfg.train.eval_episodes)
    seconds = time.perf_counter() - t0
    logger.scalar("eval/final_return_mean", res.mean, steps)
    logger.close()
    metrics = {
        "steps": steps,
        "seconds": seconds,
        "steps_per_second": steps / max(seconds, 1e-9),
        "selected_step": selector.best_step,
        "selected_eval_mean": selector.best_mean,
        "episodes": [{"step": s, "return": r} for s, r in logger.episodes],
        "evals": logger.evals,
        "losses": [{"step": s, "loss": v} for s, v in logger.losses],
        **extra_metrics,
    }
    if out_dir is not None:
        save_keras(model, out_dir / TRAIN_MODEL)
        if save_extra is not None:
            save_extra(out_dir)
        TrainMetrics(metrics).save_in(out_dir)
        TrainEval({**res.to_dict(), "seed": cfg.seed + EVAL_SEED_OFFSET, "episodes": cfg.train.eval_episodes}).save_in(out_dir)
        TrainSummary(
            {
                "eval_return_mean": res.mean,
                "eval_return_std": res.std,
                "steps": steps,
                "seconds": round(seconds, 3),
                "selected_step": selector.best_step,
                "algo": cfg.train.algo,
                "env": cfg.env.id,
            },
        ).save_in(out_dir)
    return TrainResult(model, res, steps, seconds, selector.best_step, metrics, out_dir)
