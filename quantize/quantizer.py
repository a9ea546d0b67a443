"""Quantization of a (pruned) float policy: PTQ and QAT by distillation, and running the golden
integer model as the agent.

* PTQ: :func:`quantize_model` on calibration states (the states the float agent visits).
* QAT: the same QKeras chain, then fine-tuned by distillation: minimise the squared error
  between its outputs and the float agent's (Q-values or actor means) on visited states,
  straight-through estimators in the quantizers, masks re-applied after every step, weights
  snapped to their grids at the end (so golden == QKeras exactly).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from rl2fpga.config import QuantizeConfig
from rl2fpga.core.golden import Fmt, GoldenModel, squash_action
from rl2fpga.quantize.qkeras_model import (
    apply_masks,
    grid_float,
    quantize_model,
    snap_to_grid,
    to_grid,
)


def distill(qmodel: tf.keras.Model, teacher: tf.keras.Model, x: np.ndarray, masks: dict[str, np.ndarray],
            steps: int, seed: int, lr: float = 3e-4, batch: int = 128, advantage_weight: float = 0.0,
            progress: Callable[[int], None] | None = None, temperature: float | None = None,
            input_scale: float | None = None, squash: bool = False) -> list[float]:
    """QAT: ``steps`` Adam steps of MSE(qmodel(x), teacher(x)); masks kept; weights snapped.

    ``advantage_weight`` > 0 adds the error of the outputs centred per state (Q-values minus
    their mean over actions, normalised alike): greedy actions depend only on those
    differences, which in DQN are small next to the common state value.
    ``temperature`` (DQN): minimise instead the cross-entropy between the teacher's
    softmax(Q / temperature) and the student's (policy distillation, Rusu et al. 2016).
    ``input_scale``: ``x`` holds raw observations (e.g. uint8 pixels, kept as they are to save
    memory) and the network input is ``x * input_scale``, converted one minibatch at a time."""
    rng = np.random.default_rng(seed)
    if input_scale is None:
        x = np.asarray(x, np.float32)
        prep = lambda a: a  # noqa: E731
    else:
        prep = lambda a: a.astype(np.float32) * np.float32(input_scale)  # noqa: E731
    target = _predict(teacher, x, prep)
    if squash:
        target = np.tanh(target)
    scale = float(np.mean(target**2)) + 1e-8  # normalised loss: comparable across agents
    centred = target - target.mean(axis=1, keepdims=True)
    scale_c = float(np.mean(centred**2)) + 1e-8
    opt = tf.keras.optimizers.Adam(lr)
    mask_t = {k: tf.constant(np.asarray(v, np.float32)) for k, v in masks.items()}

    @tf.function
    def train_step(xb: tf.Tensor, yb: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            y = qmodel(xb, training=True)
            if squash:
                y = tf.tanh(y)
            if temperature is not None:  # cross-entropy of softmax(Q / T): teacher -> student
                p_teacher = tf.nn.softmax(yb / temperature, axis=1)
                loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(p_teacher, y / temperature))
            else:
                loss = tf.reduce_mean(tf.square(y - yb)) / scale
            if advantage_weight > 0:
                d = (y - tf.reduce_mean(y, axis=1, keepdims=True)) - (yb - tf.reduce_mean(yb, axis=1, keepdims=True))
                loss += advantage_weight * tf.reduce_mean(tf.square(d)) / scale_c
        grads = tape.gradient(loss, qmodel.trainable_variables)
        opt.apply_gradients(zip(grads, qmodel.trainable_variables))
        for layer in qmodel.layers:
            if layer.name in mask_t:
                layer.kernel.assign(layer.kernel * mask_t[layer.name])
        return loss

    losses = []
    for i in range(steps):
        idx = rng.integers(0, len(x), size=min(batch, len(x)))
        losses.append(float(train_step(tf.constant(prep(x[idx])), tf.constant(target[idx]))))
        if progress is not None:
            progress(i)
    apply_masks(qmodel, masks)
    snap_to_grid(qmodel, masks)
    return losses


def _predict(model: tf.keras.Model, x: np.ndarray, prep: Callable[[np.ndarray], np.ndarray],
             chunk: int = 256, max_bytes: int = 64 << 20) -> np.ndarray:
    """``model(prep(x))`` as float32; in chunks when ``x`` is large (Atari frames)."""
    if x.nbytes <= max_bytes:
        return np.asarray(model(prep(x), training=False), np.float32)
    return np.concatenate([np.asarray(model(prep(x[i:i + chunk]), training=False), np.float32)
                           for i in range(0, len(x), chunk)])


def quantize_policy(model: tf.keras.Model, masks: dict[str, np.ndarray], qcfg: QuantizeConfig, input_fmt: Fmt,
                    states: np.ndarray, seed: int, progress: Callable[[int], None] | None = None,
                    discrete: bool = True,
                    visit: Callable[[tf.keras.Model], np.ndarray] | None = None,
                    standardize: Any = None) -> tuple[tf.keras.Model, dict[str, Any]]:
    """PTQ or QAT (``qcfg.method``) of a float policy on its visited ``states`` (raw observations).

    ``visit(qmodel)`` (QAT, ``qcfg.dagger_rounds`` times): observations of episodes the
    *quantized* agent plays; they join the distillation states (labelled by the float agent,
    as in DAgger), so the student also learns the states its own errors lead to.
    ``standardize``: the golden model's input standardisation (``model`` reads standardised inputs)."""
    x = grid_float(to_grid(states, input_fmt, standardize), input_fmt)
    qmodel = quantize_model(model, qcfg, masks, input_fmt, samples=x)
    info: dict[str, Any] = {"method": qcfg.method, "calibration_states": int(len(x))}
    teacher = _masked(model, masks)
    info["mse_ptq"] = _mse(qmodel, teacher, x)
    if qcfg.method == "qat" and qcfg.qat_steps > 0:
        adv = qcfg.advantage_weight if discrete else 0.0
        squash = qcfg.qat_action_loss and not discrete  # SAC: the loss on the actions (tanh of the means)
        info["qat_action_loss"] = squash
        losses = distill(qmodel, teacher, x, masks, qcfg.qat_steps, seed, advantage_weight=adv, progress=progress,
                         squash=squash)
        info["qat_loss_first"] = losses[0]
        info["qat_loss_last"] = float(np.mean(losses[-20:]))
        for r in range(qcfg.dagger_rounds if visit is not None else 0):
            extra = grid_float(to_grid(visit(qmodel), input_fmt, standardize), input_fmt)
            x = np.concatenate([x, extra])
            losses = distill(qmodel, teacher, x, masks, qcfg.qat_steps, seed + r + 1, advantage_weight=adv, progress=progress,
                             squash=squash)
            info.setdefault("dagger_states", []).append(int(len(extra)))
        info["mse_qat"] = _mse(qmodel, teacher, x)
    return qmodel, info


