"""PYNQ driver for the rl2fpga sparse delta engine (pynq 4 API).

This one file runs on the PYNQ-Z2 (copied into the deploy bundle next to ``contract.py`` and
``manifest.json``) and in the tests (against :mod:`rl2fpga.board.simdevice`): there is no
test-only code in it. It needs only numpy, pynq and the hardware contract (register map and
stream format, :mod:`rl2fpga.hls.engine.contract`, which depends on numpy only). The register
offsets are the ones the design was built with (``manifest.json``'s ``engine.regs``).

    drv = EngineDriver("rl2fpga.bit", "manifest.json")   # downloads the bitstream
    drv.reset_state()                                    # episode start
    values, action = drv.infer(drv.quantize(obs))        # one time step
    drv.counters()                                       # cycles, events and MACs per layer

The engine sits behind an AXI DMA (MM2S -> ``s_axis``, ``m_axis`` -> S2MM) and an AXI4-Lite
port (:class:`contract.RegisterMap`). :class:`HlsAcceleratorDriver` puts the same interface on hls4ml's
VivadoAccelerator overlay (``NeuralNetworkOverlay.predict``).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pynq import DefaultIP, Overlay

try:  # installed rl2fpga (host, tests)
    from rl2fpga.errors import Rl2fpgaError
    from rl2fpga.hls.engine import contract
except ImportError:  # deploy bundle on the board: contract.py sits beside this file
    import contract  # type: ignore[no-redef]

    class Rl2fpgaError(Exception):  # type: ignore[no-redef]
        """A problem the user can fix (one line: the problem and the fix)."""


ENGINE_VLNV = f"rl2fpga.org:rl2fpga:{contract.TOP}:1.0"
DMA_VLNV_PREFIX = "xilinx.com:ip:axi_dma:"
MANIFEST_VERSION = 1
DMASR_ERRORS = {0x10: "DMAIntErr", 0x20: "DMASlvErr", 0x40: "DMADecErr",
                0x100: "SGIntErr", 0x200: "SGSlvErr", 0x400: "SGDecErr"}


class EngineIP(DefaultIP):
    """AXI4-Lite control port of the engine; bound by VLNV when the overlay loads."""

    bindto = [ENGINE_VLNV]

    def __init__(self, description: dict[str, Any]):
        super().__init__(description=description)


# -------------------------------------------------------------------------- the manifest


def load_manifest(path: str | Path | dict[str, Any]) -> dict[str, Any]:
    """The bundle's manifest.json (model shape, formats, engine parameters)."""
    if isinstance(path, dict):
        return path
    p = Path(path)
    if not p.exists():
        raise Rl2fpgaError(f"manifest {p} is missing; rebuild the bundle with `rl2fpga board RUN_DIR --action build`")
    try:
        m = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise Rl2fpgaError(f"manifest {p} is corrupt ({e.msg}); rebuild the bundle") from None
    if m.get("manifest_version") != MANIFEST_VERSION:
        raise Rl2fpgaError(f"manifest {p} has version {m.get('manifest_version')}, this driver reads {MANIFEST_VERSION}; rebuild the bundle")
    return m


def model_signature(layers: list[dict[str, Any]], weights_sha256: str) -> dict[str, Any]:
    """What must agree between a bundle and a model: shapes, formats, weights."""
    keys = ("name", "kind", "activation", "in_shape", "out_shape", "w_shape", "stride", "w_fmt", "in_fmt", "out_fmt")
    # per-output-channel weight scales are part of the model (absent: one format per layer)
    return {"layers": [{**{k: layer[k] for k in keys}, **({"w_frac": layer["w_frac"]} if layer.get("w_frac") else {})}
                       for layer in layers], "weights_sha256": weights_sha256}


