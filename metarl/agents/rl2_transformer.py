"""RL²'s transformer core: causal sliding-window attention written as a recurrent cell.

Written as a cell (``step(core, carry, x) -> (carry, h)``) so that the trial
rollout, TBPTT replay from stored carries, evaluation and the job use it
exactly as the GRU and LSTM (:mod:`metarl.agents.rl2_network`).

**Carry** (one flat float32 row per env, zero at trial start)::

    [ cache: L layers x W slots x (key, value: 2d)  |  count ]       width 2*L*W*d + 1

``cache[l, i]`` holds layer ``l``'s key and value of the step ``i + 1``
steps back: a shift buffer (each step drops the oldest slot and puts the
newest at slot 0), so a slot's index *is* its relative position. ``count`` is
how many slots hold real steps (clipped to ``W``); the others are masked, so
the zero carry is the empty context.

**Step.** Embed the input; for each of the L pre-LayerNorm blocks, the current
token attends (multi-head) to itself and the valid cached slots, then an MLP
(width ``4d``, GELU); a final LayerNorm gives the hidden vector for the actor
and critic heads. A learned embedding ``P[l, r]`` per layer and relative
position ``r = 0..W`` is added to the normalised token before the query, key
and value projections.

**Why cache keys and values, not layer inputs.** The position term enters
the keys and values linearly, ``(LN(x) + P[r]) W = LN(x) W + P[r] W``, so the
cache stores the position-free ``LN(x) W + b`` and adds ``P[r] W`` (one small
matmul of parameters per step, shared by all envs) when a slot is read, and a
slot still shifts freely. Caching layer inputs instead would halve the carry
but re-normalise and re-project all ``W + 1`` tokens at every step (with
``W = 10``, ~70% of a step's multiply-adds): training ran 1.4-1.5x slower on
``bandit-k5-n10-v1``'s sizes (d = 128, 1-2 layers, CPU). The cost: the
TBPTT replay takes the stored context's keys and values as constants
(computed with the rollout's parameters), as it takes a GRU's stored ``h``.
With ``bptt_chunk=None`` every replay starts from the zero carry, so nothing
is stale and this is exact.

**Reach.** Each layer sees ``W`` steps back, so one layer depends on exactly
the last ``W + 1`` inputs; the cached keys of layer ``l > 0`` were computed
from ``W`` earlier steps, so ``L`` layers reach ``L * W`` steps back
(sliding-window attention, as Longformer/Mistral). When the trial fits the
window (``trial_steps <= W + 1``), this is a causal transformer over the
whole trial.

Parameters (static sizes live in array shapes only, so ``W``, ``L``, ``d``
and the number of heads come from ``core`` under jit/vmap/optax)::

    {"embed": {kernel [n_in, d], bias}, "pos": [L, W+1, d],
     "blocks": {"ln1", "ln2": {scale, bias [L, d]}, "q": {kernel [L, d, heads, d/heads], bias},
                "kv", "o", "mlp_in", "mlp_out": {kernel [L, ., .], bias [L, .]}},
     "ln_out": {scale, bias [d]}}
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from metarl.agents.networks import dense

Params = dict
MLP_RATIO = 4
LN_EPS = 1e-5
MASKED = -1e30  # a masked slot's attention logit: exp underflows to exactly 0


class _Draws:
    """Kernels cut from one Gaussian draw: unlike an orthogonal init (a QR per matrix, ~0.5 s of XLA
    compile each on CPU, which doubled this core's init compile) it adds one op to the program whatever L is."""

    def __init__(self, key: jax.Array, total: int):
        self.flat, self.start = jax.random.normal(key, (total,), jnp.float32), 0

    def kernel(self, shape: tuple[int, ...], std: float) -> jax.Array:
        size = int(np.prod(shape))
        piece = self.flat[self.start : self.start + size].reshape(shape)
        self.start += size
        return piece * std


def _stacked(draws: _Draws, layers: int, n_in: int, n_out: int, gain: float) -> Params:
    """``[layers, n_in, n_out]`` kernels of std ``gain / sqrt(n_in)`` (variance-preserving), zero biases."""
    kernel = draws.kernel((layers, n_in, n_out), gain / float(np.sqrt(n_in)))
    return {"kernel": kernel, "bias": jnp.zeros((layers, n_out), jnp.float32)}


def _norm(layers: int | None, width: int) -> Params:
    shape = (width,) if layers is None else (layers, width)
    return {"scale": jnp.ones(shape, jnp.float32), "bias": jnp.zeros(shape, jnp.float32)}


def init(key: jax.Array, n_in: int, width: int, window: int, layers: int, heads: int) -> Params:
    """A fresh core: scaled-normal kernels, zero biases, unit LayerNorms; the residual-branch outputs get gain
    ``1/sqrt(2L)`` (GPT-2) so depth keeps the residual stream's scale."""
    if min(width, window, layers, heads) < 1 or width % heads:
        raise ValueError(f"transformer core: need positive sizes and heads={heads} dividing width={width}, "
                         f"got window={window}, layers={layers}")
    mlp = MLP_RATIO * width
    per_layer = width * (width + 2 * width + width + mlp) + mlp * width
    draws = _Draws(key, n_in * width + layers * (per_layer + (window + 1) * width))
    out_gain = 1.0 / float(np.sqrt(2.0 * layers))
    embed = {"kernel": draws.kernel((n_in, width), 1.0 / float(np.sqrt(n_in))),
             "bias": jnp.zeros((width,), jnp.float32)}
    q = _stacked(draws, layers, width, width, 1.0)
    q["kernel"] = q["kernel"].reshape(layers, width, heads, width // heads)  # the head count lives in this shape
    blocks = {
        "ln1": _norm(layers, width),
        "q": q,
        "kv": _stacked(draws, layers, width, 2 * width, 1.0),
        "o": _stacked(draws, layers, width, width, out_gain),
        "ln2": _norm(layers, width),
        "mlp_in": _stacked(draws, layers, width, mlp, float(np.sqrt(2.0))),
        "mlp_out": _stacked(draws, layers, mlp, width, out_gain),
    }
    pos = draws.kernel((layers, window + 1, width), 0.02)  # GPT-2's
    assert draws.start == draws.flat.shape[0]
    return {
        "embed": embed,
        "pos": pos,
        "blocks": blocks,
        "ln_out": _norm(None, width),
    }


def sizes(core: Params) -> tuple[int, int, int, int]:
    """``(layers, window, width, heads)`` from the parameter shapes."""
    layers, slots, width = core["pos"].shape
    return layers, slots - 1, width, core["blocks"]["q"]["kernel"].shape[2]


def carry_width(core: Params) -> int:
    layers, window, width, _ = sizes(core)
    return layers * window * 2 * width + 1


def layer_norm(x: jax.Array, scale: jax.Array, bias: jax.Array) -> jax.Array:
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + LN_EPS) * scale + bias


def _layer(params: Params, layer: int) -> Params:
    return jax.tree.map(lambda a: a[layer], params)


def _attend(block: Params, q: jax.Array, kv: jax.Array, valid: jax.Array) -> jax.Array:
    """Query ``q [..., d]`` (this step) over keys and values ``kv [..., W+1, 2d]`` where ``valid [..., W+1]``."""
    width, heads, head_dim = block["q"]["kernel"].shape
    lead = q.shape[:-1]
    q = q.reshape(lead + (heads, head_dim))
    kv = kv.reshape(kv.shape[:-1] + (2, heads, head_dim))
    logits = jnp.einsum("...hk,...thk->...ht", q, kv[..., 0, :, :]) / float(np.sqrt(head_dim))
    weights = jax.nn.softmax(jnp.where(valid[..., None, :], logits, MASKED), axis=-1)
    mixed = jnp.einsum("...ht,...thk->...hk", weights, kv[..., 1, :, :]).reshape(lead + (width,))
    return dense(mixed, block["o"]["kernel"], block["o"]["bias"])


def step(core: Params, carry: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(new carry, hidden [..., d])`` of one step; ``carry [..., width]``, ``x [..., n_in]``."""
    layers, window, width, _ = sizes(core)
    lead = carry.shape[:-1]
    cache = carry[..., :-1].reshape(lead + (layers, window, 2 * width))
    count = carry[..., -1:]
    # token j is the step j back (j = 0: this step, always valid; slot j - 1 is valid while j <= count)
    valid = jnp.arange(window + 1) <= count
    h = dense(x, core["embed"]["kernel"], core["embed"]["bias"])
    newest = []
    for layer in range(layers):
        block = _layer(core["blocks"], layer)
        pos, kv_kernel = core["pos"][layer], block["kv"]["kernel"]
        normed = layer_norm(h, block["ln1"]["scale"], block["ln1"]["bias"])
        kv = dense(normed, kv_kernel, block["kv"]["bias"])  # position-free, as cached
        newest.append(kv)
        tokens = jnp.concatenate([kv[..., None, :], cache[..., layer, :, :]], axis=-2)
        q = dense(normed + pos[0], block["q"]["kernel"].reshape(width, width), block["q"]["bias"])
        h = h + _attend(block, q, tokens + pos @ kv_kernel, valid)
        mlp_in, mlp_out = block["mlp_in"], block["mlp_out"]
        hidden = dense(layer_norm(h, block["ln2"]["scale"], block["ln2"]["bias"]), mlp_in["kernel"], mlp_in["bias"])
        h = h + dense(jax.nn.gelu(hidden), mlp_out["kernel"], mlp_out["bias"])
    # shift: the newest keys and values go to slot 0, the oldest slot drops out
    cache = jnp.concatenate([jnp.stack(newest, axis=-2)[..., None, :], cache[..., :-1, :]], axis=-2)
    count = jnp.minimum(count + 1.0, float(window))
    carry = jnp.concatenate([cache.reshape(lead + (-1,)), count], axis=-1)
    return carry, layer_norm(h, core["ln_out"]["scale"], core["ln_out"]["bias"])
