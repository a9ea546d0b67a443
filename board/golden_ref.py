"""The golden integer model in NumPy alone, for the deploy bundle's self-check on the board
(``run_policy.py --check``): no rl2fpga, no TensorFlow. It reads the bundle's ``golden/``
(``formats.json`` + ``weights.npz``, written by rl2fpga's GoldenModel.save) and computes what
rl2fpga/core/golden.py defines, bit for bit:

* per layer: x_hat <- x where |x - x_hat| > T_int (state from 0, reset at an episode start);
* acc = W @ x_hat + b in exact integers (conv: valid padding, channels last);
* y = saturate(round half to even(acc * 2^-shift)), then ReLU where the layer has it; with
  per-output-channel weight scales (``w_frac`` in formats.json) every output channel j has its
  own ``shift_j = in_frac + w_frac[j] - out_frac``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def _round_shift_ch(acc: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """:func:`_round_shift` with one shift per output channel (the last axis)."""
    out = np.empty_like(acc)
    for s in np.unique(shifts):
        sel = shifts == s
        out[..., sel] = _round_shift(acc[..., sel], int(s))
    return out


def _round_shift(acc: np.ndarray, shift: int) -> np.ndarray:
    if shift <= 0:
        return acc << (-shift)
    q = acc >> shift
    rem = acc - (q << shift)
    half = 1 << (shift - 1)
    return q + ((rem > half) | ((rem == half) & ((q & 1) == 1))).astype(np.int64)


def _frac(fmt: dict) -> int:
    return int(fmt["bits"]) - int(fmt["integer"])


def _qrange(fmt: dict) -> tuple[int, int]:
    bits = int(fmt["bits"])
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if fmt["signed"] else (0, (1 << bits) - 1)


class GoldenRef:
    """``step(x)`` on one integer input (the network's input shape): integer outputs."""

    def __init__(self, folder: str | Path):
        folder = Path(folder)
        spec = json.loads((folder / "formats.json").read_text())
        arrays = np.load(folder / "weights.npz")
        self.layers = []
        for d in spec["layers"]:
            self.layers.append({
                "kind": d["kind"], "relu": d["activation"] == "relu",
                "w": arrays[d["name"] + ".w"].astype(np.int64), "b": arrays[d["name"] + ".b"].astype(np.int64),
                "in_shape": tuple(d["in_shape"]), "stride": tuple(d["stride"]), "threshold": int(d["threshold"]),
                "shift": _frac(d["in_fmt"]) - _frac(d["out_fmt"])
                + np.asarray(d.get("w_frac") or [_frac(d["w_fmt"])] * int(d["w_shape"][-1]), dtype=np.int64),
                "qrange": _qrange(d["out_fmt"]),
            })
        self.reset()

    def reset(self) -> None:
        self.x_hat = [np.zeros(ly["in_shape"], dtype=np.int64) for ly in self.layers]

    @staticmethod
    def _matvec(ly: dict, x: np.ndarray) -> np.ndarray:
        w = ly["w"]
        if ly["kind"] == "dense":
            return x.reshape(-1) @ w
        kh, kw, cin, cout = w.shape
        h, wd, _ = x.shape
        sh, sw = ly["stride"]
        oh, ow = (h - kh) // sh + 1, (wd - kw) // sw + 1
        out = np.zeros((oh, ow, cout), dtype=np.int64)
        for i in range(kh):
            for j in range(kw):
                out += x[i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw, :] @ w[i, j]
        return out

    def step(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.int64)
        for k, ly in enumerate(self.layers):
            x = x.reshape(ly["in_shape"])
            changed = np.abs(x - self.x_hat[k]) > ly["threshold"]
            self.x_hat[k] = np.where(changed, x, self.x_hat[k])
            acc = self._matvec(ly, self.x_hat[k]) + ly["b"]
            lo, hi = ly["qrange"]
            x = np.clip(_round_shift_ch(acc, ly["shift"]), lo, hi)
            if ly["relu"]:
                x = np.maximum(x, 0)
        return x.reshape(-1)
