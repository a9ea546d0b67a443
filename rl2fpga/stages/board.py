"""The ``board`` step: closed-loop episodes on a chosen back end, or the deploy build.

    rl2fpga board RUN_DIR --target reference|hls-csim|emulator|pynq --episodes N
    rl2fpga board RUN_DIR --action build

``run`` plays seeded episodes with actions from the back end while the golden model steps in
lockstep on the same states (action agreement, output and MAC-counter agreement), then plays
the same seeded episodes with the golden policy alone (its returns). Writes
``board/summary.json`` (and ``board/summary_<target>.json``) and the per-step distributions
``board/latency_<target>.json`` (cycles, host latency, MACs per layer). ``build`` writes the deploy
bundle and the Vivado project (:mod:`rl2fpga.board.build`).
"""

from __future__ import annotations

from rl2fpga.artifacts import BoardLatency, BoardSummary
from rl2fpga.board.play import run_episodes
from rl2fpga.config import RunConfig
from rl2fpga.core.golden import GoldenModel
from rl2fpga.run import Run


def board_step(run: Run, cfg: RunConfig) -> None:
    from rich.console import Console

    console = Console(stderr=True)
    model = GoldenModel.load(run.layout.quantize_golden)
    if cfg.board.action == "build":
        from rl2fpga.board.build import build

        build(run, cfg, model, console)
        return
    summary, log = run_episodes(run, cfg, model)
    run.dir("board")
    BoardSummary(summary).save_for_target(run.layout)
    # per-step distributions over the real episodes (same shape as cosim/latency.json)
    BoardLatency({"cycles": log.cycles, "latency_us": [round(v, 2) for v in log.latency_us], "macs": log.macs}
                 ).save_for_target(run.layout, cfg.board.target)
    lat = summary["latency_us"]
    cyc = summary["cycles_per_step"]
    console.print(
        f"{summary['target']} ({summary['engine']}): {summary['episodes']} episodes, {summary['steps']} steps, "
        f"return {summary['return_mean']:.1f} (golden {summary['golden_return_mean']:.1f}), "
        f"action mismatches {summary['action_mismatches']}, output mismatches {summary['output_mismatches']}"
        + (f", host latency {lat['mean']:.0f} us/step" if lat else "")
        + (f", {cyc['mean']:.0f} cycles/step" if cyc else "")
        + (f", MACs {summary['mac_fraction']:.4f} of dense" if summary["mac_fraction"] is not None else "")
    )
