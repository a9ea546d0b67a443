"""What every engine co-simulation test checks against the golden model, and the drifting pixel
frames the CNN cases feed it."""

from __future__ import annotations

import numpy as np


def assert_matches_golden(res: dict, n: int, actions: bool = True) -> list[int]:
    """``n`` frames, 0 mismatches, MAC and event counters (and actions) == golden per frame;
    returns each frame's total MACs for the caller's sparsity check."""
    assert res["frames"] == n
    assert res["mismatches"] == 0
    for f in res["per_frame"]:
        assert f["macs"] == f["golden_macs"], f"frame {f['index']}: MAC counter != golden"
        assert f["events"] == f["golden_events"]
        if actions:
            assert f["action"] == f["golden_action"]
    return [sum(f["macs"]) for f in res["per_frame"]]


def drifting_frames(rng: np.random.Generator, shape: tuple[int, ...], n: int, p: float) -> np.ndarray:
    """``n`` uint8 frames: a random first image whose pixels each change with probability ``p``
    per frame (a sparse random walk, like a slow game screen)."""
    x = rng.integers(0, 256, size=shape)
    frames = []
    for _ in range(n):
        x = np.where(rng.random(x.shape) < p, rng.integers(0, 256, size=x.shape), x)
        frames.append(x.astype(np.uint8))
    return np.stack(frames)
