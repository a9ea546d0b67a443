"""Frame stack kept in the engine: the PYNQ driver sends only the newest frame of a stacked
observation (the whole stack after an episode start, or when the kept frames are not the
previous observation's), against the simulated PYNQ-Z2 (golden-backed engine)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rl2fpga.board import block_design as design
from rl2fpga.board.bundle import write_bundle
from rl2fpga.board.driver import EngineDriver
from rl2fpga.board.engine_models import GoldenEngine
from rl2fpga.board.simdevice import SimDevice
from rl2fpga.core.golden import GoldenModel, random_model
from rl2fpga.hls.engine import regmap


def stacked_cnn(seed: int = 2) -> GoldenModel:
    """uint8 frames, 4 stacked (channels last, oldest first), 11 x 9 pixels."""
    return random_model(np.random.default_rng(seed), (11, 9, 4), [("conv2d", 4, 3, 2), ("dense", 8), ("dense", 3)],
                        sparsity=0.5, threshold=2)


class CountingEngine(GoldenEngine):
    """Records the length of every input packet."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.sent: list[int] = []

    def send(self, data: bytes) -> None:
        self.sent.append(len(data))
        super().send(data)


def _driver(tmp: Path, model: GoldenModel, bpb: int = 8) -> tuple[EngineDriver, CountingEngine]:
    bundle = write_bundle(tmp / "bundle", model, 4, bpb, 100.0, "ALE/Breakout-v5", frame_stack=True)
    (bundle / "rl2fpga.bit").write_text("simulated\n")
    (bundle / "rl2fpga.hwh").write_text(design.sim_hwh(design.DesignParams(4, bpb)))
    eng = CountingEngine(model, 4, bpb, frame_stack=True)
    return EngineDriver(bundle / "rl2fpga.bit", bundle / "manifest.json", device=SimDevice(eng)), eng


def _episode(rng: np.random.Generator, n: int, shape: tuple[int, int, int]) -> list[np.ndarray]:
    """Stacked observations as train/envs.py makes them: k copies of the first frame at reset."""
    h, w, k = shape
    f = rng.integers(0, 256, (h, w))
    stack = [f] * k
    out = []
    for _ in range(n):
        out.append(np.stack(stack, axis=-1))
        f = np.where(rng.random(f.shape) < 0.1, rng.integers(0, 256, f.shape), f)
        stack = stack[1:] + [f]
    return out


def test_driver_sends_the_newest_frame_only(tmp_path):
    model = stacked_cnn()
    drv, eng = _driver(tmp_path, model)
    assert eng.axil_read(regmap.INFO) & regmap.INFO_FRAME_STACK
    ref = model.copy()
    rng = np.random.default_rng(4)
    plane = -(-11 * 9 // 8) * 8  # 99 pixels -> 104 bytes (13 beats)
    frames = _episode(rng, 12, model.in_shape)
    # a jump inside the episode (the kept frames are not this observation's older frames)
    frames += [np.roll(f, 1, axis=0) for f in _episode(rng, 6, model.in_shape)]
    frames += _episode(rng, 8, model.in_shape)
    starts = {0, 18}
    for t, x in enumerate(frames):
        if t in starts:
            drv.reset_state()
            ref.reset()
        values, action = drv.infer(x)
        y, stats = ref.step(x)
        assert values.tolist() == y.reshape(-1).tolist(), f"step {t}"
        assert drv.counters()["macs"] == stats.macs
    expect = [4 * plane if t in starts or t == 12 else plane for t in range(len(frames))]
    assert eng.sent == expect
    assert not eng.error


def test_engine_refuses_a_newest_frame_after_a_reset(tmp_path):
    """After a state reset the engine expects the whole stack: one plane is a TLAST error."""
    model = stacked_cnn()
    eng = GoldenEngine(model, 4, 8, frame_stack=True)
    eng.axil_write(regmap.CTRL, regmap.CTRL_RESET_STATE)
    eng.send(bytes(104))
    assert eng.error and eng.frames == 0


def test_hls_accelerator_driver_resets_episodes(tmp_path):
    """hls4ml overlay: reset_state() puts the episode-reset flag into the next frame's stream
    (first word); across 3 episode boundaries the outputs equal the golden model's, which
    resets there; the simulated IP without the flag keeps its state (so this can fail)."""
    from board_models import balancer

    from rl2fpga.board.driver import HlsAcceleratorDriver
    from rl2fpga.board.engine_models import HlsStreamEngine

    model = balancer(threshold=30)  # 30 LSB = 0.117: small moves are not transmitted
    bundle = write_bundle(tmp_path / "bundle", model, 4, 8, 100.0, "CartPole-v1")
    (bundle / "rl2fpga.bit").write_text("simulated\n")
    (bundle / "rl2fpga.hwh").write_text(design.sim_hwh(design.DesignParams(1, 4), hls=True))
    eng = HlsStreamEngine(model)
    drv = HlsAcceleratorDriver.open(bundle / "rl2fpga.bit", bundle / "manifest.json", device=SimDevice(eng))
    ref = model.copy()
    rng = np.random.default_rng(9)
    differs_without_reset = False
    kept_x: list[np.ndarray] = []
    kept_acc: list[np.ndarray] = []
    for episode in range(4):
        drv.reset_state()
        ref.reset()
        shadow = ref.copy()
        if episode:
            shadow.x_hat, shadow.acc = [a.copy() for a in kept_x], [a.copy() for a in kept_acc]
        obs = rng.normal(0, 0.5, 4)
        for _ in range(10):
            obs = obs + rng.normal(0, 0.05, 4)  # a slow walk, as real observations move
            x = drv.quantize(obs)
            values, _ = drv.infer(x)
            y, _ = ref.step(x)
            assert values.tolist() == y.reshape(-1).tolist()
            differs_without_reset |= shadow.step(x)[0].reshape(-1).tolist() != y.reshape(-1).tolist()
        kept_x, kept_acc = [a.copy() for a in ref.x_hat], [a.copy() for a in ref.acc]
    assert differs_without_reset
