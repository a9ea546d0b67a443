"""Environments: classic control, Atari (ale-py) and MuJoCo, with the wrappers the agents need.

Atari follows the DQN conventions: a base env with ``frameskip=1`` and sticky actions from the
config, then noop reset, frame skip with max-pooling over the last two frames, 84x84 grey,
FIRE after reset and after a lost life, 4 stacked frames. Episodic life and reward clipping are
applied only when ``training=True`` (training envs also report the whole game's unclipped score in
``info["episode"]["r"]`` when a game ends), so evaluation always sees the real game. Observations are
uint8 and channels-last (84, 84, 4), what TF's CPU Conv2D wants; the network input is
``pixels_to_input(obs)`` (p * 2^-8).
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from rl2fpga.config import EnvConfig
from rl2fpga.errors import Rl2fpgaError

os.environ.setdefault("MUJOCO_GL", "egl")  # only matters if something renders images

FRAME_STACK = 4
SCREEN_SIZE = 84


@dataclass
class EnvSpec:
    """What a network and an agent need to know about an environment."""

    id: str
    obs_shape: tuple[int, ...]
    obs_dtype: str
    discrete: bool
    n_actions: int  # discrete: number of actions; continuous: action dimension
    action_low: list[float] | None
    action_high: list[float] | None
    is_atari: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EnvSpec:
        d = dict(d)
        d["obs_shape"] = tuple(d["obs_shape"])
        return cls(**d)


def is_atari(env_id: str) -> bool:
    return env_id.startswith("ALE/") or env_id.endswith("NoFrameskip-v4")


# ------------------------------------------------------------------------------ Atari wrappers


class FireOnReset(gym.Wrapper):
    """Press FIRE after a reset and after a lost life (Breakout-like games wait for it)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.fire = env.unwrapped.get_action_meanings().index("FIRE")
        self.lives = 0

    def _fire(self, obs: np.ndarray, info: dict) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(self.fire)
        return obs, float(reward), terminated, truncated, info

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(**kwargs)
        obs, _, terminated, truncated, info = self._fire(obs, info)
        if terminated or truncated:
            obs, info = self.env.reset()
        self.lives = self.env.unwrapped.ale.lives()
        return obs, info

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        lives = self.env.unwrapped.ale.lives()
        if lives < self.lives and not (terminated or truncated):
            obs, r2, terminated, truncated, info = self._fire(obs, info)
            reward = float(reward) + r2
        self.lives = lives
        return obs, float(reward), terminated, truncated, info


