"""Replay buffer: frames stored once, stacked observations rebuilt exactly, episode boundaries,
ring wrap-around, and the bytes a 1M-transition Atari buffer needs."""

from __future__ import annotations

import numpy as np
import pytest

from rl2fpga.config import EnvConfig
from rl2fpga.train.envs import make_env
from rl2fpga.train.replay import ReplayBuffer, atari_bytes_per_transition


def _fill_from_env(rb: ReplayBuffer, env, steps: int, seed: int):
    """Play random actions into ``rb``; return {slot: obs} for every observation the env returned,
    {slot: next obs} for every transition, and the transitions in order."""
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    rb.start_episode(obs)
    seen_obs = {rb.current: obs}
    transitions = []
    for _ in range(steps):
        a = int(rng.integers(env.action_space.n))
        k = rb.current
        nxt, r, term, trunc, _ = env.step(a)
        rb.add(a, float(r), bool(term), nxt)
        transitions.append((k, a, float(r), bool(term), nxt))
        seen_obs[rb.current] = nxt
        if term or trunc:
            obs, _ = env.reset()
            rb.start_episode(obs)
            seen_obs[rb.current] = obs
    return seen_obs, transitions


def test_atari_stacked_obs_from_buffer_equal_env_obs():
    # episodic life (training) makes many short episodes: many boundaries to get right
    env = make_env(EnvConfig(id="ALE/Breakout-v5"), seed=3, training=True)
    rb = ReplayBuffer(5000, (84, 84, 4), np.uint8, (), np.int32, stack=4, seed=0)
    seen, transitions = _fill_from_env(rb, env, 600, seed=3)
    env.close()
    assert rb.frames.shape == (5000, 84, 84)  # one frame per slot, not four
    n_starts = int((rb.pos_in_episode[: rb.written] == 0).sum())
    assert n_starts >= 3  # several lives/episodes were played
    slots = np.array(sorted(seen))
    rebuilt = rb.stacked(slots)
    for i, k in enumerate(slots):
        assert np.array_equal(rebuilt[i], seen[k]), f"slot {k}"
    # transitions: obs, action, reward, terminal flag and next obs
    for k, a, r, term, nxt in transitions:
        assert rb.valid[k] and rb.actions[k] == a and rb.rewards[k] == r and rb.terminated[k] == term
        assert np.array_equal(rb.stacked(np.array([k + 1]))[0], nxt)


def test_sampled_batches_match_env_transitions_after_wraparound():
    env = make_env(EnvConfig(id="ALE/Breakout-v5"), seed=5, training=True)
    cap = 300
    rb = ReplayBuffer(cap, (84, 84, 4), np.uint8, (), np.int32, stack=4, seed=1)
    _, transitions = _fill_from_env(rb, env, 1000, seed=5)  # wraps the ring 3 times
    env.close()
    # ground truth for the transitions whose slots are still live: slot -> (obs, next obs)
    truth = {}
    obs_of = {}
    for k, _a, _r, _term, nxt in transitions:
        obs_of[(k + 1) % cap] = nxt
    for k, a, r, term, nxt in transitions[-200:]:
        truth[k] = (a, r, term, nxt)
    rb.rng = np.random.default_rng(0)
    checked = 0
    for _ in range(20):
        ks = rb._sample_slots(16)
        b_obs = rb.stacked(ks)
        b_next = rb.stacked((ks + 1) % cap)
        for i, k in enumerate(ks):
            if k in truth:
                a, r, term, nxt = truth[k]
                assert np.array_equal(b_next[i], nxt)
                assert rb.actions[k] == a and rb.rewards[k] == r and rb.terminated[k] == term
                if k in obs_of and rb.pos_in_episode[k] > 0:
                    assert np.array_equal(b_obs[i], obs_of[k])
                checked += 1
    assert checked > 100
    b = rb.sample(32)
    assert b.obs.shape == (32, 84, 84, 4) and b.obs.dtype == np.uint8 and b.next_obs.shape == (32, 84, 84, 4)


def test_vector_buffer_and_episode_end_slot():
    rb = ReplayBuffer(10, (2,), np.float32, (), np.int32, stack=1, seed=0)
    rb.start_episode(np.array([0, 0], np.float32))
    rb.add(1, 1.0, False, np.array([1, 1], np.float32))
    rb.add(0, 2.0, True, np.array([2, 2], np.float32))  # episode ends: final obs gets a slot
    rb.start_episode(np.array([9, 9], np.float32))
    assert rb.valid[:4].tolist() == [True, True, False, False]
    assert len(rb) == 2
    b = rb.sample(50)
    # only the two transitions can be drawn, with their own next observations
    for o, a, r, n, t in zip(b.obs, b.actions, b.rewards, b.next_obs, b.terminated):
        assert (o[0], a, r, n[0], t) in {(0.0, 1, 1.0, 1.0, 0.0), (1.0, 0, 2.0, 2.0, 1.0)}


def test_atari_replay_bytes_for_one_million_transitions():
    per = atari_bytes_per_transition()
    assert per >= 84 * 84  # at least one frame
    assert per * 1_000_000 <= 8e9
    # measured, not assumed: a real buffer's arrays grow by exactly that per slot
    small, large = (ReplayBuffer(n, (84, 84, 4), np.uint8, (), np.int32, stack=4) for n in (100, 200))
    assert large.nbytes() - small.nbytes() == 100 * per


def test_too_small_capacity_rejected():
    with pytest.raises(ValueError):
        ReplayBuffer(4, (84, 84, 4), np.uint8, stack=4)
