"""Where a run's figures came from: the rl2fpga version and git commit, the Python packages and
tools that computed them, and the machine (CPU, cores). Written as ``provenance.json`` by the
report step and shown in the report; the README's measured tables quote the machine line."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("numpy", "tensorflow-cpu", "qkeras", "tensorflow-model-optimization", "hls4ml", "cocotb", "gymnasium",
            "ale-py", "mujoco", "onnx", "pynq", "matplotlib", "rich")
TOOLS = {"verilator": ["verilator", "--version"], "yosys": ["yosys", "-V"], "g++": ["g++", "--version"],
         "iverilog": ["iverilog", "-V"], "vivado": ["vivado", "-version"], "vitis_hls": ["vitis_hls", "-version"]}


def _first_line(cmd: list[str]) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (res.stdout or res.stderr).strip()
    return text.splitlines()[0].strip() if text else None


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = None
    return out


def tool_versions() -> dict[str, str | None]:
    return {name: _first_line(cmd) for name, cmd in TOOLS.items()}


def git_commit(root: Path | None = None) -> dict[str, Any]:
    """The commit of the rl2fpga source (a checkout), and whether it had local changes."""
    from rl2fpga.paths import SOURCE_ROOT

    root = root or SOURCE_ROOT
    if shutil.which("git") is None or not (root / ".git").exists():
        return {"commit": None, "dirty": None, "note": "installed package (no git checkout)"}
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=30).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True,
                                text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None, "note": "git failed"}
    return {"commit": commit or None, "dirty": bool(status.strip()), "note": None}


def machine() -> dict[str, Any]:
    cpu = platform.processor() or None
    try:
        text = Path("/proc/cpuinfo").read_text()
        m = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
        if m:
            cpu = m.group(1).strip()
    except OSError:
        pass
    mem_gb = None
    try:
        m = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
        mem_gb = round(int(m.group(1)) / 2**20, 1) if m else None
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    return {"cpu": cpu, "cores": cores, "memory_gb": mem_gb, "os": platform.platform(), "python": platform.python_version()}


def machine_line(m: dict[str, Any]) -> str:
    return f"{m.get('cpu') or 'unknown CPU'}, {m.get('cores')} cores, {m.get('memory_gb')} GB, {m.get('os')}"


def collect() -> dict[str, Any]:
    from rl2fpga import __version__

    return {"rl2fpga": __version__, "git": git_commit(), "packages": package_versions(), "tools": tool_versions(),
            "machine": machine()}
