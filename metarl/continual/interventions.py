"""Plasticity interventions as pure parameter/optimizer-state surgery (§6.3).

Every function is jittable and returns ``(params, opt_state, info)`` where
``info`` holds scalar counts to log (e.g. how many units were recycled), so
the runner can record *when* an intervention fired and *how much* it did.

Network convention (:mod:`metarl.agents.networks`): ``params[net]`` is a dict
of layers ``hidden_0 .. hidden_{n-1}, head``, each ``{"kernel": [in, out],
"bias": [out]}``; hidden unit ``j`` of layer ``i`` owns column ``j`` of
``kernel_i`` and ``bias_i[j]`` (incoming) and row ``j`` of the next layer's
kernel (outgoing).

Optimizer state is handled generically: any leaf of ``opt_state`` whose path
runs through an attribute named ``mu``/``nu`` (Adam's moments, wherever optax
chains, wrappers or ``inject_hyperparams`` put them) and then continues with
the path of a parameter is reset where that parameter is reset. The step
count is left alone.

Fresh weights (``fresh``) are a new draw of the whole parameter tree from the
network's own initialiser (orthogonal, as in PPO); taking columns of it gives
incoming weights from the init distribution.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from metarl.continual.plasticity import dormant_scores

MOMENT_NAMES = ("mu", "nu")
NETS = ("actor", "critic")


# ---------------------------------------------------------------------------
# helpers: layer order, masks, optimizer moments
# ---------------------------------------------------------------------------


def layer_names(net_params: dict) -> list[str]:
    """``hidden_0 .. hidden_{n-1}, head`` in forward order."""
    hidden = sorted((k for k in net_params if k.startswith("hidden_")), key=lambda k: int(k.split("_")[1]))
    if "head" not in net_params:
        raise ValueError(f"network has no 'head' layer (layers: {sorted(net_params)})")
    return hidden + ["head"]


def _check_nets(params: Any, nets: Sequence[str]) -> None:
    missing = [n for n in nets if n not in params]
    if missing:
        raise ValueError(f"params have no network {missing[0]!r} (networks: {sorted(params)})")


def mask_like(params: Any, value: bool = False) -> Any:
    """A boolean mask per parameter leaf (same shapes)."""
    return jax.tree.map(lambda x: jnp.full(x.shape, value), params)


def select_all(params: Any) -> Any:
    return mask_like(params, True)


def select_nets(params: Any, nets: Sequence[str]) -> Any:
    """Every entry of the named networks (e.g. ``("critic",)``)."""
    _check_nets(params, nets)
    return {k: mask_like(v, k in nets) for k, v in params.items()}


def select_last_layers(params: Any, k: int, nets: Sequence[str] = NETS) -> Any:
    """The last ``k`` layers (head first) of each named network."""
    if k < 1:
        raise ValueError(f"last-layer reset needs k >= 1, got {k}")
    _check_nets(params, nets)
    mask = mask_like(params, False)
    for net in nets:
        for name in layer_names(params[net])[-k:]:
            mask[net][name] = mask_like(params[net][name], True)
    return mask


def _path_key(path) -> tuple:
    return tuple(getattr(p, "key", getattr(p, "name", getattr(p, "idx", None))) for p in path)


def reset_moments(opt_state: Any, params_mask: Any, names: Sequence[str] = MOMENT_NAMES) -> Any:
    """Zero the optimizer moments (``mu``/``nu``) wherever ``params_mask`` is True."""
    by_path = {_path_key(p): m for p, m in jax.tree_util.tree_flatten_with_path(params_mask)[0]}

    def visit(path, leaf):
        keys = _path_key(path)
        for i in range(len(path) - 1, -1, -1):
            if isinstance(path[i], jax.tree_util.GetAttrKey) and path[i].name in names:
                mask = by_path.get(keys[i + 1 :])
                if mask is not None and jnp.shape(mask) == jnp.shape(leaf):
                    return jnp.where(mask, jnp.zeros_like(leaf), leaf)
                return leaf
        return leaf

    return jax.tree_util.tree_map_with_path(visit, opt_state)


def _where(mask: Any, a: Any, b: Any) -> Any:
    return jax.tree.map(jnp.where, mask, a, b)


def _zero_biases(tree: Any) -> Any:
    def visit(node):
        if isinstance(node, dict):
            return {k: (jnp.zeros_like(v) if k == "bias" else visit(v)) for k, v in node.items()}
        return node

    return visit(tree)


def _count(mask: Any) -> jax.Array:
    return sum(jnp.sum(m) for m in jax.tree.leaves(mask)).astype(jnp.float32)


# ---------------------------------------------------------------------------
# resets and shrink-and-perturb
# ---------------------------------------------------------------------------


def reset(params: Any, opt_state: Any, fresh: Any, mask: Any) -> tuple[Any, Any, dict]:
    """Re-initialise the masked entries from ``fresh`` (biases to 0) and zero
    their Adam moments. Masks: :func:`select_all`, :func:`select_last_layers`,
    :func:`select_nets` (critic only)."""
    params = _where(mask, _zero_biases(fresh), params)
    return params, reset_moments(opt_state, mask), {"reset_params": _count(mask)}


def shrink_perturb(
    params: Any, opt_state: Any, fresh: Any, shrink: float, perturb: float, mask: Any | None = None
) -> tuple[Any, Any, dict]:
    """``θ ← λθ + σ·θ_fresh`` on the masked entries (all by default)."""
    new = jax.tree.map(lambda p, f: shrink * p + perturb * f, params, fresh)
    mask = select_all(params) if mask is None else mask
    return _where(mask, new, params), opt_state, {"shrink_perturbed_params": _count(mask)}


# ---------------------------------------------------------------------------
# unit recycling: ReDo and continual backprop share the surgery
# ---------------------------------------------------------------------------


def recycle_params(params: Any, fresh: Any, units: dict[str, list[jax.Array]]) -> tuple[Any, Any]:
    """``(params with the units recycled, a bool mask of the entries rewritten)``: ``units[net][i]`` is a bool
    ``[..., width_i]`` mask for hidden layer ``i`` (leading axes: an ensemble stacked on the layer's leading axes,
    as SAC's twin critics). Incoming weights come from ``fresh``, the bias is 0, outgoing weights are 0."""
    params = jax.tree.map(lambda x: x, params)  # fresh containers, same leaves
    touched = mask_like(params, False)
    for net, masks in units.items():
        names = layer_names(params[net])
        for i, unit_mask in enumerate(masks):
            layer, nxt = names[i], names[i + 1]
            incoming = jnp.broadcast_to(unit_mask[..., None, :], params[net][layer]["kernel"].shape)
            outgoing = jnp.broadcast_to(unit_mask[..., :, None], params[net][nxt]["kernel"].shape)
            cur = params[net][layer]
            params[net][layer] = {
                **cur,
                "kernel": jnp.where(incoming, fresh[net][layer]["kernel"], cur["kernel"]),
                "bias": jnp.where(unit_mask, 0.0, cur["bias"]),
            }
            params[net][nxt] = {**params[net][nxt], "kernel": jnp.where(outgoing, 0.0, params[net][nxt]["kernel"])}
            touched[net][layer] = {**touched[net][layer], "kernel": incoming | touched[net][layer]["kernel"],
                                   "bias": unit_mask | touched[net][layer]["bias"]}
            touched[net][nxt] = {**touched[net][nxt], "kernel": outgoing | touched[net][nxt]["kernel"]}
    return params, touched


def recycle_units(
    params: Any, opt_state: Any, fresh: Any, units: dict[str, list[jax.Array]]
) -> tuple[Any, Any]:
    """:func:`recycle_params` with one optimizer over all of ``params``: Adam's moments of the rewritten entries
    are zeroed too."""
    params, touched = recycle_params(params, fresh, units)
    return params, reset_moments(opt_state, touched)


def redo(
    params: Any, opt_state: Any, fresh: Any, hiddens: dict[str, list[jax.Array]], tau: float
) -> tuple[Any, Any, dict]:
    """ReDo: recycle every τ-dormant unit of every hidden layer (never the head).

    ``hiddens[net][i]`` are hidden layer ``i``'s activations on a batch
    (:func:`metarl.agents.networks.apply_mlp` returns them).
    """
    units = {net: [dormant_scores(h) <= tau for h in hs] for net, hs in hiddens.items()}
    params, opt_state = recycle_units(params, opt_state, fresh, units)
    info = {f"redo/{net}/hidden_{i}": jnp.sum(m).astype(jnp.float32) for net, ms in units.items() for i, m in enumerate(ms)}
    info["redo_recycled"] = sum(info.values())
    return params, opt_state, info


@struct.dataclass
class CBPState:
    """Continual-backprop bookkeeping per hidden layer of each network."""

    utility: dict  # net -> list of [width] float32
    age: dict  # net -> list of [width] int32
    to_replace: dict  # net -> list of () float32 (fractional replacements carried over)


def cbp_init(params: Any, nets: Sequence[str] = NETS) -> CBPState:
    _check_nets(params, nets)
    widths = {net: [params[net][n]["bias"].shape[0] for n in layer_names(params[net])[:-1]] for net in nets}
    return CBPState(
        utility={n: [jnp.zeros((w,), jnp.float32) for w in ws] for n, ws in widths.items()},
        age={n: [jnp.zeros((w,), jnp.int32) for w in ws] for n, ws in widths.items()},
        to_replace={n: [jnp.zeros((), jnp.float32) for _ in ws] for n, ws in widths.items()},
    )


def cbp_select(
    state: CBPState,
    params: Any,
    hiddens: dict[str, list[jax.Array]],
    decay: float = 0.99,
    maturity: int = 10_000,
    replacement_rate: float = 1e-4,
) -> tuple[CBPState, dict[str, list[jax.Array]], dict]:
    """Continual backprop's test: the new bookkeeping and which units to replace (see :func:`cbp_step`)."""
    utility, age, carry, units, info = {}, {}, {}, {}, {}
    for net in state.utility:
        names = layer_names(params[net])
        utility[net], age[net], carry[net], units[net] = [], [], [], []
        for i, h in enumerate(hiddens[net]):
            out_w = jnp.mean(jnp.abs(params[net][names[i + 1]]["kernel"]), axis=1)
            act = jnp.mean(jnp.abs(h.reshape(-1, h.shape[-1])), axis=0)
            u = decay * state.utility[net][i] + (1.0 - decay) * act * out_w
            a = state.age[net][i] + 1
            corrected = u / (1.0 - decay ** a.astype(jnp.float32))
            eligible = a > maturity
            pending = state.to_replace[net][i] + replacement_rate * jnp.sum(eligible)
            n_replace = jnp.floor(pending)
            # rank eligible units by utility; ineligible ones sort last
            order = jnp.argsort(jnp.where(eligible, corrected, jnp.inf))
            rank = jnp.zeros_like(order).at[order].set(jnp.arange(order.shape[0]))
            replace = eligible & (rank < n_replace)
            utility[net].append(jnp.where(replace, 0.0, u))
            age[net].append(jnp.where(replace, 0, a))
            carry[net].append(pending - jnp.sum(replace))
            units[net].append(replace)
            info[f"cbp/{net}/hidden_{i}"] = jnp.sum(replace).astype(jnp.float32)
    return CBPState(utility, age, carry), units, info


def cbp_step(
    state: CBPState,
    params: Any,
    opt_state: Any,
    fresh: Any,
    hiddens: dict[str, list[jax.Array]],
    decay: float = 0.99,
    maturity: int = 10_000,
    replacement_rate: float = 1e-4,
) -> tuple[CBPState, Any, Any, dict]:
    """One continual-backprop step (LoP's generate-and-test).

    Per hidden unit: ``u ← η u + (1−η) E|h| · mean|w_out|``, age + 1; the
    bias-corrected utility is ``u / (1 − η^age)``. Units with age > m are
    eligible; ``ρ · #eligible`` replacements accumulate (fractions carry over)
    and the lowest-utility eligible units are replaced: fresh incoming weights,
    zero bias and outgoing weights, zero Adam moments, utility and age 0.
    """
    state, units, info = cbp_select(state, params, hiddens, decay, maturity, replacement_rate)
    params, opt_state = recycle_units(params, opt_state, fresh, units)
    info["cbp_replaced"] = sum(info.values())
    return state, params, opt_state, info
