"""The da4ml side of rl2fpga's da4ml back end: run by the *second* virtual environment's Python
(``.venv-da4ml``: da4ml 0.6.0 needs numpy >= 2, TensorFlow 2.15 needs numpy < 2), never imported
by rl2fpga itself. It depends on numpy and da4ml only.

    .venv-da4ml/bin/python lower_da4ml.py SPEC.json OUT_DIR

File interface (versioned; rl2fpga/hls/da4ml/lowering.py writes SPEC and reads the report):

* ``SPEC.json`` (``format: rl2fpga.da4ml.spec``, ``version: 1``): the golden model with delta off
  (dense layers: integer weights ``w`` (n_in, n_out), integer biases ``b`` in accumulator LSBs,
  fixed-point formats ``{bits, integer, signed}`` as in rl2fpga/core/golden.py, activation), the
  rounding (``half_even``, the golden model's; ``half_up`` only to show that it differs), the
  pipelining cutoff, optional da4ml solver options (``solver``), optional integer ``check_inputs`` to evaluate with da4ml's bit-exact
  interpreter.
* ``OUT_DIR/report.json`` (``format: rl2fpga.da4ml.report``, ``version: 1``): the Verilog files
  (relative to OUT_DIR), the pipeline's stage count and latency in cycles, the packed bit layout
  of every input and output element of the core module, cost estimates, and ``check_outputs``
  (integers on the last layer's output grid).

The lowering (per layer): ``acc = x @ (w * 2^-w_frac) + b * 2^-acc_frac`` with da4ml's constant
matrix-vector multiplication (distributed arithmetic, no multipliers); then
``y = saturate(round_half_even(acc))`` into the output format and the activation. da4ml's own
``RND`` rounding is half-up; half-to-even is built from its primitives:
``floor(acc + half - eps + eps * bit)`` where ``bit`` is the output LSB of ``floor(acc)``
(``eps`` = the accumulator LSB), i.e. an exact tie rounds up only when the truncated value is odd.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

SPEC_FORMAT = "rl2fpga.da4ml.spec"
REPORT_FORMAT = "rl2fpga.da4ml.report"
VERSION = 1


def fail(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(2)


def kif(fmt: dict) -> tuple[int, int, int]:
    """golden Fmt (bits, integer incl. sign, signed) -> da4ml (k, i excl. sign, f)."""
    k = int(bool(fmt["signed"]))
    return k, int(fmt["integer"]) - k, int(fmt["bits"]) - int(fmt["integer"])


def lower(inp, layers: list[dict], rounding: str):  # noqa: ANN001, ANN201
    from da4ml.trace.ops import quantize, relu

    k, i, f = kif(layers[0]["in_fmt"])
    x = quantize(inp, k, i, f)
    for layer in layers:
        in_frac = kif(layer["in_fmt"])[2]
        w_frac = kif(layer["w_fmt"])[2]
        ok, oi, of = kif(layer["out_fmt"])
        acc_frac = in_frac + w_frac
        w = np.asarray(layer["w"], dtype=np.float64) * 2.0**-w_frac
        b = np.asarray(layer["b"], dtype=np.float64) * 2.0**-acc_frac
        acc = x @ w + b
        shift = acc_frac - of
        if shift > 0:
            if rounding == "half_even":
                bit = quantize(acc, 0, 1 - of, of)  # the output LSB of floor(acc): 0 or 2^-of
                acc = acc + (2.0 ** (-of - 1) - 2.0**-acc_frac) + bit * 2.0**-shift
            elif rounding == "half_up":
                acc = acc + 2.0 ** (-of - 1)
            else:
                fail(f"unknown rounding '{rounding}'")
        y = quantize(acc, ok, oi, of, "SAT", "TRN")
        if layer["activation"] == "relu":
            y = relu(y)
        x = y
    return x


def read_spec(argv: list[str]) -> tuple[dict, Path]:
    """The spec (format and version checked) and the output folder from the command line."""
    if len(argv) != 2:
        fail("usage: lower_da4ml.py SPEC.json OUT_DIR")
    spec_path, out = Path(argv[0]), Path(argv[1])
    try:
        spec = json.loads(spec_path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        fail(f"cannot read the spec {spec_path} ({e})")
    if spec.get("format") != SPEC_FORMAT or spec.get("version") != VERSION:
        fail(f"spec {spec_path} is {spec.get('format')} v{spec.get('version')}, this script reads {SPEC_FORMAT} v{VERSION}")
    # rl2fpga's write_spec lowers dense layers only (its lowering table refuses the others), so
    # every layer here is a 2-D (n_in, n_out) matrix; check that shape, not a kind name
    for layer in spec["layers"]:
        w = layer["w"]
        if not w or not all(isinstance(row, list) and len(row) == len(w[0]) for row in w):
            fail(f"layer {layer['name']}: weights are not an (n_in, n_out) matrix; the da4ml back end lowers dense layers only")
    return spec, out


def solver_options(spec: dict) -> dict:
    # solver options (da4ml.cmvm.solve): search_all_decompose_dc=False skips the search over
    # decomposition delay constraints, much faster on large matrices at some cost in adders
    return {k: v for k, v in (spec.get("solver") or {}).items()
            if k in ("method0", "method1", "hard_dc", "decompose_dc", "search_all_decompose_dc")}


def trace_and_write(spec: dict, out: Path, solver: dict):  # noqa: ANN201
    """Trace the network, pipeline it and write the Verilog: (comb, pipe, seconds)."""
    from da4ml.codegen import RTLModel
    from da4ml.trace import FixedVariableArrayInput, comb_trace
    from da4ml.trace.pipeline import to_pipeline

    layers = spec["layers"]
    t0 = time.perf_counter()
    inp = FixedVariableArrayInput(len(layers[0]["w"]), solver_options=solver or None)
    outv = lower(inp, layers, spec.get("rounding", "half_even"))
    comb = comb_trace(inp, outv, keep_dead_inputs=True)
    t_trace = time.perf_counter() - t0
    pipe = to_pipeline(comb, float(spec["latency_cutoff"]), verbose=False)
    model = RTLModel(pipe, spec.get("module", "rl2fpga_da4ml_core"), out, flavor="verilog", print_latency=False,
                     register_layers=1, clock_period=float(spec.get("clock_period_ns", 10.0)))
    model.write()
    return comb, pipe, {"trace": round(t_trace, 3), "total": round(time.perf_counter() - t0, 3)}


def layout(qints) -> list[dict]:  # noqa: ANN001
    """Each port element's fixed-point type and its bit position in the flat port."""
    from da4ml.codegen.rtl.verilog.io_wrapper import hetero_io_map
    from da4ml.types import minimal_kif

    _, het, _, _ = hetero_io_map(list(qints), merge=False)
    kifs = [minimal_kif(q) for q in qints]
    rows, j = [], 0
    for q, p in zip(qints, kifs):
        width = int(p.keep_negative) + int(p.integers) + int(p.fractional)
        row = {"k": int(p.keep_negative), "i": int(p.integers), "f": int(p.fractional), "width": max(width, 0),
               "lsb": None, "min": float(q.min), "max": float(q.max), "step": float(q.step)}
        if width > 0:
            hi, lo = het[j]
            row["lsb"] = int(lo)
            j += 1
        rows.append(row)
    return rows


