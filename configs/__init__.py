"""Example pipeline configs, shipped in the wheel as ``rl2fpga.configs``: ``path("hopper")`` is
the installed ``hopper.yaml`` (``rl2fpga run $(python -c 'from rl2fpga.configs import path;
print(path("hopper"))')``)."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def names() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.yaml"))


def path(name: str) -> Path:
    p = HERE / f"{name}.yaml"
    if not p.exists():
        from rl2fpga.errors import Rl2fpgaError

        raise Rl2fpgaError(f"no bundled config '{name}'; bundled: {', '.join(names())}")
    return p
