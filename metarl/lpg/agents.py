"""Inner agents for LPG and A2C: networks, losses and their optimizers.

Agents are dicts of small networks over the flat observation:

* ``tabular``: one bias-free linear layer with zero init. Tabular grid-world
  observations are one-hots (plus a trailing time entry), so the layer is a
  table and zero init is the uniform policy / uniform prediction. Lifetimes
  feed it :func:`encode_tabular` observations ``[index, time]``: a row gather
  instead of a product with a 5409-wide one-hot, and rollouts store 2 floats
  per step instead of 5409 (the one-hot version was memory-bound, and 3x
  slower per step with 16 vmapped agents than with one).
* ``mlp``: one hidden layer of 32 tanh units (docs/algorithms.md §1.2).

LPG agent = ``{"actor": obs->logits, "pred": obs->y logits}`` (no critic: the
rule replaces it); A2C agent = ``{"actor": obs->logits, "critic": obs->value}``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import optax

from metarl.config import check_fields, option

AGENT_KINDS = ("tabular", "mlp")
MLP_HIDDEN = 32
_PROB_EPS = 1e-8  # as GROOVE: keeps log pi(a|s) finite for a collapsed policy


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    """Inner agent and lifetime settings (docs/algorithms.md §1.2)."""

    kind: str = option("tabular", choices=AGENT_KINDS)  # "tabular" | "mlp"
    num_envs: int = option(64, ge=1)
    num_steps: int = option(20, ge=1)
    gamma: float = option(0.99, ge=0, le=1)
    gae_lambda: float = option(0.95, ge=0, le=1)
    actor_lr: float = option(40.0, gt=0)  # tabular SGD
    critic_lr: float = option(4.0, gt=0)  # tabular SGD (critic / prediction head)
    mlp_lr: float = option(1e-3, gt=0)  # Adam, both heads, for kind="mlp"
    ent_coef: float = option(0.01, ge=0)  # A2C only
    max_grad_norm: float = 0.5  # per module (actor, critic/pred) like GROOVE; <= 0 disables
    pred_coef: float = option(0.5, ge=0)  # alpha_y
    eval_episodes: int = option(16, ge=1)  # parallel evaluation envs, one episode each

    def __post_init__(self):
        check_fields(self)


# --- networks ----------------------------------------------------------------------
def init_network(key: jax.Array, kind: str, in_dim: int, out_dim: int, out_scale: float = 1.0) -> dict:
    if kind == "tabular":
        return {"kernel": jnp.zeros((in_dim, out_dim), jnp.float32)}
    k_hidden, k_out = jax.random.split(key)
    orth = jax.nn.initializers.orthogonal
    return {
        "hidden": {"kernel": orth(math.sqrt(2.0))(k_hidden, (in_dim, MLP_HIDDEN), jnp.float32),
                   "bias": jnp.zeros((MLP_HIDDEN,), jnp.float32)},
        "out": {"kernel": orth(out_scale)(k_out, (MLP_HIDDEN, out_dim), jnp.float32),
                "bias": jnp.zeros((out_dim,), jnp.float32)},
    }


def encode_tabular(obs: jax.Array) -> jax.Array:
    """One-hot + time observation ``[..., D]`` -> ``[..., 2]`` = (index of the hot entry, time entry)."""
    index = jnp.argmax(obs[..., :-1], axis=-1).astype(jnp.float32)
    return jnp.stack([index, obs[..., -1].astype(jnp.float32)], axis=-1)


def apply_network(params: dict, x: jax.Array) -> jax.Array:
    """MLP on raw observations; tabular on :func:`encode_tabular` observations."""
    if "hidden" not in params:
        kernel = params["kernel"]  # rows: one per one-hot entry, then the time row
        return kernel[x[..., 0].astype(jnp.int32)] + x[..., 1:2] * kernel[-1]
    h = jnp.tanh(x @ params["hidden"]["kernel"] + params["hidden"]["bias"])
    return h @ params["out"]["kernel"] + params["out"]["bias"]


def init_lpg_agent(key: jax.Array, kind: str, obs_dim: int, num_actions: int, pred_dim: int) -> dict:
    k_actor, k_pred = jax.random.split(key)
    return {
        "actor": init_network(k_actor, kind, obs_dim, num_actions, 0.01),
        "pred": init_network(k_pred, kind, obs_dim, pred_dim, 0.01),
    }


def init_a2c_agent(key: jax.Array, kind: str, obs_dim: int, num_actions: int) -> dict:
    k_actor, k_critic = jax.random.split(key)
    return {
        "actor": init_network(k_actor, kind, obs_dim, num_actions, 0.01),
        "critic": init_network(k_critic, kind, obs_dim, 1, 1.0),
    }


def policy_logits(agent_params: dict, obs: jax.Array) -> jax.Array:
    return apply_network(agent_params["actor"], obs)


def predictions(agent_params: dict, obs: jax.Array) -> jax.Array:
    """The agent's categorical prediction ``y(s)`` (probabilities over m)."""
    return jax.nn.softmax(apply_network(agent_params["pred"], obs), axis=-1)


