"""The run-directory contract (the driver is :func:`rl2fpga.pipeline.run_pipeline`).

``runs/<name>/`` holds ``config.yaml`` (the resolved config) and one folder per step. A step is
a plain function ``step(run, cfg) -> None`` looked up by name in :mod:`rl2fpga.pipeline`; it reads
what earlier steps wrote and writes only its own folder, atomically. A finished step leaves
``<step>/.done`` (with its wall time), so ``--from``/``--to`` can resume anywhere.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from rl2fpga.artifacts import RunLayout
from rl2fpga.config import RunConfig, dump_yaml, load_config
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.fsutil import atomic_write_json, atomic_write_text
from rl2fpga.manifest import invalidate_after, stamp


class Run:
    """One run directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.layout = RunLayout(self.path)  # every path of the folder

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
            atomic_write_text(run.layout.config, dump_yaml(cfg))
        return run

    @classmethod
    def open(cls, path: str | Path) -> Run:
        p = Path(path)
        if not RunLayout(p).config.exists():
            raise Rl2fpgaError(f"{p} is not a run directory (no config.yaml); create one with `rl2fpga run` or `rl2fpga train`")
        return cls(p)

    def config(self) -> RunConfig:
        return load_config(self.layout.config)

    # -- step folders ---------------------------------------------------------------------
    def dir(self, step: str) -> Path:
        d = self.path / step
        d.mkdir(parents=True, exist_ok=True)
        return d

    def done(self, step: str) -> bool:
        return self.layout.done_marker(step).exists()

    def require(self, step: str) -> Path:
        if not self.done(step):
            raise Rl2fpgaError(f"step '{step}' has not finished in {self.path}; run `rl2fpga run {self.path} --from {step}` first")
        return self.path / step

    def mark_done(self, step: str, seconds: float) -> None:
        # a finished step's results replace what every later step was computed from
        invalidate_after(self.path, step)
        atomic_write_json(self.layout.done_marker(step),
                          {"seconds": round(seconds, 3), "finished": time.time(), **stamp(self.path, step)})

    def clear_done(self, step: str) -> None:
        marker = self.layout.done_marker(step)
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
