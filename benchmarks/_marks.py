"""Wall and CPU clocks at agent-step marks inside one training run, read from its progress bar.

Every DQN loop, today's and the one before issue 16's speed work (d159a6f), calls its tqdm
bar's ``update(n)`` once per iteration with the agent steps it just took, whether or not the
bar draws. :class:`StepMarks` wraps ``tqdm.std.tqdm.update`` for the run's bar (the one whose
``total`` is the run's length) and stores, for each mark, the first step count at or past it with
the clocks then. The rate between two marks of one run excludes the one-time costs before the
first (graph tracing, kernel generation, thread start) without subtracting two runs' times (and
with them both runs' start-up jitter); the machine's own swings still show in every figure.

No imports from rl2fpga or benchmarks: a child process of another commit's tree loads this file
by its path (its own ``benchmarks`` package is that commit's)."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Sequence

import psutil


def cpu_seconds() -> float:
    """CPU time of this process, its waited-for children and its live ones (e.g. environment
    worker processes), user + system."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    live = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            t = child.cpu_times()
            live += t.user + t.system
        except psutil.NoSuchProcess:  # ended (and maybe waited for) since the listing
            pass
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime + live


class StepMarks:
    """``with StepMarks(total, marks) as m: train(...)``; then ``m.rate(a, b)`` is agent steps/s
    between marks ``a`` and ``b`` and ``m.cpu_ms(a, b)`` CPU ms per agent step over the same span."""

    def __init__(self, total: int, marks: Sequence[int], clock: Callable[[], float] = time.perf_counter) -> None:
        if sorted(marks) != list(marks) or not marks or marks[0] <= 0 or marks[-1] > total:
            raise ValueError(f"marks {list(marks)} must rise within 1..{total}")
        self.total, self.marks = int(total), [int(m) for m in marks]
        self.at: dict[int, tuple[int, float, float]] = {}  # mark -> (steps counted, wall s, CPU s)
        self._count, self._clock = 0, clock

    def __enter__(self) -> StepMarks:
        import tqdm.std

        self._cls, self._orig = tqdm.std.tqdm, tqdm.std.tqdm.update
        marks, orig = self, self._orig

        def update(bar, n=1):  # noqa: ANN001, ANN202
            if getattr(bar, "total", None) == marks.total:
                marks._count += int(n)
                for m in marks.marks:
                    if m not in marks.at and marks._count >= m:
                        marks.at[m] = (marks._count, marks._clock(), cpu_seconds())
            return orig(bar, n)

        self._cls.update = update
        return self

    def __exit__(self, *exc: object) -> None:
        self._cls.update = self._orig

    def _span(self, a: int, b: int) -> tuple[int, float, float]:
        missing = [m for m in (a, b) if m not in self.at]
        if missing:
            raise RuntimeError(f"the run never reached step marks {missing} (counted {self._count} of {self.total}): "
                               "its loop did not update a progress bar of that total")
        (na, wa, ca), (nb, wb, cb) = self.at[a], self.at[b]
        return nb - na, wb - wa, cb - ca

    def rate(self, a: int, b: int) -> float:
        n, wall, _ = self._span(a, b)
        return n / max(wall, 1e-9)

    def cpu_ms(self, a: int, b: int) -> float:
        n, _, cpu = self._span(a, b)
        return 1e3 * cpu / max(n, 1)
