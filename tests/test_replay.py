"""The device replay buffer: ring-buffer writes, uniform sampling among filled slots, jit and vmap."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl.agents import replay


def _batch(values) -> dict:
    values = jnp.asarray(values, jnp.float32)
    return {"obs": jnp.stack([values, -values], axis=-1), "reward": values}


def test_init_is_empty_and_shaped_like_the_example():
    buffer = replay.init({"obs": jnp.zeros(2), "reward": jnp.zeros((), jnp.float32), "done": jnp.zeros((), bool)}, 5)
    assert buffer.capacity == 5 and int(buffer.size) == 0 and int(buffer.position) == 0
    assert buffer.data["obs"].shape == (5, 2) and buffer.data["done"].dtype == jnp.bool_
    with pytest.raises(ValueError, match="capacity must be positive"):
        replay.init({"x": jnp.zeros(())}, 0)


def test_ring_buffer_wraps_around_and_overwrites_the_oldest():
    buffer = replay.init({"obs": jnp.zeros(2), "reward": jnp.zeros(())}, 5)
    buffer = replay.add(buffer, _batch([0, 1, 2]))
    assert int(buffer.size) == 3 and int(buffer.position) == 3
    buffer = replay.add(buffer, _batch([3, 4, 5, 6]))  # 5 and 6 overwrite slots 0 and 1
    np.testing.assert_array_equal(buffer.data["reward"], [5, 6, 2, 3, 4])
    np.testing.assert_array_equal(buffer.data["obs"][:, 1], [-5, -6, -2, -3, -4])
    assert int(buffer.size) == 5 and int(buffer.position) == 2
    buffer = replay.add(buffer, _batch([7, 8, 9, 10, 11]))  # a full-capacity batch replaces everything
    np.testing.assert_array_equal(buffer.data["reward"], [10, 11, 7, 8, 9])
    assert int(buffer.size) == 5 and int(buffer.position) == 2
    with pytest.raises(ValueError, match="cannot add 6 transitions"):
        replay.add(buffer, _batch(range(6)))


def test_sampling_is_uniform_over_the_filled_slots_only():
    buffer = replay.add(replay.init({"obs": jnp.zeros(2), "reward": jnp.zeros(())}, 8), _batch([1, 2, 3]))
    batch = replay.sample(buffer, jax.random.key(0), 3000)
    rewards = np.asarray(batch["reward"])
    assert set(np.unique(rewards)) == {1.0, 2.0, 3.0}  # never an empty (zero) slot
    np.testing.assert_array_equal(batch["obs"][:, 0], rewards)  # leaves stay paired
    counts = np.bincount(rewards.astype(int))[1:]
    assert np.all(np.abs(counts / 3000 - 1 / 3) < 0.04), counts


def test_pure_functions_under_jit_and_vmap():
    example = {"obs": jnp.zeros(2), "reward": jnp.zeros(())}
    buffers = jax.vmap(lambda _: replay.init(example, 4))(jnp.arange(2))  # one buffer per seed
    batches = jax.tree.map(lambda a, b: jnp.stack([a, b]), _batch([1, 2, 3]), _batch([10, 20, 30]))
    add = jax.jit(jax.vmap(replay.add))
    buffers = add(buffers, batches)
    buffers = add(buffers, batches)  # 6 into capacity 4: wraps
    np.testing.assert_array_equal(buffers.data["reward"], [[2, 3, 3, 1], [20, 30, 30, 10]])
    np.testing.assert_array_equal(buffers.size, [4, 4])
    sample = jax.jit(jax.vmap(replay.sample, in_axes=(0, 0, None)), static_argnums=2)
    drawn = sample(buffers, jax.random.split(jax.random.key(1), 2), 64)
    assert set(np.unique(drawn["reward"][0])) <= {1, 2, 3} and set(np.unique(drawn["reward"][1])) <= {10, 20, 30}
    # the same as one buffer at a time
    single = replay.sample(jax.tree.map(lambda x: x[1], buffers), jax.random.split(jax.random.key(1), 2)[1], 64)
    np.testing.assert_array_equal(single["reward"], drawn["reward"][1])


def test_a_reservoir_fills_in_order_then_keeps_a_uniform_sample_of_everything_offered():
    example = {"obs": jnp.zeros(2), "reward": jnp.zeros(())}
    buffer = replay.add_reservoir(replay.init(example, 5), _batch([0, 1, 2]), jax.random.key(0))
    np.testing.assert_array_equal(buffer.data["reward"], [0, 1, 2, 0, 0])  # room left: in order, like the ring
    assert int(buffer.size) == 3 and int(buffer.position) == 3  # position counts the transitions offered

    def offer_20(key):  # 20 items in batches of 4 into 5 slots: each is kept with probability 5 / 20
        buffer = replay.init(example, 5)
        for b, k in enumerate(jax.random.split(key, 5)):
            buffer = replay.add_reservoir(buffer, _batch(jnp.arange(4 * b, 4 * b + 4)), k)
        return buffer

    buffers = jax.jit(jax.vmap(offer_20))(jax.random.split(jax.random.key(1), 4000))
    kept = np.asarray(buffers.data["reward"]).astype(int)  # [runs, 5]
    np.testing.assert_array_equal(buffers.size, 5)
    np.testing.assert_array_equal(buffers.position, 20)
    np.testing.assert_array_equal(np.asarray(buffers.data["obs"])[..., 1], -kept)  # leaves stay paired
    assert all(len(set(row)) == 5 for row in kept)  # no item twice
    share = np.bincount(kept.ravel(), minlength=20) / 4000
    # 4000 runs: a share's standard error is 0.007; an earlier item of a batch winning a shared slot, or the first
    # items never being replaced, would move some shares by far more
    assert np.abs(share - 0.25).max() < 0.035, share


def test_a_batch_offered_to_a_reservoir_ends_as_one_item_at_a_time_would():
    """Algorithm R run item by item on the same draws; a batch of 64 into 4 slots makes many items share a slot."""
    capacity, seen, n = 4, 6, 64
    buffer = replay.add_reservoir(replay.init({"obs": jnp.zeros(2), "reward": jnp.zeros(())}, capacity),
                                  _batch(jnp.arange(100, 100 + seen)), jax.random.key(2))
    before = [int(x) for x in np.asarray(buffer.data["reward"])]
    key = jax.random.key(3)
    after = replay.add_reservoir(buffer, _batch(jnp.arange(n)), key)
    t = seen + np.arange(n)
    draws = np.asarray(jax.random.randint(key, (n,), 0, np.iinfo(np.int32).max)) % (t + 1)  # the function's draws
    expected = list(before)
    for i in range(n):
        if t[i] < capacity:
            expected[t[i]] = i
        elif draws[i] < capacity:
            expected[draws[i]] = i  # replaces: a later item overwrites an earlier one
    np.testing.assert_array_equal(np.asarray(after.data["reward"]), expected)
    assert expected != before  # some items went in
