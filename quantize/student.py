"""Small students: distil the dense agent into narrower MLPs (``prune.method = student``).

Each candidate width in ``prune.student_hidden`` is a fresh MLP (seeded: the same seed gives the
same student) trained by behaviour cloning on the states the dense teacher visits, then
``prune.student_dagger_rounds`` DAgger rounds that add the states the student itself visits,
labelled by the teacher (``quantize.quantizer.distill``: the teacher's softmax(Q / T) with
``prune.student_temperature``, or its Q-values; a SAC actor's means). A dense student needs no
index at all in the hardware; ``prune.student_prune_rounds`` magnitude-prunes it further
(``prune.rate`` of the remaining weights per round, recovered by distillation), each round a
level.

Input standardisation: the student learns on ``z = (x - mean) * scale`` (per input, from the
teacher's states); the saved level has it folded into the first layer
(``W' = diag(scale) W``, ``b' = b - (mean * scale) @ W``), so the deployed network reads raw
observations and every back end applies the standardisation bit-exactly through that layer's
integer weights and bias, whose bits are counted with it.

Level 0 stays the dense teacher (the return reference); levels 1.. are the students; the
selection keeps the level with the fewest nonzero weights that keeps
``prune.keep_return_fraction`` of the dense return.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from rl2fpga.config import RunConfig
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.quantize.prune import (
    DISTILL_SEED_OFFSET,
    Level,
    _policy,
    magnitude_masks,
    prunable_layers,
    save_level,
)

MIN_STD = 1e-3  # inputs that barely move are not blown up past this


def standardisation(states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-input (mean, scale = 1 / std) of float observations ``(n, d)``."""
    x = np.asarray(states, np.float64).reshape(len(states), -1)
    return x.mean(axis=0), 1.0 / np.maximum(x.std(axis=0), MIN_STD)


def fold_input_affine(model: tf.keras.Model, mean: np.ndarray, scale: np.ndarray) -> tf.keras.Model:
    """A copy of ``model`` whose first Dense layer reads ``x`` where ``model`` read
    ``(x - mean) * scale``: ``W' = diag(scale) W``, ``b' = b - (mean * scale) @ W`` (float64)."""
    out = tf.keras.models.clone_model(model)
    out.set_weights(model.get_weights())
    first = prunable_layers(out)[0]
    w, b, *rest = first.get_weights()
    m, k = np.asarray(mean, np.float64), np.asarray(scale, np.float64)
    w64 = np.asarray(w, np.float64)
    first.set_weights([(w64 * k[:, None]).astype(w.dtype), (b - (m * k) @ w64).astype(b.dtype), *rest])
    return out


def build_student(obs_dim: int, n_out: int, hidden: list[int], seed: int) -> tf.keras.Model:
    from rl2fpga.train.networks import mlp

    tf.keras.utils.set_random_seed(seed)
    return mlp(obs_dim, n_out, list(hidden), name="student_" + "x".join(map(str, hidden)))


