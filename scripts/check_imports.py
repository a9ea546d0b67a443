"""Every ``from rl2fpga... import name`` in the tree (module level or inside functions) names
something that exists, and the imports made inside functions form no cycle between modules.

    python scripts/check_imports.py      # exit 1 and one line per problem

A function-level import hides a dependency from readers and tools; a cycle through them means
two modules need each other and belong together or need a third module they both import."""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# source folder -> package name (pyproject's package-dir)
ROOTS = {"rl2fpga": "rl2fpga", "train": "rl2fpga.train", "quantize": "rl2fpga.quantize", "hls": "rl2fpga.hls",
         "board": "rl2fpga.board", "rtl_tests": "rl2fpga.rtl_tests", "configs": "rl2fpga.configs"}


# also checked for names that do not exist (not part of the cycle check): code that uses rl2fpga
USERS = ("tests", "benchmarks", "scripts")


def module_files() -> dict[str, Path]:
    out = {}
    for folder, pkg in ROOTS.items():
        for f in (REPO / folder).rglob("*.py"):
            rel = f.relative_to(REPO / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([pkg, *parts])] = f
    return out


def imports(tree: ast.AST, modname: str, known: set[str]) -> list[tuple[str, list[str], bool, int]]:
    """(module, names, inside_function, line) for every import of an rl2fpga module."""
    found = []

    def visit(node: ast.AST, in_fn: bool) -> None:
        for child in ast.iter_child_nodes(node):
            fn = in_fn or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.ImportFrom) and child.module and child.module.startswith("rl2fpga"):
                found.append((child.module, [a.name for a in child.names], fn, child.lineno))
            elif isinstance(child, ast.Import):
                for a in child.names:
                    if a.name.startswith("rl2fpga"):
                        found.append((a.name, [], fn, child.lineno))
            visit(child, fn)

    visit(tree, False)
    return found


def main() -> int:
    files = module_files()
    known = set(files)
    users = {f"{folder}.{f.stem}": f for folder in USERS for f in sorted((REPO / folder).glob("*.py"))}
    problems: list[str] = []
    fn_edges: dict[str, set[str]] = {}
    all_edges: dict[str, set[str]] = {}
    for mod, f in sorted({**files, **users}.items()):
        tree = ast.parse(f.read_text(), str(f))
        for target, names, in_fn, line in imports(tree, mod, known):
            where = f"{f.relative_to(REPO)}:{line}"
            if target not in known:
                problems.append(f"{where}: no module {target}")
                continue
            tgt_mods = [target]
            for n in names:
                if f"{target}.{n}" in known:  # a submodule
                    tgt_mods.append(f"{target}.{n}")
                    continue
                try:
                    m = importlib.import_module(target)
                except Exception as e:  # noqa: BLE001 - report, do not crash
                    problems.append(f"{where}: importing {target} failed: {type(e).__name__}: {e}")
                    break
                if not hasattr(m, n):
                    problems.append(f"{where}: {target} has no name {n}")
            for t in tgt_mods if mod in files else ():
                all_edges.setdefault(mod, set()).add(t)
                if in_fn:
                    fn_edges.setdefault(mod, set()).add(t)
    # a cycle that uses at least one function-level import edge
    for a, targets in sorted(fn_edges.items()):
        for b in sorted(targets):
            path = _path(all_edges, b, a)
            if path is not None and a != b:
                problems.append(f"import cycle through a function-level import: {' -> '.join([a, *path])}")
    for p in problems:
        print(p)
    print(f"{len(files)} modules, {sum(len(v) for v in all_edges.values())} import edges, "
          f"{sum(len(v) for v in fn_edges.values())} inside functions: {len(problems)} problems")
    return 1 if problems else 0


def _path(edges: dict[str, set[str]], start: str, goal: str) -> list[str] | None:
    """A path start -> ... -> goal through the import graph (BFS), or None."""
    prev: dict[str, str | None] = {start: None}
    queue = [start]
    while queue:
        cur = queue.pop(0)
        if cur == goal:
            out = [cur]
            while prev[out[-1]] is not None:
                out.append(prev[out[-1]])  # type: ignore[arg-type]
            return out[::-1]
        for nxt in sorted(edges.get(cur, ())):
            if nxt not in prev:
                prev[nxt] = cur
                queue.append(nxt)
    return None


if __name__ == "__main__":
    sys.exit(main())
