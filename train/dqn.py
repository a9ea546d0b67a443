"""DQN (Mnih et al. 2015) with the Double-DQN option, cleanrl style: read it top to bottom.

Epsilon-greedy play into a replay buffer; every ``train_freq`` environment steps a burst of
``gradient_steps`` minibatch updates on the Huber (or squared) TD error; a hard target copy
every ``target_update_interval`` steps. Pruning hooks: ``model`` starts from given (e.g. rewound)
weights and ``masks`` (layer name -> 0/1 kernel mask) are re-applied after every gradient step,
so pruned weights stay exactly 0. ``schedule`` prunes the Q-network during training
(:class:`~rl2fpga.quantize.sparsity.MaskPruner`: masks updated on the cubic schedule, applied
after every gradient step and to the target network); evaluations (model selection, early
stopping) then start at the schedule's end, so the selected model has the final sparsity.

``train.dqn.num_envs > 1`` steps that many copies of the environment together (one batched
greedy forward pass per step of all copies) and samples packed uint8 stacks from a
:class:`VectorReplay`; every schedule still counts agent steps over all copies.
``train.dqn.learner_dtype = bfloat16`` runs the learner's passes in bfloat16 on the float32
weights (:func:`chain_forward`); acting, evaluation and the saved model stay float32.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import tensorflow as tf

from rl2fpga.config import RunConfig
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.quantize.sparsity import MaskPruner, PruneSchedule
from rl2fpga.train.envs import FRAME_STACK, check_algo, env_spec, make_env, make_vector_env
from rl2fpga.train.evaluate import (
    Policy,
    dense_chain,
    greedy_policy,
    network_input,
    numpy_greedy_policy,
)
from rl2fpga.train.networks import build_network, chain_forward
from rl2fpga.train.replay import ReplayBuffer, VectorReplay, unpack_pairs
from rl2fpga.train.training import (
    Logger,
    Selector,
    TrainResult,
    apply_masks,
    check_masks,
    checkpoint_steps,
    copy_weights_by_name,
    finish,
    progress_bar,
    save_keras,
    seed_everything,
)


def linear_schedule(start: float, end: float, duration: int, t: int) -> float:
    return end if duration <= 0 else start + (end - start) * min(1.0, t / duration)


def build_q_network(cfg: RunConfig, obs_shape: tuple[int, ...], n_actions: int) -> tf.keras.Model:
    return build_network(cfg.train.network, obs_shape, n_actions, cfg.train.hidden, name="q_network")


def train_dqn(
    cfg: RunConfig,
    out_dir: Path | None,
    model: tf.keras.Model | None = None,
    masks: dict[str, np.ndarray] | None = None,
    total_steps: int | None = None,
    progress: bool = True,
    schedule: PruneSchedule | None = None,
) -> TrainResult:
    """Train a DQN agent; write model.keras, init_model.keras, checkpoints/, metrics, eval and tb/
    into ``out_dir`` (nothing is written when it is None); ``schedule``: prune while training."""
    dc, tc = cfg.train.dqn, cfg.train
    spec = env_spec(cfg.env)
    check_algo("dqn", spec)
    if dc.num_envs < 1:
        raise Rl2fpgaError(f"train.dqn.num_envs={dc.num_envs} must be at least 1")
    if dc.env_workers < 1:
        raise Rl2fpgaError(f"train.dqn.env_workers={dc.env_workers} must be at least 1")
    if spec.is_atari and tc.network == "mlp":
        raise Rl2fpgaError(f"{spec.id} has image observations; set train.network=atari (or nature)")
    if not spec.is_atari and tc.network != "mlp":
        raise Rl2fpgaError(f"{spec.id} has vector observations; set train.network=mlp")
    total = int(total_steps if total_steps is not None else tc.total_steps)
    rng = seed_everything(cfg.seed)
    t0 = time.perf_counter()

    # -- networks -------------------------------------------------------------------------------
    q_net = build_q_network(cfg, spec.obs_shape, spec.n_actions)
    if model is not None:
        copy_weights_by_name(model, q_net)
    mask_pairs = check_masks(q_net, masks)
    apply_masks(mask_pairs)
    target_net = build_q_network(cfg, spec.obs_shape, spec.n_actions)
    target_net.set_weights(q_net.get_weights())
    pruner = None if schedule is None else MaskPruner(schedule, q_net, total, masks, mirrors=(target_net,))
    if pruner is not None:
        mask_pairs = pruner.pairs()  # variables the schedule updates
    eval_after = dc.learning_starts if pruner is None else max(dc.learning_starts, schedule.end - 1)
    # the bfloat16 learner takes Keras's fused Adam (one ResourceApplyAdam kernel per variable,
    # the same update rule and epsilon as tf.keras.optimizers.Adam, which spends ~10 elementwise
    # ops per variable: ~0.7 ms of a ~9 ms update on 2 cores, profiled); the float32 learner (the
    # CartPole demo's) keeps tf.keras.optimizers.Adam, so its seeded runs repeat the earlier ones
    optimizer = (tf.keras.optimizers.legacy.Adam(learning_rate=dc.learning_rate) if dc.learner_dtype == "bfloat16"
                 else tf.keras.optimizers.Adam(learning_rate=dc.learning_rate))
    loss_fn = tf.keras.losses.Huber() if dc.huber else tf.keras.losses.MeanSquaredError()
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        save_keras(q_net, out_dir / "init_model.keras")

    tf_greedy = greedy_policy(q_net)  # tf.function on the live weights

    def current_policy() -> Policy:
        """Greedy policy on the current weights: NumPy for an MLP (weights change only in bursts)."""
        return numpy_greedy_policy(q_net) if dense_chain(q_net) is not None else tf_greedy

    if dc.learner_dtype == "float32":
        q_fwd = lambda x: q_net(x, training=True)  # noqa: E731
        q_next = lambda x: q_net(x, training=False)  # noqa: E731
        target_fwd = lambda x: target_net(x, training=False)  # noqa: E731
    else:
        q_fwd = q_next = chain_forward(q_net, tf.bfloat16)
        target_fwd = chain_forward(target_net, tf.bfloat16)
    # chain_forward takes uint8 pixels as they are (one cast to bfloat16, exact, then * 2^-8)
    learner_input = network_input if dc.learner_dtype == "float32" else (lambda x: x)

    def td_step(obs, actions, rewards, next_obs, terminated) -> tuple[tf.Tensor, tf.Tensor]:
        next_in = learner_input(next_obs)
        next_target = target_fwd(next_in)
        if dc.double_dqn:  # online net picks the action, target net scores it
            best = tf.argmax(q_next(next_in), axis=1, output_type=tf.int32)
            next_value = tf.gather(next_target, best, axis=1, batch_dims=1)
        else:
            next_value = tf.reduce_max(next_target, axis=1)
        td_target = rewards + dc.gamma * (1.0 - terminated) * next_value
        with tf.GradientTape() as tape:
            q = q_fwd(learner_input(obs))
            q_taken = tf.gather(q, actions, axis=1, batch_dims=1)
            loss = loss_fn(tf.stop_gradient(td_target), q_taken)
        grads = tape.gradient(loss, q_net.trainable_variables)
        grads, _ = tf.clip_by_global_norm(grads, dc.max_grad_norm)
        optimizer.apply_gradients(zip(grads, q_net.trainable_variables))
        for var, mask in mask_pairs:  # pruned weights stay exactly zero
            var.assign(var * mask)
        return loss, tf.reduce_mean(q_taken)

    update = tf.function(td_step)

    if dc.num_envs > 1:
        return _train_vector(cfg, out_dir, spec, q_net, target_net, td_step, total, rng, t0, progress, pruner, eval_after)

    # -- replay, env, bookkeeping --------------------------------------------------------------
    stack = FRAME_STACK if spec.is_atari else 1
    obs_dtype = np.uint8 if spec.is_atari else np.float32
    rb = ReplayBuffer(dc.buffer_size, spec.obs_shape, obs_dtype, (), np.int32, stack=stack, seed=cfg.seed)
    env = make_env(cfg.env, cfg.seed, training=True)
    logger = Logger(out_dir)
    selector = Selector(cfg, q_net, current_policy, logger)
    ckpt_at = checkpoint_steps(cfg, total)
    bar = progress_bar(total, progress, f"dqn {spec.id}")

    obs, _ = env.reset(seed=cfg.seed)
    obs = obs.astype(obs_dtype, copy=False)
    rb.start_episode(obs)
    act = current_policy()
    step = 0
    try:
        for step in range(1, total + 1):
            # -- act ---------------------------------------------------------------------------
            eps = linear_schedule(dc.exploration_initial_eps, dc.exploration_final_eps, dc.exploration_steps, step)
            if step <= dc.learning_starts or rng.random() < eps:
                action = int(rng.integers(spec.n_actions))
            else:
                action = act(obs)
            next_obs, reward, terminated, truncated, info = env.step(action)
            next_obs = next_obs.astype(obs_dtype, copy=False)
            rb.add(action, float(reward), bool(terminated), next_obs)
            if "episode" in info:  # a real game ended (Atari: all lives, unclipped score)
                logger.episode(step, float(np.asarray(info["episode"]["r"])))
                bar.set_postfix(ret=f"{logger.running_return():.1f}", eps=f"{eps:.2f}")
            if terminated or truncated:
                obs, _ = env.reset()
                obs = obs.astype(obs_dtype, copy=False)
                rb.start_episode(obs)
            else:
                obs = next_obs

            # -- learn -------------------------------------------------------------------------
            if step > dc.learning_starts and step % dc.train_freq == 0:
                for _ in range(dc.gradient_steps):
                    b = rb.sample(dc.batch_size)
                    loss, q_mean = update(b.obs, b.actions, b.rewards, b.next_obs, b.terminated)
                act = current_policy()
                logger.losses.append((step, float(loss)))
                logger.scalar("train/loss", float(loss), step)
                logger.scalar("train/q_mean", float(q_mean), step)
                logger.scalar("train/epsilon", eps, step)
            if pruner is not None and pruner.due(step - 1, step):
                pruner.update(step)
                act = current_policy()
            if step % dc.target_update_interval == 0:
                target_net.set_weights(q_net.get_weights())

            # -- evaluate, checkpoint ------------------------------------------------------------
            if out_dir is not None and step in ckpt_at:
                save_keras(q_net, out_dir / "checkpoints" / f"step_{step:08d}.keras")
            if tc.eval_every > 0 and step % tc.eval_every == 0 and step > eval_after:
                res = selector(step)
                bar.write(f"step {step}: eval return {res.mean:.1f} +- {res.std:.1f}")
                if selector.stop:
                    break
            bar.update(1)
    finally:
        bar.close()
        env.close()
    if not selector.stop and (tc.eval_every <= 0 or step % tc.eval_every != 0):
        selector(step)
    return _finish(cfg, out_dir, q_net, tf_greedy, selector, logger, step, t0, {"algo": "dqn"}, pruner)


def _finish(cfg: RunConfig, out_dir: Path | None, q_net: tf.keras.Model, policy: Policy, selector: Selector,
            logger: Logger, step: int, t0: float, extra: dict, pruner: MaskPruner | None) -> TrainResult:
    """:func:`finish`, with the pruning schedule's record in the metrics and its final masks."""
    if pruner is not None:
        extra = {**extra, "prune": pruner.summary()}
    res = finish(cfg, out_dir, q_net, policy, selector, logger, step, t0, extra)
    res.masks = None if pruner is None else pruner.masks()
    return res


