"""Quantizing one prune level: visited states for calibration, PTQ or QAT, the golden model
checked == QKeras on real states, and the golden agent run without and with delta updates.
Shared by the quantize stage and the compression sweep."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rl2fpga.config import RunConfig
from rl2fpga.core.golden import GoldenModel
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.run import Run

CALIB_SEED_OFFSET = 30_000  # calibration / distillation episodes


ANALYZE_SEED_OFFSET = 40_000  # analysed episodes


MAX_CALIB_STATES = 3000


def float_policy(model: Any, spec: Any) -> Any:
    from rl2fpga.train.evaluate import deterministic_actor, greedy_policy

    return greedy_policy(model) if spec.discrete else deterministic_actor(model, spec)


def collect_states(policy: Any, cfg: RunConfig, episodes: int, max_steps: int, seed: int) -> np.ndarray:
    """Observations the float agent visits (real episodes, seeds ``seed + i``)."""
    from rl2fpga.train.evaluate import record_episode

    obs = [record_episode(policy, cfg.env, seed + i, max_steps).observations for i in range(episodes)]
    return np.concatenate(obs)


def keeps_return(ret: float, dense: float, keep: float) -> bool:
    """``ret`` keeps ``keep`` of ``dense`` (for negative returns: at most (1 - keep) worse)."""
    return ret >= keep * dense - 1e-9 if dense > 0 else ret >= dense + (1 - keep) * dense - 1e-9


@dataclass
class QuantizedLevel:
    """One prune level quantized, its golden model checked == QKeras, and the golden agent's
    episodes without (``ev0``) and with (``evd``) delta updates."""

    model: Any  # the pruned float Keras model
    level: dict[str, Any]  # its record in prune/levels.json
    qmodel: Any  # the QKeras model
    info: dict[str, Any]  # how it was quantized (PTQ / QAT details)
    golden: Any  # the golden integer model (rl2fpga.core.golden.GoldenModel), thresholds 0
    in_fmt: Any  # the input fixed-point format
    t_int: list[int]  # delta thresholds in LSBs, per layer
    acc_bits: Any
    static: list[int]  # float32 accumulator bounds over every input of the format
    dynamic: list[int]  # ... over the checked real states
    x_int: np.ndarray  # the checked states on the input grid
    ev0: dict[str, Any] | None  # golden agent, T_int = 0: returns, mean, std, lengths (None: not played)
    evd: dict[str, Any]  # golden agent with delta updates
    seed: int  # the evaluation episodes' first seed
    policy: Any  # the delta GoldenPolicy that played evd (its statistics per step)

    @property
    def sparsity(self) -> float:
        return float(self.level["sparsity"])


def standardised_input(model: Any, level: dict[str, Any], states: np.ndarray, bits: int) -> tuple[Any, Any, Any]:
    """A prune level's input standardisation (``standardize_mean``, ``standardize_scale``: the
    student learnt on ``(x - mean) * scale``) as the golden model's integer form: per input a
    power-of-two scale ``2^shift`` (nearest to ``scale``) and an integer offset on the grid.
    Returns the float model reading the standardised inputs, the input format (covering the
    standardised states) and the :class:`InputStandardize`."""
    from rl2fpga.core.golden import InputStandardize
    from rl2fpga.quantize.qkeras_model import input_format

    x = np.asarray(states, np.float64).reshape(len(states), -1)
    mean = np.asarray(level["standardize_mean"], np.float64)
    shift = np.round(np.log2(np.asarray(level["standardize_scale"], np.float64))).astype(np.int64)
    in_fmt = input_format((x - mean) * np.exp2(shift), bits)
    offset = np.round(mean * np.exp2(in_fmt.frac + shift)).astype(np.int64)
    std = InputStandardize(tuple(int(v) for v in shift), tuple(int(v) for v in offset))
    return standardised_float(model, std, in_fmt.frac)[0], in_fmt, std


def standardised_float(model: Any, std: Any, frac: int) -> tuple[Any, Any]:
    """The float view of a golden input standardisation: ``model_z(z) = model(z * 2^-shift +
    mean)`` (the raw-input ``model`` read through it; ``mean = offset * 2^-(frac + shift)``, the
    mean the grid really subtracts) and ``to_z(obs) = (obs - mean) * 2^shift`` (not rounded)."""
    from rl2fpga.quantize.student import fold_input_affine

    shift = np.asarray(std.shift, np.float64)
    mean = np.asarray(std.offset, np.float64) * np.exp2(-(frac + shift))

    def to_z(obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, np.float64)
        return ((obs.reshape(-1) - mean) * np.exp2(shift)).reshape(obs.shape)

    return fold_input_affine(model, -mean * np.exp2(shift), np.exp2(-shift)), to_z


def quantize_level(run: Run, cfg: RunConfig, spec: Any, index: int, plain: bool = True) -> QuantizedLevel:
    """Quantize one prune level, check golden == QKeras, run the golden agent with and without
    delta updates (``plain=False``: with delta updates only, ``ev0`` None)."""
    from rl2fpga.quantize.prune import load_level
    from rl2fpga.quantize.qkeras_model import (
        FLOAT32_EXACT,
        float32_bounds,
        golden_from_qkeras,
        input_format,
        qkeras_int_outputs,
        threshold_ints,
    )
    from rl2fpga.quantize.quantizer import (
        GoldenPolicy,
        qkeras_policy,
        quantize_policy,
        run_stateful,
    )
    from rl2fpga.train.training import EVAL_SEED_OFFSET

    qc = cfg.quantize
    model, masks, level = load_level(run.path, index)
    states = collect_states(float_policy(model, spec), cfg, qc.calib_episodes, qc.calib_max_steps,
                            cfg.seed + CALIB_SEED_OFFSET)
    if len(states) > MAX_CALIB_STATES:  # Atari frames: keep memory and distillation time bounded
        keep = np.random.default_rng(cfg.seed).choice(len(states), MAX_CALIB_STATES, replace=False)
        states = states[np.sort(keep)]
    std, qin_model = None, model
    if qc.input_standardize and "standardize_mean" in level and states.dtype != np.uint8:
        qin_model, in_fmt, std = standardised_input(model, level, states, qc.float_input_bits)
    else:
        in_fmt = input_format(states, qc.float_input_bits)

    def visit(qm: Any) -> np.ndarray:
        pol = qkeras_policy(qm, in_fmt, spec.discrete, spec.action_low, spec.action_high, standardize=std)
        return collect_states(pol, cfg, qc.calib_episodes, qc.calib_max_steps, cfg.seed + CALIB_SEED_OFFSET + 500)

    qmodel, info = quantize_policy(qin_model, masks, qc, in_fmt, states, cfg.seed, discrete=spec.discrete, visit=visit,
                                   standardize=std)
    gm = golden_from_qkeras(qmodel, in_fmt, 0)
    if std is not None:
        gm = GoldenModel(gm.layers, gm.meta, std)
        info["input_standardize"] = std.to_json()
    acc_bits = gm.check_accumulators()
    t_int = threshold_ints(gm, qc.deployed_threshold())

    # exactness: static float32 proof, else a per-state certificate, then == on the states
    static = float32_bounds(gm)
    check = states[: qc.check_states]
    x_int = np.stack([gm.quantize_input(o) for o in check])
    dynamic = float32_bounds(gm, x_int) if max(static) >= FLOAT32_EXACT else static
    if max(dynamic) >= FLOAT32_EXACT:
        raise Rl2fpgaError(f"accumulators reach {max(dynamic)} LSBs >= 2^24 on real states, so float32 QKeras cannot be exact; use fewer weight or activation bits")
    y_q = qkeras_int_outputs(qmodel, gm, x_int)
    y_g = np.stack([gm.forward(x) for x in x_int])
    if not np.array_equal(y_q, y_g):
        raise Rl2fpgaError(f"golden model differs from QKeras on {int((y_q != y_g).any(axis=1).sum())} of {len(x_int)} states; this is a bug, please report it")

    # the quantized agent, without and with delta updates
    seed = cfg.seed + EVAL_SEED_OFFSET
    g0 = gm.copy()
    g0.set_thresholds(0)
    ev0 = (run_stateful(GoldenPolicy(g0, spec.discrete, spec.action_low, spec.action_high), cfg.env, seed, qc.delta_episodes)
           if plain else None)
    gd = gm.copy()
    gd.set_thresholds(t_int)
    pol = GoldenPolicy(gd, spec.discrete, spec.action_low, spec.action_high)
    evd = run_stateful(pol, cfg.env, seed, qc.delta_episodes)
    return QuantizedLevel(model=model, level=level, qmodel=qmodel, info=info, golden=gm, in_fmt=in_fmt, t_int=t_int,
                          acc_bits=acc_bits, static=static, dynamic=dynamic, x_int=x_int, ev0=ev0, evd=evd,
                          seed=seed, policy=pol)
