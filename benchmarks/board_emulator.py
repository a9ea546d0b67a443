"""Closed loop through the PYNQ driver and the simulated PYNQ-Z2: host latency, device cycles.

    python -m benchmarks board_emulator [--env ALE/Breakout-v5] [--engine verilator|golden]
        [--steps 500] [--sparsity 0.9] [--lanes 4] [--bytes-per-beat 8]

Builds a random-pruned golden model of the papers' Atari CNN (for CartPole: the balancing
controller of tests/board_models.py), generates
its RTL (rl2fpga.hls.engine.generator), builds it with Verilator (ccache), and plays seeded episodes
until ``--steps`` agent steps have run, every action checked against the golden policy
stepping in lockstep. Prints: Verilator build time, steps/s of the loop, host latency per step
(driver + simulated AXI DMA + cycle-accurate engine), engine cycles per frame (the hardware's
own CYCLES counter) and the implied latency at the configured clock, and the mismatches.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from rl2fpga.config import RunConfig, apply_overrides
from rl2fpga.core.golden import Fmt, GoldenModel, random_model
from rl2fpga.run import Run

REPO = Path(__file__).resolve().parents[1]
ATARI_CNN = [("conv2d", 32, 8, 4), ("conv2d", 32, 4, 2), ("conv2d", 64, 3, 2), ("dense", 512)]


def golden_for(env_id: str, n_actions: int, sparsity: float, seed: int) -> GoldenModel:
    """A random-pruned model of the right shape: the papers' CNN for Atari, an MLP otherwise."""
    rng = np.random.default_rng(seed)
    if env_id.startswith("ALE/"):
        return random_model(rng, (84, 84, 4), [*ATARI_CNN, ("dense", n_actions)], sparsity=sparsity, threshold=2)
    if env_id.startswith("CartPole"):  # a hand-written pruned controller that balances (tests/board_models.py)
        sys.path.insert(0, str(REPO / "tests"))
        from board_models import balancer

        return balancer()
    return random_model(rng, (4,), [("dense", 16), ("dense", n_actions)], sparsity=0.5, in_fmt=Fmt(8, 3, True), threshold=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="ALE/Breakout-v5")
    ap.add_argument("--engine", default="verilator", choices=["verilator", "golden"])
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--sparsity", type=float, default=0.9)
    ap.add_argument("--lanes", type=int, default=4)
    ap.add_argument("--bytes-per-beat", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from rl2fpga.board.play import _stats, make_backend, play
    from rl2fpga.hls.engine import generator as rtlgen

    n_actions = 4 if "Breakout" in args.env else 2
    model = golden_for(args.env, n_actions, args.sparsity, args.seed)
    cfg = apply_overrides(RunConfig(), [
        f"env.id={args.env}", f"seed={args.seed}", "board.target=emulator", f"board.emulator_engine={args.engine}",
        "board.episodes=50", f"board.max_steps={args.steps}", f"rtl.lanes={args.lanes}",
        f"rtl.input_bytes_per_beat={args.bytes_per_beat}",
    ])
    with tempfile.TemporaryDirectory(prefix="rl2fpga_board_bench_") as tmp:
        run = Run.create(cfg, path=Path(tmp) / "run")
        rtlgen.generate(model, run.path / "rtl", args.lanes, args.bytes_per_beat)
        t0 = time.perf_counter()
        backend, engine = make_backend(run, cfg, model)
        t_setup = time.perf_counter() - t0
        t1 = time.perf_counter()
        log = play(cfg, model, backend, step_budget=args.steps)
        wall = time.perf_counter() - t1
        ref = play(cfg, model, None, step_budget=args.steps)
    steps = sum(log.steps)
    nnz = sum(layer.nnz() for layer in model.layers)
    dense = sum(layer.w.size for layer in model.layers)
    print(f"env {args.env}, engine {engine}, lanes {args.lanes}, {args.bytes_per_beat} B/beat, "
          f"weights {nnz}/{dense} nonzero ({1 - nnz / dense:.1%} pruned)")
    print(f"setup (verilator build or cache hit, overlay, DMA bind): {t_setup:.1f} s")
    print(f"closed loop: {steps} steps in {len(log.steps)} episodes, {wall:.1f} s = {steps / wall:.1f} steps/s (golden in lockstep)")
    lat, cyc = _stats(log.latency_us), _stats([float(c) for c in log.cycles])
    print(f"host latency per step (us): mean {lat['mean']:.0f}, p50 {lat['p50']:.0f}, p99 {lat['p99']:.0f}, max {lat['max']:.0f}")
    if cyc:
        mhz = cfg.rtl.clock_mhz
        print(f"engine cycles per frame: mean {cyc['mean']:.0f}, p50 {cyc['p50']:.0f}, p99 {cyc['p99']:.0f}, max {cyc['max']:.0f}"
              f" -> mean {cyc['mean'] / mhz:.1f} us at {mhz:.0f} MHz")
    print(f"returns {log.returns[:10]}{' ...' if len(log.returns) > 10 else ''} (golden alone {ref.returns[:10]})")
    print(f"action mismatches {log.action_mismatches}, output mismatches {log.output_mismatches}, MAC mismatches {log.mac_mismatches}")


if __name__ == "__main__":
    main()
