"""Random draws made from one batch of bits (metarl.agents.random_bits)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl.agents import random_bits


@pytest.mark.parametrize("n", [1, 2, 7, 512, 4096, 5000])
def test_permutation_is_a_permutation_under_jit_and_vmap(n):
    bits = jax.random.bits(jax.random.key(n), (3, n), jnp.uint32)
    perms = np.asarray(jax.jit(jax.vmap(random_bits.permutation))(bits))
    assert perms.dtype == np.int32
    for row in perms:
        np.testing.assert_array_equal(np.sort(row), np.arange(n))
    assert n < 7 or len({tuple(row) for row in perms}) == 3


def test_permutation_orders_by_the_high_bits_and_breaks_ties_by_index():
    index_bits = 3  # n = 8
    high = np.array([5, 1, 5, 0, 3, 1, 7, 2], np.uint32)
    low_noise = np.array([7, 6, 5, 4, 3, 2, 1, 0], np.uint32)  # ignored: the index replaces them
    bits = jnp.asarray((high << (32 - 5)) | low_noise)  # high values sit above the index bits
    assert 32 - 5 >= index_bits
    np.testing.assert_array_equal(np.asarray(random_bits.permutation(bits)), [3, 1, 5, 7, 4, 0, 2, 6])


def test_permutation_positions_are_uniform():
    n, draws = 16, 4000
    bits = jax.random.bits(jax.random.key(0), (draws, n), jnp.uint32)
    perms = np.asarray(jax.vmap(random_bits.permutation)(bits))
    counts = np.zeros((n, n))
    np.add.at(counts, (perms, np.broadcast_to(np.arange(n), perms.shape)), 1)  # item x position
    expected = draws / n
    chi2 = ((counts - expected) ** 2 / expected).sum()
    # (n-1)^2 = 225 degrees of freedom: the 99.9% quantile is about 300.
    assert chi2 < 300, chi2
