"""Magnitude pruning: masks, iterative magnitude pruning with rewinding, gradual (cubic) pruning.

* :func:`magnitude_masks` prunes the smallest ``rate`` of the weights that are still alive,
  per layer or ranked over the whole network; pruned weights never come back.
* :func:`imp` (lottery ticket with rewinding, the 2023 paper): train (level 0 = the dense
  agent), prune 20 % of the remaining weights, rewind the survivors to the initial weights (or
  an early checkpoint), retrain in the environment with the mask frozen; M rounds give
  sparsity ``1 - 0.8^i``.
* :func:`gradual` (the 2025 paper): sparsity follows ``s_t = s_f - s_f (1 - t/n)^3``
  (tfmot's ``PolynomialDecay(power=3)``, computed by :func:`~rl2fpga.quantize.sparsity.cubic_sparsity`
  and tested equal to tfmot's); the masks come from tfmot's ``prune_low_magnitude``
  (``ConstantSparsity`` at each step's target, then ``strip_pruning``) or, with ``prune.allocation``
  erk or global, from :func:`allocated_masks`; between steps the agent retrains in the
  environment or is distilled from the dense agent (``prune.finetune``).
* :func:`during_training` (the 2025 paper's way, Graesser et al. 2022): one training run per
  target sparsity from the train config, with gradual magnitude pruning of the deployed network
  inside the run (:mod:`rl2fpga.quantize.sparsity`: cubic schedule, global / uniform / ERK
  allocation); level 0 is the dense train run.

Every level is written to ``prune/level_XX/{model.keras, masks.npz, eval.json}`` and listed in
``prune/levels.json``; ``prune/selected.json`` names the sparsest level keeping
``keep_return_fraction`` of the dense return.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from rl2fpga.artifacts import PruneLevels, PruneSelected, RunLayout
from rl2fpga.config import RunConfig
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.fsutil import atomic_save_npz, atomic_write_json, read_json
from rl2fpga.quantize.sparsity import (
    PruneSchedule,
    allocate,
    cubic_sparsity,
    drop_smallest,
    drop_smallest_global,
    prunable_layers,
    prune_to_counts,
)

# ----------------------------------------------------------------------------- masks


def magnitude_masks(
    model: tf.keras.Model,
    rate: float,
    masks: dict[str, np.ndarray] | None = None,
    scope: str = "layer",
    include_output: bool = True,
) -> dict[str, np.ndarray]:
    """Prune the smallest ``rate`` fraction of the still-alive weights (ties broken by index).

    ``scope="layer"`` ranks within each layer, ``"global"`` over every prunable weight."""
    if not 0.0 <= rate < 1.0:
        raise Rl2fpgaError(f"pruning rate {rate} must be in [0, 1); set prune.rate")
    layers = prunable_layers(model, include_output)
    masks = dict(masks or {})
    kernels = {la.name: np.asarray(la.get_weights()[0]) for la in layers}
    alive = {n: np.asarray(masks.get(n, np.ones(w.shape, bool)), bool) for n, w in kernels.items()}
    if scope == "layer":
        return {n: drop_smallest(w, alive[n], int(round(rate * int(alive[n].sum())))) for n, w in kernels.items()}
    if scope == "global":
        return drop_smallest_global(kernels, alive, int(round(rate * sum(int(a.sum()) for a in alive.values()))))
    raise Rl2fpgaError(f"unknown pruning scope '{scope}'; use layer or global")


def apply_masks(model: tf.keras.Model, masks: dict[str, np.ndarray]) -> None:
    for name, m in masks.items():
        layer = model.get_layer(name)
        w = layer.get_weights()
        layer.set_weights([w[0] * m.astype(w[0].dtype), *w[1:]])


def measured_sparsity(model: tf.keras.Model) -> tuple[float, dict[str, float]]:
    """Fraction of exactly-zero kernel weights: over every Dense/Conv2D kernel, and per layer."""
    per, zeros, total = {}, 0, 0
    for la in prunable_layers(model):
        w = la.get_weights()[0]
        z = int((w == 0).sum())
        per[la.name] = z / w.size
        zeros += z
        total += w.size
    return zeros / max(total, 1), per


def tfmot_masks(model: tf.keras.Model, sparsity: float, include_output: bool = True) -> dict[str, np.ndarray]:
    """Per-layer magnitude masks at ``sparsity`` computed by tfmot: ``prune_low_magnitude`` with
    ``ConstantSparsity``, one mask update, ``strip_pruning``; the zeros of the stripped model."""
    import tensorflow_model_optimization as tfmot

    sk = tfmot.sparsity.keras
    names = {la.name for la in prunable_layers(model, include_output)}
    clone = tf.keras.models.clone_model(model)
    clone.set_weights(model.get_weights())

    def wrap(layer: tf.keras.layers.Layer) -> tf.keras.layers.Layer:
        if layer.name in names:
            return sk.prune_low_magnitude(layer, pruning_schedule=sk.ConstantSparsity(sparsity, begin_step=0, frequency=1))
        return layer

    wrapped = tf.keras.models.clone_model(clone, clone_function=wrap)
    _copy_into_wrapped(clone, wrapped)
    for la in wrapped.layers:
        if hasattr(la, "pruning_step"):
            la.pruning_step.assign(0)
    x = np.zeros((1, *model.input_shape[1:]), np.float32)
    wrapped(x, training=True)  # one conditional mask update at step 0
    stripped = sk.strip_pruning(wrapped)
    return {la.name: np.asarray(la.get_weights()[0]) != 0 for la in prunable_layers(stripped, include_output)}


def allocated_masks(model: tf.keras.Model, masks: dict[str, np.ndarray], sparsity: float, allocation: str,
                    include_output: bool = True) -> dict[str, np.ndarray]:
    """``masks`` pruned further to ``sparsity`` spread by ``allocation`` over the layers
    (:func:`~rl2fpga.quantize.sparsity.allocate`: ``erk`` per-layer targets, ``global`` one
    magnitude ranking over every kernel, ``uniform`` every layer the target): the smallest alive
    weights go, pruned ones never come back (a layer already past its target keeps its mask)."""
    layers = prunable_layers(model, include_output)
    kernels = {la.name: np.asarray(la.get_weights()[0]) for la in layers}
    alive = {n: np.asarray(masks.get(n, np.ones(w.shape, bool)), bool) for n, w in kernels.items()}
    if allocation == "global":
        want = {"*": int(round(sparsity * sum(w.size for w in kernels.values())))}
    else:
        targets = allocate({n: w.shape for n, w in kernels.items()}, sparsity, allocation)
        want = {n: int(round(targets[n] * w.size)) for n, w in kernels.items()}
    return prune_to_counts(kernels, alive, want)


def _copy_into_wrapped(src: tf.keras.Model, wrapped: tf.keras.Model) -> None:
    for la in wrapped.layers:
        inner = getattr(la, "layer", la)
        try:
            s = src.get_layer(inner.name)
        except ValueError:
            continue
        if s.get_weights():
            inner.set_weights(s.get_weights())


# ----------------------------------------------------------------------------- levels


@dataclass
class Level:
    index: int
    round: int
    sparsity: float
    layer_sparsity: dict[str, float]
    eval_return_mean: float
    eval_return_std: float
    target_sparsity: float
    nonzero: int | None = None  # nonzero kernel weights (levels of different shapes compare by it)
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. a student's hidden widths

    def to_json(self) -> dict[str, Any]:
        nz = {} if self.nonzero is None else {"nonzero_weights": self.nonzero}
        return {"level": self.index, "round": self.round, "sparsity": self.sparsity,
                "target_sparsity": self.target_sparsity, "layer_sparsity": self.layer_sparsity,
                "eval_return_mean": self.eval_return_mean, "eval_return_std": self.eval_return_std,
                "dir": level_name(self.index), **nz, **self.extra}


def level_name(i: int) -> str:
    return f"level_{i:02d}"


def save_level(prune_dir: Path, index: int, rnd: int, target: float, model: tf.keras.Model,
               masks: dict[str, np.ndarray], ev: dict[str, Any], extra: dict[str, Any] | None = None) -> Level:
    from rl2fpga.train.training import save_keras

    d = prune_dir / level_name(index)
    d.mkdir(parents=True, exist_ok=True)
    save_keras(model, d / "model.keras")
    atomic_save_npz(d / "masks.npz", **{k: np.asarray(v, bool) for k, v in masks.items()})
    atomic_write_json(d / "eval.json", ev)
    s, per = measured_sparsity(model)
    nz = sum(int(np.count_nonzero(la.get_weights()[0])) for la in prunable_layers(model))
    return Level(index, rnd, s, per, float(ev["mean"]), float(ev["std"]), target, nz, dict(extra or {}))


def select_level(levels: list[Level], keep: float) -> Level:
    """The smallest level (fewest nonzero weights where known, else the sparsest) whose mean
    return keeps ``keep`` of the dense (level 0) return; among equals the better return."""
    dense = levels[0].eval_return_mean
    ok = [lv for lv in levels if lv.eval_return_mean >= keep * dense - 1e-9] if dense > 0 else \
         [lv for lv in levels if lv.eval_return_mean >= dense + (1 - keep) * dense - 1e-9]
    sized = all(lv.nonzero is not None for lv in levels)
    return min(ok or levels[:1], key=lambda lv: (lv.nonzero if sized else 0, -lv.sparsity, -lv.eval_return_mean))


def load_level(run_path: Path, index: int | None = None) -> tuple[tf.keras.Model, dict[str, np.ndarray], dict[str, Any]]:
    """(model, masks, level record) of a prune level; ``None`` = the selected one."""
    layout = RunLayout(Path(run_path))
    pdir = layout.step("prune")
    levels = read_json(layout.prune_levels)["levels"]
    if index is None:
        index = int(read_json(layout.prune_selected)["level"])
    rec = next((lv for lv in levels if lv["level"] == index), None)
    if rec is None:
        raise Rl2fpgaError(f"prune level {index} is not in {layout.prune_levels}; pick one of {[lv['level'] for lv in levels]}")
    d = pdir / rec["dir"]
    try:
        from rl2fpga.safety import load_keras_model, load_npz

        model = load_keras_model(d / "model.keras")
        masks = load_npz(d / "masks.npz", "prune masks", "rerun `rl2fpga prune`")
    except (OSError, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise Rl2fpgaError(f"prune level {d} is missing or corrupt ({first}); rerun `rl2fpga prune`") from None
    return model, {k: v.astype(bool) for k, v in masks.items()}, rec


# ----------------------------------------------------------------------------- algorithms

Retrain = Callable[..., tuple[tf.keras.Model, dict[str, Any]]]  # (model, masks, steps, attempt=0)


def finetune_config(cfg: RunConfig, steps: int) -> RunConfig:
    """A copy of ``cfg`` for fine-tuning an already trained agent for ``steps`` steps: no
    epsilon-random exploration phase and learning after a short warm-up (a replay buffer is
    refilled on every call), so a short retraining call actually learns."""
    import copy

    c = copy.deepcopy(cfg)
    d = c.train.dqn
    d.learning_starts = min(d.learning_starts, max(steps // 10, d.batch_size))
    d.exploration_initial_eps = d.exploration_final_eps
    s = c.train.sac
    s.learning_starts = min(s.learning_starts, max(steps // 10, s.batch_size))
    return c


def retrainer(cfg: RunConfig, algo: str, progress: bool = True, finetune: bool = False,
              agent_dir: Path | None = None) -> Retrain:
    """``(model, masks, steps) -> (retrained model, eval dict)`` through train_dqn/train_sac
    (``finetune``: with :func:`finetune_config`, for gradual pruning of a trained agent).
    ``agent_dir`` (SAC): start every retraining from that trained agent's critics and
    temperature; fresh random critics would steer a fine-tuned actor anywhere."""

    def retrain(model: tf.keras.Model, masks: dict[str, np.ndarray], steps: int, attempt: int = 0) -> tuple[tf.keras.Model, dict[str, Any]]:
        import copy

        c = finetune_config(cfg, steps) if finetune else cfg
        if attempt:  # a retry explores with another seed (the reported evaluation seeds stay)
            c = copy.deepcopy(c)
            c.seed = cfg.seed + 1000 * attempt
        if algo == "dqn":
            from rl2fpga.train.dqn import train_dqn

            res = train_dqn(c, None, model=model, masks=masks, total_steps=steps, progress=progress)
        else:
            from rl2fpga.train.sac import train_sac

            res = train_sac(c, None, model=model, masks=masks, total_steps=steps, progress=progress, agent_dir=agent_dir)
        ev = {**res.eval.to_dict(), "steps": res.steps, "seconds": res.seconds, "attempt": attempt}
        if attempt:  # report on the same evaluation episodes as every other level
            from rl2fpga.train.evaluate import evaluate
            from rl2fpga.train.training import EVAL_SEED_OFFSET

            spec = env_spec_of(cfg)
            pol = _policy(res.model, spec)
            ev.update(evaluate(pol, cfg.env, cfg.seed + EVAL_SEED_OFFSET, cfg.train.eval_episodes).to_dict())
        return res.model, ev

    return retrain


DISTILL_SEED_OFFSET = 50_000  # episodes whose states a pruned network is distilled on


def distiller(cfg: RunConfig, teacher: tf.keras.Model, spec: Any, progress: bool = False) -> Retrain:
    """``prune.finetune = distill``: a pruned network recovers by learning the dense agent's
    outputs (Q-values, or the actor's mean) on the states the dense agent visits, then
    ``prune.distill_dagger_rounds`` times more with the states the pruned agent itself now visits
    added (DAgger), ``prune.distill_steps`` Adam steps each; no environment reward is used, so it
    cannot drift the way RL fine-tuning of a SAC actor against re-learning critics does. The
    ``steps`` argument is ignored.

    DQN: ``prune.distill_temperature`` distills softmax(Q / T) instead of the Q-values (what the
    greedy action depends on, not the common state value), and ``prune.distill_rl_steps`` adds a
    short RL fine-tuning in the environment after it. Atari frames stay uint8 in memory (the
    network input p * 2^-8 is made one minibatch at a time)."""
    from rl2fpga.quantize.quantizer import distill
    from rl2fpga.train.evaluate import evaluate, record_episode
    from rl2fpga.train.networks import PIXEL_SCALE
    from rl2fpga.train.training import EVAL_SEED_OFFSET

    pc = cfg.prune
    seed = cfg.seed + DISTILL_SEED_OFFSET
    pixels = bool(getattr(spec, "is_atari", False))
    temperature = pc.distill_temperature if spec.discrete else None
    rl = retrainer(cfg, cfg.train.algo, progress=progress, finetune=True) if pc.distill_rl_steps > 0 else None

    def visit(model: tf.keras.Model, first: int) -> np.ndarray:
        """Observations (uint8 pixels for Atari, else float32) of the states ``model`` visits."""
        pol = _policy(model, spec)
        obs = np.concatenate([record_episode(pol, cfg.env, seed + first + i, pc.distill_max_steps).observations
                              for i in range(pc.distill_episodes)])
        return obs if pixels else obs.astype(np.float32)

    states = visit(teacher, 0)

    def retrain(model: tf.keras.Model, masks: dict[str, np.ndarray], steps: int, attempt: int = 0) -> tuple[tf.keras.Model, dict[str, Any]]:
        student = tf.keras.models.clone_model(model)
        student.set_weights(model.get_weights())
        apply_masks(student, masks)
        kw = {"batch": 256, "temperature": temperature, "input_scale": PIXEL_SCALE if pixels else None}
        # the QAT distillation loop, on a float student (its QKeras snapping is a no-op here)
        x = states
        losses = distill(student, teacher, x, masks, pc.distill_steps, cfg.seed + attempt, **kw)
        for r in range(1, pc.distill_dagger_rounds + 1):  # DAgger: + the student's own states
            x = np.concatenate([x, visit(student, 1000 * r)])
            losses = distill(student, teacher, x, masks, pc.distill_steps, cfg.seed + attempt + r, **kw)
        loss = float(np.mean(losses[-20:])) if losses else float("nan")
        info = {"steps": (1 + pc.distill_dagger_rounds) * pc.distill_steps, "attempt": attempt,
                "distill_states": int(len(x)), "distill_loss": loss}
        if rl is not None:  # its result is evaluated on the same seeds as every level
            student, ev_rl = rl(student, masks, pc.distill_rl_steps, attempt)
            ev = {k: ev_rl[k] for k in ("returns", "mean", "std", "lengths")}
            info["rl_steps"] = int(ev_rl["steps"])
        else:
            ev = evaluate(_policy(student, spec), cfg.env, cfg.seed + EVAL_SEED_OFFSET, cfg.train.eval_episodes).to_dict()
        return student, {**ev, **info}

    return retrain


def env_spec_of(cfg: RunConfig) -> Any:
    from rl2fpga.train.envs import env_spec

    return env_spec(cfg.env)


def _policy(model: tf.keras.Model, spec: Any) -> Any:
    from rl2fpga.train.evaluate import deterministic_actor, greedy_policy

    return greedy_policy(model) if spec.discrete else deterministic_actor(model, spec)


def rewind_weights(trained: tf.keras.Model, rewind_to: tf.keras.Model, masks: dict[str, np.ndarray]) -> tf.keras.Model:
    """The surviving weights reset to ``rewind_to`` (initial or early checkpoint), pruned ones 0."""
    m = tf.keras.models.clone_model(trained)
    m.set_weights(rewind_to.get_weights())
    apply_masks(m, masks)
    return m


def imp(
    dense: tf.keras.Model,
    dense_eval: dict[str, Any],
    rewind_to: tf.keras.Model,
    retrain: Retrain,
    cfg: RunConfig,
    prune_dir: Path,
    log: Callable[[str], None] = print,
) -> list[Level]:
    """Iterative magnitude pruning with rewinding; returns the levels (0 = dense)."""
    pc = cfg.prune
    masks = {la.name: np.ones(la.get_weights()[0].shape, bool) for la in prunable_layers(dense, pc.prune_output_layer)}
    levels = [save_level(prune_dir, 0, 0, 0.0, dense, masks, dense_eval)]
    current = dense
    for rnd in range(1, pc.rounds + 1):
        masks = magnitude_masks(current, pc.rate, masks, pc.scope, pc.prune_output_layer)
        target = 1.0 - (1.0 - pc.rate) ** rnd
        start = rewind_weights(current, rewind_to, masks)
        trained, ev = retrain(start, masks, pc.retrain_steps)
        for attempt in range(1, pc.retrain_retries + 1):
            if ev["mean"] >= pc.keep_return_fraction * dense_eval["mean"]:
                break
            log(f"prune round {rnd}: return {ev['mean']:.1f} below {pc.keep_return_fraction:g} of dense; retraining again (attempt {attempt + 1})")
            again, ev2 = retrain(start, masks, pc.retrain_steps, attempt)
            if ev2["mean"] > ev["mean"]:
                trained, ev = again, ev2
        current = trained
        lv = save_level(prune_dir, rnd, rnd, target, current, masks, ev)
        levels.append(lv)
        log(f"prune round {rnd}/{pc.rounds}: sparsity {lv.sparsity:.3f} (target {target:.3f}), return {lv.eval_return_mean:.1f}")
    return levels


PARTIAL_RECORD = "partial.json"


def partial_key(cfg: RunConfig, dense: tf.keras.Model, dense_eval: dict[str, Any]) -> str:
    """What a finished gradual level depends on: the prune and env sections (but
    env.eval_workers), the seed, the
    evaluation's episode count and algorithm, the dense agent's weights and its return."""
    import hashlib
    import json

    from rl2fpga.config import to_dict

    # env.eval_workers changes how evaluations are played, not their results (nor older keys)
    env = {k: v for k, v in to_dict(cfg.env).items() if k != "eval_workers"}
    h = hashlib.sha256(json.dumps({"prune": to_dict(cfg.prune), "env": env, "seed": cfg.seed,
                                   "algo": cfg.train.algo, "eval_episodes": cfg.train.eval_episodes,
                                   "dense_return": float(dense_eval["mean"])}, sort_keys=True, default=str).encode())
    for w in dense.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()


def _resumed_levels(partial: Path, key: str, prune_dir: Path, n: int, sf: float, shapes: list[tuple[int, ...]],
                    include_output: bool, log: Callable[[str], None]) -> list[tuple[Level, tf.keras.Model, dict[str, np.ndarray]]]:
    """The finished levels a killed gradual run left in ``partial`` (same ``key``), copied into
    ``prune_dir`` in order; anything that does not match or does not load ends the list there
    (those levels are simply computed again)."""
    from rl2fpga.safety import load_keras_model, load_npz

    try:
        rec = read_json(partial / PARTIAL_RECORD)
    except Rl2fpgaError:
        return []
    if not isinstance(rec, dict) or rec.get("key") != key or not isinstance(rec.get("levels"), list):
        return []
    out: list[tuple[Level, tf.keras.Model, dict[str, np.ndarray]]] = []
    for t, target in enumerate(rec["levels"], start=1):
        if t > n or not isinstance(target, float) or abs(target - cubic_sparsity(t, n, sf)) > 1e-12:
            break
        d = partial / level_name(t)
        try:
            model = load_keras_model(d / "model.keras")
            masks = {k: v.astype(bool) for k, v in load_npz(d / "masks.npz", "prune masks").items()}
            ev = read_json(d / "eval.json")
            if not isinstance(ev, dict) or not all(isinstance(ev.get(k), (int, float)) for k in ("mean", "std")):
                break
            kernels = {la.name: la.get_weights()[0].shape for la in prunable_layers(model, include_output)}
            if ({k: v.shape for k, v in masks.items()} != kernels
                    or [w.shape for w in model.get_weights()] != shapes):
                break  # not this network's level: computed again
        except (Rl2fpgaError, OSError, ValueError):
            break
        out.append((save_level(prune_dir, t, t, target, model, masks, ev), model, masks))
        log(f"gradual step {t}/{n}: resumed from {partial.name} (sparsity {out[-1][0].sparsity:.3f}, return {out[-1][0].eval_return_mean:.1f})")
    return out


def gradual(
    dense: tf.keras.Model,
    dense_eval: dict[str, Any],
    retrain: Retrain,
    cfg: RunConfig,
    prune_dir: Path,
    log: Callable[[str], None] = print,
    partial: Path | None = None,
) -> list[Level]:
    """Gradual magnitude pruning on the cubic schedule: ``rounds`` pruning steps spread over
    ``retrain_steps`` environment steps; each step's model is a level. ``prune.allocation``
    spreads each step's sparsity over the layers: uniform (tfmot's masks, every layer the
    target), erk or global (:func:`allocated_masks`).

    ``partial``: a folder that keeps every finished level (with a key of what it depends on,
    :func:`partial_key`); a run killed part-way and started again with the same inputs takes
    those levels from it and goes on with the next step. The caller removes it on success."""
    import shutil

    pc = cfg.prune
    n = max(1, pc.rounds)
    masks = {la.name: np.ones(la.get_weights()[0].shape, bool) for la in prunable_layers(dense, pc.prune_output_layer)}
    levels = [save_level(prune_dir, 0, 0, 0.0, dense, masks, dense_eval)]
    current = dense
    steps = max(1, pc.retrain_steps // n)
    key = partial_key(cfg, dense, dense_eval) if partial is not None else ""
    shapes = [w.shape for w in dense.get_weights()]
    done = (_resumed_levels(partial, key, prune_dir, n, pc.final_sparsity, shapes, pc.prune_output_layer, log)
            if partial is not None else [])
    for lv, model, m in done:
        levels.append(lv)
        current, masks = model, m
    if partial is not None and not done:
        shutil.rmtree(partial, ignore_errors=True)
    for t in range(len(done) + 1, n + 1):
        target = cubic_sparsity(t, n, pc.final_sparsity)
        if pc.allocation == "uniform":
            new = tfmot_masks(current, target, pc.prune_output_layer)
            masks = {k: masks[k] & new[k] for k in masks}  # pruned weights never come back
        else:
            masks = allocated_masks(current, masks, target, pc.allocation, pc.prune_output_layer)
        start = tf.keras.models.clone_model(current)
        start.set_weights(current.get_weights())
        apply_masks(start, masks)
        current, ev = retrain(start, masks, steps)
        lv = save_level(prune_dir, t, t, target, current, masks, ev)
        levels.append(lv)
        if partial is not None:  # the level first, then the record that names it
            shutil.copytree(prune_dir / level_name(t), partial / level_name(t), dirs_exist_ok=True)
            atomic_write_json(partial / PARTIAL_RECORD, {"key": key, "levels": [x.target_sparsity for x in levels[1:]]})
        log(f"gradual step {t}/{n}: sparsity {lv.sparsity:.3f} (target {target:.3f}), return {lv.eval_return_mean:.1f}")
    return levels


def level_schedules(cfg: RunConfig) -> list[PruneSchedule]:
    """``during_training``: one schedule per ``prune.sparsities`` entry, all checked up front."""
    if not cfg.prune.sparsities:
        raise Rl2fpgaError("prune.sparsities is empty; give the target sparsities of the levels, e.g. [0.8, 0.9, 0.95]")
    return [PruneSchedule.from_config(cfg, s) for s in cfg.prune.sparsities]


def during_training(
    dense: tf.keras.Model,
    dense_eval: dict[str, Any],
    cfg: RunConfig,
    prune_dir: Path,
    log: Callable[[str], None] = print,
    progress: bool = False,
) -> list[Level]:
    """Level 0 = the dense agent; level i = an agent trained from scratch (the train config,
    its seed) while pruned to ``prune.sparsities[i-1]``, evaluated as the dense agent was (the
    same seeds and episode count)."""
    schedules = level_schedules(cfg)
    masks = {la.name: np.ones(la.get_weights()[0].shape, bool) for la in prunable_layers(dense, cfg.prune.prune_output_layer)}
    levels = [save_level(prune_dir, 0, 0, 0.0, dense, masks, dense_eval)]
    for i, sched in enumerate(schedules, start=1):
        if cfg.train.algo == "dqn":
            from rl2fpga.train.dqn import train_dqn

            res = train_dqn(cfg, None, schedule=sched, progress=progress)
        else:
            from rl2fpga.train.sac import train_sac

            res = train_sac(cfg, None, schedule=sched, progress=progress)
        info = res.metrics["prune"]
        ev = {**res.eval.to_dict(), "steps": res.steps, "seconds": res.seconds, "selected_step": res.selected_step,
              "prune": info}
        extra = {"seconds": round(res.seconds, 2), "steps": res.steps, "allocation": sched.allocation,
                 "target_layer_sparsity": info["target_layer_sparsity"]}
        lv = save_level(prune_dir, i, 0, sched.final, res.model, res.masks or {}, ev, extra)
        levels.append(lv)
        log(f"during-training level {i}/{len(schedules)}: sparsity {lv.sparsity:.3f} (target {sched.final:.3f}), "
            f"return {lv.eval_return_mean:.1f}, {res.steps} steps in {res.seconds:.0f} s")
    return levels


def write_levels(prune_dir: Path, levels: list[Level], keep: float, method: str) -> Level:
    sel = select_level(levels, keep)
    PruneLevels({"method": method, "levels": [lv.to_json() for lv in levels]}).save_in(prune_dir)
    PruneSelected({**sel.to_json(), "keep_return_fraction": keep,
                   "dense_return_mean": levels[0].eval_return_mean}).save_in(prune_dir)
    return sel


def read_eval(path: Path) -> dict[str, Any]:
    ev = read_json(path)
    if "mean" not in ev:
        raise Rl2fpgaError(f"{path} has no 'mean'; rerun `rl2fpga train`")
    return {"mean": float(ev["mean"]), "std": float(ev.get("std", 0.0)), "returns": ev.get("returns", [])}
