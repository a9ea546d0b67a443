"""Replay buffer that stores each frame once.

The buffer is a ring of *slots*, one per observation the environment returned. A slot holds the
newest frame of that observation (for Atari one 84x84 uint8 frame, for vector observations the
whole vector), its position in the episode, and the transition that leaves it (action, reward,
terminated, valid). The stacked observation of slot ``k`` is rebuilt from the frames of slots
``k-3..k``; frames from before the episode start are replaced by the episode's first frame,
exactly as :class:`rl2fpga.train.envs.FrameStackLast` pads at reset. The next observation of a
transition is the stacked observation of slot ``k+1``. An episode's last observation gets its
own slot with no transition (``valid=False``), so a buffer of N slots holds N minus the number of
episodes transitions.

Atari: 7,056 bytes of frame + 14 bytes of bookkeeping per slot, ~7.07 GB for 1M transitions
(a buffer storing every stacked observation twice would need 56 GB).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Batch:
    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray  # float32
    next_obs: np.ndarray
    terminated: np.ndarray  # float32 0/1: no bootstrap from next_obs


class ReplayBuffer:
    """Uniform replay with frame de-duplication for stacked observations.

    ``stack`` > 1 means observations are (H, W, stack) frame stacks (channels-last) and only the
    newest frame ``obs[..., -1]`` is stored per slot; ``stack == 1`` stores whole observations.
    Call :meth:`start_episode` with every reset observation and :meth:`add` after every step.
    """

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        obs_dtype: np.dtype | type,
        action_shape: tuple[int, ...] = (),
        action_dtype: np.dtype | type = np.int64,
        stack: int = 1,
        seed: int = 0,
    ):
        if capacity < stack + 2:
            raise ValueError(f"replay capacity {capacity} is too small for frame stack {stack}")
        self.capacity = int(capacity)
        self.stack = int(stack)
        self.obs_shape = tuple(obs_shape)
        frame_shape = self.obs_shape[:-1] if stack > 1 else self.obs_shape
        if stack > 1 and self.obs_shape[-1] != stack:
            raise ValueError(f"observation shape {obs_shape} is not a channels-last stack of {stack}")
        self.frames = np.zeros((capacity, *frame_shape), dtype=obs_dtype)
        self.pos_in_episode = np.zeros(capacity, dtype=np.int32)
        self.actions = np.zeros((capacity, *action_shape), dtype=action_dtype)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.bool_)
        self.valid = np.zeros(capacity, dtype=np.bool_)
        self.head = 0  # next slot to write
        self.written = 0  # slots written so far
        self.current = -1  # slot of the observation the agent is acting on
        self.rng = np.random.default_rng(seed)

    # -- size ---------------------------------------------------------------------------------
    @property
    def live(self) -> int:
        return min(self.written, self.capacity)

    def __len__(self) -> int:
        """Transitions stored (approximately: slots minus episode ends)."""
        return int(self.valid.sum())

    def nbytes(self) -> int:
        arrays = (self.frames, self.pos_in_episode, self.actions, self.rewards, self.terminated, self.valid)
        return int(sum(a.nbytes for a in arrays))

    # -- writing ------------------------------------------------------------------------------
    def _newest(self, obs: np.ndarray) -> np.ndarray:
        return obs[..., -1] if self.stack > 1 else obs

    def _push(self, obs: np.ndarray, pos: int) -> int:
        k = self.head
        self.frames[k] = self._newest(obs)
        self.pos_in_episode[k] = pos
        self.valid[k] = False
        self.head = (k + 1) % self.capacity
        self.written += 1
        return k

    def start_episode(self, obs: np.ndarray) -> None:
        """The observation returned by ``env.reset``."""
        self.current = self._push(obs, 0)

    def add(self, action: np.ndarray | int, reward: float, terminated: bool, next_obs: np.ndarray) -> None:
        """The step from the current observation; ``next_obs`` is what ``env.step`` returned
        (the final observation when the episode ended, truncated or not)."""
        k = self.current
        if k < 0:
            raise RuntimeError("call start_episode(reset_obs) before add()")
        self.actions[k] = action
        self.rewards[k] = reward
        self.terminated[k] = terminated
        self.valid[k] = True
        self.current = self._push(next_obs, int(self.pos_in_episode[k]) + 1)

    # -- reading ------------------------------------------------------------------------------
    def stacked(self, slots: np.ndarray) -> np.ndarray:
        """Observations of the given slots, rebuilt from the stored frames."""
        slots = np.asarray(slots)
        if self.stack == 1:
            return self.frames[slots]
        back = np.arange(self.stack - 1, -1, -1)  # channel c holds the frame (stack-1-c) steps back
        back = np.minimum(back[None, :], self.pos_in_episode[slots][:, None])
        src = (slots[:, None] - back) % self.capacity
        return np.ascontiguousarray(np.moveaxis(self.frames[src], 1, -1))

    def _sample_slots(self, n: int) -> np.ndarray:
        # age 0 is the newest slot (its successor is not written); slots older than
        # live - stack might need frames that were already overwritten
        max_age = self.live - self.stack
        if max_age < 1 or not self.valid.any():
            raise RuntimeError("not enough transitions in the replay buffer to sample")
        out = np.empty(0, dtype=np.int64)
        while out.size < n:
            ages = self.rng.integers(1, max_age + 1, size=2 * n)
            slots = (self.head - 1 - ages) % self.capacity
            out = np.concatenate([out, slots[self.valid[slots]]])
        return out[:n]

    def sample(self, n: int) -> Batch:
        k = self._sample_slots(n)
        return Batch(
            obs=self.stacked(k),
            actions=self.actions[k],
            rewards=self.rewards[k],
            next_obs=self.stacked((k + 1) % self.capacity),
            terminated=self.terminated[k].astype(np.float32),
        )


def atari_bytes_per_transition() -> int:
    """Bytes one slot of an Atari buffer takes (frame + bookkeeping)."""
    buf = ReplayBuffer(16, (84, 84, 4), np.uint8, action_dtype=np.int32, stack=4)
    return buf.nbytes() // buf.capacity
