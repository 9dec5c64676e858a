"""RL²'s recurrent actor-critic as a plain pytree: encoder MLP -> GRU, LSTM or transformer -> actor and critic heads.

Parameters are nested dicts like :mod:`metarl.agents.networks` (whose dense
layers and orthogonal init are reused)::

    {"encoder": {...}, "gru" | "lstm": {"wi", "bi", "wh", "bh"} | "transformer": {...},
     "actor": {...}, "critic": {...}, "log_std"?}

The cell's key names the cell, so a trained ``params`` is applied without its
config. The carry is one array per env: ``h`` (GRU, width ``hidden``),
``[c, h]`` (LSTM, width ``2 * hidden``) or the transformer's context cache
(:mod:`.rl2_transformer`), zero at trial start. One array keeps the per-chunk
carries of TBPTT a plain ``[chunks, envs, width]`` batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from metarl.agents import networks, rl2_transformer
from metarl.agents.networks import dense

Params = dict
GATES = {"gru": 3, "lstm": 4}
CORES = (*GATES, "transformer")  # the keys that name a core in params


def _orthogonal(key: jax.Array, n_in: int, n_out: int, gain: float = 1.0) -> jax.Array:
    """An orthogonal ``(n_in, n_out)`` kernel (a single-layer MLP's head from :func:`networks.init_mlp`)."""
    return networks.init_mlp(key, n_in, (), n_out, gain)["head"]["kernel"]


def init_cell(key: jax.Array, cell: str, n_in: int, hidden: int) -> Params:
    """Input kernel ``[n_in, g*hidden]`` and recurrent kernel with one orthogonal ``[hidden, hidden]`` block per gate."""
    gates = GATES[cell]
    keys = jax.random.split(key, gates + 1)
    recurrent = jnp.concatenate([_orthogonal(k, hidden, hidden) for k in keys[1:]], axis=1)
    zeros = jnp.zeros((gates * hidden,), jnp.float32)
    return {"wi": _orthogonal(keys[0], n_in, gates * hidden), "bi": zeros, "wh": recurrent, "bh": zeros}


def init_network(
    key: jax.Array,
    in_dim: int,
    action_dim: int,
    *,
    cell: str,
    hidden: int,
    encoder_widths: Sequence[int],
    head_widths: Sequence[int],
    continuous: bool,
    context_window: int = 32,
    num_layers: int = 2,
    num_heads: int = 4,
) -> Params:
    """Fresh parameters; heads get gains 0.01 (actor) and 1 (critic) as in PPO.

    ``context_window``, ``num_layers`` and ``num_heads`` size the transformer (ignored by GRU and LSTM).
    """
    k_enc, k_cell, k_actor, k_critic = jax.random.split(key, 4)
    sqrt2 = float(np.sqrt(2.0))
    params = {}
    core_in = in_dim
    if encoder_widths:
        # the last encoder layer is followed by the activation, so it gets a hidden layer's gain
        params["encoder"] = networks.init_mlp(k_enc, in_dim, encoder_widths[:-1], encoder_widths[-1], sqrt2)
        core_in = encoder_widths[-1]
    if cell == "transformer":
        params[cell] = rl2_transformer.init(k_cell, core_in, hidden, context_window, num_layers, num_heads)
    else:
        params[cell] = init_cell(k_cell, cell, core_in, hidden)
    params["actor"] = networks.init_mlp(k_actor, hidden, head_widths, action_dim, 0.01)
    params["critic"] = networks.init_mlp(k_critic, hidden, head_widths, 1, 1.0)
    if continuous:
        params["log_std"] = jnp.zeros((action_dim,), jnp.float32)
    return params


def cell_of(params: Params) -> str:
    """Which recurrent cell ``params`` holds."""
    found = [c for c in CORES if c in params]
    if len(found) != 1:
        raise ValueError(f"RL2 params hold no single recurrent cell (keys: {sorted(params)})")
    return found[0]


def carry_width(params: Params) -> int:
    cell = cell_of(params)
    if cell == "transformer":
        return rl2_transformer.carry_width(params[cell])
    hidden = params[cell]["wh"].shape[0]
    return hidden if cell == "gru" else 2 * hidden


def initial_carry(params: Params, batch: int) -> jax.Array:
    """Zero carry for ``batch`` envs (the trial-start carry)."""
    return jnp.zeros((batch, carry_width(params)), jnp.float32)


def cell_step(core: Params, cell: str, carry: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(new carry, output h)`` of one step; GRU as in Cho et al. (reset gate inside the candidate)."""
    if cell == "transformer":
        return rl2_transformer.step(core, carry, x)
    gi = dense(x, core["wi"], core["bi"])
    if cell == "gru":
        gh = dense(carry, core["wh"], core["bh"])
        i_r, i_z, i_n = jnp.split(gi, 3, axis=-1)
        h_r, h_z, h_n = jnp.split(gh, 3, axis=-1)
        reset = jax.nn.sigmoid(i_r + h_r)
        update = jax.nn.sigmoid(i_z + h_z)
        candidate = jnp.tanh(i_n + reset * h_n)
        h = (1.0 - update) * candidate + update * carry
        return h, h
    c, h = jnp.split(carry, 2, axis=-1)
    i, f, g, o = jnp.split(gi + dense(h, core["wh"], core["bh"]), 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return jnp.concatenate([c, h], axis=-1), h


def step(params: Params, carry: jax.Array, x: jax.Array, activation: str) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One step for a batch: ``(carry, policy output (logits or Gaussian mean), value)``."""
    act = networks.ACTIVATIONS[activation]
    if "encoder" in params:
        x = act(networks.apply_mlp(params["encoder"], x, activation)[0])
    cell = cell_of(params)
    carry, h = cell_step(params[cell], cell, carry, x)
    out, _ = networks.apply_mlp(params["actor"], h, activation)
    value, _ = networks.apply_mlp(params["critic"], h, activation)
    return carry, out, value[..., 0]


def unroll(params: Params, carry: jax.Array, inputs: jax.Array, activation: str) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``inputs [T, B, in]`` from ``carry [B, width]``: ``(final carry, outputs [T, B, A], values [T, B])``."""

    def body(carry, x):
        carry, out, value = step(params, carry, x, activation)
        return carry, (out, value)

    carry, (outs, values) = jax.lax.scan(body, carry, inputs)
    return carry, outs, values


def replay(params: Params, carries: jax.Array, inputs: jax.Array, activation: str) -> tuple[jax.Array, jax.Array]:
    """TBPTT replay: chunk ``c`` of ``inputs [C, L, B, in]`` runs from its stored ``carries[c]`` ([C, B, width]).

    The chunks are independent computations (vmapped), so no gradient flows
    from one chunk into the steps of another. Returns ``outputs [C, L, B, A]``, ``values [C, L, B]``.
    """
    _, outs, values = jax.vmap(lambda c, x: unroll(params, c, x, activation))(carries, inputs)
    return outs, values
