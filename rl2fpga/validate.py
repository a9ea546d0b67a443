"""Value checks of a whole config, run before anything in a run folder is touched.

:mod:`rl2fpga.config` checks keys and types; this module checks that the values make sense
(``quantize.weight_bits=40``, ``rtl.lanes=65``, ``train.total_steps=-5`` are refused) so that a
failed command never leaves a changed ``config.yaml`` or a removed ``.done`` behind.
"""

from __future__ import annotations

from typing import Any

from rl2fpga.config import RunConfig
from rl2fpga.errors import Rl2fpgaError


def _range(key: str, v: Any, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
           hi_open: bool = False, hint: str = "") -> None:
    if v is None:
        return
    bad = (lo is not None and (v < lo or (lo_open and v == lo))) or (hi is not None and (v > hi or (hi_open and v == hi)))
    if bad:
        lo_s = "" if lo is None else (f"> {lo}" if lo_open else f">= {lo}")
        hi_s = "" if hi is None else (f"< {hi}" if hi_open else f"<= {hi}")
        want = " and ".join(s for s in (lo_s, hi_s) if s)
        raise Rl2fpgaError(f"config key '{key}' = {v!r} is out of range; it must be {want}{hint}")


def validate_for_run(cfg: RunConfig, run: Any) -> None:
    """The checks that need the run's own model (a config for an existing run): per-layer lists
    whose length is the model's layer count. Nothing is read but the golden model's
    formats.json; a run without one (not quantized yet) is checked when its step runs."""
    from rl2fpga.fsutil import read_json
    from rl2fpga.hls.engine.generator import check_lanes_count

    if not cfg.rtl.layer_lanes:
        return
    path = run.layout.quantize_formats
    if not path.is_file():
        return
    try:
        names = [str(la["name"]) for la in read_json(path)["layers"]]
    except (ValueError, KeyError, TypeError):
        return  # a corrupt model is the golden loader's one-line error, when a step reads it
    check_lanes_count(len(cfg.rtl.layer_lanes), names)


def validate_config(cfg: RunConfig, check_env: bool = True) -> None:
    """Raise :class:`Rl2fpgaError` (one line: key, value, allowed range) on the first bad value."""
    from rl2fpga.safety import check_env_id, check_run_name

    check_run_name(cfg.name)
    if check_env:
        check_env_id(cfg.env.id)
    else:
        if ":" in cfg.env.id:
            check_env_id(cfg.env.id)
    for check in (_check_env, _check_train, _check_dqn, _check_sac, _check_prune, _check_quantize, _check_analyze,
                  _check_hardware):
        check(cfg)


def _check_env(cfg: RunConfig) -> None:
    _range("env.max_episode_steps", cfg.env.max_episode_steps, 1)
    _range("env.frame_skip", cfg.env.frame_skip, 1)
    _range("env.noop_max", cfg.env.noop_max, 0)
    _range("env.sticky_actions", cfg.env.sticky_actions, 0, 1)
    _range("env.eval_workers", cfg.env.eval_workers, 1, 64)
    from rl2fpga.safety import check_env_kwargs

    check_env_kwargs(cfg.env.kwargs, cfg.env.id)


def _check_train(cfg: RunConfig) -> None:
    t = cfg.train
    _range("train.total_steps", t.total_steps, 1)
    _range("train.eval_episodes", t.eval_episodes, 1)
    _range("train.eval_every", t.eval_every, 0)
    _range("train.checkpoint_every", t.checkpoint_every, 0)
    for i, h in enumerate(t.hidden):
        _range(f"train.hidden[{i}]", h, 1)


def _check_dqn(cfg: RunConfig) -> None:
    d = cfg.train.dqn
    _range("train.dqn.learning_rate", d.learning_rate, 0, lo_open=True)
    _range("train.dqn.buffer_size", d.buffer_size, 1)
    _range("train.dqn.batch_size", d.batch_size, 1)
    _range("train.dqn.gamma", d.gamma, 0, 1)
    _range("train.dqn.learning_starts", d.learning_starts, 0)
    _range("train.dqn.train_freq", d.train_freq, 1)
    _range("train.dqn.gradient_steps", d.gradient_steps, 0)
    _range("train.dqn.target_update_interval", d.target_update_interval, 1)
    _range("train.dqn.exploration_initial_eps", d.exploration_initial_eps, 0, 1)
    _range("train.dqn.exploration_final_eps", d.exploration_final_eps, 0, 1)
    _range("train.dqn.exploration_steps", d.exploration_steps, 0)
    _range("train.dqn.max_grad_norm", d.max_grad_norm, 0, lo_open=True)
    _range("train.dqn.num_envs", d.num_envs, 1)


def _check_sac(cfg: RunConfig) -> None:
    s = cfg.train.sac
    _range("train.sac.learning_rate", s.learning_rate, 0, lo_open=True)
    _range("train.sac.critic_learning_rate", s.critic_learning_rate, 0, lo_open=True)
    _range("train.sac.buffer_size", s.buffer_size, 1)
    _range("train.sac.batch_size", s.batch_size, 1)
    _range("train.sac.gamma", s.gamma, 0, 1)
    _range("train.sac.tau", s.tau, 0, 1, lo_open=True)
    _range("train.sac.learning_starts", s.learning_starts, 0)
    _range("train.sac.train_freq", s.train_freq, 1)
    _range("train.sac.gradient_steps", s.gradient_steps, 0)
    _range("train.sac.init_alpha", s.init_alpha, 0, lo_open=True)
    for i, h in enumerate(s.critic_hidden):
        _range(f"train.sac.critic_hidden[{i}]", h, 1)


