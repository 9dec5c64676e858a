"""A reference PPO for the speed comparison in ``scripts/bench_ppo.py``, written from the
published algorithm (Schulman et al. 2017) in the single-file style PureJaxRL made common:
``make_train(config) -> train(key)``, the whole run one ``lax.scan`` over updates.

Same setting as PureJaxRL's CartPole-v1 example and the suite's ``PPOConfig()`` defaults:
4 envs x 128 steps, 4 epochs of 4 minibatches, Adam 2.5e-4 annealed linearly, gamma 0.99,
GAE lambda 0.95, clip 0.2, entropy 0.01, value 0.5, gradient norm 0.5, separate 64-64 tanh
actor and critic, orthogonal initialisation. Written independently of the suite's code so
the benchmark compares the suite with a plain program, not with itself. It is a benchmark
reference only: the suite's PPO is what users run.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import optax


@dataclasses.dataclass(frozen=True)
class Config:
    num_envs: int = 4
    num_steps: int = 128
    total_timesteps: int = 500_000
    update_epochs: int = 4
    num_minibatches: int = 4
    lr: float = 2.5e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // (self.num_envs * self.num_steps)


class ActorCritic(nn.Module):
    num_actions: int

    @nn.compact
    def __call__(self, x):
        def dense(n, scale):
            return nn.Dense(n, kernel_init=nn.initializers.orthogonal(scale), bias_init=nn.initializers.zeros)

        a = nn.tanh(dense(64, np.sqrt(2))(x))
        a = nn.tanh(dense(64, np.sqrt(2))(a))
        logits = dense(self.num_actions, 0.01)(a)
        v = nn.tanh(dense(64, np.sqrt(2))(x))
        v = nn.tanh(dense(64, np.sqrt(2))(v))
        return logits, jnp.squeeze(dense(1, 1.0)(v), -1)


def make_train(config: Config):
    env, env_params = gymnax.make("CartPole-v1")
    net = ActorCritic(env.num_actions)
    batch = config.num_envs * config.num_steps
    minibatch = batch // config.num_minibatches

    def lr_schedule(count):
        done_fraction = count // (config.num_minibatches * config.update_epochs) / config.num_updates
        return config.lr * (1.0 - done_fraction)

    tx = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(lr_schedule, eps=1e-5))
    step_envs = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def loss_fn(params, obs, actions, old_logp, advantages, targets, old_values):
        logits, values = net.apply(params, obs)
        logp_all = jax.nn.log_softmax(logits)
        logp = jnp.take_along_axis(logp_all, actions[:, None], axis=1)[:, 0]
        v_clipped = old_values + jnp.clip(values - old_values, -config.clip, config.clip)
        value_loss = 0.5 * jnp.maximum((values - targets) ** 2, (v_clipped - targets) ** 2).mean()
        adv = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        ratio = jnp.exp(logp - old_logp)
        policy_loss = -jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - config.clip, 1 + config.clip) * adv).mean()
        entropy = -(jnp.exp(logp_all) * logp_all).sum(-1).mean()
        return policy_loss + config.vf_coef * value_loss - config.ent_coef * entropy

    grad_fn = jax.grad(loss_fn)

    def train(key):
        key, k_init, k_reset = jax.random.split(key, 3)
        params = net.init(k_init, jnp.zeros(env.observation_space(env_params).shape))
        opt_state = tx.init(params)
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_reset, config.num_envs), env_params)

        def env_step(carry, _):
            params, env_state, obs, key, ep_return = carry
            key, k_act, k_step = jax.random.split(key, 3)
            logits, value = net.apply(params, obs)
            action = jax.random.categorical(k_act, logits)
            logp = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], axis=1)[:, 0]
            next_obs, env_state, reward, terminated, truncated, _ = step_envs(
                jax.random.split(k_step, config.num_envs), env_state, action, env_params)
            done = terminated | truncated  # as PureJaxRL: a time-out is treated as an end
            ep_return = ep_return + reward
            finished = jnp.where(done, ep_return, jnp.nan)
            record = (obs, action, logp, value, reward, done, finished)
            return (params, env_state, next_obs, key, jnp.where(done, 0.0, ep_return)), record

        def update(carry, _):
            params, opt_state, env_state, obs, key, ep_return = carry
            (params, env_state, obs, key, ep_return), traj = jax.lax.scan(
                env_step, (params, env_state, obs, key, ep_return), None, config.num_steps)
            t_obs, t_action, t_logp, t_value, t_reward, t_done, t_finished = traj
            _, last_value = net.apply(params, obs)

            def gae(carry, xs):
                advantage, next_value = carry
                reward, value, done = xs
                delta = reward + config.gamma * next_value * (1 - done) - value
                advantage = delta + config.gamma * config.gae_lambda * (1 - done) * advantage
                return (advantage, value), advantage

            _, advantages = jax.lax.scan(gae, (jnp.zeros_like(last_value), last_value),
                                         (t_reward, t_value, t_done), reverse=True)
            targets = advantages + t_value
            flat = jax.tree.map(lambda x: x.reshape((batch, *x.shape[2:])),
                                (t_obs, t_action, t_logp, advantages, targets, t_value))

            def epoch(carry, _):
                params, opt_state, key = carry
                key, k_perm = jax.random.split(key)
                perm = jax.random.permutation(k_perm, batch)
                shape = (config.num_minibatches, minibatch)
                shuffled = jax.tree.map(lambda x: x[perm].reshape((*shape, *x.shape[1:])), flat)

                def minibatch_step(carry, mb):
                    params, opt_state = carry
                    grads = grad_fn(params, *mb)
                    updates, opt_state = tx.update(grads, opt_state)
                    return (optax.apply_updates(params, updates), opt_state), None

                (params, opt_state), _ = jax.lax.scan(minibatch_step, (params, opt_state), shuffled)
                return (params, opt_state, key), None

            (params, opt_state, key), _ = jax.lax.scan(epoch, (params, opt_state, key), None, config.update_epochs)
            mean_return = jnp.nanmean(t_finished)
            return (params, opt_state, env_state, obs, key, ep_return), mean_return

        carry = (params, opt_state, env_state, obs, key, jnp.zeros(config.num_envs))
        carry, returns = jax.lax.scan(update, carry, None, config.num_updates)
        return returns

    return train