def qkeras_policy(qmodel: tf.keras.Model, fmt: Fmt, discrete: bool, low: list[float] | None = None,
                  high: list[float] | None = None, standardize: Any = None) -> Callable[[np.ndarray], Any]:
    """The QKeras model as an agent on grid inputs (equal to the golden model without delta)."""
    f = tf.function(lambda x: qmodel(x[None], training=False)[0], reduce_retracing=True)

    def policy(obs: np.ndarray) -> Any:
        y = f(tf.constant(grid_float(to_grid(obs, fmt, standardize), fmt))).numpy()
        return int(np.argmax(y)) if discrete else squash_action(y, low, high)

    return policy


def _masked(model: tf.keras.Model, masks: dict[str, np.ndarray]) -> tf.keras.Model:
    m = tf.keras.models.clone_model(model)
    m.set_weights(model.get_weights())
    for name, mk in masks.items():
        layer = m.get_layer(name)
        w = layer.get_weights()
        layer.set_weights([w[0] * mk, *w[1:]])
    return m


def _mse(qmodel: tf.keras.Model, teacher: tf.keras.Model, x: np.ndarray) -> float:
    return float(np.mean((np.asarray(qmodel(x)) - np.asarray(teacher(x))) ** 2))


# ----------------------------------------------------------------------------- golden agent


