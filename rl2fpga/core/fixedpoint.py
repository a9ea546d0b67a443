"""Fixed-point types shared by every stage: :class:`Fmt` (an ap_fixed format) and the exact
integer rounding the hardware does (round half to even, saturate)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Fmt:
    """A fixed-point format in hls4ml/ap_fixed terms: ``bits`` total, ``integer`` bits before
    the binary point (sign bit included when signed). Value = q * 2^-frac."""

    bits: int
    integer: int
    signed: bool = True

    @property
    def frac(self) -> int:
        return self.bits - self.integer

    @property
    def qmin(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def qmax(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def lsb(self) -> float:
        return 2.0 ** (-self.frac)

    def ap_type(self) -> str:
        base = "ap_fixed" if self.signed else "ap_ufixed"
        return f"{base}<{self.bits},{self.integer},AP_RND_CONV,AP_SAT>"

    def to_json(self) -> dict[str, Any]:
        return {"bits": self.bits, "integer": self.integer, "signed": self.signed}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Fmt:
        return cls(int(d["bits"]), int(d["integer"]), bool(d["signed"]))


def round_shift(acc: np.ndarray, shift: int) -> np.ndarray:
    """``acc * 2^-shift`` rounded half to even (ap_fixed AP_RND_CONV, tf.round), exact in int64."""
    acc = np.asarray(acc, dtype=np.int64)
    if shift <= 0:
        return acc << (-shift)
    q = acc >> shift  # floor
    rem = acc - (q << shift)
    half = 1 << (shift - 1)
    up = (rem > half) | ((rem == half) & ((q & 1) == 1))
    return q + up.astype(np.int64)


def quantize_float(x: np.ndarray, fmt: Fmt) -> np.ndarray:
    """Floats onto ``fmt``'s grid (round half to even, saturate) as integers."""
    q = np.round(np.asarray(x, dtype=np.float64) * (2.0**fmt.frac))
    return np.clip(q, fmt.qmin, fmt.qmax).astype(np.int64)
