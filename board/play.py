"""Closed-loop episodes on interchangeable back ends (golden reference, hls4ml C simulation, the
simulated PYNQ-Z2 over Verilator, a real board), with the golden model stepping in lockstep.
Used by the ``board`` and ``da4ml`` stages (:mod:`rl2fpga.stages.board`)."""

from __future__ import annotations

import shutil
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from rl2fpga.config import RunConfig
from rl2fpga.core.golden import GoldenModel, squash_action
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.fsutil import atomic_write_json, atomic_write_text
from rl2fpga.run import Run
from rl2fpga.train.rollout import rollout


class Backend(Protocol):
    """What chooses the actions: the driver interface."""

    def reset_state(self) -> None: ...
    def set_thresholds(self, thresholds: list[int]) -> None: ...
    def infer(self, frame: np.ndarray) -> tuple[np.ndarray, int]: ...
    def counters(self) -> dict[str, Any]: ...


# ------------------------------------------------------------------------------ back ends


class GoldenBackend:
    """target=reference: the golden integer model itself."""

    def __init__(self, model: GoldenModel):
        self.model = model.copy()
        self.stats: Any = None

    def reset_state(self) -> None:
        self.model.reset()

    def set_thresholds(self, thresholds: list[int]) -> None:
        self.model.set_thresholds(thresholds)

    def infer(self, frame: np.ndarray) -> tuple[np.ndarray, int]:
        y, self.stats = self.model.step(frame)
        y = y.reshape(-1)
        return y, GoldenModel.action(y)

    def counters(self) -> dict[str, Any]:
        return {"cycles": None, "events": list(self.stats.events), "macs": list(self.stats.macs)}


class CSimBackend:
    """target=hls-csim: the hls4ml C simulation (rl2fpga.hls.hls4ml.flow.CSim)."""

    def __init__(self, csim: Any):
        self.csim = csim

    def reset_state(self) -> None:
        self.csim.reset()

    def set_thresholds(self, thresholds: list[int]) -> None:
        self.csim.set_thresholds(thresholds)

    def infer(self, frame: np.ndarray) -> tuple[np.ndarray, int]:
        y = np.asarray(self.csim.step(frame)).reshape(-1)
        return y, int(np.argmax(y))

    def counters(self) -> dict[str, Any]:
        return {"cycles": None, "events": [], "macs": []}


def _hls_csim_backend(run: Run, cfg: RunConfig, model: GoldenModel) -> CSimBackend:
    try:
        from rl2fpga.hls.hls4ml import flow as hls4ml_flow
    except ImportError as e:
        raise Rl2fpgaError(f"target hls-csim is unavailable (the hls4ml flow does not import: {e}); use --target emulator or reference") from None
    if not hasattr(hls4ml_flow, "CSim") or not hasattr(hls4ml_flow, "convert"):
        raise Rl2fpgaError("target hls-csim is unavailable in this version (no hls4ml C simulation API); use --target emulator or reference")
    from rich.console import Console

    Console(stderr=True).print("compiling the hls4ml C simulation (6-25 s) ...")
    backend = "Vivado" if cfg.hls.backend == "VivadoAccelerator" else cfg.hls.backend
    project_dir = run.dir("board") / "hls_csim"
    shutil.rmtree(project_dir, ignore_errors=True)  # only freshly generated C++ is compiled
    project = hls4ml_flow.convert(model, cfg.hls, project_dir, backend=backend)
    return CSimBackend(hls4ml_flow.CSim(project, model))


def _pynq_backend(run: Run, model: GoldenModel) -> Backend:
    try:
        import pynq
    except ImportError:
        raise Rl2fpgaError("target pynq needs the pynq package; run this on the PYNQ board (or use --target emulator)") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        devices = pynq.Device.devices
    if not devices:
        raise Rl2fpgaError("no PYNQ board found (pynq sees no device on this machine); run on the board or use --target emulator")
    from rl2fpga.board.bundle import check_bundle, require_bitstream
    from rl2fpga.board.driver import EngineDriver

    bundle = run.path / "board" / "bundle"
    check_bundle(bundle, model)
    return EngineDriver(require_bitstream(bundle), bundle / "manifest.json")


