"""A cycle model of the sparse delta engine on real Breakout frames, to size issue 13's redesign
before writing RTL: today's frame-barrier schedule (every layer MACs its whole frame, then
walks its dirty accumulators and sends its changed outputs) against row streaming (a conv layer
requantizes an output row as soon as the input rows it reads have been MACed, while the MACs of
later rows go on in other accumulator banks), each with 1, 2 or 4 events per cycle on the encoder, every list lookup and every link.

What the model takes from the golden model on real frames (exact): each layer's changed inputs
per frame in raster order, every event's list length per lane (csc lists of the input class
(y % SH, x % SW, c) over every candidate tap, border taps included, as the generator lays them
out; a dense-format layer, the short path: one event per event port per cycle), the dirty accumulator words per lane and row,
and the outputs sent. What it assumes (the engine's throughputs, FIFOs unbounded): one input
beat per cycle (8 pixels, frame stack in fabric), the encoder, each list lookup and each link
``--events-per-cycle`` events per cycle (today's engine: 1), one list entry per lane per cycle,
one requantized word per lane per cycle, and a few cycles of pipeline per stage. Frames at
an episode start (the whole stack sent, every accumulator swept) are left out.

Its frame-barrier figures are printed beside the co-simulated ones of the same model
(``python -m benchmarks cosim_atari --golden DIR --lanes 16``: median 1,862 cycles on the
session-14 Breakout run; stages input 999, conv1 244, conv2 162, conv3 322, fc1 125) so the
streaming prediction can be judged by how well the model reproduces the engine it models.

    python -m benchmarks stream_model [--golden runs/breakout/quantize/golden] [--lanes 16]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PIPE = 3  # cycles of pipeline per stage (lookup, MAC, requantize), a model constant


@dataclass
class LayerFrame:
    """One layer's work in one frame, from the golden model."""

    work: np.ndarray  # (events, lanes) list words each lane walks per event, raster order
    rows_in: np.ndarray  # input row of each event (conv; dense: 0)
    pixel: np.ndarray  # input pixel y * w + x of each event (conv; dense: its index)
    dirty: np.ndarray  # (out rows, lanes) dirty accumulator words per output row and lane
    sent: np.ndarray  # (out rows,) outputs sent per output row (the next layer's events)
    kh: int = 1  # kernel rows and row stride (conv)
    sh: int = 1


def list_lengths(layer, lanes: int) -> tuple[np.ndarray, str]:
    """The words each lane walks per list, from the store the generator writes (its format
    chosen the same way, ``rtl.format: auto``); a dense-format layer (the short path, one-cycle
    MACs): 0 here, its events are paced by the lookup alone."""
    from rl2fpga.hls.engine import formats as fm
    from rl2fpga.hls.engine.generator import conv_lists

    conv = layer.w.ndim == 4
    w2 = conv_lists(layer.w, tuple(layer.stride)) if conv else layer.w.reshape(-1, layer.n_out)
    store = fm.choose(w2 if conv else w2[:, None, :], lanes, layer.w_fmt.bits)
    if store.fmt == "dense":
        return np.zeros((w2.shape[0], lanes), np.int64), store.fmt
    return np.asarray(store.length, np.int64), store.fmt


def layer_frame(layer, changed: np.ndarray, sent: np.ndarray, lengths: np.ndarray, lanes: int) -> LayerFrame:
    ev = np.flatnonzero(changed.reshape(-1))
    nz = (layer.w != 0).astype(np.int64)
    if layer.w.ndim == 2:
        work, rows, pixel = lengths[ev], np.zeros(len(ev), np.int64), ev
        touched = (nz[ev].sum(axis=0) > 0)[None, :]  # (1, n_out)
        kh = sh = 1
    else:
        h, w, c = layer.in_shape
        y, x, ch = np.unravel_index(ev, (h, w, c))
        sh, sw = layer.stride
        work, rows, pixel = lengths[((y % sh) * sw + x % sw) * c + ch], y, y * w + x
        touched = layer.apply(nz, changed.reshape(layer.in_shape).astype(np.int64)) > 0
        touched = touched.reshape(layer.out_shape[0], -1)  # (out rows, out_w * n_out)
        kh = layer.w.shape[0]
    lane = np.arange(touched.shape[1]) % layer.n_out % lanes  # output channel f is on lane f % lanes
    dirty = np.stack([touched[:, lane == k].sum(axis=1) for k in range(lanes)], axis=1)
    return LayerFrame(work, rows, pixel, dirty, sent.reshape(dirty.shape[0], -1).sum(axis=1), kh, sh)


def mac(arrive: np.ndarray, work: np.ndarray, epc: int) -> tuple[np.ndarray, np.ndarray]:
    """Issue times (``epc`` events per cycle, in order) and each event's finish over all lanes
    (lanes walk their parts of the lists independently, one entry per cycle)."""
    n, lanes = work.shape
    issue = np.empty(n)
    done = np.empty(n)
    free = np.zeros(lanes)
    t = -1.0
    for i in range(n):
        t = max(arrive[i], t + 1.0 / epc)
        issue[i] = t
        free = np.maximum(free, t) + work[i]
        done[i] = free.max()
    return issue, done


def send_times(start: float, cost: float, n: int, epc: int) -> np.ndarray:
    """``n`` events sent during a walk of ``cost`` cycles from ``start`` (``epc`` per cycle at most)."""
    span = max(cost, n / epc)
    return start + (np.arange(1, n + 1) * span / max(n, 1))


