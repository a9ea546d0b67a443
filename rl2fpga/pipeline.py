"""The table of pipeline steps, in order, and the driver that runs them.

Each entry names ``module:function``; the module is imported only when the step runs, so the
CLI starts fast and a step that is not built yet is simply absent. A step is a plain function
``step(run, cfg) -> None``; a finished step leaves ``<step>/.done`` (with its wall time), so
``--from``/``--to`` can resume anywhere."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import time
from collections.abc import Callable

from rl2fpga.artifacts import STEP_ORDER
from rl2fpga.config import RunConfig, dump_yaml
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.fsutil import atomic_write_text
from rl2fpga.logs import logged_to_run
from rl2fpga.run import Run

__all__ = ["STEP_ORDER", "STEPS", "StepFn", "available_steps", "get_step", "run_pipeline"]

StepFn = Callable[[Run, RunConfig], None]

STEPS: dict[str, str] = {name: f"rl2fpga.stages.{name}:{name}_step" for name in STEP_ORDER}


def blas_one_thread() -> contextlib.AbstractContextManager:
    """NumPy's BLAS on one thread while a step runs. The golden model and the float
    DeltaNetwork multiply small matrices once per agent step; OpenBLAS's second thread then costs
    more than it gives, and far more on a machine whose cores TensorFlow or another run keeps
    busy (`python -m benchmarks golden_step` beside a training run: 1.7 ms per Atari step on one
    thread, 4.0-18.0 ms on two, 9.5 ms with int64 products). TensorFlow's own thread pools are not BLAS's and stay as
    they are."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _resolve(name: str) -> StepFn | None:
    target = STEPS[name]
    mod_name, fn_name = target.split(":")
    try:
        if importlib.util.find_spec(mod_name) is None:
            return None
    except ModuleNotFoundError:
        return None
    mod = importlib.import_module(mod_name)
    return getattr(mod, fn_name, None)


def available_steps() -> list[str]:
    """Steps whose module exists (imported only when the step runs)."""
    out = []
    for n in STEP_ORDER:
        try:
            if importlib.util.find_spec(STEPS[n].split(":")[0]) is not None:
                out.append(n)
        except ModuleNotFoundError:
            pass
    return out


def get_step(name: str) -> StepFn:
    if name not in STEPS:
        raise Rl2fpgaError(f"unknown step '{name}'; steps are: {', '.join(STEP_ORDER)}")
    fn = _resolve(name)
    if fn is None:
        raise Rl2fpgaError(f"step '{name}' is not implemented in this version")
    return fn


@logged_to_run  # runs/<name>/run.log gets everything printed (rl2fpga/logs.py)
def run_pipeline(
    run: Run,
    cfg: RunConfig,
    start: str | None = None,
    stop: str | None = None,
    persist: RunConfig | None = None,
) -> dict[str, float]:
    """Run the steps from ``start`` to ``stop`` (inclusive) in order; return their wall times.
    ``persist``: the config written to ``config.yaml`` when the first step really starts."""
    from rich.console import Console

    console = Console(stderr=True)
    order = list(STEP_ORDER)
    for name in (start, stop):
        if name is not None and name not in order:
            raise Rl2fpgaError(f"unknown step '{name}'; steps are: {', '.join(order)}")
    i0 = order.index(start) if start else 0
    i1 = order.index(stop) if stop else len(order) - 1
    names = order[i0 : i1 + 1]
    avail = set(available_steps())
    times: dict[str, float] = {}
    for name in names:
        if name not in avail:
            console.print(f"[yellow]skip[/] {name}: not implemented in this version")
            continue
        fn = get_step(name)
        console.rule(f"[bold]{name}")
        if persist is not None:
            atomic_write_text(run.layout.config, dump_yaml(persist))
            persist = None
        run.clear_done(name)
        t0 = time.perf_counter()
        with blas_one_thread():
            fn(run, cfg)
        dt = time.perf_counter() - t0
        run.mark_done(name, dt)
        times[name] = dt
        console.print(f"[green]done[/] {name} in {dt:.1f} s")
    return times
