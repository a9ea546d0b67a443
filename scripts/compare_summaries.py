"""Compare two runs' ``summary.json`` (acceptance check: ``make demo`` before and after a change
on the same machine and seed gives the same figures).

    python scripts/compare_summaries.py runs_before/cartpole/summary.json runs_after/cartpole/summary.json

Wall times (``timings_s``), provenance and the host's per-step latency (``latency.host_us``) are
measured, not computed, and are left out. Exit 1 and one line per difference (key order included)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

MEASURED = {("timings_s",), ("provenance",), ("latency", "host_us")}


def differences(a: Any, b: Any, path: tuple[str, ...] = ()) -> list[str]:
    if path in MEASURED:
        return []
    where = ".".join(path) or "(top)"
    if isinstance(a, dict) and isinstance(b, dict):
        out = [] if list(a) == list(b) else [f"{where}: keys differ: {list(a)} vs {list(b)}"]
        for k in a:
            if k in b:
                out += differences(a[k], b[k], (*path, k))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, (*path, str(i)))]
    return [] if a == b else [f"{where}: {json.dumps(a)[:100]} vs {json.dumps(b)[:100]}"]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    a, b = (json.loads(Path(p).read_text()) for p in argv)
    diffs = differences(a, b)
    for d in diffs:
        print(d)
    print(f"{len(diffs)} differences")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
