"""Vendor synthesis of the hls4ml project: runs only where Vitis HLS / Vivado HLS is on PATH."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from rl2fpga.config import HlsConfig, RunConfig
from rl2fpga.core.golden import Fmt, random_model
from rl2fpga.hls.hls4ml import flow

pytestmark = [pytest.mark.vivado, pytest.mark.slow]

TOOLS = {"Vitis": "vitis-run", "Vivado": "vivado_hls"}


@pytest.mark.parametrize("backend", ["Vitis", "Vivado"])
def test_synthesis_reports_latency_and_resources(backend: str, tmp_path: Path) -> None:
    if shutil.which(TOOLS[backend]) is None:
        pytest.skip(f"{TOOLS[backend]} not on PATH: {backend} synthesis needs the Xilinx tools")
    from rl2fpga.hls.hls4ml.build import vendor_build

    rng = np.random.default_rng(0)
    g = random_model(rng, (4,), [("dense", 16), ("dense", 2)], sparsity=0.8, in_fmt=Fmt(8, 3, True), threshold=1)
    project = flow.convert(g, HlsConfig(backend=backend), tmp_path / backend.lower())
    project.hls_model.write()
    out = vendor_build(project, RunConfig())
    assert out["status"] == "built"
    assert out["latency_cycles"]["worst"] >= out["latency_cycles"]["best"] >= 1
    assert out["resources"]["LUT"] > 0
