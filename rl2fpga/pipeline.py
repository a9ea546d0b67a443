"""The table of pipeline steps, in order. Each entry names ``module:function``; the module is
imported only when the step runs, so the CLI starts fast and a step that is not built yet is
simply absent."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from typing import TYPE_CHECKING

from rl2fpga.errors import Rl2fpgaError

if TYPE_CHECKING:
    from rl2fpga.config import RunConfig
    from rl2fpga.run import Run

StepFn = Callable[["Run", "RunConfig"], None]

STEP_ORDER: list[str] = ["train", "prune", "quantize", "analyze", "hls", "rtl", "cosim", "board", "da4ml", "report"]

STEPS: dict[str, str] = {name: f"rl2fpga.stages.{name}:{name}_step" for name in STEP_ORDER}


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
