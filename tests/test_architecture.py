"""Architecture rules of issue #11, checked over the whole tree:

* every ``from rl2fpga... import name`` resolves and the imports made inside functions form no
  cycle (scripts/check_imports.py finds no problem);
* no module outside rl2fpga/core/layers.py switches on a layer kind string: layer kinds are
  classes, and each back end lowers a layer by its class;
* no Python function over 80 lines outside the training loops, no SystemVerilog module (or
  template of one) over 300 lines: one job per function and per module.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE_FOLDERS = ("rl2fpga", "train", "quantize", "hls", "board", "rtl_tests", "configs")
LAYERS_MODULE = Path("rl2fpga/core/layers.py")
# the kind names of the golden model and of the importers' records
KIND_NAMES = {"dense", "conv2d", "conv", "flatten", "delta", "delta_input"}
# files that may read the serialised kind: they run where rl2fpga is not installed, so they
# cannot use the layer classes (each with why)
STANDALONE = {
    Path("board/golden_ref.py"): "numpy-only golden reference that runs on the PYNQ board, reads formats.json itself",
}


def test_check_imports_finds_no_missing_name_and_no_cycle() -> None:
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "check_imports.py")], capture_output=True, text=True,
                       cwd=REPO, timeout=600)
    problems = [line for line in r.stdout.splitlines() if line and not line.startswith(tuple("0123456789"))]
    assert r.returncode == 0 and not problems, "\n".join(problems) or r.stderr[-2000:]


def _is_kind_name(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and node.value in KIND_NAMES
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return any(_is_kind_name(e) for e in node.elts)
    return False


def _is_kind_field(node: ast.AST) -> bool:
    """``x.kind`` or ``x["kind"]`` / ``x.get("kind")``."""
    if isinstance(node, ast.Attribute):
        return node.attr == "kind"
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant) and node.slice.value == "kind"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
        return bool(node.args) and isinstance(node.args[0], ast.Constant) and node.args[0].value == "kind"
    return False


def kind_switches(tree: ast.AST) -> list[int]:
    """Lines that compare against a layer kind name, compare a ``kind`` field with a string, or
    ``match`` on a kind name."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            strings = any(isinstance(s, ast.Constant) and isinstance(s.value, str) or _is_kind_name(s) for s in sides)
            if any(_is_kind_name(s) for s in sides) or (any(_is_kind_field(s) for s in sides) and strings):
                lines.append(node.lineno)
        elif isinstance(node, ast.MatchValue) and _is_kind_name(node.value):
            lines.append(node.value.lineno)
    return lines


def test_the_detector_sees_string_switches() -> None:
    src = ('if layer.kind == "conv2d": pass\nif d["kind"] != "x": pass\nif k in ("dense", "conv"): pass\n'
           'if layer.kind is Conv2D: pass\nif mode == "auto": pass\nmatch k:\n    case "flatten": pass\n')
    assert kind_switches(ast.parse(src)) == [1, 2, 3, 7]


def test_no_layer_kind_string_switch_outside_the_layers_module() -> None:
    found = []
    for folder in PACKAGE_FOLDERS:
        for f in sorted((REPO / folder).rglob("*.py")):
            rel = f.relative_to(REPO)
            if rel == LAYERS_MODULE or rel in STANDALONE:
                continue
            found += [f"{rel}:{n}" for n in kind_switches(ast.parse(f.read_text(), str(f)))]
    assert not found, "layer kind strings switched on (lower by class instead): " + ", ".join(found)


# the RL training loops read top to bottom as one algorithm (cleanrl style): the only long functions
TRAINING_LOOPS = {("train/dqn.py", "train_dqn"), ("train/dqn.py", "_train_vector"), ("train/sac.py", "train_sac")}
MAX_FUNCTION_LINES = 80
MAX_SV_LINES = 300


def long_functions(folders: tuple[str, ...], exempt: set[tuple[str, str]] = TRAINING_LOOPS) -> list[str]:
    out = []
    for folder in folders:
        for f in sorted((REPO / folder).rglob("*.py")):
            rel = f.relative_to(REPO).as_posix()
            for node in ast.walk(ast.parse(f.read_text(), rel)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    n = node.end_lineno - node.lineno + 1
                    if n > MAX_FUNCTION_LINES and (rel, node.name) not in exempt:
                        out.append(f"{rel}:{node.lineno} {node.name} ({n} lines)")
    return out


def test_no_long_python_function_outside_the_training_loops() -> None:
    long = long_functions(PACKAGE_FOLDERS + ("benchmarks", "scripts"))
    assert long == [], "split these into named pieces:\n" + "\n".join(long)
    # the detector sees the long training loops once they are not exempt
    seen = long_functions(("train",), exempt=set())
    assert {f.split()[1] for f in seen} == {name for _, name in TRAINING_LOOPS}, seen


def test_no_long_systemverilog_module() -> None:
    files = sorted((REPO / "hls").rglob("*.sv")) + sorted((REPO / "hls").rglob("*.sv.j2")) + sorted((REPO / "rtl_tests").rglob("*.sv"))
    assert len(files) >= 10  # the engine's modules are found
    long = [f"{f.relative_to(REPO)} ({n} lines)" for f in files if (n := len(f.read_text().splitlines())) > MAX_SV_LINES]
    assert long == [], "split these modules: " + ", ".join(long)
