"""da4ml back end on a Hopper-sized actor: a pruned random 11-256-256-3 integer actor (70.6 %
sparse, the level the Hopper compression run kept) on real Hopper-v5 states: da4ml interpreter
and cocotb + Verilator co-simulation vs the golden model (delta off), yosys resources, and
whether it fits the xc7z020.

Not a trained actor: no Hopper run is kept on this machine, so the weights are random integers
with the trained actor's shape, sparsity and formats (16-bit signed inputs with 5 integer bits,
8-bit weights and activations, 16-bit outputs); distributed arithmetic's cost depends on the
weight values, so a trained actor's figures will differ somewhat."""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--states", type=int, default=500)
    ap.add_argument("--sparsity", type=float, default=0.706)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--latency-cutoff", type=float, default=5.0)
    ap.add_argument("--no-synth", action="store_true", help="skip yosys (slow for a design this size)")
    ap.add_argument("--no-cosim", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--full-search", action="store_true",
                    help="da4ml's default solver search over decomposition constraints (slow at this size)")
    args = ap.parse_args()

    import numpy as np

    from rl2fpga.core.golden import Fmt, random_model
    from rl2fpga.hls.cosim.harness import BUILD_ROOT
    from rl2fpga.hls.da4ml import cosim
    from rl2fpga.hls.da4ml.lowering import CORE, TOP, generate, interpreter_outputs
    from rl2fpga.hls.engine.resources import estimate
    from rl2fpga.train.frames import record_gym

    h = args.hidden
    root = BUILD_ROOT / "bench" / f"da4ml_hopper_{h}_s{args.sparsity}_c{args.latency_cutoff}_{args.seed}{'_full' if args.full_search else ''}"
    g = random_model(np.random.default_rng(args.seed), (11,), [("dense", h), ("dense", h), ("dense", 3)],
                     sparsity=args.sparsity, in_fmt=Fmt(16, 5, True))
    g.save(root / "golden")
    frames, starts = record_gym("Hopper-v5", args.states, seed=args.seed)
    xs = np.stack([g.quantize_input(f) for f in frames])
    out: dict = {"model": f"random 11-{h}-{h}-3, {1 - sum(la.nnz() for la in g.layers) / sum(la.w.size for la in g.layers):.3f} sparse",
                 "nonzero_weights": sum(la.nnz() for la in g.layers), "states": len(xs), "episodes": len(starts)}
    t = time.perf_counter()
    solver = {} if args.full_search else {"search_all_decompose_dc": False}
    out["solver"] = solver
    d = generate(g, root / "rtl", input_bytes_per_beat=8, latency_cutoff=args.latency_cutoff, check_inputs=xs,
                 solver=solver, timeout_s=6 * 3600)
    out["lower_s"] = round(time.perf_counter() - t, 1)
    ref = np.stack([g.forward(x) for x in xs])
    out["interpreter_mismatches"] = int((interpreter_outputs(root / "rtl") != ref).any(axis=1).sum())
    out.update({"stages": d.stages, "latency_cycles": d.latency_cycles, "ii": 1, "cost_estimate": d.report.get("cost")})
    print(json.dumps(out), flush=True)
    if not args.no_cosim:
        t = time.perf_counter()
        res = cosim.run(d, root / "golden", frames, root / "sim", seed=1, idle=0.3, stall=0.3, build_dir=root / "obj")
        out.update({"cosim_frames": res["frames"], "cosim_mismatches": res["mismatches"],
                    "cosim_s": round(time.perf_counter() - t, 1)})
        print(json.dumps(out), flush=True)
    if not args.no_synth:
        for name, top in (("core", CORE), ("top", TOP)):
            t = time.perf_counter()
            files = d.sv_files if name == "top" else [p for p in d.sv_files if p.suffix == ".v"]
            est = estimate(files, top, d.out_dir, root / f"yosys_{name}.log", timeout_s=7200)
            out[name] = {k: est[k] for k in ("lut", "ff", "dsp", "bram36", "fits_xc7z020", "utilisation")}
            out[f"synth_{name}_s"] = round(time.perf_counter() - t, 1)
            print(json.dumps(out), flush=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
