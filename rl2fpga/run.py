"""The run-directory contract and the pipeline driver.

``runs/<name>/`` holds ``config.yaml`` (the resolved config) and one folder per step. A step is
a plain function ``step(run, cfg) -> None`` looked up by name in :mod:`rl2fpga.pipeline`; it reads
what earlier steps wrote and writes only its own folder, atomically. A finished step leaves
``<step>/.done`` (with its wall time), so ``--from``/``--to`` can resume anywhere.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from rl2fpga.config import RunConfig, dump_yaml, load_config
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.fsutil import atomic_write_json, atomic_write_text
from rl2fpga.logs import logged_to_run


class Run:
    """One run directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    # -- creation -------------------------------------------------------------------------
    @classmethod
    def create(cls, cfg: RunConfig, runs_dir: str | Path = "runs", path: str | Path | None = None,
               write_config: bool = True) -> Run:
        if path is None:
            from rl2fpga.safety import run_folder

            root = run_folder(runs_dir, cfg.name)  # a plain name under the runs root
        else:
            root = Path(path)
        try:
            root.mkdir(parents=True, exist_ok=True)
            probe = root / ".write-probe"
            probe.write_text("")
            probe.unlink()
        except OSError as e:
            raise Rl2fpgaError(
                f"cannot write the run directory {root} ({e.strerror}); choose a writable --runs-dir"
            ) from None
        run = cls(root)
        if write_config:
            atomic_write_text(run.path / "config.yaml", dump_yaml(cfg))
        return run

    @classmethod
    def open(cls, path: str | Path) -> Run:
        p = Path(path)
        if not (p / "config.yaml").exists():
            raise Rl2fpgaError(f"{p} is not a run directory (no config.yaml); create one with `rl2fpga run` or `rl2fpga train`")
        return cls(p)

    def config(self) -> RunConfig:
        return load_config(self.path / "config.yaml")

    # -- step folders ---------------------------------------------------------------------
    def dir(self, step: str) -> Path:
        d = self.path / step
        d.mkdir(parents=True, exist_ok=True)
        return d

    def done(self, step: str) -> bool:
        return (self.path / step / ".done").exists()

    def require(self, step: str) -> Path:
        if not self.done(step):
            raise Rl2fpgaError(f"step '{step}' has not finished in {self.path}; run `rl2fpga run {self.path} --from {step}` first")
        return self.path / step

    def mark_done(self, step: str, seconds: float) -> None:
        from rl2fpga.manifest import invalidate_after, stamp

        # a finished step's results replace what every later step was computed from
        invalidate_after(self.path, step)
        atomic_write_json(self.path / step / ".done",
                          {"seconds": round(seconds, 3), "finished": time.time(), **stamp(self.path, step)})

    def clear_done(self, step: str) -> None:
        marker = self.path / step / ".done"
        if marker.exists():
            marker.unlink()

    def timings(self) -> dict[str, float]:
        out = {}
        for d in sorted(self.path.iterdir()) if self.path.exists() else []:
            m = d / ".done"
            if m.exists():
                try:
                    out[d.name] = json.loads(m.read_text())["seconds"]
                except (json.JSONDecodeError, KeyError):
                    pass
        return out


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

    from rl2fpga.pipeline import STEP_ORDER, available_steps, get_step

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
            atomic_write_text(run.path / "config.yaml", dump_yaml(persist))
            persist = None
        run.clear_done(name)
        t0 = time.perf_counter()
        fn(run, cfg)
        dt = time.perf_counter() - t0
        run.mark_done(name, dt)
        times[name] = dt
        console.print(f"[green]done[/] {name} in {dt:.1f} s")
    return times
