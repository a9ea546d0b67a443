"""Gradual magnitude pruning *during* training (Zhu & Gupta 2017; Graesser et al., ICML 2022):
the cubic schedule, per-layer allocation and the masks the DQN and SAC loops keep.

* :func:`cubic_sparsity`: ``s_t = s_f - s_f (1 - (t - t0) / n)^3`` for ``t0 <= t <= t0 + n``,
  0 before ``t0``, ``s_f`` after (tfmot's ``PolynomialDecay(power=3)``, in float64).
* :func:`allocate`: per-layer final sparsities, ``uniform`` (every layer ``s_f``), ``erk``
  (Erdos-Renyi-Kernel, Evci et al. 2020: density proportional to sum(shape) / prod(shape),
  scaled to meet the global target in weight count; a layer that would exceed density 1 stays
  dense and the rest is redistributed) or ``global`` (one magnitude ranking over every layer).
* :func:`drop_smallest` / :func:`drop_smallest_global`: prune the smallest alive weights to a
  count (ties broken by index); pruned weights never come back. ``quantize/prune.py``'s
  ``magnitude_masks`` uses them too.
* :class:`PruneSchedule` (begin, end, update frequency, allocation; from ``prune.*``) and
  :class:`MaskPruner` (the TF side: 0/1 mask variables the training step multiplies the kernels
  by after every optimizer step, updated every ``frequency`` agent steps from ``begin`` to
  ``end``, applied to mirror networks such as DQN's target network as well).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from rl2fpga.config import RunConfig
from rl2fpga.errors import Rl2fpgaError

ALLOCATIONS = ("global", "uniform", "erk")
DEFAULT_BEGIN, DEFAULT_END = 0.2, 0.8  # fractions of train.total_steps (Graesser et al. 2022)


def cubic_sparsity(t: int, end: int, final: float, begin: int = 0) -> float:
    """``s_f - s_f (1 - (t - begin) / (end - begin))^3``, clamped to [0, s_f] outside [begin, end]."""
    if end <= begin:
        raise Rl2fpgaError(f"pruning end step {end} must be after the begin step {begin}; set prune.end_step > prune.begin_step")
    p = min(1.0, max(0.0, (t - begin) / (end - begin)))
    return final - final * (1.0 - p) ** 3


def prunable_layers(model: tf.keras.Model, include_output: bool = True) -> list[tf.keras.layers.Layer]:
    """Dense and Conv2D layers in order (the last one only with ``include_output``)."""
    layers = [la for la in model.layers if isinstance(la, tf.keras.layers.Dense | tf.keras.layers.Conv2D)]
    return layers if include_output else layers[:-1]


# ----------------------------------------------------------------------------- allocation


def erk_densities(shapes: dict[str, tuple[int, ...]], density: float) -> dict[str, float]:
    """Erdos-Renyi-Kernel densities meeting ``density`` over all weights (Evci et al. 2020)."""
    if not 0.0 < density <= 1.0:
        raise Rl2fpgaError(f"ERK density {density} must be in (0, 1]; set a sparsity in [0, 1)")
    size = {n: int(np.prod(s)) for n, s in shapes.items()}
    raw = {n: float(sum(s)) / size[n] for n, s in shapes.items()}
    dense: set[str] = set()
    while True:
        free = [n for n in shapes if n not in dense]
        budget = density * sum(size.values()) - sum(size[n] for n in dense)
        eps = budget / sum(raw[n] * size[n] for n in free)
        top = max(raw[n] for n in free)
        if eps * top <= 1.0 or len(free) == 1:
            break
        dense |= {n for n in free if raw[n] == top}  # capped at density 1, the rest redistributed
    return {n: 1.0 if n in dense else min(1.0, eps * raw[n]) for n in shapes}


def allocate(shapes: dict[str, tuple[int, ...]], sparsity: float, allocation: str) -> dict[str, float]:
    """Per-layer final sparsities; ``global`` gives every layer ``sparsity`` as a nominal value
    (the layers then share one magnitude ranking, see :class:`MaskPruner`)."""
    if allocation not in ALLOCATIONS:
        raise Rl2fpgaError(f"unknown pruning allocation '{allocation}'; use one of {', '.join(ALLOCATIONS)} (prune.allocation)")
    if not 0.0 <= sparsity < 1.0:
        raise Rl2fpgaError(f"pruning sparsity {sparsity} must be in [0, 1); set prune.sparsities to values below 1")
    if allocation == "erk" and sparsity > 0.0:
        return {n: 1.0 - d for n, d in erk_densities(shapes, 1.0 - sparsity).items()}
    return dict.fromkeys(shapes, float(sparsity))


# ----------------------------------------------------------------------------- masks


def drop_smallest(w: np.ndarray, alive: np.ndarray, k: int) -> np.ndarray:
    """``alive`` with its ``k`` smallest-magnitude alive weights of ``w`` pruned (ties by index)."""
    new = np.array(alive, bool, copy=True)
    if k > 0:
        idx = np.flatnonzero(new)
        order = np.argsort(np.abs(np.asarray(w).reshape(-1)[idx]), kind="stable")
        new.reshape(-1)[idx[order[:k]]] = False
    return new


def drop_smallest_global(kernels: dict[str, np.ndarray], alive: dict[str, np.ndarray], k: int) -> dict[str, np.ndarray]:
    """Like :func:`drop_smallest` over every layer at once (one threshold); layers in dict order."""
    new = {n: np.array(alive[n], bool, copy=True) for n in kernels}
    if k <= 0:
        return new
    names = list(kernels)
    mags = np.concatenate([np.abs(kernels[n]).reshape(-1)[new[n].reshape(-1)] for n in names])
    owner = np.concatenate([np.full(int(new[n].sum()), i) for i, n in enumerate(names)])
    pos = np.concatenate([np.flatnonzero(new[n]) for n in names])
    gone = np.argsort(mags, kind="stable")[:k]
    for i, n in enumerate(names):
        new[n].reshape(-1)[pos[gone[owner[gone] == i]]] = False
    return new


def prune_to_counts(kernels: dict[str, np.ndarray], alive: dict[str, np.ndarray], want: dict[str, int]) -> dict[str, np.ndarray]:
    """``alive`` with the smallest alive weights pruned until each layer has ``want[name]`` pruned
    weights (or, under the single key ``*``, the network has that many: one ranking over every
    layer); pruned weights never come back, a layer already past its count keeps its mask."""
    if "*" in want:
        return drop_smallest_global(kernels, alive, want["*"] - sum(int((~a).sum()) for a in alive.values()))
    return {n: drop_smallest(kernels[n], a, want[n] - int((~a).sum())) for n, a in alive.items()}


# ----------------------------------------------------------------------------- schedule


@dataclass(frozen=True)
class PruneSchedule:
    """Prune to ``final`` between agent steps ``begin`` and ``end``, masks updated every
    ``frequency`` steps from ``begin`` (and at ``end``), ``allocation`` over the layers."""

    final: float
    begin: int
    end: int
    frequency: int = 1000
    allocation: str = "erk"
    include_output: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.final < 1.0:
            raise Rl2fpgaError(f"pruning sparsity {self.final} must be in [0, 1); set prune.sparsities to values below 1")
        if self.begin < 0:
            raise Rl2fpgaError(f"prune.begin_step {self.begin} must be >= 0; set a step of the training run")
        if self.end <= self.begin:
            raise Rl2fpgaError(f"prune.end_step {self.end} must be after prune.begin_step {self.begin}; set end_step > begin_step")
        if self.frequency < 1:
            raise Rl2fpgaError(f"prune.frequency {self.frequency} must be at least 1 (agent steps between mask updates)")
        if self.allocation not in ALLOCATIONS:
            raise Rl2fpgaError(f"unknown pruning allocation '{self.allocation}'; use one of {', '.join(ALLOCATIONS)} (prune.allocation)")

    @classmethod
    def from_config(cls, cfg: RunConfig, final: float, total_steps: int | None = None) -> PruneSchedule:
        """``prune.begin_step/end_step`` (None: 20 % / 80 % of the training run), ``frequency``,
        ``allocation``, ``prune_output_layer``; the end must fall inside the training run."""
        pc = cfg.prune
        total = int(total_steps if total_steps is not None else cfg.train.total_steps)
        begin = pc.begin_step if pc.begin_step is not None else int(round(DEFAULT_BEGIN * total))
        end = pc.end_step if pc.end_step is not None else int(round(DEFAULT_END * total))
        sched = cls(float(final), int(begin), int(end), pc.frequency, pc.allocation, pc.prune_output_layer)
        sched.check_within(total)
        return sched

    def check_within(self, total: int) -> None:
        """The schedule must end inside a training run of ``total`` agent steps."""
        if self.end > total:
            raise Rl2fpgaError(f"prune.end_step {self.end} is past train.total_steps {total}; set prune.end_step <= train.total_steps")

    def sparsity(self, t: int, final: float | None = None) -> float:
        return cubic_sparsity(t, self.end, self.final if final is None else final, self.begin)

    def due(self, prev: int, step: int) -> bool:
        """Whether a mask update step (begin + k * frequency <= end, or end) lies in (prev, step]."""
        if prev >= self.end:
            return False
        nxt = self.begin if prev < self.begin else self.begin + ((prev - self.begin) // self.frequency + 1) * self.frequency
        return min(nxt, self.end) <= step


class MaskPruner:
    """The masks of ``model``'s prunable kernels as 0/1 float variables: :meth:`pairs` gives
    ``(kernel, mask)`` for the training step to multiply after every optimizer step, and
    :meth:`update` recomputes them on the schedule (also zeroing the same-named kernels of
    ``mirrors``, e.g. a target network) in a run of ``total`` agent steps. ``masks`` (optional) are
    already-pruned weights."""

    def __init__(self, schedule: PruneSchedule, model: tf.keras.Model, total: int, masks: dict[str, np.ndarray] | None = None,
                 mirrors: tuple[tf.keras.Model, ...] = ()):
        self.schedule = schedule
        schedule.check_within(total)
        self.layers = {la.name: la for la in prunable_layers(model, schedule.include_output)}
        unknown = sorted(set(masks or {}) - set(self.layers))
        if unknown:
            raise Rl2fpgaError(f"pruning mask for '{unknown[0]}', which is not a pruned layer of {model.name}; recompute the masks for this model")
        self.alive = {n: np.asarray((masks or {}).get(n, np.ones(la.kernel.shape, bool)), bool) for n, la in self.layers.items()}
        self.vars = {n: tf.Variable(m.astype(np.float32), trainable=False, name=f"mask_{n}") for n, m in self.alive.items()}
        self.mirrors = [{n: m.get_layer(n).kernel for n in self.layers} for m in mirrors]
        self.shapes = {n: tuple(int(d) for d in la.kernel.shape) for n, la in self.layers.items()}
        self.targets = allocate(self.shapes, schedule.final, schedule.allocation)
        self.history: list[tuple[int, float]] = []

    def due(self, prev: int, step: int) -> bool:
        """Whether a mask update falls in agent steps (prev, step] (see :meth:`PruneSchedule.due`)."""
        return self.schedule.due(prev, step)

    def pairs(self) -> list[tuple[tf.Variable, tf.Variable]]:
        return [(self.layers[n].kernel, v) for n, v in self.vars.items()]

    def counts(self, t: int) -> dict[str, int]:
        """Pruned weights per layer at step ``t`` (``global``: one total under the key ``*``)."""
        s = self.schedule
        if s.allocation == "global":
            return {"*": int(round(s.sparsity(t) * sum(int(np.prod(v)) for v in self.shapes.values())))}
        return {n: int(round(s.sparsity(t, self.targets[n]) * int(np.prod(self.shapes[n])))) for n in self.shapes}

    def update(self, t: int) -> None:
        """Masks for step ``t``: prune the smallest alive weights up to the schedule's counts."""
        kernels = {n: la.kernel.numpy() for n, la in self.layers.items()}
        self.alive = prune_to_counts(kernels, self.alive, self.counts(t))
        for n, m in self.alive.items():
            mf = m.astype(np.float32)
            self.vars[n].assign(mf)
            self.layers[n].kernel.assign(kernels[n] * mf)
            for mirror in self.mirrors:
                mirror[n].assign(mirror[n].numpy() * mf)
        pruned = sum(int((~a).sum()) for a in self.alive.values())
        self.history.append((int(t), pruned / sum(a.size for a in self.alive.values())))

    def masks(self) -> dict[str, np.ndarray]:
        return {n: a.copy() for n, a in self.alive.items()}

    def summary(self) -> dict[str, Any]:
        s = self.schedule
        return {"final_sparsity": s.final, "begin_step": s.begin, "end_step": s.end, "frequency": s.frequency,
                "allocation": s.allocation,  # global: no per-layer target (one ranking)
                "target_layer_sparsity": None if s.allocation == "global" else self.targets,
                "layer_sparsity": {n: float((~a).mean()) for n, a in self.alive.items()},
                "updates": [{"step": t, "sparsity": v} for t, v in self.history]}
