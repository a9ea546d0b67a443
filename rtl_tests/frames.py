"""Real Atari frames for co-simulation: preprocessed Breakout observations from a seeded
random policy (AtariPreprocessing on a frameskip=1 base env: 84x84 grey, frame skip 4, frame
stack 4), channels-last uint8 (84, 84, 4), with the indices where episodes start.

Recordings are cached under ``build/frames/`` (git-ignored), keyed by game, count and seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rl2fpga.fsutil import atomic_save_npz

CACHE = Path(__file__).resolve().parent.parent / "build" / "frames"


def _make_env(game: str, seed: int):  # noqa: ANN202 - gymnasium env
    import ale_py
    import gymnasium as gym

    gym.register_envs(ale_py)
    env = gym.make(f"ALE/{game}-v5", frameskip=1, repeat_action_probability=0.25)
    env = gym.wrappers.AtariPreprocessing(env, frame_skip=4, screen_size=84, grayscale_obs=True, noop_max=30)
    env = gym.wrappers.FrameStackObservation(env, 4)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    return env


def record(n_frames: int, seed: int = 0, game: str = "Breakout", fire_prob: float = 0.2,
           max_episode_steps: int = 10_000) -> tuple[np.ndarray, list[int]]:
    """``n_frames`` consecutive observations (uint8, (n, 84, 84, 4)) and episode-start indices.

    The policy is seeded random, pressing FIRE with probability ``fire_prob`` so that the ball
    is served and the frames move."""
    path = CACHE / f"{game}_{n_frames}_{seed}.npz"
    if path.exists():
        z = np.load(path)
        return z["frames"], [int(i) for i in z["starts"]]
    env = _make_env(game, seed)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    frames, starts, steps = [], [0], 0
    n_actions = env.action_space.n
    while len(frames) < n_frames:
        frames.append(np.transpose(np.asarray(obs), (1, 2, 0)).copy())
        a = 1 if rng.random() < fire_prob else int(rng.integers(n_actions))
        obs, _, term, trunc, _ = env.step(a)
        steps += 1
        if term or trunc or steps >= max_episode_steps:
            obs, _ = env.reset()
            steps = 0
            if len(frames) < n_frames:
                starts.append(len(frames))
    env.close()
    out = np.stack(frames).astype(np.uint8)
    atomic_save_npz(path, frames=out, starts=np.asarray(starts, dtype=np.int64))
    return out, starts


def record_gym(env_id: str, n_frames: int, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    """``n_frames`` consecutive observations of a vector-observation gymnasium env (float32,
    (n, obs_dim)) from a seeded random policy, with the indices where episodes start."""
    import gymnasium as gym

    from rl2fpga.errors import Rl2fpgaError

    try:
        env = gym.make(env_id)
    except gym.error.Error as e:
        raise Rl2fpgaError(f"cannot make environment {env_id} for co-simulation ({e}); check env.id") from None
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    frames, starts = [], [0]
    while len(frames) < n_frames:
        frames.append(np.asarray(obs, dtype=np.float32))
        obs, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            obs, _ = env.reset()
            if len(frames) < n_frames:
                starts.append(len(frames))
    env.close()
    return np.stack(frames), starts


def record_cartpole(n_frames: int, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    """CartPole-v1 observations: :func:`record_gym` on CartPole-v1."""
    return record_gym("CartPole-v1", n_frames, seed)
