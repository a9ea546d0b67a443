"""Golden model step time on real Breakout frames (the papers' Atari CNN, pruned random integer
weights): milliseconds per step with the exact float64 (BLAS) products that ``Layer.matvec``
takes where every sum stays below 2^53, against the int64 products NumPy computes without BLAS,
in one run, with NumPy's BLAS on one thread as in the pipeline's steps (``--blas-default``: as
many threads as OpenBLAS takes by itself); the outputs of the two are compared with ``==``.
Every evaluation with delta updates (quantize, analyze, the emulated board) steps this model
once per agent step."""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sparsity", type=float, default=0.9)
    ap.add_argument("--blas-default", action="store_true", help="leave NumPy's BLAS thread count as the library sets it")
    args = ap.parse_args()

    from rl2fpga.core.layers import Layer
    from rl2fpga.pipeline import blas_one_thread
    from rl2fpga.rtl_tests.test_engine import atari_model
    from rl2fpga.train.frames import record

    g = atari_model(sparsity=args.sparsity)
    frames, starts = record(args.frames, seed=0)
    xs = [g.quantize_input(f) for f in frames]  # as the co-simulation feeds them

    def run() -> tuple[float, list[np.ndarray]]:
        g.reset()
        outs = []
        t = time.perf_counter()
        for k, x in enumerate(xs):
            if k in starts:
                g.reset()
            outs.append(g.step(x)[0])
        return (time.perf_counter() - t) / len(xs) * 1e3, outs

    limit = contextlib.nullcontext() if args.blas_default else blas_one_thread()  # as every pipeline step runs
    with limit:
        times, outs = compare(run, Layer, args.repeats)
    equal = all(np.array_equal(a, b) for a, b in zip(outs["float64 (BLAS)"], outs["int64"], strict=True))
    for name, t in times.items():
        print(f"{name:16s} median {float(np.median(t)):.2f} ms per step ({', '.join(f'{v:.2f}' for v in t)})")
    speed = float(np.median(times["int64"]) / np.median(times["float64 (BLAS)"]))
    print(f"speed-up {speed:.2f}x over {len(xs)} frames, BLAS threads {'default' if args.blas_default else 1}; "
          f"outputs equal: {equal}")
    if not equal:
        raise SystemExit(1)


def compare(run: Callable[[], tuple[float, list[np.ndarray]]], layer_cls: Any, repeats: int
            ) -> tuple[dict[str, list[float]], dict[str, list[np.ndarray]]]:
    """Milliseconds per step and outputs of ``run`` with each way of multiplying, alternating (so
    that a busy machine slows both alike)."""
    blas_matvec = layer_cls.matvec

    def int64_matvec(self: Any, x: np.ndarray) -> np.ndarray:
        return self.apply(self.w, np.ascontiguousarray(np.asarray(x, dtype=np.int64).reshape(self.in_shape)))

    run()  # warm-up: the arrays derived from the weights are built once
    times: dict[str, list[float]] = {"float64 (BLAS)": [], "int64": []}
    outs: dict[str, list[np.ndarray]] = {}
    for _ in range(repeats):
        for name, fn in (("float64 (BLAS)", blas_matvec), ("int64", int64_matvec)):
            layer_cls.matvec = fn
            try:
                ms, outs[name] = run()
            finally:
                layer_cls.matvec = blas_matvec
            times[name].append(ms)
    return times, outs


if __name__ == "__main__":
    main()
