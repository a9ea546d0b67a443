"""Breakout: fraction of significant multiplications at T per sparsity level (the 2023 paper's
Fig. 8; paper: 0.018 -> 0.009 at T=0.01), float DeltaNetwork and golden integer model.

The agent is a Keras model file (a trained Breakout DQN or a checkpoint of one; random init when
none is given). Sparsity levels 1 - 0.8^i are made by one-shot layer-wise magnitude pruning of
that model (no retraining: the papers retrain with rewinding), real frames come from episodes
played greedily (epsilon 0.05) by the *dense* model, and the same frames are fed to every level.
The golden integer model (8-bit PTQ calibrated on those frames) is run at T_int = floor(T/2^-8)
on a subset of the levels.

    python -m benchmarks analyze_breakout --model PATH/model.keras --frames 1000
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as the CLI (rl2fpga/cli.py)
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


def play(model, frames: int, seed: int, eps: float):
    """Real stacked frames from greedy (epsilon) play, episodes restarted as they end."""
    import numpy as np
    import tensorflow as tf

    from rl2fpga.config import EnvConfig
    from rl2fpga.train.envs import make_env

    env = make_env(EnvConfig(id="ALE/Breakout-v5"), seed, training=False)
    rng = np.random.default_rng(seed)
    act = tf.function(lambda x: tf.argmax(model(tf.cast(x, tf.float32)[None] * 2.0**-8)[0]))
    obs, _ = env.reset(seed=seed)
    out, episodes, returns, ret = [], [0], [], 0.0
    while len(out) < frames:
        out.append(obs)
        a = env.action_space.sample() if rng.random() < eps else int(act(obs))
        obs, r, term, trunc, _ = env.step(a)
        ret += r
        if term or trunc:
            returns.append(ret)
            ret = 0.0
            obs, _ = env.reset()
            episodes.append(len(out))
    env.close()
    return np.asarray(out), episodes, returns


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="Keras model of a Breakout DQN (random init if omitted)")
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--rounds", type=int, default=10, help="levels 1 - 0.8^i, i = 0..rounds")
    ap.add_argument("--thresholds", default="0.01", help="comma-separated T values")
    ap.add_argument("--golden-levels", default="0,5,10", help="levels also run through the golden model")
    ap.add_argument("--golden-frames", type=int, default=200)
    ap.add_argument("--eps", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="write the figures here too")
    args = ap.parse_args()

    import numpy as np
    import tensorflow as tf

    from rl2fpga.config import QuantizeConfig
    from rl2fpga.quantize.analyze import episode_counts, golden_thresholds
    from rl2fpga.quantize.delta import FloatDeltaNetwork
    from rl2fpga.quantize.prune import apply_masks, magnitude_masks, measured_sparsity
    from rl2fpga.quantize.qkeras_model import (
        golden_from_qkeras,
        grid_float,
        input_format,
        quantize_model,
    )
    from rl2fpga.train.networks import cnn

    tf.keras.utils.set_random_seed(args.seed)
    model = tf.keras.models.load_model(args.model, compile=False) if args.model else cnn(4, "atari")
    t0 = time.perf_counter()
    frames, starts, returns = play(model, args.frames, args.seed, args.eps)
    eps = [frames[a:b] for a, b in zip(starts, [*starts[1:], len(frames)]) if b > a]
    print(f"model: {args.model or 'random init'}; {len(frames)} real frames in {len(eps)} episode(s), "
          f"finished-episode returns {returns} ({time.perf_counter() - t0:.0f} s)")
    ts = [float(t) for t in args.thresholds.split(",")]
    golden_levels = {int(v) for v in args.golden_levels.split(",") if v}
    fmt = input_format(frames)
    rows = []
    masks = None
    base = tf.keras.models.clone_model(model)
    base.set_weights(model.get_weights())
    for i in range(args.rounds + 1):
        m = tf.keras.models.clone_model(model)
        m.set_weights(base.get_weights())
        if i > 0:
            masks = magnitude_masks(m if masks is None else _masked(base, masks), 0.2, masks, "layer")
            apply_masks(m, masks)
        s = measured_sparsity(m)[0]
        row = {"level": i, "sparsity": s}
        for t in ts:
            net = FloatDeltaNetwork(m, t)
            dense = float(sum(net.dense_mults()))
            c = np.concatenate([episode_counts(net, e, lambda o: o.astype(np.float64) * 2.0**-8) for e in eps])
            row[f"float_T{t:g}"] = float(c.sum(1).mean() / dense)
            row[f"float_T{t:g}_layers"] = (c.mean(0) / np.asarray(net.dense_mults())).round(5).tolist()
        if i in golden_levels:
            q = quantize_model(m, QuantizeConfig(method="ptq"), masks, fmt, samples=grid_float(frames[::5], fmt))
            gm = golden_from_qkeras(q, fmt, 0)
            sub = [e[: args.golden_frames] for e in eps[:1]]
            for t in ts:
                t_int, below = golden_thresholds(gm, t)
                g = gm.copy()
                g.set_thresholds(t_int)
                c = np.concatenate([episode_counts(g, e, lambda o: o.astype(np.int64)) for e in sub])
                row[f"golden_T{t:g}"] = float(c.sum(1).mean() / sum(gm.dense_mults()))
                row[f"golden_T{t:g}_Tint"] = t_int
        rows.append(row)
        print(json.dumps({k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items() if not k.endswith("_layers")}), flush=True)
    print(f"paper (Breakout, T=0.01, IMP with rewinding): 0.018 (dense) -> 0.009 (sparsest); total {time.perf_counter() - t0:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model, "frames": len(frames), "episodes": len(eps), "returns": returns, "levels": rows}, f, indent=2)


def _masked(base, masks):
    import tensorflow as tf

    from rl2fpga.quantize.prune import apply_masks

    m = tf.keras.models.clone_model(base)
    m.set_weights(base.get_weights())
    apply_masks(m, masks)
    return m


if __name__ == "__main__":
    main()
