"""hls4ml conversion + C-simulation compile time of the papers' Atari CNN (target <= 3 min on 2 cores).

Builds a random, 90 %-pruned 8-bit golden model of the 2023 paper's network (84x84x4 -> conv 32
8x8/4 -> conv 32 4x4/2 -> conv 64 3x3/2 -> dense 512 -> dense 4) with delta stages, converts it
with hls4ml (Vitis, io_stream, Latency), writes the project and compiles the C simulation, and
prints each phase and the C-simulation speed.

    python -m benchmarks hls_compile [--backend Vitis] [--frames 20] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="Vitis", choices=["Vitis", "Vivado", "VivadoAccelerator"])
    ap.add_argument("--frames", type=int, default=20, help="C-simulation frames timed after the compile")
    ap.add_argument("--out", default=None, help="project folder (default: a temporary one)")
    args = ap.parse_args()

    import numpy as np

    from rl2fpga.config import HlsConfig
    from rl2fpga.core.golden import random_model
    from rl2fpga.hls.hls4ml import flow

    specs = [("conv2d", 32, 8, 4), ("conv2d", 32, 4, 2), ("conv2d", 64, 3, 2), ("dense", 512), ("dense", 4)]
    golden = random_model(np.random.default_rng(0), (84, 84, 4), specs, sparsity=0.9, threshold=2)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp) / "atari"
        t0 = time.perf_counter()
        import hls4ml  # noqa: F401  (import time counts)

        t_import = time.perf_counter() - t0
        project = flow.convert(golden, HlsConfig(backend=args.backend), out)
        t_convert = time.perf_counter() - t0 - t_import
        t1 = time.perf_counter()
        project.hls_model.write()
        t_write = time.perf_counter() - t1
        t2 = time.perf_counter()
        csim = flow.CSim(project, golden)  # hls_model.compile(): writes again, then g++
        t_compile = time.perf_counter() - t2
        total = time.perf_counter() - t0
        frames = np.random.default_rng(1).integers(0, 256, size=(args.frames, 84, 84, 4))
        t3 = time.perf_counter()
        for f in frames:
            csim.step(f)
        per_frame = (time.perf_counter() - t3) / max(1, args.frames)

    print(f"hls4ml import            {t_import:7.1f} s")
    print(f"conversion               {t_convert:7.1f} s   ({args.backend}, {project.io_type}, reuse "
          f"{[p['reuse_factor'] for p in project.precisions.values()]})")
    print(f"project write            {t_write:7.1f} s")
    print(f"C-simulation compile     {t_compile:7.1f} s")
    print(f"conversion + compile     {total:7.1f} s   (target <= 180 s)  {'OK' if total <= 180 else 'OVER'}")
    print(f"C simulation             {per_frame * 1000:7.1f} ms/frame ({1 / per_frame:.1f} frames/s)")


if __name__ == "__main__":
    main()