def check_outputs(comb, spec: dict) -> list | None:  # noqa: ANN001
    """da4ml's own interpreter on the spec's check inputs, as integers of the output format."""
    check = spec.get("check_inputs")
    if not check:
        return None
    layers = spec["layers"]
    in_frac = kif(layers[0]["in_fmt"])[2]
    of = kif(layers[-1]["out_fmt"])[2]
    xr = np.asarray(check, dtype=np.float64) * 2.0**-in_frac
    y = np.asarray(comb.predict(xr), dtype=np.float64)
    yi = np.round(y * 2.0**of)
    if not np.array_equal(yi, y * 2.0**of):
        fail("da4ml's interpreter returned values off the output grid")
    return yi.astype(np.int64).tolist()


def main(argv: list[str]) -> int:
    spec, out = read_spec(argv)
    import da4ml

    solver = solver_options(spec)
    comb, pipe, seconds = trace_and_write(spec, out, solver)
    n_stages = len(pipe.solutions)
    inputs, outputs = layout(pipe.inp_qint), layout(pipe.out_qint)
    report = {
        "format": REPORT_FORMAT,
        "version": VERSION,
        "da4ml_version": getattr(da4ml, "__version__", "unknown"),
        "numpy_version": np.__version__,
        "module": spec.get("module", "rl2fpga_da4ml_core"),
        "files": sorted(str(p.relative_to(out)) for p in (out / "src").rglob("*.v")),
        "rounding": spec.get("rounding", "half_even"),
        "stages": n_stages,
        # the core registers its input (stage0_inp), every stage boundary and its output
        "latency_cycles": n_stages + 1,
        "ii": 1,
        "latency_cutoff": float(spec["latency_cutoff"]),
        "solver": solver,
        "cost": float(comb.cost),
        "comb_latency": [float(v) for v in comb.latency],
        "reg_bits": int(pipe.reg_bits),
        "inputs": inputs,
        "outputs": outputs,
        "in_width": int(sum(r["width"] for r in inputs)),
        "out_width": int(sum(r["width"] for r in outputs)),
        "seconds": seconds,
        "check_outputs": check_outputs(comb, spec),
    }
    (out / "report.json").write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
