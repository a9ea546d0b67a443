"""Significant multiplications over real episodes: per layer, per T, per sparsity level.

For the selected (quantized) level, over ``analyze.episodes`` real episodes recorded with the
float agent: (a) the float DeltaNetwork with T and (b) the golden integer model with
``T_int = floor(T / LSB)`` count significant multiplications per layer per step; dense counts
are Table 1 of the 2023 paper. Closed-loop returns under delta inference are measured for both.
Over all sparsity levels the float DeltaNetwork gives the paper's Fig. 6 (reward vs sparsity:
dense / pruned / pruned + delta) and Fig. 8 (fraction of significant multiplications vs sparsity
per T); each level's return with delta updates is played over ``analyze.level_episodes`` whole
episodes on the evaluation seeds (None: ``analyze.episodes`` capped at ``analyze.max_steps``).
Results: ``analyze/summary.json``, ``layers.{json,md}``, ``fig6_reward_vs_sparsity.png``,
``fig8_fraction_vs_sparsity.png``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rl2fpga.config import RunConfig
from rl2fpga.core.golden import GoldenModel, squash_action
from rl2fpga.fsutil import atomic_write_json, atomic_write_text, read_json
from rl2fpga.quantize.delta import FloatDeltaNetwork

ANALYZE_SEED_OFFSET = 40_000


def golden_thresholds(gm: GoldenModel, t: float | list[float]) -> tuple[list[int], bool]:
    """T_int per layer for a sweep value T (a T below one input LSB maps to 0 and is flagged
    instead of refused: sweeps cover values finer than the grid)."""
    from rl2fpga.errors import Rl2fpgaError
    from rl2fpga.quantize.qkeras_model import threshold_ints

    try:
        return threshold_ints(gm, t), False
    except Rl2fpgaError:
        return threshold_ints(gm, 0.0), True


def episode_counts(net: Any, observations: np.ndarray, to_input: Any) -> np.ndarray:
    """(steps, layers) significant multiplications of a stateful network over one episode."""
    net.reset()
    rows = []
    for obs in observations:
        _, st = net.step(to_input(obs)) if not isinstance(net, GoldenModel) else net.step(to_input(obs), incremental=True)
        rows.append(st.macs)
    return np.asarray(rows, dtype=np.float64)


class _DeltaPolicy:
    """A stateful delta network as an agent (greedy / deterministic actor)."""

    def __init__(self, net: Any, to_input: Any, to_output: Any, spec: Any):
        self.net, self.to_input, self.to_output, self.spec = net, to_input, to_output, spec

    def reset(self) -> None:
        self.net.reset()

    def __call__(self, obs: np.ndarray) -> Any:
        x = self.to_input(obs)
        y = self.net.step(x, incremental=True)[0] if isinstance(self.net, GoldenModel) else self.net.step(x)[0]
        y = self.to_output(y).reshape(-1)
        if self.spec.discrete:
            return int(np.argmax(y))
        return squash_action(y, self.spec.action_low, self.spec.action_high)


def _float_input(obs: np.ndarray) -> np.ndarray:
    obs = np.asarray(obs)
    return obs.astype(np.float64) * 2.0**-8 if obs.dtype == np.uint8 else obs.astype(np.float64)


@dataclass
class _Analysis:
    """What every part of the analysis shares: the run, the golden model, the seeds."""

    run_path: Path
    cfg: RunConfig
    spec: Any
    gm: GoldenModel
    dense: np.ndarray  # dense multiplications per layer (float64)
    thresholds: list[float]
    float_input: Any = _float_input  # observation -> the selected float model's input (standardised with the golden model)

    @property
    def rec_seed(self) -> int:
        return self.cfg.seed + ANALYZE_SEED_OFFSET

    @property
    def eval_seed(self) -> int:
        from rl2fpga.train.training import EVAL_SEED_OFFSET

        return self.cfg.seed + EVAL_SEED_OFFSET

    def record(self, model: Any) -> list[np.ndarray]:
        """Observations of the analysed episodes, recorded with the float policy ``model``."""
        from rl2fpga.quantize.level import float_policy
        from rl2fpga.train.evaluate import record_episode

        ac = self.cfg.analyze
        pol = float_policy(model, self.spec)
        return [record_episode(pol, self.cfg.env, self.rec_seed + i, ac.max_steps).observations for i in range(ac.episodes)]

    def delta_return(self, net: Any, to_input: Any, to_output: Any, episodes: int | None = None) -> dict[str, Any]:
        """``net`` in closed loop on the evaluation seeds: ``episodes`` whole episodes (the env's
        time limit only), or, when None, ``analyze.episodes`` capped at ``analyze.max_steps``."""
        from rl2fpga.quantize.quantizer import run_stateful

        ac = self.cfg.analyze
        n, cap = (ac.episodes, ac.max_steps) if episodes is None else (episodes, None)
        return run_stateful(_DeltaPolicy(net, to_input, to_output, self.spec), self.cfg.env, self.eval_seed, n, cap)

    def level_delta_return(self, net: Any) -> dict[str, Any]:
        """A prune level's float DeltaNetwork over ``analyze.level_episodes`` whole episodes (None:
        as :meth:`delta_return`)."""
        return self.delta_return(net, _float_input, lambda y: y, self.cfg.analyze.level_episodes)

    def layer_t(self, t: float) -> float | list[float]:
        """The sweep value ``t`` as the networks use it: the run's own T (quantize.threshold) is
        the deployed one, per layer when quantize.layer_thresholds is set."""
        qc = self.cfg.quantize
        return qc.deployed_threshold() if math.isclose(t, qc.threshold) else t

    def at_threshold(self, model: Any, episodes: list[np.ndarray], t: float) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
        """Float DeltaNetwork against the golden model at threshold ``t``: the row of
        per_threshold and the per-step, per-layer counts of both."""
        qc, dense = self.cfg.quantize, self.dense
        fnet = FloatDeltaNetwork(model, self.layer_t(t))
        f_counts = np.concatenate([episode_counts(fnet, e, self.float_input) for e in episodes])
        t_int, below = golden_thresholds(self.gm, self.layer_t(t))
        g = self.gm.copy()
        g.set_thresholds(t_int)
        g_counts = np.concatenate([episode_counts(g, e, g.quantize_input) for e in episodes])
        g_ret: dict[str, Any] = {"mean": None}
        if t == 0 or math.isclose(t, qc.threshold):  # closed-loop integer episodes are slow on Atari
            g_ret = self.delta_return(g, g.quantize_input, g.output_float)
        f_ret = self.delta_return(fnet, self.float_input, lambda y: y, self.cfg.analyze.threshold_episodes)
        row = {
            "T": t, "T_int": t_int, "below_input_lsb": below,
            "float_significant_mean": float(f_counts.sum(1).mean()),
            "golden_significant_mean": float(g_counts.sum(1).mean()),
            "float_fraction": float(f_counts.sum(1).mean() / dense.sum()),
            "golden_fraction": float(g_counts.sum(1).mean() / dense.sum()),
            "float_layer_mean": f_counts.mean(0).tolist(),
            "golden_layer_mean": g_counts.mean(0).tolist(),
            "golden_delta_return_mean": g_ret["mean"],
            "float_delta_return_mean": f_ret["mean"],
            "golden_delta_return_std": g_ret.get("std"),
            "float_delta_return_std": f_ret["std"],
            "float_delta_returns": f_ret["returns"],
        }
        return row, f_counts, g_counts

    def layer_rows(self, f_counts: np.ndarray, g_counts: np.ndarray) -> dict[str, Any]:
        dense = self.dense
        return {la.name: {"dense": int(dense[k]), "nnz": la.nnz(), "float_significant_mean": float(f_counts[:, k].mean()),
                          "golden_significant_mean": float(g_counts[:, k].mean()),
                          "golden_fraction": float(g_counts[:, k].mean() / dense[k]),
                          "golden_significant_max": float(g_counts[:, k].max())}
                for k, la in enumerate(self.gm.layers)}

    def sparsity_sweep(self, levels: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The float DeltaNetwork over every pruning level (the papers' Fig. 6 and Fig. 8)."""
        from rl2fpga.quantize.prune import load_level

        per_level = []
        reference = None  # the dense multiplications of level 0 (the dense agent): one scale for every level
        for rec in levels:
            model, _, _ = load_level(self.run_path, rec["level"])
            if reference is None:  # levels.json lists level 0 first; small students have other shapes
                reference = float(sum(FloatDeltaNetwork(model, 0.0).dense_mults()))
            eps = self.record(model)
            fr = {}
            for t in self.thresholds:
                fnet = FloatDeltaNetwork(model, self.layer_t(t))
                c = np.concatenate([episode_counts(fnet, e, _float_input) for e in eps])
                fr[f"{t:g}"] = float(c.sum(1).mean() / reference)
            d_ret = self.level_delta_return(FloatDeltaNetwork(model, self.cfg.quantize.deployed_threshold()))
            per_level.append({"level": rec["level"], "sparsity": rec["sparsity"], "return_mean": rec["eval_return_mean"],
                              "return_std": rec.get("eval_return_std"),
                              "delta_return_mean": d_ret["mean"], "delta_return_std": d_ret["std"],
                              "delta_returns": d_ret["returns"], "fraction": fr})
        return per_level


