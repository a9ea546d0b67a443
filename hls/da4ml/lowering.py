"""The golden model (delta off) lowered to da4ml and wrapped in the engine's top-level contract.

da4ml 0.6 needs numpy >= 2 and this environment has numpy 1.26 (TensorFlow 2.15), so da4ml runs
in its own virtual environment (``.venv-da4ml``, made by ``scripts/setup.sh``), called through
files: :func:`write_spec` writes the golden model as ``spec.json`` (integer weights, biases,
formats), :data:`SCRIPT` (``lower_da4ml.py``) lowers it and writes Verilog plus ``report.json``
(pipeline stages, latency, the core's packed input/output bit layout). :func:`generate` then
renders ``rl2fpga_engine_top`` (``templates/rl2fpga_da4ml_top.sv.j2``) around the core and
writes ``design.json`` (sources in compile order with their SHA-256, parameters), so the
engine's cocotb testbench drivers, the Verilator board model and yosys take it as they take
the engine.

Delta thresholds do not apply: the circuit is stateless and recomputes every output from
every input in every frame (``GoldenModel.forward``; the golden model with every T_int = 0).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rl2fpga import GENERATED_HEADER
from rl2fpga.core.golden import GoldenModel
from rl2fpga.core.layers import Dense, Layer, lowering, lowers
from rl2fpga.errors import Rl2fpgaError, ToolMissing
from rl2fpga.fsutil import atomic_write_json, atomic_write_text
from rl2fpga.hls.engine import contract as hw

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SCRIPT = HERE / "lower_da4ml.py"
TEMPLATES = HERE / "templates"
SPEC_FORMAT = "rl2fpga.da4ml.spec"
REPORT_FORMAT = "rl2fpga.da4ml.report"
VERSION = 1
TOP = hw.TOP  # the same top-level name and contract as the engine's: one testbench drives both
CORE = "rl2fpga_da4ml_core"
DEFAULT_VENV = REPO / ".venv-da4ml"


def da4ml_python() -> Path:
    """The second environment's interpreter: ``RL2FPGA_DA4ML_PYTHON`` or ``.venv-da4ml``."""
    env = os.environ.get("RL2FPGA_DA4ML_PYTHON")
    return Path(env) if env else DEFAULT_VENV / "bin" / "python"


def have_da4ml() -> bool:
    return da4ml_python().exists()


def _dense_entry(layer: Layer) -> dict[str, Any]:
    return {
        "name": layer.name, "kind": layer.kind, "activation": layer.activation,
        "in_fmt": layer.in_fmt.to_json(), "w_fmt": layer.w_fmt.to_json(), "out_fmt": layer.out_fmt.to_json(),
        "w": np.asarray(layer.w, dtype=np.int64).reshape(-1, layer.n_out).tolist(),
        "b": np.asarray(layer.b, dtype=np.int64).tolist(),
    }


# the back end's one lowering table, keyed by golden layer class: a layer's entry in spec.json
# (da4ml's constant matrix-vector multiplication takes dense layers only)
DA4ML_LOWERING: dict[type[Layer], Callable[[Layer], dict[str, Any]]] = {Dense: _dense_entry}


def lowers_model(model: GoldenModel) -> bool:
    """Whether every layer of ``model`` has a da4ml lowering."""
    return all(lowers(DA4ML_LOWERING, layer) for layer in model.layers)


def write_spec(model: GoldenModel, path: Path, rounding: str = "half_even", latency_cutoff: float = 5.0,
               check_inputs: np.ndarray | None = None, solver: dict[str, Any] | None = None) -> dict[str, Any]:
    """The golden model (delta off) as the da4ml side's ``spec.json``; per-output-channel weight
    scales are lowered widened (:meth:`GoldenModel.widened`: the same integers, constants with
    trailing zero bits, which a constant multiplier gets for free)."""
    model = model.widened()
    if rounding not in ("half_even", "half_up"):
        raise Rl2fpgaError(f"rounding '{rounding}' is unknown; use half_even (the golden model's) or half_up")
    layers = []
    for layer in model.layers:
        if not lowers(DA4ML_LOWERING, layer):
            raise Rl2fpgaError(f"layer {layer.name} is a {layer.kind}; the da4ml back end lowers dense layers only (set da4ml.enabled=never)")
        layers.append(lowering(DA4ML_LOWERING, layer, "da4ml")(layer))
    spec = {"format": SPEC_FORMAT, "version": VERSION, "module": CORE, "rounding": rounding,
            "latency_cutoff": float(latency_cutoff), "solver": dict(solver or {}), "layers": layers,
            "check_inputs": None if check_inputs is None else np.asarray(check_inputs, dtype=np.int64).reshape(len(check_inputs), -1).tolist()}
    atomic_write_json(path, spec)
    return spec


