"""num_envs > 1: the vector env is make_env's wrappers (same frames, rewards and episode ends as
single envs fed the same actions), the vector replay returns exactly the transitions played
(packed uint8 stacks, episode starts, ring wrap-around), and the vectorized DQN loop and the
bfloat16 learner are seeded and keep the deployed model float32."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from rl2fpga.config import EnvConfig, RunConfig, apply_overrides
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.train.dqn import train_dqn
from rl2fpga.train.envs import ProcessVectorEnv, make_env, make_vector_env
from rl2fpga.train.networks import chain_forward, cnn, mlp, weight_layers
from rl2fpga.train.replay import VectorReplay, interleave_channels

BREAKOUT = EnvConfig(id="ALE/Breakout-v5")


def _play(n_envs: int, steps: int, seed: int, rb: VectorReplay | None = None):
    """Random actions in a vector env; returns the per-env records of (obs, a, r, term, next_obs)."""
    rng = np.random.default_rng(seed)
    env = make_vector_env(BREAKOUT, seed, n_envs, training=True)
    obs, _ = env.reset(seed=seed)
    if rb is not None:
        rb.start_episodes(obs)
    records: list[list[tuple]] = [[] for _ in range(n_envs)]
    for _ in range(steps):
        a = rng.integers(4, size=n_envs).astype(np.int32)
        nxt, r, term, trunc, info = env.step(a)
        done = term | trunc
        final = nxt.copy()
        for i in np.flatnonzero(done):
            final[i] = info["final_obs"][i]
        for i in range(n_envs):
            records[i].append((obs[i], int(a[i]), float(r[i]), bool(term[i]), bool(trunc[i]), final[i], nxt[i]))
        if rb is not None:
            rb.add(a, r.astype(np.float32), term, final)
            if done.any():
                rb.start_episodes(nxt[done], np.flatnonzero(done))
        obs = nxt
    env.close()
    return records


@pytest.mark.slow
def test_vector_env_equals_single_envs_fed_the_same_actions():
    seed, n = 11, 2
    records = _play(n, 300, seed)
    assert sum(rec[3] for recs in records for rec in recs) >= 2  # lives lost: resets inside
    for i in range(n):
        env = make_env(BREAKOUT, seed + i, training=True)
        obs, _ = env.reset(seed=seed + i)
        for t, (vobs, a, r, term, trunc, final, _nxt) in enumerate(records[i]):
            assert np.array_equal(obs, vobs), (i, t)
            nxt, r1, term1, trunc1, _ = env.step(a)
            assert (r1, term1, trunc1) == (r, term, trunc) and np.array_equal(nxt, final), (i, t)
            obs = env.reset()[0] if term1 or trunc1 else nxt
        env.close()


@pytest.mark.slow
def test_vector_replay_samples_only_played_transitions_across_wraparound():
    n_envs, cap = 3, 3 * 120
    rb = VectorReplay(cap, n_envs, (84, 84, 4), np.uint8, stack=4, seed=0)
    records = _play(n_envs, 400, seed=4, rb=rb)  # each ring wraps ~3 times
    assert rb.frames.shape == (n_envs, 120, 84, 84)  # one frame per slot
    played = {(o.tobytes(), a, r, term, f.tobytes()) for recs in records for (o, a, r, term, _tr, f, _n) in recs}
    starts = 0
    for _ in range(20):
        b = rb.sample(32)
        assert b.pairs.shape == (64, 84, 84, 4) and b.pairs.dtype == np.uint8
        for j in range(32):
            key = (b.pairs[j].tobytes(), int(b.actions[j]), float(b.rewards[j]), bool(b.terminated[j]), b.pairs[32 + j].tobytes())
            assert key in played
            starts += int(np.array_equal(b.pairs[j][..., 0], b.pairs[j][..., 3]))
    assert starts > 0  # episode starts (first frame repeated) were drawn and rebuilt right
    # the same (env, slot) rebuilt by the reference stacking
    envs, slots = rb.sample_slots(8)
    ref = rb.stacked(envs, slots)
    assert all(any(np.array_equal(ref[j], o) for (o, *_rest) in records[envs[j]]) for j in range(8))


def test_interleave_channels_is_the_channels_last_transpose():
    x = np.random.default_rng(0).integers(0, 256, (5, 4, 7, 3), dtype=np.uint8)
    assert np.array_equal(interleave_channels(x), np.moveaxis(x, 1, -1))


def test_chain_forward_float32_equals_keras_and_bfloat16_is_close():
    tf.keras.utils.set_random_seed(0)
    for model, shape in ((cnn(4, "atari"), (3, 84, 84, 4)), (mlp(4, 2, [16, 16]), (5, 4))):
        x = tf.constant(np.random.default_rng(1).random(shape, np.float32))
        ref = model(x).numpy()
        assert np.array_equal(chain_forward(model, tf.float32)(x).numpy(), ref)
        bf = chain_forward(model, tf.bfloat16)(x)
        assert bf.dtype == tf.float32
        assert np.max(np.abs(bf.numpy() - ref)) <= 0.05 * np.max(np.abs(ref)) + 1e-3
        assert all(w.dtype == tf.float32 for w in model.weights)


def test_chain_forward_takes_uint8_pixels_as_network_input_gives_them():
    """The bfloat16 learner feeds uint8 stacks straight in: one cast, then * 2^-8 (exact), the same
    numbers as network_input's float32 pixels cast to the learner's dtype."""
    from rl2fpga.train.evaluate import network_input

    tf.keras.utils.set_random_seed(0)
    model = cnn(4, "atari")
    px = tf.constant(np.random.default_rng(2).integers(0, 256, (3, 84, 84, 4), dtype=np.uint8))
    for dtype in (tf.bfloat16, tf.float32):
        f = chain_forward(model, dtype)
        assert np.array_equal(f(px).numpy(), f(network_input(px)).numpy())


def test_fused_adam_of_the_bfloat16_learner_is_kerass_adam():
    """The bfloat16 learner's optimizer (Keras's legacy Adam: one ResourceApplyAdam per variable)
    takes the same steps as tf.keras.optimizers.Adam from the same gradients."""
    rng = np.random.default_rng(3)
    w0 = rng.standard_normal((64, 32)).astype(np.float32)
    grads = [rng.standard_normal((64, 32)).astype(np.float32) * s for s in (1.0, 0.01, 5.0)]
    out = []
    for opt in (tf.keras.optimizers.legacy.Adam(learning_rate=1e-3), tf.keras.optimizers.Adam(learning_rate=1e-3)):
        v = tf.Variable(w0)
        for g in grads:
            opt.apply_gradients([(tf.constant(g), v)])
        out.append(v.numpy())
    assert not np.allclose(out[0], w0)
    np.testing.assert_allclose(out[0], out[1], rtol=1e-5, atol=1e-7)


def _tiny(**sets) -> RunConfig:
    base = {
        "train.total_steps": 1200, "train.eval_every": 600, "train.eval_episodes": 2,
        "train.dqn.learning_starts": 300, "train.dqn.train_freq": 100, "train.dqn.gradient_steps": 10,
        "train.dqn.target_update_interval": 200, "train.dqn.exploration_steps": 600,
        "train.dqn.buffer_size": 5000, "env.max_episode_steps": 100, "train.dqn.num_envs": 4,
    }
    base.update(sets)
    return apply_overrides(RunConfig(), [f"{k}={v}" for k, v in base.items()])


def _same(a: tf.keras.Model, b: tf.keras.Model) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))


@pytest.mark.slow
@pytest.mark.parametrize(("dtype", "mode"), [("float32", "sync"), ("bfloat16", "thread")])
def test_vector_dqn_same_seed_same_weights_and_float32_model(dtype: str, mode: str, tmp_path):
    sets = {"train.dqn.learner_dtype": dtype, "train.dqn.vector_mode": mode}
    a = train_dqn(_tiny(**sets), tmp_path, progress=False)
    b = train_dqn(_tiny(**sets), None, progress=False)
    c = train_dqn(_tiny(**sets, seed=1), None, progress=False)
    assert _same(a.model, b.model) and not _same(a.model, c.model)
    assert a.eval.returns == b.eval.returns
    assert a.steps == 1200 and a.metrics["num_envs"] == 4 and a.metrics["learner_dtype"] == dtype
    assert len(a.metrics["episodes"]) > 10 and len(a.metrics["evals"]) == 2  # steps 600 and 1200
    saved = tf.keras.models.load_model(tmp_path / "model.keras", compile=False)
    assert all(w.dtype == tf.float32 for w in saved.weights)
    assert all(layer.compute_dtype == "float32" for layer in weight_layers(saved))
    assert _same(saved, a.model)
    init = tf.keras.models.load_model(tmp_path / "init_model.keras", compile=False)
    assert not _same(init, a.model)  # it learned


def test_bad_num_envs():
    with pytest.raises(Rl2fpgaError, match="num_envs"):
        train_dqn(_tiny(**{"train.dqn.num_envs": 0}), None, progress=False)


@pytest.mark.slow
def test_vector_bf16_dqn_keeps_pruned_weights_zero():
    cfg = _tiny(**{"train.dqn.learner_dtype": "bfloat16", "train.dqn.vector_mode": "thread", "train.eval_every": 0})
    start = train_dqn(cfg, None, total_steps=400, progress=False).model
    rng = np.random.default_rng(0)
    masks = {layer.name: (rng.random(layer.kernel.shape) < 0.5).astype(np.float32) for layer in weight_layers(start)}
    res = train_dqn(cfg, None, model=start, masks=masks, progress=False)
    for layer in weight_layers(res.model):
        k = layer.kernel.numpy()
        assert np.all(k[masks[layer.name] == 0] == 0.0)
        assert np.count_nonzero(k[masks[layer.name] == 1]) == int(masks[layer.name].sum())
    assert not _same(res.model, start)


def _same_info(a: dict, b: dict, where: str) -> None:
    """Two batched infos are the same: the same keys, at every depth, and equal values per copy
    (object arrays such as final_obs compared element by element; an episode's wall-clock
    duration aside)."""
    assert sorted(a) == sorted(b), where
    for key in a:
        if where.endswith("/episode") and key == "t":
            continue  # RecordEpisodeStatistics' wall-clock seconds of the episode: differs run to run
        x, y = a[key], b[key]
        if isinstance(x, dict):
            _same_info(x, y, f"{where}/{key}")
            continue
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape, f"{where}/{key}"
        if x.dtype == object:
            assert all((u is None and v is None) or np.array_equal(u, v) for u, v in zip(x, y)), f"{where}/{key}"
        else:
            assert np.array_equal(x, y), f"{where}/{key}"


def _assert_same_step(a: tuple, b: tuple, t: int) -> None:
    """Two vector envs' step results (obs, rewards, terminated, truncated, info) are the same."""
    for x, y in zip(a[:4], b[:4]):
        assert x.dtype == y.dtype and np.array_equal(x, y), t
    _same_info(a[4], b[4], f"step {t}")