def _emulator_backend(run: Run, cfg: RunConfig, model: GoldenModel) -> tuple[Backend, str]:
    """The driver against the simulated PYNQ-Z2 (Verilator or golden engine behind it)."""
    try:  # the unmodified pynq driver stack runs against the simulated device
        import pynq  # noqa: F401
        import pynqmetadata  # noqa: F401
    except ImportError as e:
        raise Rl2fpgaError(f"the board emulator needs the pynq package ({e.name} is missing); install it with "
                           "`pip install --no-deps pynq==4.0.0 pynqmetadata==0.2.0 pynqutils==0.1.3` (make setup does), "
                           "or use --target reference") from None
    from rl2fpga.board import block_design as design
    from rl2fpga.board.bundle import make_manifest
    from rl2fpga.board.driver import EngineDriver
    from rl2fpga.board.engine_models import GoldenEngine
    from rl2fpga.board.simdevice import SimDevice

    lanes, bpb = cfg.rtl.lanes, cfg.rtl.input_bytes_per_beat
    from rl2fpga.hls.engine.generator import use_frame_stack

    stack = use_frame_stack(cfg, model)
    regs = None  # the golden engine decodes the default register map
    kind = cfg.board.emulator_engine
    rtl_dir = run.path / "rtl"
    if kind == "auto":
        from rl2fpga.board.verilator_engine import verilator_available

        if not verilator_available(rtl_dir):  # never fall back to comparing golden with golden
            from rl2fpga.errors import ToolMissing

            why = "verilator is not on PATH" if shutil.which("verilator") is None else f"{rtl_dir} has no generated engine"
            raise ToolMissing(f"board.emulator_engine=auto needs the generated RTL in Verilator, but {why}; install "
                              "verilator and run `rl2fpga rtl`, or set board.emulator_engine=golden (the Python "
                              "reference engine: no hardware check)")
        kind = "verilator"
    if kind == "verilator":
        from rl2fpga.manifest import verify_files

        verify_files(rtl_dir, "rtl", run.path)  # only the RTL the rtl step generated is compiled
        from rl2fpga.board.verilator_engine import VerilatorEngine

        src = design.rtl_sources(rtl_dir)  # the generated hardware's own parameters win
        lanes, bpb = src.lanes or lanes, src.input_bytes_per_beat or bpb
        stack = src.frame_stack
        regs = src.regs  # the driver addresses the registers the RTL was built with

        engine: Any = VerilatorEngine(rtl_dir, run.path / "board" / "verilator", model, lanes, bpb)
    else:
        engine = GoldenEngine(model, lanes, bpb, **({"frame_stack": True} if stack else {}))
    sim_dir = run.dir("board") / "emulator"
    atomic_write_text(sim_dir / "rl2fpga.bit", "simulated bitstream slot (board/simdevice.py)\n")
    atomic_write_text(sim_dir / "rl2fpga.hwh", design.sim_hwh(design.DesignParams(lanes, bpb, cfg.rtl.clock_mhz)))
    manifest = make_manifest(model, lanes, bpb, cfg.rtl.clock_mhz, cfg.env.id, frame_stack=stack, regs=regs)
    atomic_write_json(sim_dir / "manifest.json", manifest)
    return EngineDriver(sim_dir / "rl2fpga.bit", sim_dir / "manifest.json", device=SimDevice(engine)), kind


