"""``envs.grouped_switch``: the same values as ``lax.switch`` in every layout, one branch per block when grouped."""

import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs.grouped_switch import block_of, grouped_switch

BRANCHES = (
    lambda x, y: (x * 2.0 + y, jnp.sin(x).sum()),
    lambda x, y: (x - y, jnp.cos(x).sum() * y),
    lambda x, y: (x ** 2, -y),
)


def reference(index, x, y):
    return jax.lax.switch(index, BRANCHES, x, y)


def grouped(index, x, y):
    return grouped_switch(index, BRANCHES, x, y)


def _inputs(n, key=0):
    kx, ky = jax.random.split(jax.random.key(key))
    return jax.random.normal(kx, (n, 2)), jax.random.normal(ky, (n,))


@pytest.mark.parametrize("n", [1, 2, 3, 9, 10, 4096 // 64])
@pytest.mark.parametrize("layout", ["grouped", "shuffled"])
def test_vmapped_values_equal_lax_switch(n, layout):
    index = jnp.asarray(block_of(n, len(BRANCHES)))
    if layout == "shuffled":
        index = jax.random.permutation(jax.random.key(1), index)
    x, y = _inputs(n)
    got = jax.jit(jax.vmap(grouped))(index, x, y)
    want = jax.vmap(reference)(index, x, y)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-6)


def test_unbatched_operands_and_nested_vmap_equal_lax_switch():
    seeds, n = 4, 7
    index = jnp.tile(jnp.asarray(block_of(n, len(BRANCHES))), (seeds, 1))
    index = index.at[2].set(jax.random.permutation(jax.random.key(3), index[2]))  # one seed not grouped
    x, _ = _inputs(seeds * n)
    x = x.reshape(seeds, n, 2)
    y = jnp.float32(0.5)  # shared by every env: broadcast by the batching rule
    got = jax.jit(jax.vmap(jax.vmap(grouped, (0, 0, None)), (0, 0, None)))(index, x, y)
    want = jax.vmap(jax.vmap(reference, (0, 0, None)), (0, 0, None))(index, x, y)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-6)
    assert grouped(jnp.int32(2), x[0, 0], y)[0].shape == (2,)  # unbatched call: a plain switch


def test_a_grouped_batch_runs_one_branch_per_block():
    calls = collections.Counter()

    def counting(b):
        def branch(x, y):
            jax.debug.callback(lambda: calls.update([b]))
            return BRANCHES[b](x, y)
        return branch

    branches = [counting(b) for b in range(len(BRANCHES))]
    n = 12
    x, y = _inputs(n)
    run = jax.jit(jax.vmap(lambda i, x, y: grouped_switch(i, branches, x, y)))
    only_first_two = jnp.asarray(np.repeat([0, 1, 1], 4))  # blocks of 4: classes 0, 1, 1
    jax.block_until_ready(run(only_first_two, x, y))
    assert calls == {0: 1, 1: 2}, calls  # branch 2 never ran; each block ran once
