"""Logs that read well in a file: ``runs/<name>/run.log`` gets everything the pipeline prints,
progress bars draw only on a terminal, and rich does not wrap long lines when the output is not
a terminal (a log line keeps its figures together).

Tool build output (Verilator, g++, yosys, Vivado) goes into files in the run folder by the
steps that run those tools (e.g. ``cosim/build.log``); the console gets one line per tool.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

LOG_NAME = "run.log"
NO_TTY_COLUMNS = 100  # rich's width for rules when stdout/stderr is a file or a pipe
# library chatter that says nothing about the user's run (Keras/QKeras serialisation notices)
QUIET_WARNINGS = (
    r"The `keras\.constraints\.serialize\(\)` API should only be used",
    r"You are saving your model as an HDF5 file",
    r"Python runners and associated APIs are an experimental feature",
)
QUIET_TF_LOGS = ("Compiled the loaded model, but the compiled metrics have yet to be built",)

_active: set[str] = set()


class Tee:
    """A text stream writing to the original stream and to a log file; a terminal stays a
    terminal (``isatty`` of the original), so progress bars and colours decide as before.
    Carriage-return redraws (progress bars) are not copied into the log."""

    def __init__(self, stream: IO[str], log: IO[str]):
        self._stream = stream
        self._log = log

    def write(self, s: str) -> int:
        n = self._stream.write(s)
        if s and "\r" not in s and "\x1b[" not in s:
            try:
                self._log.write(s)
            except ValueError:  # log closed by another thread at exit
                pass
        return n if n is not None else len(s)

    def flush(self) -> None:
        self._stream.flush()
        with contextlib.suppress(ValueError):
            self._log.flush()

    def isatty(self) -> bool:
        return bool(getattr(self._stream, "isatty", lambda: False)())

    def fileno(self) -> int:
        return self._stream.fileno()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


_configured = False


class _DropMessages:
    """A logging filter dropping records whose message starts with one of ``prefixes``."""

    def __init__(self, prefixes: tuple[str, ...]):
        self.prefixes = prefixes

    def filter(self, record: Any) -> bool:
        return not str(record.getMessage()).startswith(self.prefixes)


def configure_console() -> None:
    """When the output is not a terminal: rich does not wrap long lines (soft wrap; rules are
    NO_TTY_COLUMNS wide); known library notices are dropped. Idempotent."""
    global _configured
    if _configured:
        return
    _configured = True
    import logging
    import warnings

    for pattern in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    logging.getLogger("tensorflow").addFilter(_DropMessages(QUIET_TF_LOGS))
    if sys.stderr.isatty() or sys.stdout.isatty():
        return
    os.environ.setdefault("COLUMNS", str(NO_TTY_COLUMNS))
    from rich.console import Console

    init = Console.__init__
    if getattr(init, "_rl2fpga_soft_wrap", False):
        return

    @functools.wraps(init)
    def soft_wrap_init(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("soft_wrap", True)  # a line in a log file keeps its figures together
        init(self, *args, **kwargs)

    soft_wrap_init._rl2fpga_soft_wrap = True  # type: ignore[attr-defined]
    Console.__init__ = soft_wrap_init  # type: ignore[method-assign]


@contextlib.contextmanager
def run_log(run_path: str | Path) -> Iterator[Path]:
    """Copy everything printed through ``sys.stdout``/``sys.stderr`` into ``run_path/run.log``
    (appended, with a header line per invocation). Re-entrant for the same run."""
    path = Path(run_path) / LOG_NAME
    key = str(path.resolve())
    if key in _active:
        yield path
        return
    configure_console()
    path.parent.mkdir(parents=True, exist_ok=True)
    log = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 (closed below)
    log.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())} rl2fpga {' '.join(sys.argv[1:]) or '(api)'}\n")
    old_out, old_err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = Tee(old_out, log), Tee(old_err, log)
    _active.add(key)
    try:
        yield path
    except BaseException as e:
        if not isinstance(e, SystemExit | KeyboardInterrupt):
            log.write(f"error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}\n")
        raise
    finally:
        _active.discard(key)
        sys.stdout, sys.stderr = old_out, old_err
        log.close()


def logged_to_run(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator for ``fn(run, ...)``: everything printed while it runs goes to ``run.log``."""

    @functools.wraps(fn)
    def wrapper(run: Any, *args: Any, **kwargs: Any) -> Any:
        with run_log(run.path):
            return fn(run, *args, **kwargs)

    return wrapper


def tool_log_note(what: str, log_path: Path) -> str:
    """The one console line that stands for a tool's build output."""
    return f"{what}: output in {log_path}"
