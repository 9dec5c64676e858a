"""``grouped_switch``: a ``lax.switch`` that stays cheap under ``vmap`` when the batch is grouped.

``jax.vmap`` turns ``lax.switch`` with a batched index into a ``select`` over
*every* branch: a batch mixing ten task classes pays for ten steps per env.
Multi-task batches are usually laid out by class (Meta-World's MT baselines
give each class its own envs), so this switch's batching rule cuts a batch of
N into ``K = len(branches)`` blocks of ``ceil(N / K)`` (the last one padded;
``block_of`` gives each position's block) and, when every block holds a single
index, runs one branch per block (a ``lax.map`` over blocks; a branch runs on a
block only if one of its envs needs it). Any other layout gives the same
results, each block paying for the branches its envs need (a shuffled batch:
about every branch, as a plain ``vmap`` of ``lax.switch`` would).

Nested ``vmap`` (seeds over envs) folds the outer axis into the blocks, so a
seed-major batch of class-major batches also takes the fast path.
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_batching import custom_vmap


def grouped_switch(index: jax.Array, branches: Sequence[Callable], *operands):
    """``lax.switch(index, branches, *operands)``; see the module docstring for its batching."""
    branches = tuple(branches)
    if len(branches) == 1:
        return branches[0](*operands)
    index = jnp.clip(index, 0, len(branches) - 1)  # lax.switch's rule for out-of-range indices

    def plain(index, operands):
        return jax.lax.switch(index, branches, *operands)

    @custom_vmap
    def switch(index, operands):
        return plain(index, operands)

    @switch.def_vmap
    def batched(axis_size, in_batched, index, operands):
        args = _broadcast(axis_size, in_batched, (index, operands))
        if axis_size < len(branches):  # blocks of one env: nothing to save
            return _all_batched(jax.vmap(plain)(*args))
        blocks, size = len(branches), block_size(axis_size, len(branches))
        pad = blocks * size - axis_size  # repeats of the last env: its block stays uniform
        args = jax.tree.map(lambda x: jnp.concatenate([x, jnp.repeat(x[-1:], pad, axis=0)]), args)
        shaped = jax.tree.map(lambda x: x.reshape((blocks, size) + x.shape[1:]), args)
        out = _blockwise(branches)(*shaped)
        return _all_batched(jax.tree.map(lambda x: x.reshape((blocks * size,) + x.shape[2:])[:axis_size], out))

    return switch(index, operands)


def block_size(n: int, blocks: int) -> int:
    return -(-n // blocks)


def block_of(n: int, blocks: int) -> np.ndarray:
    """The block of each of ``n`` batch positions: a batch is grouped when each block holds one index."""
    return np.arange(n) // block_size(n, blocks)


def _blockwise(branches: tuple) -> Callable:
    """``f(index[K, B], operands[K, B, ...])``: per block, each branch that some env of the block needs.

    A ``lax.map`` over blocks; inside, a loop over the branches runs branch k on the whole block only
    when an env of the block has index k (a ``lax.cond`` on a scalar) and keeps its rows. A uniform
    block thus runs one branch; a block mixing m indices runs m. One copy of each branch is compiled.
    """
    vmapped = tuple(jax.vmap(branch) for branch in branches)

    @custom_vmap
    def run(index, operands):
        def one_block(args):
            idx, ops = args
            shapes = jax.eval_shape(lambda: vmapped[0](*ops))

            def add_branch(k, acc):
                hit = idx == k

                def keep_rows(acc):
                    out = jax.lax.switch(k, vmapped, *ops)
                    pick = lambda o, a: jnp.where(hit.reshape(hit.shape + (1,) * (o.ndim - 1)), o, a)  # noqa: E731
                    return jax.tree.map(pick, out, acc)

                return jax.lax.cond(jnp.any(hit), keep_rows, lambda acc: acc, acc)

            empty = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
            return jax.lax.fori_loop(0, len(branches), add_branch, empty)

        return jax.lax.map(one_block, (index, operands))

    @run.def_vmap
    def outer(axis_size, in_batched, index, operands):
        # an outer vmap (e.g. seeds): its axis joins the block axis, keeping the predicates scalars
        index, operands = _broadcast(axis_size, in_batched, (index, operands))
        merged = jax.tree.map(lambda x: x.reshape((axis_size * x.shape[1],) + x.shape[2:]), (index, operands))
        out = run(*merged)
        return _all_batched(jax.tree.map(lambda x: x.reshape((axis_size, x.shape[0] // axis_size) + x.shape[1:]), out))

    return run


def _broadcast(axis_size: int, in_batched, args):
    """Gives every leaf of ``args`` the leading batch axis (unbatched leaves are repeated)."""
    flags = jax.tree.leaves(in_batched)
    leaves, tree = jax.tree.flatten(args)
    leaves = [x if b else jnp.broadcast_to(x, (axis_size,) + jnp.shape(x)) for x, b in zip(leaves, flags)]
    return jax.tree.unflatten(tree, leaves)


def _all_batched(out):
    return out, jax.tree.map(lambda _: True, out)
