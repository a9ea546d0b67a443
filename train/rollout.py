"""The one rollout loop: a policy acting in an environment, episode after episode.

Every place that plays episodes goes through :func:`rollout`: evaluation
(:func:`rl2fpga.train.evaluate.evaluate`), the golden agent's episodes
(:func:`rl2fpga.quantize.quantizer.run_stateful`), recorded observations for co-simulation
(:func:`rl2fpga.train.frames.record_env`) and the closed loop on a back end
(:func:`rl2fpga.board.play.play`). What differs between them are parameters, never the loop:

* seeding: ``reseed=True`` resets episode ``i`` with ``seed + i`` (comparable evaluations);
  ``reseed=False`` resets the first episode with ``seed`` and lets the environment's own random
  state run on (one long seeded stream, as a deployed agent sees it);
* ``max_steps`` ends an episode after that many steps (None: only termination or truncation
  ends it); ``total_steps`` ends the whole rollout after that many steps in all (the last
  episode is then cut short) and starts no episode once it is reached;
* ``on_reset(i)`` runs after every reset, before the first action (clear a stateful policy's
  state, note where an episode starts).

An action is chosen from the observation (``act(obs)``), then ``env.step(action)``; the reward
counts for that step. Nothing is batched or reordered, so the same seed gives the same episodes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class EpisodeRecord:
    """One episode: the seed it was reset with (None: not reseeded), the reward of every step,
    and, when recorded, the observation each action was chosen from and the action."""

    seed: int | None
    rewards: list[float] = field(default_factory=list)
    observations: list[Any] = field(default_factory=list)
    actions: list[Any] = field(default_factory=list)
    terminated: bool = False
    truncated: bool = False

    @property
    def length(self) -> int:
        return len(self.rewards)

    @property
    def total(self) -> float:
        """The undiscounted return, summed step by step in float64 (as the reward arrives)."""
        total = 0.0
        for r in self.rewards:
            total += r
        return total


def rollout(env: Any, act: Callable[[Any], Any], *, seed: int, episodes: int | None = None,
            max_steps: int | None = None, total_steps: int | None = None, reseed: bool = True,
            record: bool = False, on_reset: Callable[[int], None] | None = None) -> list[EpisodeRecord]:
    """Play ``episodes`` episodes (None: until ``total_steps``) of ``env`` with ``act``; see the
    module docstring for the parameters. ``env`` is left open (the caller made it)."""
    if episodes is None and total_steps is None:
        raise ValueError("rollout needs episodes or total_steps (it would never end)")
    out: list[EpisodeRecord] = []
    done_steps = 0
    while episodes is None or len(out) < episodes:
        if total_steps is not None and done_steps >= total_steps:
            break
        i = len(out)
        ep_seed = seed + i if reseed else (seed if i == 0 else None)
        obs, _ = env.reset(seed=ep_seed) if ep_seed is not None else env.reset()
        if on_reset is not None:
            on_reset(i)
        ep = EpisodeRecord(ep_seed)
        out.append(ep)
        cap = max_steps
        if total_steps is not None:
            cap = total_steps - done_steps if cap is None else min(cap, total_steps - done_steps)
        while cap is None or ep.length < cap:
            action = act(obs)
            if record:
                ep.observations.append(obs)
                ep.actions.append(action)
            obs, reward, terminated, truncated, _ = env.step(action)
            ep.rewards.append(float(reward))
            done_steps += 1
            if terminated or truncated:
                ep.terminated, ep.truncated = bool(terminated), bool(truncated)
                break
    return out
