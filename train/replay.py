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


@dataclass
class PackedBatch:
    """A minibatch whose observations and next observations travel as one array (one
    host-to-tensor copy): ``pairs[:n]`` are the observations, ``pairs[n:]`` the next ones, in the
    stored dtype (uint8 pixels for Atari), channels-last. Split inside TF by :func:`unpack_pairs`."""

    pairs: np.ndarray  # (2n, *obs_shape)
    actions: np.ndarray  # (n,) int32
    rewards: np.ndarray  # (n,) float32
    terminated: np.ndarray  # (n,) float32


def unpack_pairs(pairs, n: int):  # noqa: ANN001, ANN201 (tf.Tensor in, tensors out)
    """(obs, next_obs) of a :class:`PackedBatch` of ``n`` transitions."""
    return pairs[:n], pairs[n:]


def interleave_channels(planes: np.ndarray) -> np.ndarray:
    """(m, 4, H, W) uint8 -> (m, H, W, 4), the channels-last stack, by packing the 4 planes into
    one little-endian uint32 per pixel (~3x cheaper than NumPy's strided transpose)."""
    m, c, h, w = planes.shape
    if c != 4 or planes.dtype != np.uint8:
        return np.ascontiguousarray(np.moveaxis(planes, 1, -1))
    p = planes.reshape(m, c, h * w)
    out = p[:, 0].astype("<u4")
    for k in (1, 2, 3):
        out |= p[:, k].astype("<u4") << np.uint32(8 * k)
    return out.view(np.uint8).reshape(m, h, w, c)