@pytest.mark.slow
def test_process_vector_env_equals_the_sync_vector_env():
    """5 copies in 3 worker processes (slices of 2, 1, 2): every observation, reward, episode end,
    final observation and episode record equals the in-process vector env's, across life losses,
    truncations (60-step episodes) and the resets inside the step that ended an episode."""
    env_cfg = EnvConfig(id="ALE/Breakout-v5", max_episode_steps=60)
    sync = make_vector_env(env_cfg, 3, 5, training=True, mode="sync")
    procs = make_vector_env(env_cfg, 3, 5, training=True, mode="async", workers=3)
    assert isinstance(procs, ProcessVectorEnv) and [b - a for a, b in procs._slices] == [2, 1, 2]
    try:
        oa, _ = sync.reset(seed=3)
        ob, _ = procs.reset(seed=3)
        assert np.array_equal(oa, ob)
        rng = np.random.default_rng(0)
        ends = episodes = 0
        for t in range(300):
            actions = rng.integers(4, size=5).astype(np.int32)
            a = sync.step(actions)
            procs.step_async(actions)
            b = procs.step_wait()
            _assert_same_step(a, b, t)
            ends += int(np.sum(a[2] | a[3]))
            episodes += int(np.sum(a[4].get("final_info", {}).get("_episode", 0)))
        assert ends >= 20 and episodes >= 5  # life losses and truncated games happened
    finally:
        sync.close()
        procs.close()
    assert procs._shm is None and not procs._procs