def analyze(run_path: Path, cfg: RunConfig, spec: Any, out: Path) -> dict[str, Any]:
    import tensorflow as tf  # noqa: F401  (models load through it)

    from rl2fpga.quantize.prune import load_level

    ac, qc = cfg.analyze, cfg.quantize
    gm = GoldenModel.load(run_path / "quantize" / "golden")
    qsum = read_json(run_path / "quantize" / "summary.json")
    levels = read_json(run_path / "prune" / "levels.json")["levels"]
    sel_model, _, sel_rec = load_level(run_path, qsum["prune_level"])
    dense = np.asarray(gm.dense_mults(), dtype=np.float64)
    an = _Analysis(run_path, cfg, spec, gm, dense, sorted(set([*ac.thresholds, qc.threshold])))
    sel_input = sel_model
    if gm.standardize is not None:  # compare at the same thresholds: the float model reads standardised inputs too
        from rl2fpga.quantize.level import standardised_float

        sel_input, an.float_input = standardised_float(sel_model, gm.standardize, gm.in_fmt.frac)

    # the selected level: float vs golden, per T
    episodes = an.record(sel_model)
    per_t: dict[str, Any] = {}
    layer_rows: dict[str, Any] = {}
    for t in an.thresholds:
        per_t[f"{t:g}"], f_counts, g_counts = an.at_threshold(sel_input, episodes, t)
        if math.isclose(t, qc.threshold):
            layer_rows = an.layer_rows(f_counts, g_counts)
    per_level = an.sparsity_sweep(levels)
    # the dense agent the deployed model replaces (a small student's teacher: level 0)
    reference = float(sum(FloatDeltaNetwork(load_level(run_path, levels[0]["level"])[0], 0.0).dense_mults()))

    key = f"{qc.threshold:g}"
    sig = per_t[key]["golden_significant_mean"]
    summary = {
        "episodes": ac.episodes, "level_episodes": ac.episodes if ac.level_episodes is None else ac.level_episodes,
        "steps": sum(len(e) for e in episodes), "threshold": qc.threshold,
        "threshold_int": per_t[key]["T_int"], "prune_level": sel_rec["level"], "sparsity": sel_rec["sparsity"],
        "dense_layer_mults": dense.astype(int).tolist(),
        "multiplications": {"dense": float(dense.sum()), "significant_mean": sig, "reduction": float(dense.sum() / max(sig, 1e-9)),
                            "float_significant_mean": per_t[key]["float_significant_mean"],
                            "reference_dense": reference, "reduction_vs_reference": float(reference / max(sig, 1e-9))},
        "per_threshold": per_t,
        "per_level": per_level,
        "layers": layer_rows,
    }
    atomic_write_json(out / "summary.json", summary)
    atomic_write_json(out / "layers.json", layer_rows)
    atomic_write_text(out / "layers.md", _layers_md(layer_rows, qc.threshold))
    _plots(out, per_level, an.thresholds, qc.threshold, levels[0]["eval_return_mean"], spec.id)
    return summary


