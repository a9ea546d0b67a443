"""A 4-trial CartPole sweep run sequentially in one process, then on local Ray with 2 workers:
wall times and their ratio.

    python -m benchmarks sweep_local [--total-steps 1500] [--qat-steps 200] [--workers 2]

The sweep varies quantize.weight_bits over {8, 6, 4, 3} (steps train..analyze, tiny budgets), so
both runs train and prune once (the shared stem) and quantize + analyze four times. Sequential:
``rl2fpga.sweep.run_sweep(backend="serial")``, every step in this process one after another
(TensorFlow imported once, free to use every core). Ray: the same sweep file through Ray Tune on
a local Ray with ``--workers`` CPUs, one CPU per trial (Ray's start, the stem in a Ray task
and each Tune worker importing TensorFlow once are part of its time; Tune reuses a worker for
the next trial). Both write to a temporary runs root that is deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import yaml

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


def sweep_doc(name: str, total_steps: int, qat_steps: int) -> dict:
    return {
        "name": name,
        "set": {
            "train.total_steps": total_steps, "train.eval_every": 0, "train.eval_episodes": 2,
            "train.early_stop_return": None, "train.hidden": [16, 16], "train.dqn.learning_starts": 200,
            "prune.method": "none", "quantize.qat_steps": qat_steps, "quantize.calib_episodes": 2,
            "quantize.delta_episodes": 2, "quantize.check_states": 40, "quantize.dagger_rounds": 0,
            "quantize.fallback_levels": 0, "analyze.episodes": 1, "analyze.max_steps": 50,
        },
        "steps": {"from": "train", "to": "analyze"},
        "grid": {"quantize.weight_bits": [8, 6, 4, 3]},
        "cpus_per_trial": 1,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--total-steps", type=int, default=1500)
    ap.add_argument("--qat-steps", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    from rl2fpga.sweep import run_sweep

    walls = {}
    with tempfile.TemporaryDirectory(prefix="rl2fpga_sweep_bench_") as tmp:
        for backend in ("serial", "ray"):
            f = Path(tmp) / f"{backend}.yaml"
            f.write_text(yaml.safe_dump(sweep_doc(backend, args.total_steps, args.qat_steps), sort_keys=False))
            t0 = time.perf_counter()
            out = run_sweep(f, runs_dir=Path(tmp) / "runs", backend=backend, num_cpus=args.workers)
            walls[backend] = time.perf_counter() - t0
            rows = out["table"]
            ok = sum(r["status"] == "finished" for r in rows)
            trial_s = sum(r["seconds"] or 0 for r in rows)
            print(f"{backend:6s}: {walls[backend]:6.1f} s wall for {len(rows)} trials ({ok} finished), "
                  f"{trial_s:.1f} s inside the trials", flush=True)
    print(f"sweep_local: sequential {walls['serial']:.1f} s, Ray with {args.workers} workers {walls['ray']:.1f} s, "
          f"speed-up {walls['serial'] / walls['ray']:.2f}x (load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
