"""Unit tests of single engine modules (cocotb + Verilator) against Python models."""

from __future__ import annotations

import os

import pytest

from rl2fpga.fsutil import atomic_write_text
from rl2fpga.hls.cosim.harness import BUILD_ROOT, _sim_env, have_verilator
from rl2fpga.hls.engine.contract import render_sv_package
from rl2fpga.hls.engine.generator import PACKAGE_FILE, RTL_SRC

pytestmark = [pytest.mark.verilator, pytest.mark.skipif(not have_verilator(), reason="verilator not installed")]


@pytest.mark.parametrize("shape,beat_bytes", [((3, 5, 3), 8), ((2, 7, 4), 16), ((1, 1, 5), 8)])
def test_delta_encoder(shape: tuple[int, int, int], beat_bytes: int) -> None:
    from cocotb.runner import get_runner

    _sim_env()
    h, w, c = shape
    build = BUILD_ROOT / "units" / f"encoder_{h}x{w}x{c}_{beat_bytes}"
    runner = get_runner("verilator")
    build.mkdir(parents=True, exist_ok=True)
    atomic_write_text(build / PACKAGE_FILE, render_sv_package())  # generated, as in a design
    runner.build(
        sources=[str(build / PACKAGE_FILE)] + [str(RTL_SRC / n) for n in ("rl2fpga_serializer.sv", "rl2fpga_delta_encoder.sv")],
        hdl_toplevel="rl2fpga_delta_encoder",
        build_dir=str(build),
        parameters={"BYTES": beat_bytes, "IN_H": h, "IN_W": w, "IN_C": c},
        build_args=["-Wno-fatal"],
    )
    env = {"ENC_H": str(h), "ENC_W": str(w), "ENC_C": str(c), "ENC_BYTES": str(beat_bytes)}
    os.environ.update(env)
    runner.test(test_module="rl2fpga.rtl_tests.encoder_tb", hdl_toplevel="rl2fpga_delta_encoder",
                build_dir=str(build), test_dir=str(build), extra_env=env)