@pytest.mark.slow
def test_process_vector_env_reports_a_dead_worker_and_cleans_up():
    procs = make_vector_env(EnvConfig(id="ALE/Breakout-v5"), 0, 2, training=True, mode="async", workers=2)
    name = procs._shm.name
    procs.reset(seed=0)
    other, worker = procs._procs
    worker.kill()
    worker.join()
    with pytest.raises(Rl2fpgaError, match="environment worker process ended.*vector_mode=thread"):
        procs.step(np.zeros(2, np.int32))
    assert other.is_alive()
    procs.close()
    assert not other.is_alive() and not procs._procs
    from multiprocessing import shared_memory

    with pytest.raises(FileNotFoundError):
        shared_memory.SharedMemory(name=name)  # unlinked


@pytest.mark.slow
def test_async_dqn_is_the_thread_run_bit_for_bit():
    """Copies in worker processes (async) or in a thread: the learner sees the same transitions in
    the same order, so the same seed gives the same weights and returns."""
    sets = {"train.dqn.learner_dtype": "bfloat16", "train.eval_every": 0}
    a = train_dqn(_tiny(**sets, **{"train.dqn.vector_mode": "thread"}), None, progress=False)
    b = train_dqn(_tiny(**sets, **{"train.dqn.vector_mode": "async", "train.dqn.env_workers": 2}), None, progress=False)
    assert _same(a.model, b.model) and a.eval.returns == b.eval.returns
    assert a.metrics["episodes"] == b.metrics["episodes"] and len(a.metrics["episodes"]) > 10


def test_bad_env_workers():
    with pytest.raises(Rl2fpgaError, match="env_workers"):
        train_dqn(_tiny(**{"train.dqn.env_workers": 0, "train.dqn.vector_mode": "async"}), None, progress=False)