def values(agent_params: dict, obs: jax.Array) -> jax.Array:
    return apply_network(agent_params["critic"], obs)[..., 0]


def selected_log_prob(logits: jax.Array, action: jax.Array) -> jax.Array:
    """``log(pi(a|s) + 1e-8)``."""
    probs = jax.nn.softmax(logits, axis=-1)
    chosen = jnp.take_along_axis(probs, action[..., None].astype(jnp.int32), axis=-1)[..., 0]
    return jnp.log(chosen + _PROB_EPS)


def entropy(probs: jax.Array) -> jax.Array:
    return -jnp.sum(probs * jnp.log(probs + _PROB_EPS), axis=-1)


def kl_categorical(p: jax.Array, q: jax.Array) -> jax.Array:
    """``KL(p || q)`` over the last axis."""
    return jnp.sum(p * (jnp.log(p + _PROB_EPS) - jnp.log(q + _PROB_EPS)), axis=-1)


# --- losses ------------------------------------------------------------------------
def lpg_agent_loss(
    agent_params: dict, obs: jax.Array, action: jax.Array, pi_hat: jax.Array, y_hat: jax.Array, pred_coef: float
) -> tuple[jax.Array, dict]:
    """``mean_t[pi_hat · log pi(a|s)] + alpha_y · mean_t KL(y(s) || y_hat)``.

    ``pi_hat`` and ``y_hat`` are targets computed from stop-gradient rollout
    data, so they are constants for the agent gradient. No stop-gradient here:
    meta-gradients must flow from the loss into the targets' meta-parameters.
    """
    log_prob = selected_log_prob(policy_logits(agent_params, obs), action)
    kl = kl_categorical(predictions(agent_params, obs), y_hat)
    policy_term = jnp.mean(pi_hat * log_prob)
    pred_term = jnp.mean(kl)
    return policy_term + pred_coef * pred_term, {"policy_loss": policy_term, "pred_kl": pred_term}


def a2c_loss(
    agent_params: dict, obs: jax.Array, action: jax.Array, advantages: jax.Array, targets: jax.Array, ent_coef: float
) -> tuple[jax.Array, dict]:
    """Actor ``-mean(log pi · A) - ent_coef · H`` plus critic ``mean((V - target)^2)`` (own lr per module)."""
    logits = policy_logits(agent_params, obs)
    log_prob = selected_log_prob(logits, action)
    ent = jnp.mean(entropy(jax.nn.softmax(logits, axis=-1)))
    actor = -jnp.mean(log_prob * jax.lax.stop_gradient(advantages)) - ent_coef * ent
    critic = jnp.mean(jnp.square(values(agent_params, obs) - jax.lax.stop_gradient(targets)))
    return actor + critic, {"actor_loss": actor, "value_loss": critic, "entropy": ent}


# --- optimisation ------------------------------------------------------------------
def clip_per_module(grads: dict, max_norm: float) -> dict:
    """Clip each top-level module (actor, critic/pred) to ``max_norm`` separately, as GROOVE's two train states."""
    if max_norm <= 0:
        return grads

    def clip(tree):
        norm = optax.global_norm(tree)
        return jax.tree.map(lambda g: g * jnp.minimum(1.0, max_norm / (norm + 1e-12)), tree)

    return {name: clip(tree) for name, tree in grads.items()}


def default_optimizer(config: AgentConfig) -> optax.GradientTransformation:
    """Tabular: SGD, lr ``actor_lr`` on the actor and ``critic_lr`` elsewhere. MLP: Adam ``mlp_lr``."""
    if config.kind == "mlp":
        return optax.adam(config.mlp_lr)
    return optax.multi_transform(
        {"actor": optax.sgd(config.actor_lr), "other": optax.sgd(config.critic_lr)},
        lambda params: {name: jax.tree.map(lambda _: "actor" if name == "actor" else "other", tree)
                        for name, tree in params.items()},
    )


class OptimizerSlot:
    """Resolves ``optimizer=`` (None, an optax transform, or a learned optimizer with ``.transform``)."""

    def __init__(self, config: AgentConfig, optimizer: Any = None):
        self.optimizer = default_optimizer(config) if optimizer is None else optimizer
        self.learned = hasattr(self.optimizer, "transform")

    def params(self, key: jax.Array, optimizer_params: Any) -> Any:
        if optimizer_params is not None:
            return optimizer_params
        if not self.learned:
            return {}
        if not hasattr(self.optimizer, "init"):
            raise ValueError("a learned optimizer without init(key) needs optimizer_params")
        return self.optimizer.init(key)

    def transform(self, optimizer_params: Any) -> optax.GradientTransformationExtraArgs:
        tx = self.optimizer.transform(optimizer_params) if self.learned else self.optimizer
        return optax.with_extra_args_support(tx)


def neutral_dormancy(params: Any) -> Any:
    """Ones of shape ``(out,)`` per leaf: these agents report no dormant units."""
    return jax.tree.map(lambda p: jnp.ones(jnp.shape(p)[-1:], jnp.float32), params)