def make_backend(run: Run, cfg: RunConfig, model: GoldenModel) -> tuple[Backend, str]:
    target = cfg.board.target
    if target == "reference":
        return GoldenBackend(model), "golden"
    if target == "emulator":
        return _emulator_backend(run, cfg, model)
    if target == "pynq":
        return _pynq_backend(run, model), "pynq"
    if target == "hls-csim":
        return _hls_csim_backend(run, cfg, model), "hls4ml-csim"
    raise Rl2fpgaError(f"unknown board target '{target}'; use reference, hls-csim, emulator or pynq")


# ------------------------------------------------------------------------------ episodes


@dataclass
class EpisodeLog:
    returns: list[float] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    action_mismatches: int = 0
    output_mismatches: int = 0
    mac_mismatches: int = 0
    first_mismatch: dict[str, Any] | None = None
    latency_us: list[float] = field(default_factory=list)
    cycles: list[int] = field(default_factory=list)
    macs: list[list[int]] = field(default_factory=list)  # per step, per layer, as the back end counted them
    saturation: dict[str, Any] | None = None  # input elements saturated by the input format
    # a back end with its own host-side quantization (the PYNQ driver): its saturation count and
    # the steps where its input integers differed from the golden model's
    driver_saturation: dict[str, Any] | None = None
    input_mismatches: int = 0


def _make_env(cfg: RunConfig) -> Any:
    from rl2fpga.train.envs import make_env

    return make_env(cfg.env, cfg.seed, training=False)


def play(cfg: RunConfig, model: GoldenModel, backend: Backend | None, progress: Any = None,
         step_budget: int | None = None) -> EpisodeLog:
    """Seeded episodes; actions from ``backend`` (None: the golden policy alone) while a copy
    of the golden model steps in lockstep on the same states. ``step_budget`` stops after that
    many agent steps in all (the last episode's return is then partial)."""
    golden = model.copy()
    if backend is not None:
        backend.set_thresholds(golden.thresholds)
    env = _make_env(cfg)
    # continuous actions (a SAC actor): the host squashes the engine's integer outputs; the
    # engine's argmax output is not used
    space = env.action_space
    host_action = None if hasattr(space, "n") else (
        lambda y: squash_action(golden.output_float(y), space.low, space.high))
    log = EpisodeLog()
    where = {"ep": 0, "step": 0}  # the episode and step being played (for the mismatch record)

    def start(ep: int) -> None:
        where.update(ep=ep, step=0)
        golden.reset()
        if backend is not None:
            backend.reset_state()

    def act(obs: Any) -> Any:
        x = golden.quantize_input(obs)
        y_ref, stats = golden.step(x)
        ref_action = GoldenModel.action(y_ref) if host_action is None else host_action(y_ref)
        action = ref_action
        if backend is not None:
            quantize = getattr(backend, "quantize", None)  # the driver quantizes on the board itself
            if quantize is not None:
                xb = quantize(obs)
                if not np.array_equal(xb.reshape(-1), x.reshape(-1)):
                    log.input_mismatches += 1
                    log.first_mismatch = log.first_mismatch or {"episode": where["ep"], "step": where["step"],
                                                                "what": "driver input != golden input"}
                x = xb
            t0 = time.perf_counter()
            y, action = backend.infer(x)
            if host_action is not None:
                action = host_action(y)
            log.latency_us.append((time.perf_counter() - t0) * 1e6)
            c = backend.counters()
            if c.get("cycles") is not None:
                log.cycles.append(int(c["cycles"]))
            if c.get("macs"):
                log.macs.append([int(m) for m in c["macs"]])
            _compare(log, where["ep"], where["step"], y, action, y_ref.reshape(-1), ref_action, c.get("macs"), stats.macs)
        where["step"] += 1
        if progress is not None:
            progress()
        return action

    try:  # one seeded stream (rl2fpga.train.rollout): the first reset seeded, the rest continue
        eps = rollout(env, act, seed=cfg.seed, episodes=cfg.board.episodes, max_steps=cfg.board.max_steps,
                      total_steps=step_budget, reseed=False, on_reset=start)
    finally:
        env.close()
    log.returns = [e.total for e in eps]
    log.steps = [e.length for e in eps]
    log.saturation = golden.saturation.to_json()
    sat = getattr(backend, "saturation", None)
    log.driver_saturation = sat.to_dict() if sat is not None else None
    return log


