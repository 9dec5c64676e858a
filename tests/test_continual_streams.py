"""Task streams: schedules, versioned specs, the task-id env."""

import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from metarl.continual import streams as S


def test_sequential_and_cyclic_segments():
    assert S.sequential(3, 10) == (S.Segment(0, 10), S.Segment(1, 10), S.Segment(2, 10))
    assert [s.task for s in S.sequential(3, 10, order=[2, 0, 1])] == [2, 0, 1]
    cyc = S.cyclic(2, 5, cycles=3)
    assert [(s.task, s.steps) for s in cyc] == [(0, 5), (1, 5)] * 3
    # a 1-task cycle is one long visit: consecutive segments merge
    assert S.cyclic(1, 5, cycles=3) == (S.Segment(0, 15),)


def test_random_switching_always_switches_and_is_seeded():
    segs = S.random_switching(4, 7, n_segments=50, seed=3)
    tasks = [s.task for s in segs]
    assert len(tasks) == 50 and all(a != b for a, b in zip(tasks, tasks[1:]))
    assert set(tasks) == {0, 1, 2, 3}
    assert segs == S.random_switching(4, 7, n_segments=50, seed=3)
    assert segs != S.random_switching(4, 7, n_segments=50, seed=4)


def test_power_law_recurrence_frequencies():
    segs = S.power_law(4, 1, n_segments=4000, alpha=2.0, seed=0)
    steps = collections.Counter()
    for s in segs:
        steps[s.task] += s.steps
    assert sum(steps.values()) == 4000
    freq = np.array([steps[k] for k in range(4)]) / 4000
    expected = np.array([1, 1 / 4, 1 / 9, 1 / 16]) / (1 + 1 / 4 + 1 / 9 + 1 / 16)
    np.testing.assert_allclose(freq, expected, atol=0.03)
    assert all(a.task != b.task for a, b in zip(segs, segs[1:]))


def test_bad_schedule_input():
    with pytest.raises(ValueError, match="steps_per_task"):
        S.sequential(3, 0)
    with pytest.raises(ValueError, match="unknown schedule"):
        S.make_schedule(3, {"kind": "zigzag"})
    with pytest.raises(ValueError, match="bad arguments"):
        S.make_schedule(3, {"kind": "cyclic", "steps_per_task": 5})  # cycles missing
    with pytest.raises(ValueError, match="alpha"):
        S.power_law(3, 1, 5, alpha=-1.0, seed=0)


def test_named_cartpole_stream_is_data():
    st = S.get_stream("CCartPole5-v1")
    assert st.id == "CCartPole5-v1" and st.n_tasks == 5 and st.observe_task_id
    assert st.total_steps == 5 * 200_000
    np.testing.assert_allclose(np.asarray(st.tasks.gravity), [9.8, 19.6, 4.9, 9.8, 14.7], rtol=1e-6)
    # CartPole's derived fields are recomputed for every task
    np.testing.assert_allclose(np.asarray(st.tasks.polemass_length), np.asarray(st.tasks.masspole * st.tasks.length))
    # rebuilding from the same spec gives the same stream (versioned data)
    again = S.from_spec(st.spec)
    assert again.segments == st.segments
    jax.tree.map(np.testing.assert_array_equal, again.tasks, st.tasks)
    small = S.get_stream("CCartPole5-v1", steps_per_task=1000)
    assert small.total_steps == 5000 and small.id != st.id
    assert np.array_equal(small.boundaries()[:, 0], [0, 1000, 2000, 3000, 4000])


def test_spec_validation():
    base = {"name": "x", "version": 1, "env": "CartPole-v1", "schedule": {"kind": "sequential", "steps_per_task": 10}}
    with pytest.raises(ValueError, match="no field 'gravty'"):
        S.from_spec({**base, "tasks": {"overrides": [{"gravty": 9.8}]}})
    with pytest.raises(ValueError, match="outside"):
        S.from_spec({**base, "tasks": {"overrides": [{"gravity": 100.0}]}})
    with pytest.raises(ValueError, match="missing"):
        S.from_spec({"name": "x"})
    with pytest.raises(ValueError, match="unknown stream"):
        S.get_stream("CCartPole-v1")
    with pytest.raises(ValueError, match="cannot stack"):
        S.from_spec({**base, "tasks": {"envs": ["CartPole-v1", "Acrobot-v1"]}})
    sampled = S.from_spec({**base, "tasks": {"sample": {"seed": 1, "n": 3}}})
    env, _ = envs.make("CartPole-v1")
    for i in range(3):
        assert bool(env.task_space.contains(sampled.task(i)))


def test_stream_from_named_envs():
    st = S.from_spec(
        {
            "name": "pair",
            "version": 1,
            "tasks": {"envs": ["CartPole-v1", "CartPole-v1"]},
            "schedule": {"kind": "cyclic", "steps_per_task": 4, "cycles": 2},
        }
    )
    assert st.task_names == ("CartPole-v1", "CartPole-v1") and st.n_tasks == 2 and len(st.segments) == 4


def test_task_id_observation_and_one_program_for_all_tasks():
    st = S.get_stream("CCartPole5-v1", steps_per_task=100)
    env, table = S.build_env(st)
    assert env.observation_space().shape == (4 + 5,)
    keys = jax.random.split(jax.random.PRNGKey(0), 5)
    obs, state = jax.vmap(env.reset)(keys, table)
    np.testing.assert_array_equal(np.asarray(obs[:, 4:]), np.eye(5))
    assert bool(jnp.all(jax.vmap(env.observation_space().contains)(obs)))
    step = jax.jit(jax.vmap(env.step))
    obs2, state2, reward, term, trunc, info = step(keys, state, jnp.ones(5, jnp.int32), table)
    np.testing.assert_array_equal(np.asarray(obs2[:, 4:]), np.eye(5))
    # the physics differ between tasks: same start state, same action, different next state
    same_start = jax.tree.map(lambda x: jnp.broadcast_to(x[0], x.shape), state)
    nxt = step(keys, same_start, jnp.ones(5, jnp.int32), table)[0][:, :4]
    assert len({tuple(np.round(np.asarray(r), 6)) for r in nxt}) == 5
    # task-agnostic: no id in the observation
    agnostic = S.get_stream("CCartPole5Agnostic-v1")
    env_a, table_a = S.build_env(agnostic)
    assert env_a.observation_space().shape == (4,)
    assert env_a.reset(keys[0], env_a.task_params(3))[0].shape == (4,)
    task = env.task_space.sample(keys[1])
    assert 0 <= int(task.task_id) < 5


@pytest.mark.skipif("gridworld-dense" not in envs.registered(), reason="gridworld env not available yet")
def test_cgw10_reward_maps():
    st = S.get_stream("CGW10-v1")
    assert st.n_tasks == 10
    rewards = np.asarray(st.tasks.obj_rewards)[:, :3]
    np.testing.assert_allclose(rewards, np.asarray(S._CGW_REWARD_MAPS, np.float32))
    assert len({tuple(r) for r in rewards}) == 10
    env, table = S.build_env(st)
    obs, _ = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), 10), table)
    np.testing.assert_array_equal(np.asarray(obs[:, -10:]), np.eye(10))
    cyc = S.get_stream("CGW10x2-v1")
    assert [s.task for s in cyc.segments] == list(range(10)) * 2