def _check_prune(cfg: RunConfig) -> None:
    p = cfg.prune
    _range("prune.rate", p.rate, 0, 1, hi_open=True)
    _range("prune.student_visit_noise", p.student_visit_noise, 0, 1)
    _range("prune.rounds", p.rounds, 0)
    _range("prune.retrain_steps", p.retrain_steps, 0)
    _range("prune.retrain_retries", p.retrain_retries, 0)
    _range("prune.final_sparsity", p.final_sparsity, 0, 1, hi_open=True)
    _range("prune.keep_return_fraction", p.keep_return_fraction, 0, 1)
    _range("prune.distill_steps", p.distill_steps, 0)
    _range("prune.distill_episodes", p.distill_episodes, 1)
    _range("prune.student_dagger_rounds", p.student_dagger_rounds, 0)
    _range("prune.distill_dagger_rounds", p.distill_dagger_rounds, 0)
    _range("prune.student_prune_rounds", p.student_prune_rounds, 0)
    _range("prune.student_select_episodes", p.student_select_episodes, 0)
    if p.student_temperature is not None:
        _range("prune.student_temperature", p.student_temperature, 0, lo_open=True)
    if p.method == "during_training":  # the schedule itself: quantize/sparsity.py PruneSchedule.from_config
        for i, s in enumerate(p.sparsities):
            _range(f"prune.sparsities[{i}]", s, 0, 1, hi_open=True)
        _range("prune.frequency", p.frequency, 1)
        _range("prune.begin_step", p.begin_step, 0)
        _range("prune.end_step", p.end_step, p.begin_step or 0, cfg.train.total_steps, lo_open=True)
    if p.method == "student":
        if not p.student_hidden or any(not h or min(h) < 1 for h in p.student_hidden):
            raise Rl2fpgaError(f"prune.student_hidden={p.student_hidden} needs at least one list of positive widths; set e.g. prune.student_hidden=[[8,8]]")
        if cfg.train.network != "mlp":
            raise Rl2fpgaError(f"prune.method=student distils into MLPs but train.network={cfg.train.network}; use train.network=mlp or another prune.method")


def _check_quantize(cfg: RunConfig) -> None:
    q = cfg.quantize
    for key in ("weight_bits", "act_bits"):
        _range(f"quantize.{key}", getattr(q, key), 2, 16, hint=" (8, 6 and 4 are tested)")
    for key in ("input_bits", "output_bits", "float_input_bits"):
        _range(f"quantize.{key}", getattr(q, key), 2, 16)
    _range("quantize.bias_bits", q.bias_bits, 2, 32)
    _range("quantize.qat_steps", q.qat_steps, 0)
    _range("quantize.threshold", q.threshold, 0)
    _range("quantize.delta_episodes", q.delta_episodes, 1)
    _range("quantize.calib_episodes", q.calib_episodes, 1)
    _range("quantize.calib_max_steps", q.calib_max_steps, 1)
    _range("quantize.check_states", q.check_states, 1)
    _range("quantize.level", q.level, 0, hint=" (a prune level index; null = the prune selection)")
    _range("quantize.fallback_levels", q.fallback_levels, 0)
    _range("quantize.dagger_rounds", q.dagger_rounds, 0)
    _range("quantize.advantage_weight", q.advantage_weight, 0)
    for i, bits in enumerate(q.layer_weight_bits):
        _range(f"quantize.layer_weight_bits[{i}]", bits, 2, 16)
    for i, t in enumerate(q.layer_thresholds):
        _range(f"quantize.layer_thresholds[{i}]", t, 0)


def _check_analyze(cfg: RunConfig) -> None:
    a = cfg.analyze
    for i, th in enumerate(a.thresholds):
        _range(f"analyze.thresholds[{i}]", th, 0)
    _range("analyze.episodes", a.episodes, 1)
    _range("analyze.level_episodes", a.level_episodes, 1, hint=" (or null for analyze.episodes)")
    _range("analyze.threshold_episodes", a.threshold_episodes, 1, hint=" (or null for analyze.episodes)")
    _range("analyze.max_steps", a.max_steps, 1)
    for i, b in enumerate(a.sweep_bits):
        _range(f"analyze.sweep_bits[{i}]", b, 2, 16)


def _check_hardware(cfg: RunConfig) -> None:
    """hls, rtl, cosim and board."""
    h = cfg.hls
    _range("hls.clock_period_ns", h.clock_period_ns, 0, lo_open=True)
    _range("hls.reuse_factor", h.reuse_factor, 1)
    _range("hls.csim_frames", h.csim_frames, 1)
    _range("hls.max_accum_bits", h.max_accum_bits, 2, 64)
    _range("hls.max_mults_per_layer", h.max_mults_per_layer, 1)
    r = cfg.rtl
    _range("rtl.lanes", r.lanes, 1, 64)
    for i, n in enumerate(r.layer_lanes):
        _range(f"rtl.layer_lanes[{i}]", n, 1, 64)
    _range("rtl.input_bytes_per_beat", r.input_bytes_per_beat, 1, 128)
    _range("rtl.clock_mhz", r.clock_mhz, 0, lo_open=True)
    _range("cosim.frames", cfg.cosim.frames, 1)
    _range("cosim.backpressure", cfg.cosim.backpressure, 0, 1, hi_open=True)
    _range("board.episodes", cfg.board.episodes, 1)
    _range("board.max_steps", cfg.board.max_steps, 1)
