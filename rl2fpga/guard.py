"""What a command checks and sets up before it touches a run folder.

* :func:`steps_between`: ``--from``/``--to`` validated before anything is written.
* :func:`check_overwrite`: a new run never overwrites the finished steps of an existing run of
  the same name unless ``--force``.
* :func:`session`: every child process (g++, yosys, Verilator builds and simulations, make)
  dies with the command, even when the command is killed with SIGKILL. Children inherit
  ``RL2FPGA_SESSION=<token>`` in their environment; a small watcher process holds a pipe to
  the command and, when the pipe closes (exit, exception, any signal), kills every process of
  this user whose environment carries the token.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from rl2fpga.errors import Rl2fpgaError

SESSION_ENV = "RL2FPGA_SESSION"


def steps_between(start: str | None, stop: str | None) -> list[str]:
    from rl2fpga.pipeline import STEP_ORDER

    order = list(STEP_ORDER)
    for flag, name in (("--from", start), ("--to", stop)):
        if name is not None and name not in order:
            raise Rl2fpgaError(f"unknown step '{name}' ({flag}); steps are: {', '.join(order)}")
    i0 = order.index(start) if start else 0
    i1 = order.index(stop) if stop else len(order) - 1
    if i0 > i1:
        raise Rl2fpgaError(f"--from {start} comes after --to {stop}; steps run in the order {', '.join(order)}")
    return order[i0 : i1 + 1]


def check_overwrite(target: Path, names: list[str], force: bool) -> None:
    """Refuse to rerun finished steps of an existing run folder created under that name."""
    if force or not (target / "config.yaml").exists():
        return
    finished = [n for n in names if (target / n / ".done").exists()]
    if finished:
        raise Rl2fpgaError(
            f"run folder {target} already holds a finished run (steps done: {', '.join(finished)}); "
            f"pass --force to overwrite it, choose another --name, or resume with `rl2fpga run {target} --from STEP`"
        )


# ------------------------------------------------------------------------- child processes

_WATCHER = r"""
import os, signal, sys
token, me = sys.argv[1].encode(), int(sys.argv[2])
try:
    while sys.stdin.buffer.read(4096):
        pass
except BaseException:
    pass
def victims():
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in (me, os.getpid()):
            continue
        try:
            with open(f"/proc/{d}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if b"RL2FPGA_SESSION=" + token in env:
            out.append(int(d))
    return out
for sig in (signal.SIGTERM, signal.SIGKILL):
    pids = victims()
    for pid in pids:
        try:
            os.kill(pid, sig)
        except OSError:
            pass
    if not pids:
        break
    import time
    time.sleep(0.5)
"""


def kill_session(token: str) -> None:
    """Kill every process carrying ``token`` (not this one): used on normal exit too."""
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            with open(f"/proc/{d}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if f"{SESSION_ENV}={token}".encode() in env:
            with contextlib.suppress(OSError):
                os.kill(int(d), 15)


@contextlib.contextmanager
def session() -> Iterator[str]:
    """Tag children with a session token and make sure they die with this command."""
    if not Path("/proc/self/environ").exists():  # not Linux: nothing to watch
        yield ""
        return
    token = secrets.token_hex(8)
    previous = os.environ.get(SESSION_ENV)
    watcher = None
    try:
        watcher = subprocess.Popen(
            [sys.executable, "-c", _WATCHER, token, str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C on the terminal does not reach it first
            env={k: v for k, v in os.environ.items() if k != SESSION_ENV},
        )
    except OSError:
        watcher = None
    os.environ[SESSION_ENV] = token
    try:
        yield token
    finally:
        if previous is None:
            os.environ.pop(SESSION_ENV, None)
        else:
            os.environ[SESSION_ENV] = previous
        kill_session(token)
        if watcher is not None and watcher.stdin is not None:
            with contextlib.suppress(OSError):
                watcher.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                watcher.wait(timeout=30)