class VectorReplay:
    """Replay for ``n_envs`` environments stepped in lockstep: one ring of ``capacity // n_envs``
    slots per environment, each laid out exactly like :class:`ReplayBuffer` (a slot per
    observation, frames stored once, an episode's last observation in its own slot without a
    transition), so frame stacks are rebuilt within one environment's ring. A transition is
    sampled uniformly: environment uniformly (every ring holds as many slots), then a slot.

    :meth:`sample` returns a :class:`PackedBatch`: one fancy-index gather of the frames of both
    stacks and a channels-last interleave by uint32 packing (NumPy's transpose of a last axis
    of 4 costs ~3x more), observations and next observations in one array."""

    def __init__(self, capacity: int, n_envs: int, obs_shape: tuple[int, ...], obs_dtype: np.dtype | type,
                 stack: int = 1, seed: int = 0):
        per_env = int(capacity) // int(n_envs)
        if n_envs < 1 or per_env < stack + 2:
            raise ValueError(f"replay capacity {capacity} is too small for {n_envs} envs and frame stack {stack}")
        self.n_envs, self.per_env, self.stack = int(n_envs), per_env, int(stack)
        self.obs_shape = tuple(obs_shape)
        if stack > 1 and self.obs_shape[-1] != stack:
            raise ValueError(f"observation shape {obs_shape} is not a channels-last stack of {stack}")
        frame_shape = self.obs_shape[:-1] if stack > 1 else self.obs_shape
        shape = (self.n_envs, per_env)
        self.frames = np.zeros((*shape, *frame_shape), dtype=obs_dtype)
        self.pos_in_episode = np.zeros(shape, dtype=np.int32)
        self.actions = np.zeros(shape, dtype=np.int32)
        self.rewards = np.zeros(shape, dtype=np.float32)
        self.terminated = np.zeros(shape, dtype=np.bool_)
        self.valid = np.zeros(shape, dtype=np.bool_)
        self.head = np.zeros(self.n_envs, dtype=np.int64)  # next slot to write, per env
        self.written = np.zeros(self.n_envs, dtype=np.int64)
        self.current = np.full(self.n_envs, -1, dtype=np.int64)
        self.rng = np.random.default_rng(seed)
        self._envs = np.arange(self.n_envs)

    def nbytes(self) -> int:
        arrays = (self.frames, self.pos_in_episode, self.actions, self.rewards, self.terminated, self.valid)
        return int(sum(a.nbytes for a in arrays))

    def _push(self, envs: np.ndarray, obs: np.ndarray, pos: np.ndarray) -> None:
        k = self.head[envs]
        self.frames[envs, k] = obs[..., -1] if self.stack > 1 else obs
        self.pos_in_episode[envs, k] = pos
        self.valid[envs, k] = False
        self.head[envs] = (k + 1) % self.per_env
        self.written[envs] += 1
        self.current[envs] = k

    def start_episodes(self, obs: np.ndarray, envs: np.ndarray | None = None) -> None:
        """Reset observations ``obs[j]`` of environments ``envs[j]`` (all when None)."""
        envs = self._envs if envs is None else np.asarray(envs, np.int64)
        if envs.size:
            self._push(envs, np.asarray(obs), np.zeros(envs.size, np.int32))

    def add(self, actions: np.ndarray, rewards: np.ndarray, terminated: np.ndarray, next_obs: np.ndarray) -> None:
        """One step of every environment; ``next_obs[e]`` is what env ``e``'s step returned (its
        final observation when the episode ended, truncated or not)."""
        k = self.current
        if (k < 0).any():
            raise RuntimeError("call start_episodes(reset_obs) before add()")
        e = self._envs
        self.actions[e, k] = actions
        self.rewards[e, k] = rewards
        self.terminated[e, k] = terminated
        self.valid[e, k] = True
        self._push(e, np.asarray(next_obs), self.pos_in_episode[e, k] + 1)

    def __len__(self) -> int:
        return int(self.valid.sum())

    def stacked(self, envs: np.ndarray, slots: np.ndarray) -> np.ndarray:
        """Observations of the given (env, slot) pairs (for tests; sampling uses windows)."""
        if self.stack == 1:
            return self.frames[envs, slots]
        back = np.minimum(np.arange(self.stack - 1, -1, -1)[None, :], self.pos_in_episode[envs, slots][:, None])
        src = (slots[:, None] - back) % self.per_env
        return np.ascontiguousarray(np.moveaxis(self.frames[envs[:, None], src], 1, -1))

    def sample_slots(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(env, slot) of ``n`` transitions drawn uniformly (slots whose stack is intact)."""
        max_age = np.minimum(self.written, self.per_env) - self.stack  # as in ReplayBuffer
        if (max_age < 1).any() or not self.valid.any():
            raise RuntimeError("not enough transitions in the replay buffer to sample")
        envs_out, slots_out = np.empty(0, np.int64), np.empty(0, np.int64)
        while envs_out.size < n:
            envs = self.rng.integers(0, self.n_envs, size=2 * n)
            ages = 1 + (self.rng.random(2 * n) * max_age[envs]).astype(np.int64)
            slots = (self.head[envs] - 1 - ages) % self.per_env
            ok = self.valid[envs, slots]
            envs_out = np.concatenate([envs_out, envs[ok]])
            slots_out = np.concatenate([slots_out, slots[ok]])
        return envs_out[:n], slots_out[:n]

    def sample(self, n: int) -> PackedBatch:
        envs, k = self.sample_slots(n)
        s, nxt = self.stack, (k + 1) % self.per_env
        if s == 1:
            pairs = self.frames[np.concatenate([envs, envs]), np.concatenate([k, nxt])]
        else:
            # channel c of a stack is the frame (s - 1 - c) steps back, no further back than
            # the episode start (FrameStackLast pads with the first frame)
            back = np.arange(s - 1, -1, -1)[None, :]
            pos = self.pos_in_episode[envs, k][:, None]
            src = np.concatenate([(k[:, None] - np.minimum(back, pos)) % self.per_env,
                                  (nxt[:, None] - np.minimum(back, pos + 1)) % self.per_env])
            pairs = interleave_channels(self.frames[np.concatenate([envs, envs])[:, None], src])
        return PackedBatch(pairs, self.actions[envs, k], self.rewards[envs, k], self.terminated[envs, k].astype(np.float32))
