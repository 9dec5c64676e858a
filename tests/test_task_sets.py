"""Train and held-out task sets for meta-training (``env.task_sets``): drawn once, disjoint, inside the space; seeds
pick training tasks by their keys; PPO trains on a task passed as data."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from metarl.agents.ppo import PPOConfig, make_train
from metarl.meta import task_sets
from metarl.meta.fitness import seed_keys

TINY = PPOConfig(total_timesteps=64, num_envs=2, num_steps=16, update_epochs=1, num_minibatches=1, hidden_sizes=(8,))


def test_the_sets_are_drawn_once_inside_the_space_and_share_no_task():
    sets = task_sets.draw("CartPole-v1", {"max_steps_in_episode": 200}, train=16, heldout=8, seed=3)
    again = task_sets.draw("CartPole-v1", {"max_steps_in_episode": 200}, train=16, heldout=8, seed=3)
    env, _ = envs.make("CartPole-v1")
    for batch, n in ((sets.train, 16), (sets.heldout, 8)):
        assert np.asarray(batch.gravity).shape == (n,)
        assert bool(jnp.all(jax.vmap(env.task_space.contains)(batch)))
        np.testing.assert_array_equal(np.asarray(batch.max_steps_in_episode), 200)  # the override holds
        # CartPole's derived total mass follows each drawn task
        np.testing.assert_allclose(np.asarray(batch.total_mass), np.asarray(batch.masscart + batch.masspole), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(sets.train.length), np.asarray(again.train.length))
    train_vectors = np.asarray(jax.vmap(env.task_space.to_vector)(sets.train))
    held_vectors = np.asarray(jax.vmap(env.task_space.to_vector)(sets.heldout))
    assert not (train_vectors[:, None, :] == held_vectors[None, :, :]).all(axis=2).any()
    other = task_sets.draw("CartPole-v1", None, train=16, heldout=8, seed=4)
    assert not np.array_equal(np.asarray(other.train.length), np.asarray(sets.train.length))


def test_seed_keys_pick_training_tasks_and_evaluation_seeds_cycle_through_the_heldout_set():
    sets = task_sets.draw("Acrobot-v1", None, train=5, heldout=3, seed=0)
    keys = seed_keys(jax.random.PRNGKey(0), 0, 64)
    picked = np.asarray(sets.for_seeds(keys).link_mass_1)
    np.testing.assert_array_equal(picked, np.asarray(sets.for_seeds(keys).link_mass_1))  # common random numbers
    assert set(picked.tolist()) == set(np.asarray(sets.train.link_mass_1).tolist())  # 64 draws reach all 5 tasks
    held = np.asarray(sets.heldout_for(7).link_mass_1)
    np.testing.assert_array_equal(held, np.asarray(sets.heldout.link_mass_1)[[0, 1, 2, 0, 1, 2, 0]])


@pytest.mark.parametrize("given, says", [
    ([64, 32], "env.task_sets must be null or a mapping"),
    ({"train": 0}, "env.task_sets.train must be an integer >= 1, got 0"),
    ({"heldout": 2.5}, "env.task_sets.heldout must be an integer >= 1"),
    ({"test": 4}, "env.task_sets has no key 'test'"),
    ({"seed": "a"}, "env.task_sets.seed must be an integer"),
])
def test_bad_task_set_configs_name_the_problem(given, says):
    with pytest.raises(ValueError, match=says):
        task_sets.parse(given)


def test_a_point_space_and_an_override_of_a_drawn_field_are_refused():
    assert task_sets.parse(None) is None and task_sets.parse({}) == {"train": 64, "heldout": 32, "seed": 0}
    with pytest.raises(ValueError, match="Breakout-MinAtar has no task distribution"):
        task_sets.draw("Breakout-MinAtar", None, 4, 4, 0)
    with pytest.raises(ValueError, match="env.overrides sets 'gravity', a field the task distribution draws"):
        task_sets.draw("CartPole-v1", {"gravity": 12.0}, 4, 4, 0)


def test_ppo_trains_on_the_task_it_is_given_as_data():
    env, params = envs.make("CartPole-v1")
    train = make_train(TINY, env, params)
    key = jax.random.PRNGKey(1)
    own = train(key)[1]["episode_length"]
    np.testing.assert_array_equal(np.asarray(train(key, task=params)[1]["episode_length"]), np.asarray(own))
    heavy = params.replace(max_steps_in_episode=3)  # every episode is cut after 3 steps
    lengths = np.asarray(train(key, task=heavy)[1]["episode_length"])
    assert np.nanmax(lengths) <= 3 and not np.array_equal(lengths, np.asarray(own))