def _crossed(prev: int, step: int, every: int, after: int = 0) -> int:
    """How many multiples of ``every`` lie in (max(prev, after), step]."""
    if every <= 0:
        return 0
    lo = max(prev, after)
    return max(0, step // every - lo // every)


def _train_vector(cfg: RunConfig, out_dir: Path | None, spec, q_net: tf.keras.Model, target_net: tf.keras.Model,
                  td_step, total: int, rng: np.random.Generator, t0: float, progress: bool,
                  pruner: MaskPruner | None = None, eval_after: int | None = None) -> TrainResult:
    """The loop of :func:`train_dqn` over ``num_envs`` environment copies stepped together.

    Agent step ``t`` is one step of one copy; an iteration steps every copy once (steps
    ``t+1 .. t+N``, copy ``i`` taking step ``t+1+i`` and its epsilon). After the iteration come
    the gradient bursts, target copies, checkpoints and evaluations whose agent-step counts fell
    inside it, in that order, as the single-env loop does them step by step. Training stops at
    the first iteration reaching ``total`` (at most N - 1 steps more).

    ``vector_mode`` thread / async: the copies step in a background thread / ``env_workers``
    worker processes while the learner runs that iteration's gradient steps, so those steps
    sample the replay as it was before the iteration (at most N agent steps older than in the
    sync order; still seeded: the replay is only written by this thread, after the step). Both
    give the same run; async keeps the emulators (which hold the GIL) out of this process."""
    dc, tc = cfg.train.dqn, cfg.train
    n_envs = dc.num_envs
    eval_after = dc.learning_starts if eval_after is None else eval_after
    stack = FRAME_STACK if spec.is_atari else 1
    obs_dtype = np.uint8 if spec.is_atari else np.float32
    rb = VectorReplay(dc.buffer_size, n_envs, spec.obs_shape, obs_dtype, stack=stack, seed=cfg.seed)
    logger = Logger(out_dir)
    tf_greedy = greedy_policy(q_net)
    selector = Selector(cfg, q_net, lambda: tf_greedy, logger)
    ckpt_at = checkpoint_steps(cfg, total)
    bar = progress_bar(total, progress, f"dqn {spec.id} x{n_envs}")

    @tf.function
    def act_batch(obs: tf.Tensor) -> tf.Tensor:
        return tf.argmax(q_net(network_input(obs), training=False), axis=1, output_type=tf.int32)

    @tf.function
    def update(pairs, actions, rewards, terminated) -> tuple[tf.Tensor, tf.Tensor]:
        obs, next_obs = unpack_pairs(pairs, dc.batch_size)
        return td_step(obs, actions, rewards, next_obs, terminated)

    def learn(bursts: int, loss, q_mean):  # noqa: ANN001, ANN202
        for _ in range(bursts * dc.gradient_steps):
            b = rb.sample(dc.batch_size)
            loss, q_mean = update(b.pairs, b.actions, b.rewards, b.terminated)
        return loss, q_mean

    envs = make_vector_env(cfg.env, cfg.seed, n_envs, training=True,
                           mode="async" if dc.vector_mode == "async" else "sync", workers=dc.env_workers)
    overlap = dc.vector_mode != "sync"
    pool = ThreadPoolExecutor(max_workers=1) if dc.vector_mode == "thread" else None
    offsets = np.arange(1, n_envs + 1)
    step = 0
    loss = q_mean = None
    try:
        obs, _ = envs.reset(seed=cfg.seed)
        obs = np.asarray(obs, obs_dtype)
        rb.start_episodes(obs)
        while step < total:
            # -- act: copy i takes agent step step + 1 + i -----------------------------------------
            t = step + offsets
            eps = np.array([linear_schedule(dc.exploration_initial_eps, dc.exploration_final_eps,
                                            dc.exploration_steps, int(s)) for s in t])
            explore = (t <= dc.learning_starts) | (rng.random(n_envs) < eps)
            actions = rng.integers(spec.n_actions, size=n_envs).astype(np.int32)
            if not explore.all():
                greedy = act_batch(tf.constant(obs)).numpy()
                actions = np.where(explore, actions, greedy).astype(np.int32)
            prev, step = step, step + n_envs
            bursts = _crossed(prev, step, dc.train_freq, dc.learning_starts)
            if overlap:  # the copies step (another thread / processes) while the learner learns
                if dc.vector_mode == "async":
                    envs.step_async(actions)
                else:
                    pending = pool.submit(envs.step, actions)
                loss, q_mean = learn(bursts, loss, q_mean)
                next_obs, rewards, terminated, truncated, info = (
                    envs.step_wait() if dc.vector_mode == "async" else pending.result())
            else:
                next_obs, rewards, terminated, truncated, info = envs.step(actions)
            next_obs = np.asarray(next_obs, obs_dtype)
            done = np.logical_or(terminated, truncated)
            final = next_obs
            if done.any():  # SAME_STEP autoreset: next_obs holds the reset obs of finished copies
                final = next_obs.copy()
                for i in np.flatnonzero(done):
                    final[i] = info["final_obs"][i]
            rb.add(actions, np.asarray(rewards, np.float32), np.asarray(terminated, bool), final)
            if done.any():
                rb.start_episodes(next_obs[done], np.flatnonzero(done))
                fin = info.get("final_info", {})
                if "episode" in fin:  # a real game ended (Atari: all lives, unclipped score)
                    for i in np.flatnonzero(fin["_episode"]):
                        logger.episode(int(t[i]), float(fin["episode"]["r"][i]))
                    bar.set_postfix(ret=f"{logger.running_return():.1f}", eps=f"{eps[-1]:.2f}")
            obs = next_obs

            # -- learn, target copies --------------------------------------------------------------
            if not overlap:
                loss, q_mean = learn(bursts, loss, q_mean)
            if bursts:
                logger.losses.append((step, float(loss)))
                logger.scalar("train/loss", float(loss), step)
                logger.scalar("train/q_mean", float(q_mean), step)
                logger.scalar("train/epsilon", float(eps[-1]), step)
            if pruner is not None and pruner.due(prev, step):
                pruner.update(step)
            if _crossed(prev, step, dc.target_update_interval):
                target_net.set_weights(q_net.get_weights())

            # -- evaluate, checkpoint ----------------------------------------------------------------
            if out_dir is not None and any(prev < s <= step for s in ckpt_at):
                save_keras(q_net, out_dir / "checkpoints" / f"step_{step:08d}.keras")
            if tc.eval_every > 0 and _crossed(prev, step, tc.eval_every, eval_after):
                res = selector(step)
                bar.write(f"step {step}: eval return {res.mean:.1f} +- {res.std:.1f}")
                if selector.stop:
                    break
            bar.update(n_envs)
    finally:
        bar.close()
        envs.close()
        if pool is not None:
            pool.shutdown()
    if not selector.stop and (tc.eval_every <= 0 or not _crossed(step - n_envs, step, tc.eval_every, eval_after)):
        selector(step)
    return _finish(cfg, out_dir, q_net, tf_greedy, selector, logger, step, t0,
                   {"algo": "dqn", "num_envs": n_envs, "learner_dtype": dc.learner_dtype}, pruner)
