"""Real observations for co-simulation: consecutive observations of a seeded random policy,
made by the same :func:`rl2fpga.train.envs.make_env` the agents are trained and evaluated on
(Atari: 84x84 grey, frame skip 4 with max-pooling, no-op reset, FIRE on reset, 4 stacked frames,
channels-last uint8 (84, 84, 4); vector observations as float32), with the indices where
episodes start.

Atari recordings are cached under ``build/frames/`` (git-ignored), keyed by the environment
settings, count and seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rl2fpga.config import EnvConfig
from rl2fpga.fsutil import atomic_save_npz
from rl2fpga.paths import build_root
from rl2fpga.train.rollout import rollout

CACHE = build_root() / "frames"


def record_env(env_cfg: EnvConfig, n_frames: int, seed: int = 0, fire_prob: float = 0.2,
               max_episode_steps: int = 10_000) -> tuple[np.ndarray, list[int]]:
    """``n_frames`` consecutive observations of ``env_cfg`` and the episode-start indices.

    Actions are seeded random; on games with a FIRE action it is pressed with probability
    ``fire_prob`` so that the ball is served and the frames move."""
    from rl2fpga.train.envs import is_atari, make_env

    atari = is_atari(env_cfg.id)
    key = f"{env_cfg.id.replace('/', '_')}_s{env_cfg.sticky_actions:g}_k{env_cfg.frame_skip}_n{env_cfg.noop_max}_{n_frames}_{seed}"
    if env_cfg.kwargs:  # a different environment: its own cache entry
        import hashlib
        import json

        key += "_kw" + hashlib.sha256(json.dumps(env_cfg.kwargs, sort_keys=True).encode()).hexdigest()[:12]
    path = CACHE / f"{key}.npz"
    if atari and path.exists():
        z = np.load(path)
        return z["frames"], [int(i) for i in z["starts"]]
    env = make_env(env_cfg, seed, training=False)
    rng = np.random.default_rng(seed)
    meanings = env.unwrapped.get_action_meanings() if atari else []
    fire = meanings.index("FIRE") if "FIRE" in meanings else None
    frames: list[np.ndarray] = []
    starts: list[int] = []

    def act(obs: Any) -> Any:
        frames.append(np.array(obs, dtype=np.uint8 if atari else np.float32))
        if fire is not None and rng.random() < fire_prob:
            return fire
        if hasattr(env.action_space, "n"):
            return int(rng.integers(env.action_space.n))
        return env.action_space.sample()

    try:  # one seeded stream: episodes after the first continue the environment's random state
        rollout(env, act, seed=seed, max_steps=max_episode_steps, total_steps=n_frames, reseed=False,
                on_reset=lambda _: starts.append(len(frames)))
    finally:
        env.close()
    out = np.stack(frames)
    if atari:
        atomic_save_npz(path, frames=out, starts=np.asarray(starts, dtype=np.int64))
    return out, starts


def record(n_frames: int, seed: int = 0, game: str = "Breakout") -> tuple[np.ndarray, list[int]]:
    """Atari frames (uint8, (n, 84, 84, 4)) of ``ALE/<game>-v5`` with the default settings."""
    return record_env(EnvConfig(id=f"ALE/{game}-v5"), n_frames, seed)


def record_gym(env_id: str, n_frames: int, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    """Observations (float32, (n, obs_dim)) of a vector-observation environment."""
    return record_env(EnvConfig(id=env_id), n_frames, seed)


def record_cartpole(n_frames: int, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    """CartPole-v1 observations: :func:`record_gym` on CartPole-v1."""
    return record_gym("CartPole-v1", n_frames, seed)


def record_frames(env_cfg: EnvConfig, n: int, seed: int) -> tuple[np.ndarray, list[int]]:
    """``n`` consecutive observations of the run's environment (seeded random policy) and the
    episode starts."""
    return record_env(env_cfg, n, seed)
