"""The generated RTL as an :class:`~rl2fpga.board.engine_models.EngineModel`: Verilator builds
``rl2fpga_engine_top`` plus a small C++ shim (``templates/engine_shim.cpp.j2``) into a shared
library, loaded with ctypes; every AXI4-Lite transaction and stream packet is clocked cycle by
cycle inside C++.

Why ctypes + a C++ shim rather than cocotb: the closed loop runs thousands of frames of tens
of thousands of cycles each; a cocotb coroutine per cycle costs ~10-50 us of Python per clock,
the shim's loop costs nanoseconds. cocotb stays the tool for the testbenches (random
back-pressure, mid-run resets); here the DMA drives the streams at full rate, as on the board.

The build goes to a git-ignored folder (the run's ``board/verilator`` or ``build/``), keyed by
a hash of the sources, and uses ccache when it is on PATH (``OBJCACHE``).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from rl2fpga.board import block_design as design
from rl2fpga.board.engine_models import EngineModel, frame_bytes
from rl2fpga.core.golden import GoldenModel
from rl2fpga.errors import Rl2fpgaError, ToolMissing
from rl2fpga.fsutil import atomic_write_text
from rl2fpga.manifest import build_trusted, record_build

TOP = design.ENGINE_TOP
AXIL_TIMEOUT = 1000


def verilator_available(rtl_dir: Path) -> bool:
    """Verilator on PATH and a generated top level in ``rtl_dir``."""
    if shutil.which("verilator") is None:
        return False
    try:
        design.rtl_sources(rtl_dir)
    except Rl2fpgaError:
        return False
    return True


def build_library(rtl_dir: Path, build_dir: Path, input_bytes_per_beat: int, opt: str = "-Os") -> Path:
    """Verilate + compile the engine and the shim into ``lib<top>.so`` (cached by content).

    ``opt`` is the C++ optimisation of the model: Verilator's default ``-Os`` builds fastest;
    ``-O2`` simulates ~1.8x faster (Atari CNN engine: 0.28 vs 0.15 Mcycles/s here) but takes
    ~1.5x longer to compile, which pays off only for long runs."""
    if shutil.which("verilator") is None:
        raise ToolMissing("verilator is not on PATH; install it (apt install verilator) or use board.emulator_engine=golden")
    # verilator runs in the build folder: every path it sees must be absolute
    rtl_dir, build_dir = Path(rtl_dir).resolve(), Path(build_dir).resolve()
    src = design.rtl_sources(rtl_dir)
    sources = [p for p in src.hdl if p.suffix in (".sv", ".v")]
    tdata_bytes = input_bytes_per_beat
    shim = design.render("engine_shim.cpp.j2", top=TOP, tdata_bits=8 * tdata_bytes, tdata_bytes=tdata_bytes,
                         addr_width=src.regs.addr_width)
    mem_dir = str(rtl_dir.resolve()) + "/"
    h = hashlib.sha256(shim.encode() + mem_dir.encode() + opt.encode())
    for p in sources:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    key = h.hexdigest()[:16]
    out = build_dir / key
    lib = out / f"lib{TOP}.so"
    # a cached library is loaded only when it is byte for byte what this user built there
    # (rl2fpga.manifest); a truncated, swapped or foreign one is removed with its objects
    if lib.exists() and build_trusted(lib):
        return lib
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "shim.cpp", shim)
    env = dict(os.environ)
    if shutil.which("ccache"):
        env["OBJCACHE"] = "ccache"
    cmd = [
        "verilator", "--cc", "--exe", "--build", "-j", "2", "-O3", "--x-assign", "fast", "--x-initial", "fast",
        "-Wno-fatal", "-Wno-lint", "-Wno-style", "--top-module", TOP, "-Mdir", str(out / "obj"),
        "-I" + str(rtl_dir), f'-GMEM_DIR="{mem_dir}"', "-CFLAGS", "-fPIC", "-MAKEFLAGS", f"OPT_FAST={opt} OPT_GLOBAL={opt}", "-LDFLAGS", "-shared", "-o", str(lib),
        *[str(p) for p in sources], str(out / "shim.cpp"),
    ]
    proc = subprocess.run(cmd, cwd=out, env=env, capture_output=True, text=True)
    if proc.returncode != 0 or not lib.exists():
        atomic_write_text(out / "build.log", proc.stdout + proc.stderr)
        first = next((ln for ln in (proc.stderr or proc.stdout).splitlines() if "%Error" in ln or "error" in ln), "see the log")
        raise Rl2fpgaError(f"verilator build of {rtl_dir} failed ({first.strip()[:200]}); full log: {out / 'build.log'}")
    record_build(lib)
    return lib


class VerilatorEngine(EngineModel):
    """The generated engine, clocked by Verilator behind the simulated DMA. ``stalls`` is the
    probability of an idle input cycle and of a back-pressure cycle on the output, per clock
    (a busy interconnect), drawn from ``seed``."""

    def __init__(self, rtl_dir: Path, build_dir: Path, model: GoldenModel, lanes: int, input_bytes_per_beat: int,
                 max_cycles_per_frame: int | None = None, opt: str = "-Os", stalls: float = 0.0, seed: int = 1):
        self.lanes = lanes
        self.input_bytes_per_beat = input_bytes_per_beat
        self.frame_len = frame_bytes(model, input_bytes_per_beat)
        dense = sum(model.dense_mults())
        self.max_cycles = max_cycles_per_frame or (dense + 16 * self.frame_len + 100_000)
        self.lib = ctypes.CDLL(str(build_library(Path(rtl_dir), Path(build_dir), input_bytes_per_beat, opt)))
        L = self.lib
        L.eng_new.restype = ctypes.c_void_p
        L.eng_free.argtypes = [ctypes.c_void_p]
        L.eng_cycles.argtypes = [ctypes.c_void_p]
        L.eng_cycles.restype = ctypes.c_uint64
        L.eng_reset.argtypes = [ctypes.c_void_p, ctypes.c_int]
        L.eng_axil_write.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_int]
        L.eng_axil_read.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint32), ctypes.c_int]
        L.eng_send.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int64]
        L.eng_send.restype = ctypes.c_int64
        L.eng_recv.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32), ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        L.eng_set_stalls.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint64]
        self.handle = ctypes.c_void_p(L.eng_new())
        per_mille = int(round(1000 * stalls))
        L.eng_set_stalls(self.handle, per_mille, per_mille, seed)
        self.last_send_cycles = 0
        self.hw_reset()

    def __del__(self) -> None:
        handle = getattr(self, "handle", None)
        if handle:
            self.lib.eng_free(handle)
            self.handle = None

    def hw_reset(self) -> None:
        self.lib.eng_reset(self.handle, 8)

    def axil_write(self, addr: int, value: int) -> None:
        rc = self.lib.eng_axil_write(self.handle, addr, value & 0xFFFFFFFF, AXIL_TIMEOUT)
        if rc == -2:
            raise Rl2fpgaError(f"AXI4-Lite write to {addr:#x} is outside the engine's register map; use the design's contract (design.json)")
        if rc != 0:
            raise Rl2fpgaError(f"engine RTL did not complete an AXI4-Lite write to {addr:#x} in {AXIL_TIMEOUT} cycles; the RTL's s_axil handshake is broken")

    def axil_read(self, addr: int) -> int:
        v = ctypes.c_uint32(0)
        rc = self.lib.eng_axil_read(self.handle, addr, ctypes.byref(v), AXIL_TIMEOUT)
        if rc == -2:
            raise Rl2fpgaError(f"AXI4-Lite read of {addr:#x} is outside the engine's register map; use the design's contract (design.json)")
        if rc != 0:
            raise Rl2fpgaError(f"engine RTL did not answer an AXI4-Lite read of {addr:#x} in {AXIL_TIMEOUT} cycles; the RTL's s_axil handshake is broken")
        return int(v.value)

    def send(self, data: bytes) -> None:
        # a timeout (-1) leaves the output incomplete; the DMA model then stays busy and the
        # driver reports it (with the engine's STATUS) as on the board
        self.last_send_cycles = int(self.lib.eng_send(self.handle, data, len(data), self.max_cycles))

    def recv(self, max_bytes: int) -> tuple[bytes, bool]:
        n = max_bytes // 4
        if n == 0:
            return b"", False
        buf = (ctypes.c_uint32 * n)()
        last = ctypes.c_int(0)
        got = self.lib.eng_recv(self.handle, buf, n, ctypes.byref(last))
        return bytes(memoryview(buf).cast("B")[: 4 * got]), bool(last.value)

    @property
    def sim_cycles(self) -> int:
        return int(self.lib.eng_cycles(self.handle))
