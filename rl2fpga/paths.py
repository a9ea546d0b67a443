"""Where build outputs go: ``build/`` in a source checkout; in an installed package (no
``pyproject.toml`` beside it) ``~/.cache/rl2fpga/build``, never inside site-packages.
``RL2FPGA_BUILD_DIR`` overrides both."""

from __future__ import annotations

import os
from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parent.parent


def build_root() -> Path:
    env = os.environ.get("RL2FPGA_BUILD_DIR")
    if env:
        return Path(env)
    if (SOURCE_ROOT / "pyproject.toml").exists():
        return SOURCE_ROOT / "build"
    return Path.home() / ".cache" / "rl2fpga" / "build"
