"""DQN (Mnih et al. 2015) with the Double-DQN option, cleanrl style: read it top to bottom.

Epsilon-greedy play into a replay buffer; every ``train_freq`` environment steps a burst of
``gradient_steps`` minibatch updates on the Huber (or squared) TD error; a hard target copy
every ``target_update_interval`` steps. Pruning hooks: ``model`` starts from given (e.g. rewound)
weights and ``masks`` (layer name -> 0/1 kernel mask) are re-applied after every gradient step,
so pruned weights stay exactly 0.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from rl2fpga.config import RunConfig
from rl2fpga.errors import Rl2fpgaError
from rl2fpga.train.common import (
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
from rl2fpga.train.envs import FRAME_STACK, check_algo, env_spec, make_env
from rl2fpga.train.evaluate import (
    Policy,
    dense_chain,
    greedy_policy,
    network_input,
    numpy_greedy_policy,
)
from rl2fpga.train.networks import build_network
from rl2fpga.train.replay import ReplayBuffer


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
) -> TrainResult:
    """Train a DQN agent; write model.keras, init_model.keras, checkpoints/, metrics, eval and tb/
    into ``out_dir`` (nothing is written when it is None)."""
    dc, tc = cfg.train.dqn, cfg.train
    spec = env_spec(cfg.env)
    check_algo("dqn", spec)
    if dc.num_envs != 1:
        raise Rl2fpgaError(f"train.dqn.num_envs={dc.num_envs} is not supported yet; set train.dqn.num_envs=1")
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
    optimizer = tf.keras.optimizers.Adam(learning_rate=dc.learning_rate)
    loss_fn = tf.keras.losses.Huber() if dc.huber else tf.keras.losses.MeanSquaredError()
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        save_keras(q_net, out_dir / "init_model.keras")

    tf_greedy = greedy_policy(q_net)  # tf.function on the live weights

    def current_policy() -> Policy:
        """Greedy policy on the current weights: NumPy for an MLP (weights change only in bursts)."""
        return numpy_greedy_policy(q_net) if dense_chain(q_net) is not None else tf_greedy

    @tf.function
    def update(obs, actions, rewards, next_obs, terminated) -> tuple[tf.Tensor, tf.Tensor]:
        next_in = network_input(next_obs)
        next_target = target_net(next_in, training=False)
        if dc.double_dqn:  # online net picks the action, target net scores it
            best = tf.argmax(q_net(next_in, training=False), axis=1, output_type=tf.int32)
            next_value = tf.gather(next_target, best, axis=1, batch_dims=1)
        else:
            next_value = tf.reduce_max(next_target, axis=1)
        td_target = rewards + dc.gamma * (1.0 - terminated) * next_value
        with tf.GradientTape() as tape:
            q = q_net(network_input(obs), training=True)
            q_taken = tf.gather(q, actions, axis=1, batch_dims=1)
            loss = loss_fn(tf.stop_gradient(td_target), q_taken)
        grads = tape.gradient(loss, q_net.trainable_variables)
        grads, _ = tf.clip_by_global_norm(grads, dc.max_grad_norm)
        optimizer.apply_gradients(zip(grads, q_net.trainable_variables))
        for var, mask in mask_pairs:  # pruned weights stay exactly zero
            var.assign(var * mask)
        return loss, tf.reduce_mean(q_taken)

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
            if step % dc.target_update_interval == 0:
                target_net.set_weights(q_net.get_weights())

            # -- evaluate, checkpoint ------------------------------------------------------------
            if out_dir is not None and step in ckpt_at:
                save_keras(q_net, out_dir / "checkpoints" / f"step_{step:08d}.keras")
            if tc.eval_every > 0 and step % tc.eval_every == 0 and step > dc.learning_starts:
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
    return finish(cfg, out_dir, q_net, tf_greedy, selector, logger, step, t0, {"algo": "dqn"})
