"""Where build outputs go, and build folders that make-based tools can use.

* :func:`build_root`: ``build/`` in a source checkout; in an installed package (no
  ``pyproject.toml`` beside it) ``~/.cache/rl2fpga/build``, never inside site-packages.
  ``RL2FPGA_BUILD_DIR`` overrides both.
* Build folders handed to make-based tools (Verilator's generated makefiles, which cocotb
  runs) must not contain whitespace: GNU make cannot build there. :func:`build_dir_for` keeps a
  build folder where it belongs unless its path has whitespace, and then moves it to a private,
  space-free folder of this user (its binaries are still verified by hash before they run).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from rl2fpga.errors import Rl2fpgaError

SOURCE_ROOT = Path(__file__).resolve().parent.parent


def build_root() -> Path:
    env = os.environ.get("RL2FPGA_BUILD_DIR")
    if env:
        return Path(env)
    if (SOURCE_ROOT / "pyproject.toml").exists():
        return SOURCE_ROOT / "build"
    return Path.home() / ".cache" / "rl2fpga" / "build"


def has_space(path: str | Path) -> bool:
    return any(c.isspace() for c in str(Path(path).absolute()))


def private_tmp() -> Path:
    """``<tmp>/rl2fpga-<uid>``: created 0700 and checked to be this user's own folder."""
    base = Path(tempfile.gettempdir()) / f"rl2fpga-{os.getuid()}"
    base.mkdir(mode=0o700, exist_ok=True)
    st = base.lstat()
    if base.is_symlink() or st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise Rl2fpgaError(f"{base} is not a private folder of this user; remove it and rerun")
    if has_space(base):
        raise Rl2fpgaError(f"the temp folder {base} has a space; set TMPDIR to a folder without spaces")
    return base


def build_dir_for(path: str | Path) -> Path:
    """``path`` itself, or a space-free stand-in for it when its absolute form has whitespace."""
    path = Path(path)
    if not has_space(path):
        return path
    key = hashlib.sha256(str(path.absolute()).encode()).hexdigest()[:16]
    return private_tmp() / "build" / key