def _layers_md(rows: dict[str, Any], t: float) -> str:
    lines = [f"Significant multiplications per step at T={t:g} (mean over the analysed episodes)\n",
             "| layer | dense (Table 1) | nonzero weights | float delta | golden delta | golden fraction |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['dense']} | {r['nnz']} | {r['float_significant_mean']:.1f} | "
                     f"{r['golden_significant_mean']:.1f} | {r['golden_fraction']:.4f} |")
    return "\n".join(lines) + "\n"


def _plots(out: Path, per_level: list[dict[str, Any]], thresholds: list[float], t_sel: float, dense_return: float, env_id: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = [lv["sparsity"] for lv in per_level]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.axhline(dense_return, color="k", ls="--", label="dense")
    ax.plot(s, [lv["return_mean"] for lv in per_level], "o-", label="pruned")
    se = [lv["delta_return_std"] / math.sqrt(max(len(lv["delta_returns"]), 1)) for lv in per_level]
    ax.errorbar(s, [lv["delta_return_mean"] for lv in per_level], yerr=se, fmt="s-", capsize=3,
                label=f"pruned + delta (T={t_sel:g}), +- s.e.")
    ax.set_xlabel("sparsity")
    ax.set_ylabel("return")
    ax.set_title(f"{env_id}: reward vs sparsity")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "fig6_reward_vs_sparsity.png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    for t in thresholds:
        ax.plot(s, [lv["fraction"][f"{t:g}"] for lv in per_level], "o:", label=f"T={t:g}")
    ax.set_yscale("log")
    ax.set_xlabel("sparsity")
    ax.set_ylabel("fraction of significant multiplications")
    ax.set_title(f"{env_id}: pruning + DeltaNetwork")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "fig8_fraction_vs_sparsity.png", dpi=100)
    plt.close(fig)