class EpisodicLife(gym.Wrapper):
    """Training only: a lost life ends the agent's episode; the game resets only when it is over."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.lives = 0
        self.game_over = True

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.game_over = terminated or truncated
        lives = self.env.unwrapped.ale.lives()
        if 0 < lives < self.lives:
            terminated = True
        self.lives = lives
        info["game_over"] = self.game_over
        return obs, reward, terminated, truncated, info

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        if self.game_over:
            obs, info = self.env.reset(**kwargs)
        else:  # continue the same game from where the life was lost
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:
                obs, info = self.env.reset(**kwargs)
        self.lives = self.env.unwrapped.ale.lives()
        self.game_over = False
        return obs, info


class ClipReward(gym.RewardWrapper):
    """Training only: reward -> sign(reward)."""

    def reward(self, reward: float) -> float:
        return float(np.sign(reward))


class FrameStackLast(gym.Wrapper):
    """Stack the last ``k`` frames channels-last; at reset all k are the reset frame."""

    def __init__(self, env: gym.Env, k: int = FRAME_STACK):
        super().__init__(env)
        self.k = k
        self.frames: deque[np.ndarray] = deque(maxlen=k)
        h, w = env.observation_space.shape[:2]
        self.observation_space = gym.spaces.Box(0, 255, (h, w, k), np.uint8)

    def _obs(self) -> np.ndarray:
        return np.stack(self.frames, axis=-1)

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(**kwargs)
        for _ in range(self.k):
            self.frames.append(obs)
        return self._obs(), info

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.frames.append(obs)
        return self._obs(), reward, terminated, truncated, info


def _make_atari(env_cfg: EnvConfig, training: bool) -> gym.Env:
    import ale_py

    gym.register_envs(ale_py)
    kwargs: dict[str, Any] = {**env_cfg.kwargs, "frameskip": 1,
                              "repeat_action_probability": env_cfg.sticky_actions}
    if env_cfg.max_episode_steps is not None:  # agent steps -> emulator frames
        kwargs["max_num_frames_per_episode"] = env_cfg.max_episode_steps * env_cfg.frame_skip
    env = gym.make(env_cfg.id, **kwargs)
    env = gym.wrappers.AtariPreprocessing(
        env,
        noop_max=env_cfg.noop_max,
        frame_skip=env_cfg.frame_skip,
        screen_size=SCREEN_SIZE,
        terminal_on_life_loss=False,
        grayscale_obs=True,
        scale_obs=False,
    )
    if "FIRE" in env.unwrapped.get_action_meanings():
        env = FireOnReset(env)
    if training:
        env = gym.wrappers.RecordEpisodeStatistics(env)  # info["episode"]: whole game, unclipped
        env = EpisodicLife(env)
        env = ClipReward(env)
    return FrameStackLast(env, FRAME_STACK)


# ------------------------------------------------------------------------------ public API


def _unknown(env_id: str, why: str = "") -> Rl2fpgaError:
    return Rl2fpgaError(
        f"unknown environment id '{env_id}'{why}; use a Gymnasium id such as CartPole-v1, "
        "Acrobot-v1, Pendulum-v1, ALE/Breakout-v5 or Hopper-v5"
    )


def make_env(env_cfg: EnvConfig, seed: int, training: bool) -> gym.Env:
    """A seeded environment (reset it with ``seed`` once; later resets continue the stream)."""
    from rl2fpga.safety import check_env_id

    check_env_id(env_cfg.id)  # registry ids only: "module:Env" would import module
    try:
        if is_atari(env_cfg.id):
            env = _make_atari(env_cfg, training)
        else:
            kwargs = dict(env_cfg.kwargs)
            if env_cfg.max_episode_steps is not None:
                kwargs["max_episode_steps"] = env_cfg.max_episode_steps
            env = gym.make(env_cfg.id, **kwargs)
            if training:
                env = gym.wrappers.RecordEpisodeStatistics(env)  # info["episode"] at episode end
    except gym.error.DependencyNotInstalled as e:
        first = str(e).splitlines()[0]
        raise Rl2fpgaError(f"environment '{env_cfg.id}' needs a missing package ({first})") from None
    except (gym.error.NameNotFound, gym.error.NamespaceNotFound, gym.error.VersionNotFound) as e:
        raise _unknown(env_cfg.id) from e
    except gym.error.Error as e:
        raise _unknown(env_cfg.id, f" ({str(e).splitlines()[0]})") from e
    except TypeError as e:
        if not env_cfg.kwargs:
            raise
        raise Rl2fpgaError(f"environment '{env_cfg.id}' refused env.kwargs {sorted(env_cfg.kwargs)} "
                           f"({str(e).splitlines()[0]}); use the constructor's keyword names") from None
    env.action_space.seed(seed)
    env.observation_space.seed(seed)
    return env


def env_spec(env_cfg: EnvConfig) -> EnvSpec:
    """Shapes and action space of an environment (builds it once, then closes it)."""
    env = make_env(env_cfg, seed=0, training=False)
    try:
        obs_space, act_space = env.observation_space, env.action_space
        if isinstance(act_space, gym.spaces.Discrete):
            discrete, n, low, high = True, int(act_space.n), None, None
        elif isinstance(act_space, gym.spaces.Box):
            discrete, n = False, int(np.prod(act_space.shape))
            low = [float(v) for v in act_space.low.ravel()]
            high = [float(v) for v in act_space.high.ravel()]
        else:
            raise Rl2fpgaError(f"environment '{env_cfg.id}' has an unsupported action space {act_space}; use Discrete or Box actions")
        return EnvSpec(
            id=env_cfg.id,
            obs_shape=tuple(int(d) for d in obs_space.shape),
            obs_dtype=str(obs_space.dtype),
            discrete=discrete,
            n_actions=n,
            action_low=low,
            action_high=high,
            is_atari=is_atari(env_cfg.id),
        )
    finally:
        env.close()


def check_algo(algo: str, spec: EnvSpec) -> None:
    """DQN needs discrete actions, SAC continuous ones."""
    if algo == "dqn" and not spec.discrete:
        raise Rl2fpgaError(f"DQN needs discrete actions but {spec.id} has continuous ones; set train.algo=sac")
    if algo == "sac" and spec.discrete:
        raise Rl2fpgaError(f"SAC needs continuous actions but {spec.id} has discrete ones; set train.algo=dqn")


def make_vector_env(env_cfg: EnvConfig, seed: int, num_envs: int, training: bool,
                    mode: str = "sync") -> gym.vector.VectorEnv:
    """``num_envs`` copies of :func:`make_env` (the very same wrappers, so the same preprocessing)
    in a Gymnasium vector env that resets a finished copy within the step that ended it
    (``AutoresetMode.SAME_STEP``: ``info["final_obs"]`` holds the final observations, and
    ``info["final_info"]`` the final infos, e.g. ``episode``). Copy ``i`` uses seed ``seed + i``
    (reset the vector env once with ``seed``). ``mode``: sync steps the copies one after the other
    in this process, async in worker processes (spawned, so no TF state is forked)."""
    from functools import partial

    fns = [partial(make_env, env_cfg, seed + i, training) for i in range(num_envs)]
    same_step = gym.vector.AutoresetMode.SAME_STEP
    if mode == "sync":
        return gym.vector.SyncVectorEnv(fns, autoreset_mode=same_step)
    if mode == "async":
        return gym.vector.AsyncVectorEnv(fns, autoreset_mode=same_step, context="spawn")
    raise Rl2fpgaError(f"unknown vector env mode '{mode}'; use sync or async")