def simulate(frame: list[LayerFrame], beat_pixels: int, epc: int, stream: bool) -> tuple[float, list[float]]:
    """Cycles of one frame and the stage ends (last input beat, then each layer's end marker)."""
    first = frame[0]
    avail = first.pixel // beat_pixels + 1.0  # the beat that carries the pixel arrived
    n_beats = 84 * 84 / beat_pixels
    # the encoder: epc events per cycle, in order, as beats arrive
    arrive = np.empty(len(avail))
    t = 0.0
    for i, a in enumerate(avail):
        t = max(a, t + 1.0 / epc)
        arrive[i] = t
    marker = max(n_beats, arrive[-1] if len(arrive) else 0) + 1
    marks = [float(n_beats)]
    # input rows complete (conv1's input rows): when the row's last beat and its events are in
    row_in_done = None
    if stream:
        rows = np.arange(84)
        last_beat = (rows + 1) * 84 / beat_pixels
        row_in_done = np.maximum(last_beat, [arrive[first.rows_in <= r].max(initial=0) for r in rows])
    for lf in frame:
        _, done = mac(arrive, lf.work, epc)
        conv = lf.dirty.shape[0] > 1
        if stream and conv:
            layer_rows = row_in_done
            n_rows = lf.dirty.shape[0]
            out_arrive, row_end = [], []
            t_rq = 0.0
            for oy in range(n_rows):
                last_row = oy * lf.sh + lf.kh - 1
                sel = lf.rows_in <= last_row
                macs_done = max(done[sel].max(initial=0), layer_rows[min(last_row, len(layer_rows) - 1)]) + PIPE
                start = max(macs_done, t_rq)
                cost = float(lf.dirty[oy].max())
                s = send_times(start, cost, int(lf.sent[oy]), epc)
                t_rq = max(start + cost, s[-1] if len(s) else start) + 1
                out_arrive.append(s)
                row_end.append(t_rq)
            arrive = np.concatenate(out_arrive) if out_arrive else np.zeros(0)
            row_in_done = np.array(row_end)
            marker = t_rq + 1
        else:
            macs_done = max(marker, done.max(initial=0)) + PIPE
            cost = float(lf.dirty.sum(axis=0).max())
            total_sent = int(lf.sent.sum())
            s = send_times(macs_done, cost, total_sent, epc)
            arrive = s
            marker = max(macs_done + cost, s[-1] if len(s) else macs_done) + 1
        marks.append(float(marker))
    return marks[-1] + 2, marks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--golden", type=Path, default=None, help="a golden model folder (default: the random 90 %%-pruned CNN)")
    ap.add_argument("--lanes", type=int, default=16)
    ap.add_argument("--layer-lanes", default="", help="lanes per layer, comma-separated")
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--beat-bytes", type=int, default=8)
    ap.add_argument("--events-per-cycle", default="1,2,4",
                    help="events per cycle of the encoder, every list lookup and every link (today: 1)")
    args = ap.parse_args()

    from rl2fpga.core.golden import GoldenModel
    from rl2fpga.hls.engine.generator import plan_images
    from rl2fpga.rtl_tests.test_engine import atari_model
    from rl2fpga.train.frames import record

    g = GoldenModel.load(args.golden) if args.golden else atari_model()
    n = len(g.layers)
    lanes = [int(v) for v in args.layer_lanes.split(",")] if args.layer_lanes else [args.lanes] * n
    stores = [list_lengths(layer, ln) for layer, ln in zip(g.layers, lanes, strict=True)]
    fmts = [fmt for _, fmt in stores]
    if fmts != [plan.format for plan, _ in plan_images(g, lanes)]:
        raise SystemExit(f"formats {fmts} differ from the generator's; update list_lengths")
    frames, starts = record(args.frames, seed=0)
    skip = set(starts)
    epcs = [int(v) for v in args.events_per_cycle.split(",")]
    results: dict[tuple[bool, int], list[tuple[float, list[float]]]] = {(s, e): [] for s in (False, True) for e in epcs}
    g.reset()
    for i, obs in enumerate(frames):
        if i in skip:
            g.reset()
        x = g.quantize_input(obs)
        per: list[LayerFrame] = []
        changed = []
        for k, layer in enumerate(g.layers):
            x = x.reshape(layer.in_shape)
            g.x_hat[k], ch, delta = layer.delta_input.update(x, g.x_hat[k])
            if ch.any():
                g.acc[k] = g.acc[k] + layer.matvec(delta)
            x = layer.requantize(g.acc[k])
            changed.append(ch)
        for k, layer in enumerate(g.layers):
            sent = changed[k + 1] if k + 1 < n else np.ones(layer.out_shape, bool)
            per.append(layer_frame(layer, changed[k], sent, stores[k][0], lanes[k]))
        if i in skip:
            continue
        for key in results:
            results[key].append(simulate(per, args.beat_bytes, key[1], key[0]))
    names = ["input", *[layer.name for layer in g.layers]]
    roof = 84 * 84 / args.beat_bytes
    print(f"{len(results[(False, 1)])} frames, lanes {' / '.join(map(str, lanes))}, formats {fmts}; "
          f"roofline (input transfer) {roof:.0f} cycles, 1.2x = {1.2 * roof:.0f}")
    for (stream, epc), rs in results.items():
        cyc = np.array([r[0] for r in rs])
        st = np.diff(np.array([[0.0, *r[1]] for r in rs]), axis=1)
        stages = ", ".join(f"{nm} {v:.0f}" for nm, v in zip(names, np.median(st, axis=0), strict=True))
        print(f"{'row streaming ' if stream else 'frame barrier '} {epc} events/cycle: median {np.median(cyc):,.0f} "
              f"cycles ({np.median(cyc) / roof:.2f}x roofline), mean {cyc.mean():,.0f}; median stages: {stages}")


if __name__ == "__main__":
    main()