def students(
    teacher: tf.keras.Model,
    dense_eval: dict[str, Any],
    spec: Any,
    cfg: RunConfig,
    prune_dir: Path,
    log: Callable[[str], None] = print,
) -> list[Level]:
    """Level 0 = the teacher, then each student (and its pruning rounds) as a level."""
    from rl2fpga.quantize.quantizer import distill
    from rl2fpga.train.evaluate import evaluate, record_episode
    from rl2fpga.train.training import EVAL_SEED_OFFSET, SELECT_SEED_OFFSET

    pc = cfg.prune
    if len(spec.obs_shape) != 1:  # e.g. an imported Atari CNN under the default (student) method
        raise Rl2fpgaError(f"prune.method=student distils into MLPs but {spec.id} observations are {tuple(spec.obs_shape)} "
                           "images; set prune.method=gradual (or imp)")
    seed = cfg.seed + DISTILL_SEED_OFFSET
    temperature = pc.student_temperature if spec.discrete else None
    squash = pc.student_action_loss and not spec.discrete

    def visit(model: tf.keras.Model, first: int) -> np.ndarray:
        pol = _noisy(_policy(model, spec), spec, pc.student_visit_noise, seed + first)
        return np.concatenate([record_episode(pol, cfg.env, seed + first + i, pc.distill_max_steps).observations
                               for i in range(pc.distill_episodes)]).astype(np.float32)

    teacher_states = visit(teacher, 0)
    obs_dim = int(np.prod(teacher_states.shape[1:]))
    if pc.student_standardize:
        mean, scale = standardisation(teacher_states)
    else:
        mean, scale = np.zeros(obs_dim), np.ones(obs_dim)
    # the teacher as a function of z = (x - mean) * scale: x = (z - (-mean * scale)) * (1 / scale)
    teacher_z = fold_input_affine(teacher, -mean * scale, 1.0 / scale)
    to_z = lambda x: ((np.asarray(x, np.float64).reshape(len(x), -1) - mean) * scale).astype(np.float32)  # noqa: E731
    n_out = int(teacher.output_shape[-1])
    std = {"standardize_mean": [float(v) for v in mean], "standardize_scale": [float(v) for v in scale]}
    levels = [save_level(prune_dir, 0, 0, 0.0, teacher, _all_ones(teacher), dense_eval)]

    def train_rounds(student: tf.keras.Model, masks: dict[str, np.ndarray], x: np.ndarray, s0: int, rounds: int) -> tuple[np.ndarray, float]:
        """Distill on ``x``, then ``rounds`` DAgger rounds; the grown state set and the last loss.
        With ``student_select_episodes``, the student ends with the weights of its best round on
        the validation episodes."""
        kw = {"batch": 256, "temperature": temperature, "squash": squash}
        loss = distill(student, teacher_z, x, masks, pc.distill_steps, s0, **kw)
        best = _Best(student, (lambda: validate(student)) if pc.student_select_episodes > 0 else None, log)
        for r in range(rounds):
            x = np.concatenate([x, to_z(visit(fold_input_affine(student, mean, scale), 1000 * (r + 1)))])
            loss = distill(student, teacher_z, x, masks, pc.distill_steps, s0 + r + 1, **kw)
            best.offer(r + 1)
        best.restore()
        return x, float(np.mean(loss[-20:]))

    def validate(student: tf.keras.Model) -> float:
        pol = _policy(fold_input_affine(student, mean, scale), spec)
        return evaluate(pol, cfg.env, cfg.seed + SELECT_SEED_OFFSET, pc.student_select_episodes).mean

    for hidden in pc.student_hidden:
        s_seed = cfg.seed + 1000 * len(hidden) + sum(hidden)  # a width gives the same student in any list
        student = build_student(obs_dim, n_out, hidden, s_seed)
        masks = _all_ones(student)
        x, loss = train_rounds(student, masks, to_z(teacher_states), s_seed, pc.student_dagger_rounds)
        for rnd in range(pc.student_prune_rounds + 1):
            if rnd:
                masks = magnitude_masks(student, pc.rate, masks, pc.scope, pc.prune_output_layer)
                x, loss = train_rounds(student, masks, x, s_seed + 17 * rnd, 1)
            deployed = fold_input_affine(student, mean, scale)
            ev = evaluate(_policy(deployed, spec), cfg.env, cfg.seed + EVAL_SEED_OFFSET, cfg.train.eval_episodes).to_dict()
            ev.update({"distill_states": int(len(x)), "distill_loss": loss})
            target = 1.0 - (1.0 - pc.rate) ** rnd
            lv = save_level(prune_dir, len(levels), rnd, target, deployed, masks, ev,
                            {"student_hidden": list(hidden), **std})
            levels.append(lv)
            log(f"student {'-'.join(map(str, [obs_dim, *hidden, n_out]))} round {rnd}: {lv.nonzero} nonzero weights "
                f"(sparsity {lv.sparsity:.3f}), return {lv.eval_return_mean:.1f}")
    return levels


class _Best:
    """The best-scoring weights of a student over its distillation rounds (validation episodes);
    inert when ``student_select_episodes`` is 0."""

    def __init__(self, model: tf.keras.Model, score: Callable[[], float] | None, log: Callable[[str], None]) -> None:
        self.model, self.score, self.log = model, score, log
        self.round, self.value, self.weights = 0, -np.inf, None
        self.offer(0)

    def offer(self, rnd: int) -> None:
        if self.score is None:
            return
        v = float(self.score())
        self.log(f"  round {rnd}: validation return {v:.1f}")
        if v > self.value:
            self.round, self.value, self.weights = rnd, v, [w.copy() for w in self.model.get_weights()]

    def restore(self) -> None:
        if self.weights is not None:
            self.model.set_weights(self.weights)
            self.log(f"  kept round {self.round} (validation return {self.value:.1f})")


def _all_ones(model: tf.keras.Model) -> dict[str, np.ndarray]:
    return {la.name: np.ones(la.get_weights()[0].shape, bool) for la in prunable_layers(model)}


def _noisy(pol: Any, spec: Any, std: float, seed: int) -> Any:
    """``pol`` with Gaussian action noise of ``std`` x the half-range (continuous actions only, seeded),
    clipped to the bounds: the visited states then include those a slightly-off student reaches
    (DART, Laskey et al. 2017); the labels stay the teacher's clean actions."""
    if std <= 0 or spec.discrete:
        return pol
    rng = np.random.default_rng(seed)
    low, high = np.asarray(spec.action_low, np.float64), np.asarray(spec.action_high, np.float64)
    half = (high - low) / 2

    def noisy(obs: np.ndarray) -> np.ndarray:
        a = np.asarray(pol(obs), np.float64)
        return np.clip(a + std * half * rng.standard_normal(a.shape), low, high).astype(np.float32)

    return noisy
