"""The PYNQ-Z2 block design, described once: instance names, VLNVs, addresses and AXI DMA
parameters shared by the Vivado project template, the simulated device's .hwh and the tests.
Template rendering (Jinja2, StrictUndefined) lives here too."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from rl2fpga import GENERATED_HEADER
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.hls.engine.contract import REGS, TOP, Contract, RegisterMap
from rl2fpga.hls.engine.generator import RtlDesign

TEMPLATES = Path(__file__).parent / "templates"

PART = "xc7z020clg400-1"
BOARD_PART = "tul.com.tw:pynq-z2:part0:1.0"
DESIGN = "rl2fpga"
ENGINE_INSTANCE = "rl2fpga_engine_0"
DMA_INSTANCE = "axi_dma_0"
ENGINE_VLNV = f"rl2fpga.org:rl2fpga:{TOP}:1.0"
DMA_BASE = 0x40400000
ENGINE_BASE = 0x43C00000
RANGE_BYTES = 0x10000
ENGINE_TOP = TOP  # one name, from the hardware contract
HDL_SUFFIXES = (".sv", ".svh", ".v", ".vh")
MEM_SUFFIXES = (".mem", ".memh", ".hex")
SG_LENGTH_WIDTH = 26  # 64 MiB per transfer: an 84x84x4 frame (28,224 B) exceeds the 14-bit default


@dataclass(frozen=True)
class DesignParams:
    """What changes from model to model in the block design."""

    lanes: int
    input_bytes_per_beat: int
    fclk_mhz: float = 100.0

    @property
    def mm2s_width_bits(self) -> int:
        """MM2S memory-map and stream width: one engine input beat, at least 32 bits."""
        return max(32, 8 * self.input_bytes_per_beat)

    def dma_params(self) -> list[tuple[str, str]]:
        return [
            ("C_INCLUDE_SG", "0"),
            ("C_MICRO_DMA", "0"),
            ("C_SG_LENGTH_WIDTH", str(SG_LENGTH_WIDTH)),
            ("C_INCLUDE_MM2S", "1"),
            ("C_INCLUDE_MM2S_DRE", "0"),
            ("C_M_AXI_MM2S_DATA_WIDTH", str(self.mm2s_width_bits)),
            ("C_M_AXIS_MM2S_TDATA_WIDTH", str(8 * self.input_bytes_per_beat)),
            ("C_INCLUDE_S2MM", "1"),
            ("C_INCLUDE_S2MM_DRE", "0"),
            ("C_M_AXI_S2MM_DATA_WIDTH", "32"),
            ("C_S_AXIS_S2MM_TDATA_WIDTH", "32"),
        ]

    def fclk_divisors(self) -> tuple[int, int]:
        """FCLK0 divisors from the 1000 MHz IO PLL (the closest product)."""
        want = 1000.0 / self.fclk_mhz
        best = min(((a, b) for a in range(1, 64) for b in range(1, 64)), key=lambda d: abs(d[0] * d[1] - want))
        return best


def render(template: str, **ctx: Any) -> str:
    """Render ``board/templates/<template>`` (StrictUndefined; the generated header is given)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    return env.get_template(template).render(header=GENERATED_HEADER, **ctx)


HLS_PROJECT = "rl2fpga_policy"  # hls4ml project name (rl2fpga.hls.hls4ml.flow.PROJECT_NAME)
HLS_INSTANCE = f"{HLS_PROJECT}_axi_0"
HLS_VLNV = f"xilinx.com:hls:{HLS_PROJECT}_axi:1.0"


