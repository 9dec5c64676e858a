"""The Learned Policy Gradient rule (*Discovering Reinforcement Learning Algorithms*).

Per step the rule reads ``[r, d, gamma·(1-terminated), pi(a|s), phi(y_t), phi(y_{t+1})·(1-d)]``
(+ ``n/N`` and ``log N / max_log_lifetime`` for TA-LPG), runs a GRU or LSTM
**backwards in time** whose carry is zeroed where an episode ended, and emits a
scalar ``pi_hat_t`` and a categorical target ``y_hat_t = softmax(Dense(m))``.
``phi`` is a shared MLP ``[embed_hidden -> 1]`` on the agent's prediction vectors.

The network is written with plain ``jnp`` on a dict of parameters so it is a
pure function of ``meta_params``: it jits, vmaps over populations and is
differentiable (meta-gradients). Input projections are computed for all steps
at once; only the recurrent product runs inside the reverse scan.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from metarl.config import check_fields, option

CELLS = ("gru", "lstm")
_BASE_INPUTS = 6  # r, d, discount, pi(a|s), phi(y_t), phi(y_{t+1})
_TIME_INPUTS = 2  # n/N, log N / max_log_lifetime


@dataclasses.dataclass(frozen=True)
class LPGConfig:
    hidden: int = option(256, ge=1)
    cell: str = option("gru", choices=CELLS)  # "gru" | "lstm"
    pred_dim: int = option(8, ge=1)  # m, categorical prediction size
    embed_hidden: int = option(16, ge=1)  # phi: y -> [embed_hidden] -> 1
    time_aware: bool = False  # TA-LPG inputs n/N and log N (normalised)
    max_log_lifetime: float = option(math.log(25000.0), gt=0)  # normaliser for log N

    def __post_init__(self):
        check_fields(self)

    @property
    def num_inputs(self) -> int:
        return _BASE_INPUTS + (_TIME_INPUTS if self.time_aware else 0)


@struct.dataclass
class LPGInputs:
    """One rollout, time-major ``[T, B]``; ``y``/``y_next`` are the agent's predictions ``[T, B, m]``."""

    reward: jax.Array
    done: jax.Array  # episode ended at t (terminated or truncated): the carry resets here
    discount: jax.Array  # gamma * (1 - terminated)
    action_prob: jax.Array  # pi(a_t | s_t)
    y: jax.Array  # y(s_t)
    y_next: jax.Array  # y(s_{t+1}) (the final observation when the episode ended)


def _dense_init(key: jax.Array, fan_in: int, fan_out: int, scale: float = 1.0) -> dict:
    # LeCun-normal kernel, zero bias (flax's Dense default)
    kernel = jax.random.normal(key, (fan_in, fan_out), jnp.float32) * (scale / math.sqrt(fan_in))
    return {"kernel": kernel, "bias": jnp.zeros((fan_out,), jnp.float32)}


def _dense(layer: dict, x: jax.Array) -> jax.Array:
    return x @ layer["kernel"] + layer["bias"]


def _orthogonal(key: jax.Array, size: int, blocks: int) -> jax.Array:
    """``[size, blocks*size]``: one orthogonal matrix per gate (recurrent kernels)."""
    mats = jax.vmap(lambda k: jax.nn.initializers.orthogonal()(k, (size, size), jnp.float32))(
        jax.random.split(key, blocks)
    )
    return jnp.concatenate(list(mats), axis=1)


