"""Soft Actor-Critic (Haarnoja et al. 2018) with twin critics, Polyak-averaged target critics and
a learned temperature, cleanrl style: read it top to bottom.

The actor is an MLP trunk (fc1, fc2, ...) with two heads, ``out`` (the mean, linear) and
``log_std``. The DEPLOYED network is the plain chain Input -> fc1 -> ... -> out, sharing its layers
with the actor; its deterministic action is ``tanh(out) * scale + offset``. Pruning hooks as in
DQN: ``model`` (a deployed chain model) gives the actor's starting weights, ``masks`` (layer
name -> 0/1 kernel mask, on the deployed layers) are re-applied after every gradient step.
``schedule`` prunes the deployed layers during training (the actor's trunk and mean head; the
critics, their targets and the ``log_std`` head stay dense), as in DQN.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from rl2fpga.config import RunConfig
from rl2fpga.fsutil import atomic_write_json
from rl2fpga.quantize.sparsity import MaskPruner, PruneSchedule
from rl2fpga.train.envs import EnvSpec, check_algo, env_spec, make_env
from rl2fpga.train.evaluate import deterministic_actor
from rl2fpga.train.replay import ReplayBuffer
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

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


def build_actor(obs_dim: int, act_dim: int, hidden: list[int]) -> tuple[tf.keras.Model, tf.keras.Model]:
    """(actor with heads [mean, log_std], deployed chain model obs -> mean) sharing layers."""
    inp = tf.keras.Input(shape=(obs_dim,), name="obs")
    x = inp
    for i, h in enumerate(hidden):
        x = tf.keras.layers.Dense(h, activation="relu", name=f"fc{i + 1}")(x)
    mean = tf.keras.layers.Dense(act_dim, activation="linear", name="out")(x)
    log_std = tf.keras.layers.Dense(act_dim, activation="linear", name="log_std")(x)
    return tf.keras.Model(inp, [mean, log_std], name="actor"), tf.keras.Model(inp, mean, name="actor_mean")


def build_critic(obs_dim: int, act_dim: int, hidden: list[int], name: str) -> tf.keras.Model:
    obs = tf.keras.Input(shape=(obs_dim,), name="obs")
    act = tf.keras.Input(shape=(act_dim,), name="action")
    x = tf.keras.layers.Concatenate(name="concat")([obs, act])
    for i, h in enumerate(hidden):
        x = tf.keras.layers.Dense(h, activation="relu", name=f"fc{i + 1}")(x)
    q = tf.keras.layers.Dense(1, name="q")(x)
    return tf.keras.Model([obs, act], q, name=name)


@dataclass
class SACAgent:
    actor: tf.keras.Model
    deployed: tf.keras.Model
    q1: tf.keras.Model
    q2: tf.keras.Model
    q1_target: tf.keras.Model
    q2_target: tf.keras.Model
    log_alpha: tf.Variable

    @classmethod
    def create(cls, cfg: RunConfig, spec: EnvSpec) -> SACAgent:
        obs_dim, act_dim = int(np.prod(spec.obs_shape)), spec.n_actions
        actor, deployed = build_actor(obs_dim, act_dim, cfg.train.hidden)
        ch = cfg.train.sac.critic_hidden
        q1, q2 = build_critic(obs_dim, act_dim, ch, "q1"), build_critic(obs_dim, act_dim, ch, "q2")
        q1_t, q2_t = build_critic(obs_dim, act_dim, ch, "q1_target"), build_critic(obs_dim, act_dim, ch, "q2_target")
        q1_t.set_weights(q1.get_weights())
        q2_t.set_weights(q2.get_weights())
        log_alpha = tf.Variable(np.log(cfg.train.sac.init_alpha), dtype=tf.float32, name="log_alpha")
        return cls(actor, deployed, q1, q2, q1_t, q2_t, log_alpha)

    def save(self, d: Path) -> None:
        """The whole agent (to resume or retrain): one .keras file per network + alpha."""
        for name in ("actor", "q1", "q2", "q1_target", "q2_target"):
            save_keras(getattr(self, name), d / f"{name}.keras")
        atomic_write_json(d / "alpha.json", {"log_alpha": float(self.log_alpha.numpy())})

    def load(self, d: Path) -> None:
        for name in ("actor", "q1", "q2", "q1_target", "q2_target"):
            from rl2fpga.safety import load_keras_model

            src = load_keras_model(d / f"{name}.keras")
            getattr(self, name).set_weights(src.get_weights())
        self.log_alpha.assign(json.loads((d / "alpha.json").read_text())["log_alpha"])


def train_sac(
    cfg: RunConfig,
    out_dir: Path | None,
    model: tf.keras.Model | None = None,
    masks: dict[str, np.ndarray] | None = None,
    total_steps: int | None = None,
    progress: bool = True,
    agent_dir: Path | None = None,
    schedule: PruneSchedule | None = None,
) -> TrainResult:
    """Train a SAC agent; write model.keras (deployed actor mean), init_model.keras, agent/,
    checkpoints/, metrics, eval and tb/ into ``out_dir`` (nothing when it is None).
    ``agent_dir`` (an ``agent/`` folder of an earlier run) resumes the whole agent; ``model``
    then overrides the actor's trunk and mean head. ``schedule``: prune the deployed actor while
    training (evaluations for selection and early stopping start at its end)."""
    sc, tc = cfg.train.sac, cfg.train
    spec = env_spec(cfg.env)
    check_algo("sac", spec)
    total = int(total_steps if total_steps is not None else tc.total_steps)
    rng = seed_everything(cfg.seed)
    t0 = time.perf_counter()

    # -- networks -------------------------------------------------------------------------------
    agent = SACAgent.create(cfg, spec)
    if agent_dir is not None:
        agent.load(Path(agent_dir))
    if model is not None:
        copy_weights_by_name(model, agent.deployed)
    mask_pairs = check_masks(agent.deployed, masks)
    apply_masks(mask_pairs)
    pruner = None if schedule is None else MaskPruner(schedule, agent.deployed, total, masks)
    if pruner is not None:
        mask_pairs = pruner.pairs()  # variables the schedule updates
    eval_after = sc.learning_starts if pruner is None else max(sc.learning_starts, schedule.end - 1)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        save_keras(agent.deployed, out_dir / "init_model.keras")
        agent.save(out_dir / "agent_init")
    actor, q1, q2, q1_t, q2_t, log_alpha = agent.actor, agent.q1, agent.q2, agent.q1_target, agent.q2_target, agent.log_alpha
    low, high = np.asarray(spec.action_low, np.float32), np.asarray(spec.action_high, np.float32)
    scale, offset = tf.constant((high - low) / 2), tf.constant((high + low) / 2)
    target_entropy = -float(spec.n_actions)
    actor_opt = tf.keras.optimizers.Adam(sc.learning_rate)
    critic_opt = tf.keras.optimizers.Adam(sc.critic_learning_rate or sc.learning_rate)
    alpha_opt = tf.keras.optimizers.Adam(sc.learning_rate)
    critic_vars = q1.trainable_variables + q2.trainable_variables

    def sample_action(obs: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Reparameterised tanh-Gaussian action and its log-probability."""
        mean, log_std = actor(obs, training=True)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (tf.tanh(log_std) + 1.0)
        std = tf.exp(log_std)
        x = mean + std * tf.random.normal(tf.shape(mean))
        y = tf.tanh(x)
        log_prob = -0.5 * (((x - mean) / std) ** 2 + 2.0 * log_std + np.log(2.0 * np.pi))
        log_prob -= tf.math.log(scale * (1.0 - y**2) + 1e-6)
        return y * scale + offset, tf.reduce_sum(log_prob, axis=1)

    @tf.function
    def explore(obs: tf.Tensor) -> tf.Tensor:
        action, _ = sample_action(tf.cast(obs, tf.float32)[None])
        return action[0]

    @tf.function
    def update(obs, actions, rewards, next_obs, terminated) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        alpha = tf.exp(log_alpha)
        # critics: soft Bellman target from the target critics
        next_action, next_logp = sample_action(next_obs)
        next_q = tf.minimum(q1_t([next_obs, next_action]), q2_t([next_obs, next_action]))[:, 0]
        target = rewards + sc.gamma * (1.0 - terminated) * (next_q - alpha * next_logp)
        with tf.GradientTape() as tape:
            q1_v, q2_v = q1([obs, actions])[:, 0], q2([obs, actions])[:, 0]
            critic_loss = tf.reduce_mean((q1_v - target) ** 2) + tf.reduce_mean((q2_v - target) ** 2)
        critic_opt.apply_gradients(zip(tape.gradient(critic_loss, critic_vars), critic_vars))
        # actor: maximise min Q - alpha * log pi
        with tf.GradientTape() as tape:
            pi, logp = sample_action(obs)
            q_pi = tf.minimum(q1([obs, pi]), q2([obs, pi]))[:, 0]
            actor_loss = tf.reduce_mean(alpha * logp - q_pi)
        actor_opt.apply_gradients(zip(tape.gradient(actor_loss, actor.trainable_variables), actor.trainable_variables))
        for var, mask in mask_pairs:  # pruned weights stay exactly zero
            var.assign(var * mask)
        # temperature: keep the entropy near -action_dim
        with tf.GradientTape() as tape:
            alpha_loss = -tf.reduce_mean(log_alpha * tf.stop_gradient(logp + target_entropy))
        alpha_opt.apply_gradients([(tape.gradient(alpha_loss, log_alpha), log_alpha)])
        # target critics: Polyak averaging
        for net, tgt in ((q1, q1_t), (q2, q2_t)):
            for w, tw in zip(net.weights, tgt.weights):
                tw.assign(sc.tau * w + (1.0 - sc.tau) * tw)
        return critic_loss, actor_loss, alpha

    # -- replay, env, bookkeeping --------------------------------------------------------------
    obs_dim, act_dim = int(np.prod(spec.obs_shape)), spec.n_actions
    rb = ReplayBuffer(sc.buffer_size, (obs_dim,), np.float32, (act_dim,), np.float32, stack=1, seed=cfg.seed)
    env = make_env(cfg.env, cfg.seed, training=True)
    logger = Logger(out_dir)
    eval_policy = deterministic_actor(agent.deployed, spec)
    selector = Selector(cfg, agent.deployed, lambda: eval_policy, logger)
    ckpt_at = checkpoint_steps(cfg, total)
    bar = progress_bar(total, progress, f"sac {spec.id}")

    obs, _ = env.reset(seed=cfg.seed)
    obs = np.asarray(obs, np.float32).ravel()
    rb.start_episode(obs)
    step = 0
    try:
        for step in range(1, total + 1):
            # -- act ---------------------------------------------------------------------------
            if step <= sc.learning_starts:
                action = rng.uniform(low, high).astype(np.float32)
            else:
                action = explore(tf.convert_to_tensor(obs)).numpy()
            next_obs, reward, terminated, truncated, info = env.step(action)
            next_obs = np.asarray(next_obs, np.float32).ravel()
            rb.add(action, float(reward), bool(terminated), next_obs)
            if "episode" in info:
                logger.episode(step, float(np.asarray(info["episode"]["r"])))
                bar.set_postfix(ret=f"{logger.running_return():.1f}")
            if terminated or truncated:
                obs, _ = env.reset()
                obs = np.asarray(obs, np.float32).ravel()
                rb.start_episode(obs)
            else:
                obs = next_obs

            # -- learn -------------------------------------------------------------------------
            if step > sc.learning_starts and step % sc.train_freq == 0:
                for _ in range(sc.gradient_steps):
                    b = rb.sample(sc.batch_size)
                    critic_loss, actor_loss, alpha = update(b.obs, b.actions, b.rewards, b.next_obs, b.terminated)
                if step % 1000 == 0:
                    logger.losses.append((step, float(critic_loss)))
                    logger.scalar("train/critic_loss", float(critic_loss), step)
                    logger.scalar("train/actor_loss", float(actor_loss), step)
                    logger.scalar("train/alpha", float(alpha), step)
            if pruner is not None and pruner.due(step - 1, step):
                pruner.update(step)

            # -- evaluate, checkpoint ------------------------------------------------------------
            if out_dir is not None and step in ckpt_at:
                save_keras(agent.deployed, out_dir / "checkpoints" / f"step_{step:08d}.keras")
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
    # agent/ holds the selected actor with the critics and temperature as trained to the end
    extra = {"algo": "sac", "alpha": float(tf.exp(log_alpha).numpy())}
    if pruner is not None:
        extra["prune"] = pruner.summary()
    res = finish(cfg, out_dir, agent.deployed, eval_policy, selector, logger, step, t0, extra,
                 save_extra=lambda d: agent.save(d / "agent"))
    res.masks = None if pruner is None else pruner.masks()
    return res