def sim_hwh(params: DesignParams, timestamp: str = "Mon Nov 30 00:00:00 2026", hls: bool = False) -> str:
    """The .hwh the simulated device loads: the design Vivado builds from our Tcl, or with
    ``hls=True`` the one hls4ml's VivadoAccelerator pynq-z2 script builds (``hier_0`` holding
    ``axi_dma_0`` and ``<project>_axi_0``, 32-bit float streams, no AXI4-Lite on the IP)."""
    d0, d1 = params.fclk_divisors()
    dma_params = params.dma_params()
    if hls:
        widths = {"C_M_AXI_MM2S_DATA_WIDTH": "32", "C_M_AXIS_MM2S_TDATA_WIDTH": "32"}
        dma_params = [(k, widths.get(k, v)) for k, v in dma_params]
    return render(
        "sim_system.hwh.j2",
        timestamp=timestamp,
        design=DESIGN,
        prefix="hier_0/" if hls else "",
        dma=DMA_INSTANCE,
        engine=HLS_INSTANCE if hls else ENGINE_INSTANCE,
        engine_vlnv=HLS_VLNV if hls else ENGINE_VLNV,
        engine_modtype=f"{HLS_PROJECT}_axi" if hls else "rl2fpga_engine_top",
        engine_axil=not hls,
        stream_in="in_r" if hls else "s_axis",
        stream_out="out_r" if hls else "m_axis",
        dma_params=dma_params,
        dma_base=DMA_BASE,
        engine_base=ENGINE_BASE,
        range_bytes=RANGE_BYTES,
        lanes=params.lanes,
        input_bytes_per_beat=params.input_bytes_per_beat,
        fclk_div0=d0,
        fclk_div1=d1,
        fclk_mhz=round(1000.0 / (d0 * d1), 6),
    )



@dataclass(frozen=True)
class RtlSources:
    """The generated engine in ``runs/<name>/rtl``: HDL in compile order, memory images and
    the parameters it was generated with (None where design.json does not say)."""

    hdl: list[Path]
    mems: list[Path]
    lanes: int | None
    input_bytes_per_beat: int | None
    frame_stack: bool = False
    regs: RegisterMap = REGS  # the register map the engine was built with


def rtl_sources(rtl_dir: Path) -> RtlSources:
    """What the RTL generator wrote: ``design.json``'s ``sv_files`` (in its order) when it
    exists, else every HDL file in the folder (packages first); ``$readmemh`` images beside
    them. A folder without the top level is a one-line error."""
    rtl_dir = Path(rtl_dir)
    meta: dict = {}
    if (rtl_dir / "design.json").exists():
        meta = RtlDesign.read_meta(rtl_dir)
    if meta.get("sv_files"):
        hdl = [rtl_dir / name for name in meta["sv_files"]]
    else:
        found = sorted(p for p in rtl_dir.glob("*") if p.suffix in HDL_SUFFIXES) if rtl_dir.exists() else []
        hdl = sorted(found, key=lambda p: (0 if re.search(r"^\s*package\b", p.read_text(errors="replace"), re.M) else 1, p.name))
    hdl = [p for p in hdl if p.exists()]
    if not hdl:
        raise Rl2fpgaError(f"no generated RTL in {rtl_dir}; run `rl2fpga rtl {rtl_dir.parent}` first")
    if not any(re.search(rf"\bmodule\s+{ENGINE_TOP}\b", p.read_text(errors="replace")) for p in hdl if p.suffix in (".sv", ".v")):
        raise Rl2fpgaError(f"no module {ENGINE_TOP} in {rtl_dir}; rerun `rl2fpga rtl {rtl_dir.parent}`")
    mems = sorted(p for p in rtl_dir.glob("*") if p.suffix in MEM_SUFFIXES)
    try:
        regs = Contract.from_dict(meta.get("contract")).regs
    except (KeyError, TypeError, ValueError) as e:
        raise Rl2fpgaError(f"{rtl_dir}/design.json has a corrupt contract ({e}); rerun `rl2fpga rtl {rtl_dir.parent}`") from None
    return RtlSources(hdl, mems, meta.get("lanes"), meta.get("input_bytes_per_beat"), bool(meta.get("frame_stack", False)),
                      regs)
