"""Small golden models for the board tests (imported by tests/test_board*.py)."""

from __future__ import annotations

import numpy as np

from rl2fpga.core.fixedpoint import Fmt
from rl2fpga.core.golden import GoldenModel
from rl2fpga.core.layers import Dense


def balancer(threshold: int = 1) -> GoldenModel:
    """A pruned, quantized CartPole controller that balances: push right when
    0.05 * cart velocity + 0.5 * angle + 0.25 * angular velocity > 0. Hidden units 2-3 and the
    cart-position weight are pruned (zero); the input is 12-bit signed (2 bytes on the stream)."""
    w0 = np.zeros((4, 4), np.int64)
    s = np.array([0, 6, 64, 32])  # x 2^-7
    w0[:, 0], w0[:, 1] = s, -s
    w1 = np.zeros((4, 2), np.int64)
    w1[0, 1] = 64  # q_right = 0.5 * relu(s)
    w1[1, 0] = 64  # q_left = 0.5 * relu(-s)
    wf, act = Fmt(8, 1, True), Fmt(8, 3, False)
    l0 = Dense("d0", w0, np.zeros(4, np.int64), wf, Fmt(12, 4, True), act, "relu", (4,), threshold=threshold)
    l1 = Dense("d1", w1, np.zeros(2, np.int64), wf, act, Fmt(16, 8, True), "linear", (4,))
    return GoldenModel([l0, l1])