class LPGRule:
    """``rule(meta_params, rollout, progress, lifetime) -> (pi_hat [T,B], y_hat [T,B,m])``."""

    def __init__(self, config: LPGConfig | None = None):
        self.config = config or LPGConfig()
        self.name = "ta_lpg" if self.config.time_aware else "lpg"

    @property
    def _gates(self) -> int:
        return 3 if self.config.cell == "gru" else 4

    def init(self, key: jax.Array) -> dict:
        cfg = self.config
        k_phi1, k_phi2, k_in, k_rec, k_pi, k_y = jax.random.split(key, 6)
        width = self._gates * cfg.hidden
        recurrent = {
            "input": _dense_init(k_in, cfg.num_inputs, width),
            "hidden": _orthogonal(k_rec, cfg.hidden, self._gates),
        }
        if cfg.cell == "gru":
            # GRU keeps a separate bias on the recurrent candidate term (inside r * (.))
            recurrent["hidden_bias"] = jnp.zeros((cfg.hidden,), jnp.float32)
        return {
            "phi": {"hidden": _dense_init(k_phi1, cfg.pred_dim, cfg.embed_hidden),
                    "out": _dense_init(k_phi2, cfg.embed_hidden, 1)},
            "recurrent": recurrent,
            "pi_head": _dense_init(k_pi, cfg.hidden, 1),
            "y_head": _dense_init(k_y, cfg.hidden, cfg.pred_dim),
        }

    def policy_gradient_params(self, key: jax.Array, trace: float = 0.9, scale: float = 10.0,
                               reward_gain: float = 1.0) -> dict:
        """Hand-set GRU meta-parameters that reproduce REINFORCE with a return-to-go.

        Two units integrate ``±tanh(reward_gain·r)`` backwards with update gate
        ``z = trace`` (all other weights zero), ``h_t = trace·h_{t+1} + (1-trace)·tanh(g·r_t)``,
        reset at episode ends; the head gives ``pi_hat = -scale·h``. The agent
        loss ``pi_hat·log pi`` then ascends ``log pi · (discounted return-to-go)``.
        A reference point for learned rules and a check that the machinery can learn.
        """
        if self.config.cell != "gru" or self.config.hidden < 2:
            raise ValueError("policy_gradient_params needs a GRU rule with hidden >= 2")
        h = self.config.hidden
        params = jax.tree.map(jnp.zeros_like, self.init(key))
        rec = params["recurrent"]
        kernel = rec["input"]["kernel"]
        # gates are laid out [reset | update | candidate]; input 0 is the reward
        kernel = kernel.at[0, 2 * h].set(reward_gain).at[0, 2 * h + 1].set(-reward_gain)
        bias = rec["input"]["bias"].at[h : h + 2].set(math.log(trace / (1.0 - trace)))
        rec["input"] = {"kernel": kernel, "bias": bias}
        params["pi_head"]["kernel"] = params["pi_head"]["kernel"].at[0, 0].set(-scale).at[1, 0].set(scale)
        return params

    # --- pieces ---------------------------------------------------------------------
    def embed(self, meta_params: dict, y: jax.Array) -> jax.Array:
        """phi(y): ``[..., m] -> [...]``."""
        phi = meta_params["phi"]
        return _dense(phi["out"], jax.nn.relu(_dense(phi["hidden"], y)))[..., 0]

    def features(self, meta_params: dict, rollout: LPGInputs, progress: Any, lifetime: Any) -> jax.Array:
        """Per-step inputs ``[T, B, num_inputs]``."""
        done = rollout.done.astype(jnp.float32)
        phi_next = self.embed(meta_params, rollout.y_next) * (1.0 - done)
        columns = [
            rollout.reward.astype(jnp.float32),
            done,
            rollout.discount.astype(jnp.float32),
            rollout.action_prob.astype(jnp.float32),
            self.embed(meta_params, rollout.y),
            phi_next,
        ]
        if self.config.time_aware:
            ones = jnp.ones_like(done)
            log_n = jnp.log(jnp.maximum(jnp.asarray(lifetime, jnp.float32), 1.0)) / self.config.max_log_lifetime
            columns += [ones * jnp.asarray(progress, jnp.float32), ones * log_n]
        return jnp.stack(columns, axis=-1)

    def _cell(self, rec: dict, carry, x_proj: jax.Array):
        h_size = self.config.hidden
        if self.config.cell == "gru":
            h = carry
            h_proj = h @ rec["hidden"]
            r = jax.nn.sigmoid(x_proj[..., :h_size] + h_proj[..., :h_size])
            z = jax.nn.sigmoid(x_proj[..., h_size : 2 * h_size] + h_proj[..., h_size : 2 * h_size])
            n = jnp.tanh(x_proj[..., 2 * h_size :] + r * (h_proj[..., 2 * h_size :] + rec["hidden_bias"]))
            h = (1.0 - z) * n + z * h
            return h, h
        c, h = carry
        gates = x_proj + h @ rec["hidden"]
        i, f, g, o = jnp.split(gates, 4, axis=-1)
        # forget-gate bias +1: the usual LSTM init, keeps long memories trainable
        c = jax.nn.sigmoid(f + 1.0) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (c, h), h

    def __call__(self, meta_params: dict, rollout: LPGInputs, progress: Any = 0.0, lifetime: Any = 1.0):
        x = self.features(meta_params, rollout, progress, lifetime)
        rec = meta_params["recurrent"]
        x_proj = _dense(rec["input"], x)  # all steps at once
        done = rollout.done.astype(bool)
        batch_shape = x.shape[1:-1]
        zeros = jnp.zeros((*batch_shape, self.config.hidden), jnp.float32)
        carry0 = zeros if self.config.cell == "gru" else (zeros, zeros)

        def step(carry, xs):
            proj, ended = xs
            # s_{t+1} belongs to the next episode when the episode ended at t: forget it
            carry = jax.tree.map(lambda c: jnp.where(ended[..., None], 0.0, c), carry)
            return self._cell(rec, carry, proj)

        _, hidden = jax.lax.scan(step, carry0, (x_proj, done), reverse=True)
        hidden = jax.nn.relu(hidden)
        pi_hat = _dense(meta_params["pi_head"], hidden)[..., 0]
        y_hat = jax.nn.softmax(_dense(meta_params["y_head"], hidden), axis=-1)
        return pi_hat, y_hat
