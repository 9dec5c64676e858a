"""Loss-side regularisers as gradient transformations (no PPO loss hook needed).

A penalty ``(c/2) Σ_k w_k (θ_k − a_k)²`` has gradient ``c · w ⊙ (θ − a)``.
:func:`anchor_penalty` adds that gradient to the incoming gradients, with the
anchor ``a``, the importance ``w`` and ``c`` kept in the optimizer *state*, so
the runner can move the anchor at a task switch with :func:`set_anchor`
without recompiling. Chained before Adam this is the penalty added to the
loss — except that PPO clips the loss gradient's global norm *before* calling
the optimizer, so the penalty's gradient is not clipped with it.

* L2:       ``λ‖θ‖²``          -> anchor 0, w = 1, c = 2λ
* L2-init:  ``λ‖θ − θ0‖²``     -> anchor θ0, w = 1, c = 2λ
* EWC:      ``(λ/2) Σ F (θ − θ*)²`` -> anchor θ*, w = F (diagonal Fisher), c = λ;
  θ* and F are taken at the end of the previous task (docs/algorithms.md §6.3).

:func:`grad_norm_probe` records per-layer gradient norms in its state, which
is how the runner logs gradient norms without a hook in PPO.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from metarl.agents import networks
from metarl.continual.plasticity import layers


class AnchorState(NamedTuple):
    anchor: Any
    weight: Any
    coef: jax.Array


def anchor_penalty() -> optax.GradientTransformationExtraArgs:
    """Adds ``coef · weight ⊙ (params − anchor)``; inert (coef 0) until set."""

    def init(params):
        return AnchorState(
            anchor=jax.tree.map(jnp.asarray, params),
            weight=jax.tree.map(jnp.ones_like, params),
            coef=jnp.zeros((), jnp.float32),
        )

    def update(updates, state, params=None, **extra):
        if params is None:
            raise ValueError("anchor_penalty needs params in update()")
        grads = jax.tree.map(
            lambda g, p, a, w: g + state.coef * w * (p - a), updates, params, state.anchor, state.weight
        )
        return grads, state

    return optax.GradientTransformationExtraArgs(init, update)


def _is_anchor(x) -> bool:
    return isinstance(x, AnchorState)


def set_anchor(opt_state: Any, anchor: Any = None, weight: Any = None, coef: float | jax.Array | None = None) -> Any:
    """Replace the fields given in every :class:`AnchorState` inside ``opt_state``."""

    def replace(node):
        if not _is_anchor(node):
            return node
        return AnchorState(
            anchor=node.anchor if anchor is None else jax.tree.map(jnp.asarray, anchor),
            weight=node.weight if weight is None else jax.tree.map(jnp.asarray, weight),
            coef=node.coef if coef is None else jnp.asarray(coef, jnp.float32),
        )

    return jax.tree.map(replace, opt_state, is_leaf=_is_anchor)


def find_anchor(opt_state: Any) -> AnchorState:
    """The (first) :class:`AnchorState` inside ``opt_state``."""
    return next(s for s in jax.tree.leaves(opt_state, is_leaf=_is_anchor) if _is_anchor(s))


def penalty_value(params: Any, state: AnchorState) -> jax.Array:
    """``(c/2) Σ w (θ − a)²`` — the loss the gradient corresponds to."""
    terms = jax.tree.map(lambda p, a, w: jnp.sum(w * jnp.square(p - a)), params, state.anchor, state.weight)
    return 0.5 * state.coef * sum(jax.tree.leaves(terms))


def diagonal_fisher(
    key: jax.Array, params: Any, obs: jax.Array, activation: str, continuous: bool
) -> Any:
    """Diagonal Fisher of the actor-critic at ``params`` on ``obs[batch, d]``.

    Actor (and ``log_std``): ``E_s E_{a~π}[(∇ log π(a|s))²]`` with one sampled
    action per state. Critic: the Fisher of a unit-variance Gaussian around
    V(s), i.e. ``E_s[(∇V(s))²]``.
    """
    keys = jax.random.split(key, obs.shape[0])

    def log_prob(p, o, k):
        out, _ = networks.apply_mlp(p["actor"], o[None], activation)
        out = out[0]
        if continuous:
            std = jnp.exp(p["log_std"])
            a = jax.lax.stop_gradient(out + std * jax.random.normal(k, out.shape))
            return jnp.sum(-0.5 * jnp.square((a - out) / std) - p["log_std"])
        logits = jax.nn.log_softmax(out)
        a = jax.random.categorical(k, jax.lax.stop_gradient(logits))
        return logits[a]

    def value(p, o):
        v, _ = networks.apply_mlp(p["critic"], o[None], activation)
        return v[0, 0]

    actor_g = jax.vmap(jax.grad(log_prob), in_axes=(None, 0, 0))(params, obs, keys)
    critic_g = jax.vmap(jax.grad(value), in_axes=(None, 0))(params, obs)
    fisher = jax.tree.map(lambda g: jnp.mean(jnp.square(g), axis=0), actor_g)
    fisher["critic"] = jax.tree.map(lambda g: jnp.mean(jnp.square(g), axis=0), critic_g["critic"])
    return fisher


class GradNormState(NamedTuple):
    norms: dict  # layer name -> () float32, from the latest update


def grad_norm_probe(params_like: Any) -> optax.GradientTransformationExtraArgs:
    """Identity on the gradients; remembers each layer's gradient norm."""
    names = tuple(layers(params_like))

    def init(params):
        return GradNormState({n: jnp.zeros((), jnp.float32) for n in names})

    def update(updates, state, params=None, **extra):
        norms = {
            n: jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(layer)))
            for n, layer in layers(updates).items()
        }
        return updates, GradNormState(norms)

    return optax.GradientTransformationExtraArgs(init, update)


def read_grad_norms(opt_state: Any) -> dict[str, jax.Array]:
    found = [s for s in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, GradNormState))
             if isinstance(s, GradNormState)]
    return found[0].norms if found else {}
