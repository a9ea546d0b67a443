"""Stored bits and engine cycles per weight storage format (csc, rel, bitmap, dense, auto) on a
CartPole-sized MLP (4 -> 64 -> 64 -> 2, real CartPole frames) and a small CNN, by co-simulation
(Verilator; every frame's outputs and MAC counters checked against the golden model).

    python -m benchmarks formats [--sparsity 0.9] [--frames 100]
"""

from __future__ import annotations

import argparse

import numpy as np

from rl2fpga.core.golden import Fmt, GoldenModel, random_model
from rl2fpga.hls.cosim.harness import BUILD_ROOT, run_engine
from rl2fpga.hls.engine.formats import CHOICES, measure_images
from rl2fpga.hls.engine.generator import generate


def _models(sparsity: float, frames: int) -> list[tuple[str, GoldenModel, np.ndarray, int]]:
    from rl2fpga.train.frames import record_cartpole

    mlp = random_model(np.random.default_rng(7), (4,), [("dense", 64), ("dense", 64), ("dense", 2)],
                       sparsity=sparsity, in_fmt=Fmt(16, 5, True))
    mlp.set_thresholds([20, 2, 2])
    cnn = random_model(np.random.default_rng(11), (15, 13, 3),
                       [("conv2d", 5, 3, 2), ("conv2d", 7, 2, 3), ("dense", 7), ("dense", 3)], sparsity=sparsity, threshold=1)
    rng, fr = np.random.default_rng(5), []
    x = rng.integers(0, 256, size=(15, 13, 3))
    for _ in range(frames):
        x = np.where(rng.random(x.shape) < 0.05, rng.integers(0, 256, size=x.shape), x)
        fr.append(x.astype(np.uint8))
    return [("mlp", mlp, record_cartpole(frames, seed=3)[0], 4), ("cnn", cnn, np.stack(fr), 3)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sparsity", type=float, default=0.9)
    ap.add_argument("--frames", type=int, default=100)
    args = ap.parse_args()
    print("| model | format | per layer | stored bits (read from the images) | median cycles | mean cycles | MACs == golden |")
    print("| --- | --- | --- | ---: | ---: | ---: | --- |")
    for name, g, frames, lanes in _models(args.sparsity, args.frames):
        root = BUILD_ROOT / "bench" / f"formats_{name}_{args.sparsity}"
        g.save(root / "golden")
        for fmt in CHOICES:
            d = generate(g, root / fmt / "rtl", lanes=lanes, input_bytes_per_beat=8, fmt=fmt)
            bits = sum(measure_images(root / fmt / "rtl").values())
            res = run_engine(d, root / "golden", frames, root / fmt / "work")
            cyc = [f["cycles"] for f in res["per_frame"]]
            ok = res["mismatches"] == 0 and all(f["macs"] == f["golden_macs"] for f in res["per_frame"])
            per = ", ".join(p.format + (f"{p.run_bits}" if p.format == "rel" else "") for p in d.layers)
            print(f"| {name} | {fmt} | {per} | {bits} | {np.median(cyc):.0f} | {np.mean(cyc):.1f} | {ok} |", flush=True)


if __name__ == "__main__":
    main()
