"""One command at a time per run folder.

``<run>/.lock`` is held with ``fcntl.flock`` for as long as a command works on the run; the
file names the holder (pid and command line), so a second command fails at once with one line
naming it. The lock is released by the kernel when the holder dies, even by SIGKILL.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from rl2fpga.errors import Rl2fpgaError

LOCK_NAME = ".lock"


@contextlib.contextmanager
def run_lock(run_dir: str | Path, command: str | None = None) -> Iterator[None]:
    """Hold the run folder's lock (raise at once when another process holds it)."""
    run_dir = Path(run_dir)
    path = run_dir / LOCK_NAME
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        raise Rl2fpgaError(
            f"cannot write the run directory {run_dir} ({e.strerror}); choose a writable --runs-dir"
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = ""
            with contextlib.suppress(OSError):
                holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
            pid, _, cmd = holder.partition(" ")
            who = f"pid {pid} (command {cmd!r})" if pid else "another process"
            raise Rl2fpgaError(f"run folder {run_dir} is in use by {who}; wait for it to finish or use another run") from None
        cmd = command if command is not None else " ".join(["rl2fpga", *sys.argv[1:]])
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {cmd}\n".encode(), 0)
        clean_leftovers(run_dir)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def clean_leftovers(run_dir: Path) -> list[Path]:
    """Remove what an interrupted command left: atomic-write temp files and folders
    (``.<name>.*.tmp``, ``.<name>.tmp.keras``, ``.<name>.old``). Called with the lock held, so
    no other command is writing them."""
    removed: list[Path] = []
    for p in sorted(run_dir.rglob(".*")):
        name = p.name
        if not p.exists() and not p.is_symlink():
            continue  # inside a folder removed above
        if name in (LOCK_NAME, ".done"):
            continue
        if not (name.endswith(".tmp") or ".tmp." in name or name.endswith(".old")):
            continue
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            removed.append(p)
        except FileNotFoundError:
            pass
    return removed
