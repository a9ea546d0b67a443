"""``python -m benchmarks``: list the benchmark scripts; ``python -m benchmarks NAME [ARGS...]``
runs ``benchmarks/NAME.py`` with ARGS; ``python -m benchmarks --all`` runs every one in turn
(each with its default, short arguments)."""

from __future__ import annotations

import ast
import runpy
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def scripts() -> dict[str, str]:
    """name -> first line of the module docstring, for every benchmark script."""
    out = {}
    for p in sorted(HERE.glob("*.py")):
        if p.name.startswith("_"):
            continue
        doc = ast.get_docstring(ast.parse(p.read_text())) or ""
        out[p.stem] = doc.strip().splitlines()[0] if doc.strip() else ""
    return out


def main(argv: list[str]) -> int:
    found = scripts()
    if not argv or argv[0] in ("-h", "--help", "--list"):
        print("benchmarks (python -m benchmarks NAME [ARGS]):")
        for name, doc in found.items():
            print(f"  {name:24s} {doc}")
        return 0
    if argv[0] == "--all":
        rc = 0
        for name in found:
            print(f"== {name}", flush=True)
            rc |= subprocess.call([sys.executable, "-m", f"benchmarks.{name}"])
        return rc
    name = argv[0].removesuffix(".py")
    if name not in found:
        print(f"error: unknown benchmark '{name}'; choose one of {', '.join(found)}", file=sys.stderr)
        return 2
    sys.argv = [str(HERE / f"{name}.py"), *argv[1:]]
    runpy.run_module(f"benchmarks.{name}", run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