def _compare(log: EpisodeLog, ep: int, step: int, y: np.ndarray, action: Any, y_ref: np.ndarray,
             ref_action: Any, macs: list[int] | None, ref_macs: list[int]) -> None:
    bad_action = not np.array_equal(action, ref_action)
    bad_out = not np.array_equal(np.asarray(y, dtype=np.int64), y_ref)
    bad_macs = bool(macs) and list(macs) != list(ref_macs)
    log.action_mismatches += int(bad_action)
    log.output_mismatches += int(bad_out)
    log.mac_mismatches += int(bad_macs)
    if (bad_action or bad_out or bad_macs) and log.first_mismatch is None:
        log.first_mismatch = {"episode": ep, "step": step, "action": np.asarray(action).tolist(),
                              "golden_action": np.asarray(ref_action).tolist(),
                              "outputs": [int(v) for v in y], "golden_outputs": [int(v) for v in y_ref],
                              "macs": list(macs or []), "golden_macs": list(ref_macs)}


def _stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)),
            "min": float(a.min()), "max": float(a.max())}


def _mac_summary(log: EpisodeLog, model: GoldenModel) -> dict[str, Any]:
    """Multiply-accumulates per step as the back end counted them, against the dense count."""
    dense = model.dense_mults()
    if not log.macs:
        return {"macs_per_step": None, "dense_macs": dense, "mac_fraction": None}
    per_layer = np.asarray(log.macs, dtype=np.float64).mean(axis=0)
    return {"macs_per_step": [float(v) for v in per_layer], "dense_macs": dense,
            "mac_fraction": float(per_layer.sum() / sum(dense))}


def run_episodes(run: Run, cfg: RunConfig, model: GoldenModel) -> tuple[dict[str, Any], EpisodeLog]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    backend, engine = make_backend(run, cfg, model)
    target = cfg.board.target
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  transient=True) as bar:
        cap = cfg.board.episodes * cfg.board.max_steps
        t1 = bar.add_task(f"{target} ({engine})", total=cap)
        log = play(cfg, model, backend, lambda: bar.advance(t1))
        t2 = bar.add_task("golden policy", total=cap)
        ref = play(cfg, model, None, lambda: bar.advance(t2))
    cycles = _stats([float(c) for c in log.cycles])
    summary: dict[str, Any] = {
        "target": target,
        "engine": engine,
        # golden actions compared with the golden policy check the driver, not any hardware
        "hardware_check": engine != "golden",
        "env_id": cfg.env.id,
        "seed": cfg.seed,
        "episodes": cfg.board.episodes,
        "max_steps": cfg.board.max_steps,
        "steps": int(sum(log.steps)),
        "returns": log.returns,
        "return_mean": float(np.mean(log.returns)),
        "golden_returns": ref.returns,
        "golden_return_mean": float(np.mean(ref.returns)),
        "returns_equal": log.returns == ref.returns,
        "action_mismatches": log.action_mismatches,
        "output_mismatches": log.output_mismatches,
        "mac_mismatches": log.mac_mismatches,
        "first_mismatch": log.first_mismatch,
        "input_saturation": log.saturation,
        # counted by the driver on the back end's own path (None: the back end takes golden's integers)
        "driver_input_saturation": log.driver_saturation,
        "input_mismatches": log.input_mismatches,
        "latency_us": _stats(log.latency_us),
        "cycles_per_step": cycles,
        "clock_mhz": cfg.rtl.clock_mhz,
        "device_us_per_step": None if cycles is None else cycles["mean"] / cfg.rtl.clock_mhz,
        **_mac_summary(log, model),
    }
    return summary, log


# ------------------------------------------------------------------------------ the step