class GoldenPolicy:
    """The golden integer model as an agent: observation -> grid -> ``step`` (delta state) ->
    greedy action (DQN) or ``tanh(mean) * scale + offset`` (SAC). Call :meth:`reset` at every
    episode start. Keeps the per-step statistics."""

    def __init__(self, gm: GoldenModel, discrete: bool, low: list[float] | None = None, high: list[float] | None = None):
        self.gm = gm
        self.discrete = discrete
        self.low, self.high = low, high
        self.stats: list[Any] = []

    def reset(self) -> None:
        self.gm.reset()

    # what a worker process of run_stateful hands back: the statistics and input saturation of
    # its episodes, merged in episode order
    def worker_mark(self) -> tuple[int, dict[str, int]]:
        return len(self.stats), dataclasses.asdict(self.gm.saturation)

    def worker_state(self, mark: tuple[int, dict[str, int]]) -> tuple[list[Any], dict[str, int]]:
        n, sat = mark
        now = dataclasses.asdict(self.gm.saturation)
        added = {k: now[k] - sat[k] for k in now if k != "max_per_frame"}
        return self.stats[n:], {**added, "max_per_frame": now["max_per_frame"]}

    def merge_worker_state(self, state: tuple[list[Any], dict[str, int]]) -> None:
        stats, sat = state
        self.stats.extend(stats)
        s = self.gm.saturation
        for k, v in sat.items():
            setattr(s, k, max(s.max_per_frame, v) if k == "max_per_frame" else getattr(s, k) + v)

    def __call__(self, obs: np.ndarray) -> Any:
        y, st = self.gm.step(self.gm.quantize_input(obs), incremental=True)
        self.stats.append(st)
        if self.discrete:
            return GoldenModel.action(y)
        return squash_action(self.gm.output_float(y), self.low, self.high)


def run_stateful(policy: Any, env_cfg: Any, seed: int, episodes: int, max_steps: int | None = None,
                 workers: int | None = None) -> dict[str, Any]:
    """Episodes ``seed + i`` with a stateful policy (``reset()`` at every episode start).

    ``workers`` (default ``env_cfg.eval_workers``) > 1 plays contiguous shares of the episodes in
    forked processes (the policy is copied, never pickled, and must not call TensorFlow): each
    episode is reset with its own seed, so the returns are those of one process. A policy with
    ``worker_mark`` / ``worker_state`` / ``merge_worker_state`` gets what each worker's episodes
    added to it back, in episode order."""
    workers = min(int(workers or getattr(env_cfg, "eval_workers", 1) or 1), episodes)
    if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
        eps = _forked_episodes(policy, env_cfg, seed, episodes, max_steps, workers)
    else:
        eps = _episodes(policy, env_cfg, seed, episodes, max_steps)
    returns, lengths = [e.total for e in eps], [e.length for e in eps]
    return {"returns": returns, "mean": float(np.mean(returns)), "std": float(np.std(returns)), "lengths": lengths}


# the job forked workers inherit: (policy, env config, seed, max_steps); set only while a pool runs
_FORKED_JOB: tuple[Any, Any, int, int | None] | None = None


def _episodes(policy: Any, env_cfg: Any, seed: int, episodes: int, max_steps: int | None) -> list[Any]:
    """Episodes ``seed .. seed + episodes - 1`` in this process, on an environment of its own."""
    from rl2fpga.train.envs import make_env
    from rl2fpga.train.rollout import rollout

    env = make_env(env_cfg, seed, training=False)
    try:
        return rollout(env, policy, seed=seed, episodes=episodes, max_steps=max_steps, on_reset=lambda _: policy.reset())
    finally:
        env.close()


def _forked_share(share: tuple[int, int]) -> tuple[list[Any], Any]:
    """In a worker: episodes ``seed + first .. seed + first + n - 1`` of the inherited job."""
    assert _FORKED_JOB is not None
    policy, env_cfg, seed, max_steps = _FORKED_JOB
    first, n = share
    mark = policy.worker_mark() if hasattr(policy, "worker_mark") else None
    eps = _episodes(policy, env_cfg, seed + first, n, max_steps)
    return eps, (policy.worker_state(mark) if mark is not None else None)


def _forked_episodes(policy: Any, env_cfg: Any, seed: int, episodes: int, max_steps: int | None, workers: int) -> list[Any]:
    global _FORKED_JOB
    bounds = np.linspace(0, episodes, workers + 1).round().astype(int)
    shares = [(int(a), int(b - a)) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
    _FORKED_JOB = (policy, env_cfg, seed, max_steps)
    try:
        with multiprocessing.get_context("fork").Pool(len(shares)) as pool:
            results = pool.map(_forked_share, shares, chunksize=1)
    finally:
        _FORKED_JOB = None
    eps: list[Any] = []
    for share_eps, state in results:
        eps.extend(share_eps)
        if state is not None:
            policy.merge_worker_state(state)
    return eps
