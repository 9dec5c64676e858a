"""PPO's rollout: ``num_steps`` steps of ``num_envs`` envs under the actor, and its randomness.

Speed notes (CPU is latency-bound on small nets): the loop only runs the
actor and the env; every random number of an update comes from one batched
``jax.random.bits`` call (:meth:`Rollout.draw`); for gymnax-style envs the
auto-resets are computed before the loop (:class:`PresetReset`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from envs.wrappers import LogWrapper, TaskResetWrapper, TaskState
from metarl.agents import networks, random_bits
from metarl.agents.distributions import env_action, sample_with_noise
from metarl.agents.env_spec import EnvSpec
from metarl.agents.ppo_config import PPOConfig
from metarl.agents.ppo_policy import flat_obs, observe


class PresetReset:
    """gymnax's auto-reset step with the reset supplied instead of computed.

    Same result as ``env.step(key)`` (or ``TaskResetWrapper(env).step``) when
    ``reset`` is ``env.reset_env`` of the second half of ``split(key)``; drawing
    it beforehand keeps a reset (and its RNG) out of the sequential loop. With
    ``episode_tasks`` the state is a ``TaskState`` and ``params`` is the next
    episode's task, as in ``TaskResetWrapper``.
    """

    def __init__(self, env: Any, reset: tuple[Any, Any], episode_tasks: bool):
        self.env, self.reset, self.episode_tasks = env, reset, episode_tasks

    def step(self, key, state, action, params):
        # ``key`` is already the step half of gymnax's split.
        env_state, task = (state.env_state, state.task) if self.episode_tasks else (state, params)
        obs_st, state_st, reward, terminated, info = self.env.step_env(key, env_state, action, task)
        truncated = self.env.is_truncated(state_st, task)
        done = jnp.logical_or(terminated, truncated)
        obs_re, state_re = self.reset
        pick = lambda a, b: jax.tree.map(lambda x, y: jnp.where(done, x, y), a, b)  # noqa: E731
        obs, new_env_state = pick(obs_re, obs_st), pick(state_re, state_st)
        info = {**info, "terminated": terminated, "truncated": truncated, "final_observation": obs_st}
        if not self.episode_tasks:
            return obs, new_env_state, reward, terminated, truncated, info
        new_state = TaskState(new_env_state, pick(params, task))
        return obs, new_state, reward, terminated, truncated, {**info, "task": task}


class Rollout:
    """The env side of PPO: the logged env, the per-update random draws and the step loop."""

    def __init__(self, config: PPOConfig, env: Any, spec: EnvSpec, episode_tasks: bool):
        self.config, self.env, self.spec, self.episode_tasks = config, env, spec, episode_tasks
        self.log_env = LogWrapper(TaskResetWrapper(env) if episode_tasks else env)
        self.preset_resets = all(hasattr(env, a) for a in ("step_env", "reset_env", "is_truncated"))

    def draw(self, key: jax.Array) -> dict:
        """Every random draw of one update from a single ``jax.random.bits`` call.

        Per-step env keys are then split exactly as gymnax's ``step`` splits
        them; the reset half is used up front in one vmapped ``reset_env`` over
        ``[num_steps, num_envs]`` (see :class:`PresetReset`).
        """
        cfg = self.config
        t, n, w = cfg.num_steps, cfg.num_envs, random_bits.key_width(key)
        budget = random_bits.BitBudget()
        slots = {
            "next_key": budget.take(w),
            "teacher": budget.take(w),
            "reset": budget.take(n, w),
            "noise": budget.take(t, n, self.spec.action_dim),
            "step": budget.take(t, n, w),
            "perm": budget.take(cfg.update_epochs, cfg.batch_size),
            "opt": budget.take(cfg.update_epochs, cfg.num_minibatches, w),
        }
        bits = budget.draw(key)
        out = {name: bits[slot] for name, slot in slots.items()}
        for name in ("next_key", "teacher", "reset", "step", "opt"):
            out[name] = random_bits.keys_from_bits(key, out[name])
        out["noise"] = (random_bits.normal if self.spec.continuous else random_bits.gumbel)(out["noise"])
        return out

    def _preset_resets(self, step_keys: jax.Array, env_params: Any):
        # Flat single vmaps: nested vmaps compile markedly slower on CPU.
        t, n = step_keys.shape[:2]
        pairs = jax.vmap(jax.random.split)(step_keys.reshape((t * n,) + step_keys.shape[2:]))
        tiled = jax.tree.map(lambda x: jnp.tile(x, (t,) + (1,) * (x.ndim - 1)), env_params)
        reset = jax.vmap(self.env.reset_env)(pairs[:, 1], tiled)
        unflat = lambda x: x.reshape((t, n) + x.shape[1:])  # noqa: E731
        return unflat(pairs[:, 0]), jax.tree.map(unflat, reset)

    def run(self, params, rms, env_state, obs, env_params, noise, step_keys) -> tuple[dict, Any, jax.Array]:
        """``(trajectory [T, num_envs, ...], env_state, obs)``; ``obs`` flat and raw (un-normalised)."""
        cfg, spec = self.config, self.spec
        resets = None
        if self.preset_resets:
            step_keys, resets = self._preset_resets(step_keys, env_params)

            def env_step(key, state, action, params, reset):
                return LogWrapper(PresetReset(self.env, reset, self.episode_tasks)).step(key, state, action, params)

        else:

            def env_step(key, state, action, params, reset):
                return self.log_env.step(key, state, action, params)

        step = jax.vmap(env_step)
        log_std = params["log_std"] if spec.continuous else None

        def body(carry, xs):
            env_state, obs = carry
            noise_t, keys_t, reset_t = xs
            out, _ = networks.apply_mlp(params["actor"], observe(rms, obs, cfg.normalize_obs), cfg.activation)
            action, logp = sample_with_noise(out, noise_t, log_std)
            next_obs, env_state, reward, terminated, truncated, info = step(
                keys_t, env_state, env_action(spec, action), env_params, reset_t
            )
            record = {
                "obs": obs,
                "action": action,
                "logp": logp,
                "reward": reward.astype(jnp.float32),
                "terminated": terminated,
                "done": jnp.logical_or(terminated, truncated),
                "final_obs": flat_obs(info["final_observation"], spec.obs_dim),
                "episode_end": info["returned_episode"],
                "episode_return": info["returned_episode_return"],
                "episode_length": info["returned_episode_length"].astype(jnp.float32),
                "episode_success": info["returned_episode_success"].astype(jnp.float32),
            }
            if self.episode_tasks:
                record["task"] = info["task"]
            return (env_state, flat_obs(next_obs, spec.obs_dim)), record

        (env_state, obs), traj = jax.lax.scan(body, (env_state, obs), (noise, step_keys, resets))
        return traj, env_state, obs


def last_episode_stats(traj: dict, previous: jax.Array) -> jax.Array:
    """``[return, length, success]`` averaged over the episodes that ended in ``traj``.

    When none ended, ``previous`` (the last values reported) is kept, so a
    metric row never averages over nothing.
    """
    ended = traj["episode_end"].astype(jnp.float32)
    count = jnp.sum(ended)
    fresh = jnp.stack(
        [jnp.sum(traj[k] * ended) for k in ("episode_return", "episode_length", "episode_success")]
    ) / jnp.maximum(count, 1)
    return jnp.where(count > 0, fresh, previous)
