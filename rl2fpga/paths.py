"""Paths handed to make-based tools (Verilator's generated makefiles, cocotb) must not contain
spaces: make splits them. :func:`space_free` gives such a folder a space-free alias (a symlink
in the temp folder, private to this user), used for every path the simulator sees."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from rl2fpga.errors import Rl2fpgaError


@contextlib.contextmanager
def space_free(path: str | Path) -> Iterator[Path]:
    """``path`` itself when its absolute form has no whitespace, else a symlink alias to it."""
    path = Path(path).absolute()
    if not any(c.isspace() for c in str(path)):
        yield path
        return
    base = Path(tempfile.gettempdir()) / f"rl2fpga-{os.getuid()}"
    base.mkdir(mode=0o700, exist_ok=True)
    if base.is_symlink() or base.stat().st_uid != os.getuid():
        raise Rl2fpgaError(f"{base} is not this user's folder; remove it (it holds aliases for paths with spaces)")
    if any(c.isspace() for c in str(base)):
        raise Rl2fpgaError(f"the temp folder {base} has a space; set TMPDIR to a folder without spaces")
    alias = base / hashlib.sha256(str(path).encode()).hexdigest()[:16]
    tmp = base / f".{alias.name}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(path, tmp)
    os.replace(tmp, alias)  # atomic: a concurrent command sees the old or the new, same target
    yield alias
