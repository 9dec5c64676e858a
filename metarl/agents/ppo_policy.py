"""PPO's actor as an :data:`metarl.agents.policy.ActFn`, and what the actor sees.

The policy's parameters are ``{"params": network params, "obs_rms": RunningMeanStd}``
(:func:`policy_params` takes them from a train state), so checkpoints and
evaluators need nothing else of PPO. Observations arrive as the env returns
them (any shape per env); the policy flattens them to float32, normalises
them when the agent did, and returns actions the env accepts.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from envs.wrappers import RunningMeanStd
from metarl.agents import networks
from metarl.agents.distributions import env_action
from metarl.agents.env_spec import EnvSpec
from metarl.agents.policy import ActFn, categorical_act, gaussian_act


def flat_obs(obs: jax.Array, obs_dim: int) -> jax.Array:
    """``[n, ...]`` env observations as ``[n, obs_dim]`` float32."""
    return jnp.reshape(obs, (obs.shape[0], obs_dim)).astype(jnp.float32)


def observe(rms: RunningMeanStd, obs: jax.Array, normalize: bool) -> jax.Array:
    """Flat observations as the networks see them (normalised with ``rms`` when enabled)."""
    return rms.normalize(obs).astype(jnp.float32) if normalize else obs


def policy_params(state: Any) -> dict[str, Any]:
    """``{"params", "obs_rms"}`` of a PPO train state (or anything with those attributes)."""
    return {"params": state.params, "obs_rms": state.obs_rms}


def make_policy(spec: EnvSpec, activation: str, normalize_obs: bool, greedy: bool = False) -> ActFn:
    """``act({"params", "obs_rms"}, obs, key) -> env actions``: sampled, or the mode when ``greedy``."""

    def actor_out(pp: dict, obs: jax.Array) -> jax.Array:
        x = observe(pp["obs_rms"], flat_obs(obs, spec.obs_dim), normalize_obs)
        return networks.apply_mlp(pp["params"]["actor"], x, activation)[0]

    if spec.continuous:
        base = gaussian_act(lambda pp, obs: (actor_out(pp, obs), pp["params"]["log_std"]), greedy)
    else:
        base = categorical_act(actor_out, greedy)
    return lambda pp, obs, key: env_action(spec, base(pp, obs, key))
