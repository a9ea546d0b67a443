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
                    mode: str = "sync", workers: int = 1) -> gym.vector.VectorEnv | ProcessVectorEnv:
    """``num_envs`` copies of :func:`make_env` (the very same wrappers, so the same preprocessing)
    in a Gymnasium vector env that resets a finished copy within the step that ended it
    (``AutoresetMode.SAME_STEP``: ``info["final_obs"]`` holds the final observations, and
    ``info["final_info"]`` the final infos, e.g. ``episode``). Copy ``i`` uses seed ``seed + i``
    (reset the vector env once with ``seed``). ``mode``: sync steps the copies one after the other
    in this process, async in ``workers`` worker processes (:class:`ProcessVectorEnv`: the same
    observations, rewards and infos, bit for bit)."""
    from functools import partial

    if mode == "sync":
        return gym.vector.SyncVectorEnv([partial(make_env, env_cfg, seed + i, training) for i in range(num_envs)],
                                        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    if mode == "async":
        return ProcessVectorEnv(env_cfg, seed, num_envs, training, workers)
    raise Rl2fpgaError(f"unknown vector env mode '{mode}'; use sync or async")


# ------------------------------------------------------------------------------ worker processes


def _merge_infos(parts: list[dict], sizes: list[int]) -> dict:
    """Concatenate the batched infos of consecutive slices of copies (a key that one slice lacks
    is filled as Gymnasium's vector envs fill it: False / 0 / None per copy)."""
    out: dict[str, Any] = {}
    keys = list(dict.fromkeys(k for p in parts for k in p))
    for key in keys:
        present = [p[key] for p in parts if key in p]
        if all(isinstance(v, dict) for v in present):
            out[key] = _merge_infos([p.get(key, {}) for p in parts], sizes)
            continue
        like = np.asarray(present[0])
        cols = []
        for p, n in zip(parts, sizes):
            if key in p:
                cols.append(np.asarray(p[key]))
            elif like.dtype == object:
                cols.append(np.full(n, None, dtype=object))
            else:
                cols.append(np.zeros((n, *like.shape[1:]), dtype=like.dtype))
        if any(c.dtype == object for c in cols):
            merged = np.empty(sum(sizes), dtype=object)
            merged[:] = [x for c in cols for x in c]
            out[key] = merged
        else:
            out[key] = np.concatenate(cols)
    return out


def _env_worker(conn: Any, env_cfg: EnvConfig, seeds: list[int], training: bool, shm_name: str, offset: int) -> None:
    """One worker process: a SyncVectorEnv of its copies (seeds ``seeds``), observations written
    into the shared block at ``offset``, everything else sent back through the pipe."""
    import signal
    from functools import partial
    from multiprocessing import shared_memory

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it closes us
    # the parent owns the block and unlinks it; this attach registers the same name with the
    # parent's resource tracker (a spawned child shares it), which the parent's unlink clears
    shm = shared_memory.SharedMemory(name=shm_name)
    envs = buf = None
    try:
        envs = gym.vector.SyncVectorEnv([partial(make_env, env_cfg, s, training) for s in seeds],
                                        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
        buf = np.ndarray((len(seeds), *envs.single_observation_space.shape), envs.single_observation_space.dtype,
                         buffer=shm.buf, offset=offset)
        while True:
            cmd, data = conn.recv()
            if cmd == "step":
                obs, rew, term, trunc, info = envs.step(data)
                buf[:] = obs
                conn.send(("ok", (rew, term, trunc, info)))
            elif cmd == "reset":
                obs, info = envs.reset(seed=data)
                buf[:] = obs
                conn.send(("ok", info))
            elif cmd == "close":
                conn.send(("ok", None))
                break
    except Exception as e:  # noqa: BLE001 (reported to the parent, which raises it)
        try:
            conn.send(("error", f"{type(e).__name__}: {e}"))
        except (BrokenPipeError, OSError):
            pass
    finally:
        if envs is not None:
            envs.close()
        del buf
        shm.close()


class ProcessVectorEnv:
    """``num_envs`` copies of :func:`make_env` stepped in ``workers`` spawned processes, each a
    :class:`gymnasium.vector.SyncVectorEnv` of a contiguous slice of the copies (copy ``i`` seeded
    ``seed + i``, ``AutoresetMode.SAME_STEP``): the same observations, rewards and infos as
    ``make_vector_env(..., mode="sync")`` (and the same order of reset seeds), with the emulators
    running outside this process's GIL: ALE holds the GIL while it emulates, so copies stepped in
    a background thread stall the learner's Python between its TensorFlow calls (in the DQN loop
    the replay sampling took ~3x longer while a thread stepped the copies). Observations come back
    through one shared-memory block (each worker writes its rows), the rest through a pipe per
    worker; :meth:`step_async` / :meth:`step_wait` let the caller learn while the copies step."""

    def __init__(self, env_cfg: EnvConfig, seed: int, num_envs: int, training: bool, workers: int):
        import multiprocessing as mp
        from multiprocessing import shared_memory

        probe = make_env(env_cfg, seed, training)
        self.single_observation_space, self.single_action_space = probe.observation_space, probe.action_space
        probe.close()
        self.num_envs = int(num_envs)
        workers = max(1, min(int(workers), self.num_envs))
        bounds = np.linspace(0, self.num_envs, workers + 1).round().astype(int)
        self._slices = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
        shape, dtype = self.single_observation_space.shape, self.single_observation_space.dtype
        self._shm = shared_memory.SharedMemory(create=True, size=max(1, self.num_envs * int(np.prod(shape)) * np.dtype(dtype).itemsize))
        self._obs = np.ndarray((self.num_envs, *shape), dtype, buffer=self._shm.buf)
        ctx = mp.get_context("spawn")
        self._conns, self._procs = [], []
        try:
            for a, b in self._slices:
                parent, child = ctx.Pipe()
                p = ctx.Process(target=_env_worker, args=(child, env_cfg, [seed + i for i in range(a, b)], training,
                                                          self._shm.name, a * self._obs[0].nbytes), daemon=True)
                p.start()
                child.close()
                self._conns.append(parent)
                self._procs.append(p)
        except BaseException:
            self.close()
            raise

    def _send(self, cmd: str, parts: list[Any]) -> None:
        for conn, data in zip(self._conns, parts):
            try:
                conn.send((cmd, data))
            except (BrokenPipeError, OSError):
                raise Rl2fpgaError(self._died()) from None

    def _died(self) -> str:
        codes = [p.exitcode for p in self._procs if not p.is_alive()]
        return (f"an environment worker process ended (exit codes {codes}); rerun, or set "
                "train.dqn.vector_mode=thread to step the copies in this process")

    def _gather(self) -> list[Any]:
        out = []
        for conn in self._conns:
            try:
                status, data = conn.recv()
            except (EOFError, OSError):
                raise Rl2fpgaError(self._died()) from None
            if status == "error":
                raise Rl2fpgaError(f"environment worker failed: {data}")
            out.append(data)
        return out

    def reset(self, *, seed: int | None = None) -> tuple[np.ndarray, dict]:
        self._send("reset", [None if seed is None else seed + a for a, _ in self._slices])
        infos = self._gather()
        return self._obs.copy(), _merge_infos(infos, [b - a for a, b in self._slices])

    def step_async(self, actions: np.ndarray) -> None:
        actions = np.asarray(actions)
        self._send("step", [actions[a:b] for a, b in self._slices])

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        parts = self._gather()
        sizes = [b - a for a, b in self._slices]
        rew = np.concatenate([p[0] for p in parts])
        term = np.concatenate([p[1] for p in parts])
        trunc = np.concatenate([p[2] for p in parts])
        return self._obs.copy(), rew, term, trunc, _merge_infos([p[3] for p in parts], sizes)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        self.step_async(actions)
        return self.step_wait()

    def close(self) -> None:
        for conn in self._conns:
            try:
                conn.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for p in self._procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
        for conn in self._conns:
            conn.close()
        self._conns, self._procs = [], []
        if getattr(self, "_shm", None) is not None:
            del self._obs
            self._shm.close()
            self._shm.unlink()
            self._shm = None
