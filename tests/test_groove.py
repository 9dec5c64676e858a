"""GROOVE teacher: algorithmic regret, the cached antagonist return, buffer insertion/replay under jit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from curricula import Feedback
from curricula import level_buffer as lb
from curricula.groove import GROOVE, NEW, REPLAY, algorithmic_regret
from toy_levels import level_space


def noisy_antagonist(key, level):
    # key-dependent: a recomputation on replay would not reproduce the cached value
    return 10.0 * level.x + jax.random.uniform(key)


def test_algorithmic_regret_hand_computed():
    antagonist = jnp.array([1.0, 0.5, -0.2, 3.0])
    agent = jnp.array([0.25, 0.5, 0.3, -1.0])
    np.testing.assert_allclose(algorithmic_regret(antagonist, agent), [0.75, 0.0, -0.5, 4.0], rtol=1e-6)


def test_regret_scores_enter_the_buffer_on_new_levels():
    teacher = GROOVE(noisy_antagonist, batch_size=3, capacity=8, replay_prob=0.0)
    state = teacher.init(jax.random.PRNGKey(0), level_space())
    state, tasks = jax.jit(lambda s, k: teacher.sample(s, k, 3))(state, jax.random.PRNGKey(1))
    assert int(state.branch) == NEW and int(state.antagonist_evaluations) == 3
    expected_antagonist = 10.0 * np.asarray(tasks.x)
    assert np.all(np.asarray(state.antagonist) >= expected_antagonist)
    assert np.all(np.asarray(state.antagonist) <= expected_antagonist + 1.0)
    agent = jnp.array([1.0, 2.0, 3.0])
    state = jax.jit(teacher.update)(state, tasks, Feedback.from_returns(agent))
    buf = state.buffer
    assert int(buf.size) == 3
    np.testing.assert_allclose(buf.scores[:3], np.asarray(state.antagonist) - np.array([1.0, 2.0, 3.0]), rtol=1e-6)
    np.testing.assert_allclose(buf.max_returns[:3], state.antagonist, rtol=1e-6)  # the cache
    np.testing.assert_allclose(buf.levels.x[:3], tasks.x)


def test_replay_reuses_cached_antagonist_and_updates_regret():
    teacher = GROOVE(noisy_antagonist, batch_size=4, capacity=4, replay_prob=1.0, staleness_coef=0.0)
    state = teacher.init(jax.random.PRNGKey(0), level_space())
    sample = jax.jit(lambda s, k: teacher.sample(s, k, 4))
    update = jax.jit(teacher.update)
    state, tasks = sample(state, jax.random.PRNGKey(1))  # empty buffer -> new levels
    assert int(state.branch) == NEW
    state = update(state, tasks, Feedback.from_returns(jnp.zeros(4)))
    cached = np.asarray(state.buffer.max_returns).copy()
    assert int(state.antagonist_evaluations) == 4

    for i in range(3):
        state, replayed = sample(state, jax.random.PRNGKey(10 + i))
        assert int(state.branch) == REPLAY
        assert int(state.antagonist_evaluations) == 4  # no antagonist run on replay
        slots = np.asarray(state.slots)
        np.testing.assert_allclose(state.antagonist, cached[slots], rtol=1e-6)
        np.testing.assert_allclose(replayed.x, np.asarray(state.buffer.levels.x)[slots])
        agent = jnp.full(4, float(i + 1))
        state = update(state, replayed, Feedback.from_returns(agent))
        np.testing.assert_allclose(state.buffer.scores[slots], cached[slots] - (i + 1), rtol=1e-6)
        np.testing.assert_allclose(state.buffer.max_returns, cached)  # the cache is never overwritten


def test_full_buffer_replaces_lowest_regret_only_when_beaten():
    teacher = GROOVE(lambda k, lvl: 10.0 * lvl.x, batch_size=2, capacity=2, replay_prob=0.0)
    state = teacher.init(jax.random.PRNGKey(0), level_space())
    sample = jax.jit(lambda s, k: teacher.sample(s, k, 2))
    state, tasks = sample(state, jax.random.PRNGKey(1))
    ant = np.asarray(state.antagonist)
    # regret = antagonist - agent: make slot 0 regret 5, slot 1 regret 1
    state = teacher.update(state, tasks, Feedback.from_returns(jnp.asarray(ant - np.array([5.0, 1.0]))))
    np.testing.assert_allclose(state.buffer.scores, [5.0, 1.0], rtol=1e-5)
    state, tasks2 = sample(state, jax.random.PRNGKey(2))
    ant2 = np.asarray(state.antagonist)
    # new regrets 0.5 (rejected: below the worst, 1) and 3 (replaces the slot with regret 1)
    state = teacher.update(state, tasks2, Feedback.from_returns(jnp.asarray(ant2 - np.array([0.5, 3.0]))))
    np.testing.assert_allclose(state.buffer.scores, [5.0, 3.0], rtol=1e-5)
    np.testing.assert_allclose(state.buffer.levels.x[1], tasks2.x[1])
    np.testing.assert_allclose(state.buffer.max_returns[1], ant2[1], rtol=1e-6)


def test_rank_replay_prefers_high_regret_and_staleness_mixes():
    teacher = GROOVE(lambda k, lvl: lvl.x, batch_size=3, capacity=3, temperature=1.0, staleness_coef=0.0)
    state = teacher.init(jax.random.PRNGKey(0), level_space())
    buffer = state.buffer.replace(scores=jnp.array([-1.0, 2.0, 0.5]), filled=jnp.ones(3, bool))
    # ranks 3, 1, 2 -> h = 1/3, 1, 1/2 -> / (11/6)
    np.testing.assert_allclose(teacher.replay_probabilities(state.replace(buffer=buffer)),
                               [2 / 11, 6 / 11, 3 / 11], rtol=1e-5)


def test_masked_feedback_leaves_buffer_untouched_and_batch_size_checked():
    teacher = GROOVE(lambda k, lvl: lvl.x, batch_size=2, capacity=4, replay_prob=0.0)
    state = teacher.init(jax.random.PRNGKey(0), level_space())
    state, tasks = teacher.sample(state, jax.random.PRNGKey(1), 2)
    fb = Feedback.from_returns(jnp.zeros(2), mask=jnp.array([False, True]))
    state = teacher.update(state, tasks, fb)
    assert int(state.buffer.size) == 1
    with pytest.raises(ValueError, match="batches of 2"):
        teacher.sample(state, jax.random.PRNGKey(2), 3)
    with pytest.raises(ValueError, match="replay_prob"):
        GROOVE(lambda k, lvl: lvl.x, batch_size=2, replay_prob=1.5)


def test_groove_state_runs_inside_scan():
    teacher = GROOVE(noisy_antagonist, batch_size=2, capacity=6, replay_prob=0.5)
    state = teacher.init(jax.random.PRNGKey(0), level_space())

    def step(s, key):
        s, tasks = teacher.sample(s, key, 2)
        s = teacher.update(s, tasks, Feedback.from_returns(tasks.x))  # agent return = x
        return s, s.branch

    state, branches = jax.jit(lambda s: jax.lax.scan(step, s, jax.random.split(jax.random.PRNGKey(3), 12)))(state)
    new_batches = int(np.sum(np.asarray(branches) == NEW))
    assert 0 < new_batches < 12
    assert int(state.antagonist_evaluations) == 2 * new_batches
    filled = np.asarray(state.buffer.filled)
    # regret = (10x + u) - x >= 9x: the cached antagonist return minus the agent's
    assert np.all(np.asarray(state.buffer.scores)[filled] >= 9 * np.asarray(state.buffer.levels.x)[filled] - 1e-5)
