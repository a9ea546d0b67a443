"""Print the compression and significant-multiplication figures of a finished run directory
(prune levels, the selected level, quantized/delta returns, compression, multiplications).

    python -m benchmarks analyze_run runs/cartpole
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", nargs="?", default="runs/cartpole")
    args = ap.parse_args()
    run = Path(args.run_dir)

    def load(p: str) -> dict:
        f = run / p
        return json.loads(f.read_text()) if f.exists() else {}

    levels = load("prune/levels.json").get("levels", [])
    sel = load("prune/selected.json")
    print(f"run {run}")
    for lv in levels:
        mark = " <- selected" if lv["level"] == sel.get("level") else ""
        print(f"  level {lv['level']:2d}: sparsity {lv['sparsity']:.3f}  return {lv['eval_return_mean']:.1f}{mark}")
    q = load("quantize/summary.json")
    if q:
        dense_ret = sel.get("dense_return_mean") or 0
        print(f"quantized ({q['method']}, {q['weight_bits']}-bit weights, {q['act_bits']}-bit activations), level {q['prune_level']}:")
        print(f"  return golden {q['eval_return_mean']:.1f}, golden+delta (T={q['threshold']}, T_int={q['threshold_int']}) "
              f"{q['eval_return_mean_delta']:.1f}; dense float {dense_ret:.1f} -> keeps "
              f"{q['eval_return_mean_delta'] / dense_ret:.3f}" if dense_ret else "")
        c = q["compression"]
        print(f"  size: {c['dense_fp32_bits']} fp32 bits -> {c['stored_bits']} stored bits: {c['ratio']:.1f}x "
              f"(values only {c['ratio_values_only']:.1f}x), sparsity {c['sparsity']:.3f}")
    a = load("analyze/summary.json")
    if a:
        m = a["multiplications"]
        print(f"multiplications per step at T={a['threshold']}: dense {m['dense']:.0f}, significant (golden) "
              f"{m['significant_mean']:.1f} -> {m['reduction']:.1f}x fewer (float delta {m['float_significant_mean']:.1f})")
        for t, r in a["per_threshold"].items():
            print(f"  T={t:>6}: T_int={r['T_int']} fraction float {r['float_fraction']:.4f} golden {r['golden_fraction']:.4f} "
                  f"return golden {r['golden_delta_return_mean']} float {r['float_delta_return_mean']}")
        for lv in a["per_level"]:
            fr = " ".join(f"{t}:{v:.4f}" for t, v in lv["fraction"].items())
            print(f"  level {lv['level']:2d} sparsity {lv['sparsity']:.3f} return {lv['return_mean']:.1f} "
                  f"delta {lv['delta_return_mean']:.1f} fractions {fr}")


if __name__ == "__main__":
    main()