def weights_digest(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over the integer weights and biases in name order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(np.asarray(arrays[name], dtype=np.int64))
        h.update(name.encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def check_same_model(manifest: dict[str, Any], expected: dict[str, Any], where: str) -> None:
    """One-line error naming the first difference between a bundle and the expected model."""
    got = model_signature(manifest["model"]["layers"], manifest["model"]["weights_sha256"])
    want = model_signature(expected["layers"], expected["weights_sha256"])
    if len(got["layers"]) != len(want["layers"]):
        raise Rl2fpgaError(
            f"bundle {where} was built for a model with {len(got['layers'])} layers, this one has {len(want['layers'])}; rebuild the bundle for this run"
        )
    for a, b in zip(got["layers"], want["layers"]):
        for k in a:
            if a[k] != b[k]:
                raise Rl2fpgaError(
                    f"bundle {where} was built for another model (layer {b['name']}: {k} {a[k]} != {b[k]}); rebuild the bundle for this run"
                )
    if got["weights_sha256"] != want["weights_sha256"]:
        raise Rl2fpgaError(f"bundle {where} holds other weights than this model; rebuild the bundle for this run")
    if manifest["model"].get("input_standardize") != expected.get("input_standardize"):
        raise Rl2fpgaError(f"bundle {where} standardises the inputs otherwise than this model; rebuild the bundle for this run")


# -------------------------------------------------------------------------- stream formats


def _elem_dtype(fmt: dict[str, Any]) -> np.dtype:
    return contract.elem_dtype(int(fmt["bits"]), bool(fmt["signed"]))


def _qrange(fmt: dict[str, Any]) -> tuple[int, int]:
    bits, signed = int(fmt["bits"]), bool(fmt["signed"])
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def quantize_input(obs: np.ndarray, fmt: dict[str, Any], shape: tuple[int, ...],
                   standardize: dict[str, Any] | None = None) -> np.ndarray:
    """An observation onto the input grid (as the golden model does): uint8 pixels p stay p
    for an 8-bit unsigned input with 8 fractional bits; floats round half to even and
    saturate. ``standardize`` (the manifest's ``input_standardize``: per input ``shift`` and
    ``offset``): ``round(obs * 2^(frac + shift)) - offset``, then saturate."""
    return grid_input(obs, fmt, shape, standardize)[0]


def grid_input(obs: np.ndarray, fmt: dict[str, Any], shape: tuple[int, ...],
               standardize: dict[str, Any] | None = None) -> tuple[np.ndarray, int]:
    """:func:`quantize_input` and how many elements it saturated (outside the input format)."""
    obs = np.asarray(obs)
    frac = int(fmt["bits"]) - int(fmt["integer"])
    if obs.dtype == np.uint8 and frac == 8 and not fmt["signed"] and int(fmt["bits"]) == 8:
        return obs.astype(np.int64).reshape(shape), 0
    lo, hi = _qrange(fmt)
    if standardize is not None:
        x = np.asarray(obs, dtype=np.float64).reshape(-1)
        q = np.round(x * np.exp2(frac + np.asarray(standardize["shift"], np.float64))) - np.asarray(standardize["offset"], np.float64)
    else:
        q = np.round(np.asarray(obs, dtype=np.float64) * (2.0**frac))
    return np.clip(q, lo, hi).astype(np.int64).reshape(shape), int(np.count_nonzero((q < lo) | (q > hi)))


class SaturationCount:
    """Input elements the driver saturated onto the input format, per frame (what the golden
    model counts as ``input_saturation``; the engine receives the clamped integers)."""

    def __init__(self) -> None:
        self.frames = self.elements = self.saturated = self.frames_saturated = self.max_per_frame = 0

    def add(self, n_saturated: int, n_elements: int) -> None:
        self.frames += 1
        self.elements += n_elements
        self.saturated += n_saturated
        self.frames_saturated += int(n_saturated > 0)
        self.max_per_frame = max(self.max_per_frame, n_saturated)

    def to_dict(self) -> dict[str, Any]:
        return {"frames": self.frames, "elements": self.elements, "saturated": self.saturated,
                "frames_saturated": self.frames_saturated, "max_per_frame": self.max_per_frame,
                "fraction": self.saturated / self.elements if self.elements else 0.0}


def _pl_clock_frequencies(hwh: Path) -> dict[int, float]:
    """PCW_ACT_FPGA<i>_PERIPHERAL_FREQMHZ from the .hwh (the PL clocks Vivado achieved)."""
    out: dict[int, float] = {}
    try:
        root = ET.parse(hwh).getroot()
    except (ET.ParseError, OSError):
        return out
    for p in root.iter("PARAMETER"):
        name = p.get("NAME", "")
        if name.startswith("PCW_ACT_FPGA") and name.endswith("_PERIPHERAL_FREQMHZ"):
            idx = name[len("PCW_ACT_FPGA") : -len("_PERIPHERAL_FREQMHZ")]
            if idx.isdigit():
                out[int(idx)] = float(p.get("VALUE", "0") or 0)
    return out


# -------------------------------------------------------------------------- the overlay


def load_overlay(bitfile: str | Path, device: Any = None, download: bool = True) -> Overlay:
    """``pynq.Overlay`` for ``bitfile`` (its .hwh beside it), with one-line errors."""
    bitfile = Path(bitfile).resolve()
    if not bitfile.exists():
        raise Rl2fpgaError(f"bitstream {bitfile} is missing; build it with Vivado (see board/README.md) and copy it into the bundle")
    hwh = bitfile.with_suffix(".hwh")
    if not hwh.exists():
        raise Rl2fpgaError(f"hardware handoff {hwh} is missing; copy the .hwh of the build next to the bitstream")
    try:
        ov = Overlay(str(bitfile), download=False, device=device)
    except RuntimeError as e:
        raise Rl2fpgaError(f"cannot load overlay {bitfile.name} ({str(e).splitlines()[0]}); check that a PYNQ board is present and the .hwh matches") from None
    # pynqmetadata 0.2 reads Zynq-7000 PL clock rates under the ZynqMP parameter name and
    # returns None, which Overlay.download cannot program; take them from the .hwh.
    freqs = _pl_clock_frequencies(hwh)
    for i, clk in ov.clock_dict.items():
        if clk.get("frequency") is None:
            clk["frequency"] = freqs.get(int(i), 100.0 if int(i) == 0 else 10.0)
    if download:
        ov.download()
    return ov


def find_ip(overlay: Overlay, vlnv_prefix: str) -> Any:
    """The bound driver of the one IP whose VLNV starts with ``vlnv_prefix`` (hierarchies
    included: ``hier_0/axi_dma_0`` is reached through its hierarchy)."""
    names = [n for n, ip in overlay.ip_dict.items() if str(ip["type"]).startswith(vlnv_prefix)]
    if len(names) != 1:
        raise Rl2fpgaError(
            f"overlay {Path(overlay.bitfile_name).name} has {len(names)} IP of type {vlnv_prefix}, expected 1; use the bitstream built for this bundle"
        )
    obj: Any = overlay
    for part in names[0].split("/"):
        obj = getattr(obj, part)
    return obj


def wait_dma(dma: Any, channel: Any, name: str, timeout_s: float, stalled: Callable[[], str]) -> None:
    """Wait for one AXI DMA channel (``name`` MM2S or S2MM), turning DMASR error bits and a
    stalled transfer into one-line errors; after an error the DMA is soft-reset and restarted."""
    offset = 0x30 if name == "S2MM" else 0x00
    deadline = time.monotonic() + timeout_s
    while True:
        sr = dma.mmio.read(offset + 4)
        errs = [label for bit, label in DMASR_ERRORS.items() if sr & bit]
        if errs:
            reset_dma(dma)
            raise Rl2fpgaError(
                f"AXI DMA {name} error (DMASR={sr:#06x}: {', '.join(errs)}); the DMA was reset, check the buffers and the bitstream's DMA configuration"
            )
        if sr & 0x2:  # Idle: transfer complete
            channel.wait()
            return
        if time.monotonic() > deadline:
            why = stalled()
            reset_dma(dma)
            raise Rl2fpgaError(f"AXI DMA {name} timed out after {timeout_s} s ({why}); check that the bitstream matches the manifest")


def reset_dma(dma: Any) -> None:
    """Soft-reset the AXI DMA (both channels) and start them again."""
    dma.mmio.write(0x00, 0x4)
    for ch in (dma.sendchannel, dma.recvchannel):
        ch._active_buffer = None
        ch.start()


# -------------------------------------------------------------------------- the driver


class EngineDriver:
    """The sparse delta engine on a PYNQ overlay: AXI DMA streams + AXI4-Lite control."""

    def __init__(
        self,
        bitfile: str | Path,
        manifest: str | Path | dict[str, Any],
        device: Any = None,
        download: bool = True,
        timeout_s: float = 2.0,
    ):
        self.manifest = load_manifest(manifest)
        self.timeout_s = timeout_s
        model = self.manifest["model"]
        self.in_shape = tuple(int(s) for s in model["in_shape"])
        self.in_fmt = model["in_fmt"]
        self.input_standardize = model.get("input_standardize")  # absent: identity
        self.saturation = SaturationCount()
        self.n_out = int(model["n_out"])
        self.n_layers = len(model["layers"])
        eng = self.manifest["engine"]
        self.bytes_per_beat = int(eng["input_bytes_per_beat"])
        self.lanes = int(eng["lanes"])
        self.clock_mhz = float(eng.get("clock_mhz", 100.0))
        # frame stack kept in the engine: send the newest frame only (contract)
        self.frame_stack = bool(eng.get("frame_stack", False))
        # a manifest from before the contract was recorded: the default map
        self.regs = contract.RegisterMap.from_dict(eng["regs"]) if "regs" in eng else contract.REGS
        self._kept: np.ndarray | None = None  # the last frame sent (frame stack)

        self.overlay = load_overlay(bitfile, device, download)
        self.dma = find_ip(self.overlay, DMA_VLNV_PREFIX)
        self.ip = find_ip(self.overlay, ENGINE_VLNV)
        self._check_hardware()

        n_in = int(np.prod(self.in_shape))
        elem = _elem_dtype(self.in_fmt)
        self.frame_bytes = math.ceil(n_in * elem.itemsize / self.bytes_per_beat) * self.bytes_per_beat
        if self.frame_stack:  # K planes of h * w pixels, each padded to whole beats
            h, w, k = self.in_shape
            self.plane_bytes = math.ceil(h * w / self.bytes_per_beat) * self.bytes_per_beat
            self.frame_bytes = k * self.plane_bytes
        self.in_buf = self.overlay.device.allocate((self.frame_bytes,), np.uint8)
        self.in_buf[:] = 0  # the last beat's unused bytes stay zero (pynq.allocate does not clear)
        self.in_view = self.in_buf[: n_in * elem.itemsize].view(elem)
        self.out_buf = self.overlay.device.allocate((self.n_out + 1,), np.int32)
        self.set_thresholds([int(t) for t in self.manifest["model"]["thresholds"]])
        self.reset_state()

    # -- setup ----------------------------------------------------------------------------
    def _check_hardware(self) -> None:
        ident = self.ip.read(self.regs.id)
        if ident != contract.ENGINE_ID:
            raise Rl2fpgaError(f"engine ID register reads {ident:#010x}, expected {contract.ENGINE_ID:#010x}; the bitstream is not an rl2fpga engine or is not loaded")
        info = self.ip.read(self.regs.info)
        hw = {"layers": info & 0xFF, "lanes": (info >> 8) & 0xFF, "input_bytes_per_beat": (info >> 16) & 0xFF,
              "frame_stack": bool(info & contract.INFO_FRAME_STACK)}
        # rows sent last to first (rtl.row_order = bottom_up): what the hardware says it takes
        self.bottom_up = bool(info & contract.INFO_BOTTOM_UP)
        want = {"layers": self.n_layers, "lanes": self.lanes, "input_bytes_per_beat": self.bytes_per_beat,
                "frame_stack": self.frame_stack}
        for k in hw:
            if hw[k] != want[k]:
                raise Rl2fpgaError(f"bitstream has {k}={hw[k]} but the manifest says {want[k]}; the bitstream was built for another model, rebuild the bundle")

    # -- control --------------------------------------------------------------------------
    def reset_state(self) -> None:
        """Episode start: x_hat and accumulators back to the bias."""
        self.ip.write(self.regs.ctrl, contract.CTRL_RESET_STATE)
        self._kept = None  # the engine now expects the whole stack

    def reset_counters(self) -> None:
        self.ip.write(self.regs.ctrl, contract.CTRL_RESET_COUNTERS)

    def set_thresholds(self, thresholds: list[int]) -> None:
        """Delta threshold T_int per layer (input LSBs of that layer)."""
        if len(thresholds) != self.n_layers:
            raise Rl2fpgaError(f"{len(thresholds)} thresholds given for {self.n_layers} layers; give one per layer")
        for k, t in enumerate(thresholds):
            if not 0 <= int(t) <= 0xFFFFFFFF:
                raise Rl2fpgaError(f"threshold {t} of layer {k} is out of range; use 0..2^32-1")
            self.ip.write(self.regs.threshold_reg(k), int(t))
        self.thresholds = [int(t) for t in thresholds]

    def quantize(self, obs: np.ndarray) -> np.ndarray:
        """``obs`` on the input grid; saturated elements are counted in ``self.saturation``."""
        x, n_sat = grid_input(obs, self.in_fmt, self.in_shape, self.input_standardize)
        self.saturation.add(n_sat, x.size)
        return x

    # -- one step -------------------------------------------------------------------------
    def infer(self, frame: np.ndarray) -> tuple[np.ndarray, int]:
        """One time step on an integer frame (``quantize(obs)``): outputs and greedy action."""
        x = np.asarray(frame)
        if not np.issubdtype(x.dtype, np.integer):
            raise Rl2fpgaError(f"frame has dtype {x.dtype}, the engine takes integers on the input grid; pass quantize(obs)")
        if x.size != self.in_view.size:
            raise Rl2fpgaError(f"frame has {x.size} elements, the engine takes {self.in_view.size} {self.in_shape}; pass quantize(obs)")
        lo, hi = _qrange(self.in_fmt)
        if x.min() < lo or x.max() > hi:
            raise Rl2fpgaError(f"frame values outside the input format ({lo}..{hi}); pass quantize(obs)")
        nbytes = 0
        if self.frame_stack:
            nbytes = self._stage_stack(x.reshape(self.in_shape))
        else:
            self.in_view[:] = x.reshape(-1)
        self.dma.recvchannel.transfer(self.out_buf)
        self.dma.sendchannel.transfer(self.in_buf, nbytes=nbytes)
        self._wait(self.dma.sendchannel, "MM2S")
        self._wait(self.dma.recvchannel, "S2MM")
        out = np.array(self.out_buf, dtype=np.int64)
        return out[: self.n_out], int(out[self.n_out])

    def _stage_stack(self, x: np.ndarray) -> int:
        """Frame stack: put the newest frame (or, when the kept frames are not this frame's
        older ones, the whole stack after a CTRL_FULL_FRAME) into the buffer; returns the
        bytes to send."""
        h, w, k = self.in_shape
        newest = self._kept is not None and np.array_equal(x[..., :-1], self._kept[..., 1:])
        if not newest and self._kept is not None:
            self.ip.write(self.regs.ctrl, contract.CTRL_FULL_FRAME)
        rows = x[::-1] if self.bottom_up else x
        planes = [rows[..., -1]] if newest else [rows[..., i] for i in range(k)]
        for i, plane in enumerate(planes):
            self.in_buf[i * self.plane_bytes : i * self.plane_bytes + h * w] = plane.reshape(-1).astype(np.uint8)
        self._kept = x.copy()
        return len(planes) * self.plane_bytes

    def _wait(self, channel: Any, name: str) -> None:
        def stalled() -> str:
            status = self.ip.read(self.regs.status)
            return "the engine flagged a misplaced TLAST" if status & contract.STATUS_ERROR else "the engine did not answer"

        wait_dma(self.dma, channel, name, self.timeout_s, stalled)

    # -- counters -------------------------------------------------------------------------
    def counters(self) -> dict[str, Any]:
        """The engine's counters for the last frame (and totals since the counter reset)."""
        lo, hi = self.ip.read(self.regs.total_cycles_lo), self.ip.read(self.regs.total_cycles_hi)
        return {
            "cycles": self.ip.read(self.regs.cycles),
            "frames": self.ip.read(self.regs.frames),
            "total_cycles": (hi << 32) | lo,
            "action": self.ip.read(self.regs.action),
            "events": [self.ip.read(self.regs.events_reg(k)) for k in range(self.n_layers)],
            "macs": [self.ip.read(self.regs.macs_reg(k)) for k in range(self.n_layers)],
        }


class HlsStreamOverlay:
    """An hls4ml VivadoAccelerator (pynq-z2, ``axi_stream``) design, speaking the protocol of
    hls4ml's ``NeuralNetworkOverlay.predict``: float32 inputs through ``hier_0/axi_dma_0``,
    float32 outputs back. Loaded with :func:`load_overlay` (pynq 4 clock fix, one-line errors,
    DMA errors and timeouts reported like the engine's). The first input word is rl2fpga's
    episode-reset flag (hls/delta_layer.py: nonzero clears the delta stages' stored inputs), so
    the input buffer holds ``n_in + 1`` words."""

    def __init__(self, bitfile: str | Path, n_in: int, n_out: int, device: Any = None, download: bool = True,
                 timeout_s: float = 2.0):
        self.overlay = load_overlay(bitfile, device, download)
        self.dma = find_ip(self.overlay, DMA_VLNV_PREFIX)
        self.timeout_s = timeout_s
        self.input_buffer = self.overlay.device.allocate((n_in + 1,), np.float32)
        self.output_buffer = self.overlay.device.allocate((n_out,), np.float32)

    def predict(self, x: np.ndarray) -> np.ndarray:
        self.input_buffer[:] = np.asarray(x, dtype=np.float32).reshape(-1)
        self.dma.sendchannel.transfer(self.input_buffer)
        self.dma.recvchannel.transfer(self.output_buffer)
        stalled = lambda: "the HLS IP did not answer"  # noqa: E731
        wait_dma(self.dma, self.dma.sendchannel, "MM2S", self.timeout_s, stalled)
        wait_dma(self.dma, self.dma.recvchannel, "S2MM", self.timeout_s, stalled)
        return np.array(self.output_buffer)


class HlsAcceleratorDriver:
    """hls4ml's VivadoAccelerator overlay behind the :class:`EngineDriver` interface.

    ``overlay`` is anything with hls4ml's ``predict(X)``: :class:`HlsStreamOverlay` (what
    :meth:`open` builds) or hls4ml's own ``NeuralNetworkOverlay`` (which downloads with pynq's
    unpatched clock code). Integers travel as exact float32 values on the grid, after the
    episode-reset flag (1.0 on the first step after :meth:`reset_state`, else 0.0).
    The delta thresholds are compiled into the HLS design.
    """

    @classmethod
    def open(cls, bitfile: str | Path, manifest: str | Path | dict[str, Any], device: Any = None) -> HlsAcceleratorDriver:
        m = load_manifest(manifest)
        n_in = int(np.prod(m["model"]["in_shape"]))
        return cls(HlsStreamOverlay(bitfile, n_in, int(m["model"]["n_out"]), device=device), m)

    def __init__(self, overlay: Any, manifest: str | Path | dict[str, Any]):
        self.nn = overlay
        self.manifest = load_manifest(manifest)
        model = self.manifest["model"]
        self.in_shape = tuple(int(s) for s in model["in_shape"])
        self.in_fmt = model["in_fmt"]
        self.input_standardize = model.get("input_standardize")  # absent: identity
        self.saturation = SaturationCount()
        self.out_fmt = model["out_fmt"]
        self.n_out = int(model["n_out"])
        self.thresholds = [int(t) for t in model["thresholds"]]
        self._last_s = 0.0
        self._reset_next = True  # the first frame starts an episode

    @staticmethod
    def _lsb(fmt: dict[str, Any]) -> float:
        return 2.0 ** -(int(fmt["bits"]) - int(fmt["integer"]))

    def reset_state(self) -> None:
        """Episode start: the next frame carries the reset flag (the delta stages' stored
        inputs are cleared before it is compared)."""
        self._reset_next = True

    def set_thresholds(self, thresholds: list[int]) -> None:
        if [int(t) for t in thresholds] != self.thresholds:
            raise Rl2fpgaError(f"the HLS design has its thresholds {self.thresholds} compiled in; rebuild it (rl2fpga hls) to change them")

    def quantize(self, obs: np.ndarray) -> np.ndarray:
        """``obs`` on the input grid; saturated elements are counted in ``self.saturation``."""
        x, n_sat = grid_input(obs, self.in_fmt, self.in_shape, self.input_standardize)
        self.saturation.add(n_sat, x.size)
        return x

    def infer(self, frame: np.ndarray) -> tuple[np.ndarray, int]:
        x = np.asarray(frame, dtype=np.float64).reshape(-1) * self._lsb(self.in_fmt)
        x = np.concatenate([[1.0 if self._reset_next else 0.0], x])
        self._reset_next = False
        t0 = time.perf_counter()
        y = np.asarray(self.nn.predict(x.astype(np.float32)), dtype=np.float64).reshape(-1)
        self._last_s = time.perf_counter() - t0
        q = np.round(y / self._lsb(self.out_fmt)).astype(np.int64)[: self.n_out]
        return q, int(np.argmax(q))

    def counters(self) -> dict[str, Any]:
        return {"cycles": None, "host_seconds": self._last_s, "events": [], "macs": []}
