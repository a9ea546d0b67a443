"""The deploy bundle: everything the PYNQ-Z2 needs to run the policy, in one folder.

    runs/<name>/board/bundle/
      rl2fpga.bit        bitstream slot (copied from the Vivado build when it exists)
      rl2fpga.hwh        hardware handoff (same)
      driver.py          board/driver.py, verbatim
      contract.py        hls/engine/contract.py, verbatim (register map, stream format)
      run_policy.py      plays episodes on the board (rendered from a template)
      manifest.json      model shape + formats + weights digest + engine parameters
      golden/            formats.json + weights.npz (for action agreement on the board)
      README.md          what goes where

The manifest is how a bundle from another model is detected: :func:`check_bundle` compares
it with the run's golden model and names the first difference.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from rl2fpga import GENERATED_HEADER, __version__
from rl2fpga.board import block_design as design
from rl2fpga.board.driver import MANIFEST_VERSION, check_same_model, load_manifest, weights_digest
from rl2fpga.core.golden import GoldenModel
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.fsutil import atomic_dir, atomic_save_npz, atomic_write_json, atomic_write_text
from rl2fpga.hls.engine import contract as hw

BITSTREAM = "rl2fpga.bit"
HWH = "rl2fpga.hwh"
BUNDLE_FILES = ["driver.py", "contract.py", "run_policy.py", "manifest.json", "golden/formats.json", "golden/weights.npz", "README.md",
                "golden_ref.py"]
CHECK_FRAMES = "check_frames.npz"  # recorded inputs for `run_policy.py --check` (when given)


def model_description(model: GoldenModel) -> dict[str, Any]:
    """The model part of a manifest: layers (shapes, formats), thresholds, weights digest."""
    spec = model.to_json()
    arrays: dict[str, np.ndarray] = {}
    for layer in model.layers:
        arrays[f"{layer.name}.w"] = layer.w
        arrays[f"{layer.name}.b"] = layer.b
    last = model.layers[-1]
    return {
        "layers": spec["layers"],
        "in_shape": list(model.in_shape),
        "in_fmt": model.in_fmt.to_json(),
        "out_fmt": last.out_fmt.to_json(),
        "n_out": int(np.prod(last.out_shape)),
        "thresholds": model.thresholds,
        "weights_sha256": weights_digest(arrays),
        **({} if model.standardize is None else {"input_standardize": model.standardize.to_json()}),
    }


def make_manifest(model: GoldenModel, lanes: int, input_bytes_per_beat: int, clock_mhz: float, env_id: str,
                  frame_stack: bool = False, regs: hw.RegisterMap | None = None) -> dict[str, Any]:
    """``regs``: the register map the engine was built with (the design's contract)."""
    return {
        "manifest_version": MANIFEST_VERSION,
        "generated_by": GENERATED_HEADER,
        "rl2fpga_version": __version__,
        "env_id": env_id,
        "bitstream": BITSTREAM,
        "hwh": HWH,
        "model": model_description(model),
        "engine": {
            "lanes": lanes,
            "input_bytes_per_beat": input_bytes_per_beat,
            "elem_bytes": hw.elem_bytes(model.in_fmt.bits),
            "clock_mhz": clock_mhz,
            "vlnv": design.ENGINE_VLNV,
            "frame_stack": frame_stack,
            "regs": (regs or hw.REGS).to_dict(),
        },
    }


def check_bundle(bundle: Path, model: GoldenModel) -> dict[str, Any]:
    """Load a bundle's manifest and check it was built for ``model``; returns the manifest."""
    manifest = load_manifest(bundle / "manifest.json")
    check_same_model(manifest, model_description(model), str(bundle))
    return manifest


def write_bundle(
    bundle: Path,
    model: GoldenModel,
    lanes: int,
    input_bytes_per_beat: int,
    clock_mhz: float,
    env_id: str,
    bitstream: Path | None = None,
    frame_stack: bool = False,
    check_frames: tuple[np.ndarray, np.ndarray] | None = None,
    regs: hw.RegisterMap | None = None,
) -> Path:
    """Write the bundle folder atomically; copy the bitstream and .hwh when they exist.
    ``check_frames``: recorded inputs (integers on the input grid, in episode order) and the
    episode-start flags, for the on-board self-check ``run_policy.py --check``."""
    board_dir = Path(__file__).parent
    with atomic_dir(bundle) as tmp:
        shutil.copyfile(board_dir / "driver.py", tmp / "driver.py")
        shutil.copyfile(Path(hw.__file__), tmp / "contract.py")
        shutil.copyfile(board_dir / "golden_ref.py", tmp / "golden_ref.py")
        if check_frames is not None:
            frames, starts = check_frames
            atomic_save_npz(tmp / CHECK_FRAMES, frames=np.asarray(frames, dtype=np.int64),
                            starts=np.asarray(starts, dtype=bool))
        model.save(tmp / "golden")
        manifest = make_manifest(model, lanes, input_bytes_per_beat, clock_mhz, env_id, frame_stack, regs)
        atomic_write_json(tmp / "manifest.json", manifest)
        atomic_write_text(tmp / "run_policy.py", design.render("run_policy.py.j2", env_id=env_id))
        has_bit = bitstream is not None and bitstream.exists() and bitstream.with_suffix(".hwh").exists()
        if has_bit:
            assert bitstream is not None
            shutil.copyfile(bitstream, tmp / BITSTREAM)
            shutil.copyfile(bitstream.with_suffix(".hwh"), tmp / HWH)
        atomic_write_text(tmp / "README.md", design.render("bundle_README.md.j2", has_bitstream=has_bit, bitstream=BITSTREAM, hwh=HWH))
    return bundle


def require_bitstream(bundle: Path) -> Path:
    bit = bundle / BITSTREAM
    if not bit.exists():
        raise Rl2fpgaError(
            f"bitstream {bit} is missing; build it with `rl2fpga board RUN_DIR --action build` (needs Vivado) and copy {BITSTREAM} + {HWH} into {bundle}"
        )
    return bit