def run_da4ml(spec_path: Path, out_dir: Path, timeout_s: float = 1800.0) -> dict[str, Any]:
    """Run ``lower_da4ml.py`` in the da4ml environment into a fresh ``out_dir``; the report."""
    py = da4ml_python()
    if not py.exists():
        raise ToolMissing(f"the da4ml environment ({py}) is missing; run `make setup` (it creates .venv-da4ml)")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    try:
        res = subprocess.run([str(py), str(SCRIPT), str(spec_path), str(out_dir)], capture_output=True, text=True,
                             timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        raise Rl2fpgaError(f"da4ml did not finish within {timeout_s:.0f} s; the model is too large to unroll (set da4ml.enabled=never)") from None
    atomic_write_text(out_dir / "da4ml.log", res.stdout + res.stderr)
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["no message"])[-1]
        raise Rl2fpgaError(f"da4ml lowering failed ({last[:300]}); full log: {out_dir / 'da4ml.log'}")
    try:
        report = json.loads((out_dir / "report.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise Rl2fpgaError(f"da4ml wrote no readable report in {out_dir} ({e}); see {out_dir / 'da4ml.log'}") from None
    if report.get("format") != REPORT_FORMAT or report.get("version") != VERSION:
        raise Rl2fpgaError(f"da4ml report in {out_dir} is {report.get('format')} v{report.get('version')}, expected {REPORT_FORMAT} v{VERSION}; rerun `make setup`")
    return report


@dataclass
class Da4mlDesign:
    """A generated da4ml design in ``out_dir`` (flat: the top, the core, da4ml's static modules)."""

    out_dir: Path
    sv_files: list[Path]
    input_bytes_per_beat: int
    latency_cycles: int
    stages: int
    depth: int
    report: dict[str, Any] = field(default_factory=dict)
    lanes: int = 0  # fully parallel: no lanes (INFO reads 0 there)

    @classmethod
    def load(cls, out_dir: Path) -> Da4mlDesign:
        out_dir = Path(out_dir)
        p = out_dir / "design.json"
        if not p.exists():
            raise Rl2fpgaError(f"no da4ml design in {out_dir}; run `rl2fpga da4ml RUN_DIR` first")
        try:
            meta = json.loads(p.read_text())
            names = [str(n) for n in meta["sv_files"]]
            hashes = {str(k): str(v) for k, v in meta["sha256"].items()}
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
            raise Rl2fpgaError(f"{p} is corrupt ({e}); rerun `rl2fpga da4ml` to regenerate it") from None
        for n in names:  # plain file names in this folder only (run folders are untrusted)
            if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\.s?v", n) or n not in hashes:
                raise Rl2fpgaError(f"{p} names an unexpected source '{n[:80]}'; rerun `rl2fpga da4ml` to regenerate it")
        files = [out_dir / n for n in names]
        for f in files:
            got = hashlib.sha256(f.read_bytes()).hexdigest() if f.exists() else "missing"
            if got != hashes[f.name]:
                raise Rl2fpgaError(f"{f} was changed after generation (hash mismatch); rerun `rl2fpga da4ml` to regenerate it")
        return cls(out_dir, files, int(meta["input_bytes_per_beat"]), int(meta["latency_cycles"]), int(meta["stages"]),
                   int(meta["depth"]), meta.get("da4ml", {}))


def _render(**ctx: Any) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, autoescape=False)
    regs = hw.DEFAULT.regs  # ports and register addresses from the hardware contract
    return env.get_template("rl2fpga_da4ml_top.sv.j2").render(
        header=GENERATED_HEADER, top=TOP, regs=regs, aw=regs.addr_width, engine_id=hw.ENGINE_ID,
        ports=hw.axi_ports(regs.addr_width, 8 * int(ctx["bytes"])), **ctx)


def _assigns(model: GoldenModel, report: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    in_fmt, out_fmt = model.in_fmt, model.layers[-1].out_fmt
    eb = hw.elem_bytes(in_fmt.bits)
    ins = []
    for idx, r in enumerate(report["inputs"]):
        if r["width"] == 0:
            continue
        if r["f"] != in_fmt.frac or r["width"] > in_fmt.bits or bool(r["k"]) != in_fmt.signed:
            raise Rl2fpgaError(f"da4ml input {idx} has format k{r['k']} i{r['i']} f{r['f']}, not the golden input {in_fmt}; the lowering is inconsistent")
        ins.append({"index": idx, "lsb": r["lsb"], "width": r["width"], "src": 8 * eb * idx})
    outs = []
    for idx, r in enumerate(report["outputs"]):
        shift = out_fmt.frac - r["f"] if r["width"] else 0
        if r["width"] and (shift < 0 or r["width"] + shift > 32):
            raise Rl2fpgaError(f"da4ml output {idx} (k{r['k']} i{r['i']} f{r['f']}) does not map onto {out_fmt} in 32 bits")
        outs.append({"index": idx, "lsb": r["lsb"], "width": r["width"], "signed": bool(r["k"]), "shift": shift})
    return ins, outs


def generate(model: GoldenModel, out_dir: Path, input_bytes_per_beat: int = 8, rounding: str = "half_even",
             latency_cutoff: float = 5.0, check_inputs: np.ndarray | None = None,
             solver: dict[str, Any] | None = None, timeout_s: float = 1800.0) -> Da4mlDesign:
    """Lower ``model`` with da4ml and write the wrapped design into ``out_dir`` (replaced whole;
    the previous design stays until the new one is complete)."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        write_spec(model, tmp / "spec.json", rounding, latency_cutoff, check_inputs, solver)
        report = run_da4ml(tmp / "spec.json", tmp / "da4ml", timeout_s)
        in_fmt = model.in_fmt
        n_in = int(np.prod(model.in_shape))
        n_out = int(np.prod(model.layers[-1].out_shape))
        if len(report["inputs"]) != n_in or len(report["outputs"]) != n_out:
            raise Rl2fpgaError(f"da4ml core has {len(report['inputs'])} inputs / {len(report['outputs'])} outputs, the model {n_in} / {n_out}")
        bpb = int(input_bytes_per_beat)
        if bpb < 1 or bpb > 255:
            raise Rl2fpgaError(f"input_bytes_per_beat {bpb} is out of range; use 1..255")
        eb = hw.elem_bytes(in_fmt.bits)
        beats = math.ceil(n_in * eb / bpb)
        lat = int(report["latency_cycles"])
        depth = lat + 2  # enough to keep the output stream busy while the pipeline fills
        ins, outs = _assigns(model, report)
        sv = _render(
            model_name=model.meta.get("name", "policy") if isinstance(model.meta, dict) else "policy",
            n_layers=len(model.layers), da4ml_version=report["da4ml_version"], core=CORE, stages=report["stages"],
            lat=lat, bytes=bpb, beats=beats, n_out=n_out, depth=depth, pw=max(1, math.ceil(math.log2(depth))),
            cin_w=report["in_width"], cout_w=report["out_width"], beat_w=max(1, math.ceil(math.log2(beats + 1))),
            oi_w=max(1, math.ceil(math.log2(n_out + 1))),
            info=len(model.layers) | (0 << 8) | (bpb << 16), in_assigns=ins, out_assigns=outs,
        )
        files: list[str] = []
        for rel in report["files"]:
            src = tmp / "da4ml" / rel
            if src.name.endswith("_wrapper.v"):
                continue  # da4ml's own uniform-width wrapper: replaced by the AXI top
            # Verilator 5.006 (Debian 12) does not know the lint code WIDTHTRUNC (>= 5.008) and
            # stops on it; its older name WIDTH covers it (a comment, no change to the logic)
            text = src.read_text().replace("lint_off WIDTHTRUNC", "lint_off WIDTH").replace("lint_on WIDTHTRUNC", "lint_on WIDTH")
            (tmp / src.name).write_text(f"// {GENERATED_HEADER} (emitted by da4ml {report['da4ml_version']})\n{text}")
            files.append(src.name)
        (tmp / f"{TOP}.sv").write_text(sv)
        files.append(f"{TOP}.sv")
        meta = {
            "top": TOP, "core": CORE, "sv_files": files,
            "sha256": {n: hashlib.sha256((tmp / n).read_bytes()).hexdigest() for n in files},
            "lanes": 0, "input_bytes_per_beat": bpb, "beats_per_frame": beats,
            "latency_cycles": lat, "stages": report["stages"], "ii": 1, "depth": depth, "rounding": rounding,
            "da4ml": {k: v for k, v in report.items() if k not in ("inputs", "outputs", "check_outputs")},
        }
        atomic_write_json(tmp / "design.json", meta)
        if report.get("check_outputs") is not None:
            atomic_write_json(tmp / "check_outputs.json", report["check_outputs"])
        shutil.copy(tmp / "da4ml" / "report.json", tmp / "da4ml_report.json")
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}-old")
            if old.exists():
                shutil.rmtree(old)
            out_dir.rename(old)
            tmp.rename(out_dir)
            shutil.rmtree(old)
        else:
            tmp.rename(out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    design = Da4mlDesign.load(out_dir)
    design.report = report
    return design


def interpreter_outputs(design_dir: Path) -> np.ndarray | None:
    """da4ml's own bit-exact interpreter on the spec's ``check_inputs`` (output integers)."""
    p = Path(design_dir) / "check_outputs.json"
    return np.asarray(json.loads(p.read_text()), dtype=np.int64) if p.exists() else None
