"""Conformance of every native env (and a sample of adapted gymnax ones) to the env API.

Native envs are discovered from the registry, so envs added later are covered
automatically (one or two representatives per ``family-*`` prefix).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import spaces

import envs
from envs.manipulation import MULTI_TASK_ENVS
from envs.wrappers import TaskResetWrapper

GYMNAX_SAMPLE = ["CartPole-v1", "Pendulum-v1", "Acrobot-v1", "Breakout-MinAtar", "Catch-bsuite"]
N_ENVS = 4
N_STEPS = 24
HORIZON = 7  # max_steps_in_episode in the rollouts, so every env auto-resets at least once


def family(name: str) -> str:
    if name.endswith("-v3") or name in MULTI_TASK_ENVS:
        return "manipulation"  # one family of 26 names (tests/test_manipulation_env.py covers them)
    return name.split("-")[0]


def native_env_names() -> list[str]:
    """Registered names that are not gymnax's (nor brax's or Playground's, tested in their own files): one per
    family prefix, except that small families (<= 3 names, e.g. the two bandits) are kept whole."""
    native = [n for n in envs.registered() if n not in gymnax.registered_envs and not n.startswith(("brax-", "dmc-"))]
    by_family: dict[str, list[str]] = defaultdict(list)
    for name in native:
        by_family[family(name)].append(name)
    return [n for names in by_family.values() for n in (names if len(names) <= 3 else names[:1])]


ENV_NAMES = native_env_names() + GYMNAX_SAMPLE


def in_space(space, x) -> bool:
    """Shape and bounds check (gymnax's ``contains`` ignores the shape)."""
    if isinstance(space, spaces.Dict):
        return all(in_space(s, x[k]) for k, s in space.spaces.items())
    if isinstance(space, spaces.Tuple):
        return all(in_space(s, xi) for s, xi in zip(space.spaces, x))
    x = np.asarray(x)
    if x.shape != tuple(space.shape):
        return False
    if isinstance(space, spaces.Discrete):
        return bool(np.all((x >= 0) & (x < space.n)))
    return bool(np.all(x >= np.asarray(space.low)) and np.all(x <= np.asarray(space.high)))


def batch_slice(tree, i):
    return jax.tree.map(lambda x: x[i], tree)


def _with_horizon(params, horizon):
    """Short episodes so the tests see resets."""
    if hasattr(params, "max_steps_in_episode"):
        return params.replace(max_steps_in_episode=jnp.full_like(jnp.asarray(params.max_steps_in_episode), horizon))
    return params


def rollout(env, key, params, n_steps=N_STEPS):
    """Random-action rollout of one env with gymnax's own auto-reset."""
    key_reset, key_run = jax.random.split(key)
    obs, state = env.reset(key_reset, params)

    def body(carry, k):
        state, obs = carry
        k_act, k_step = jax.random.split(k)
        action = env.action_space(params).sample(k_act)
        obs2, state, reward, term, trunc, info = env.step(k_step, state, action, params)
        flags_agree = (info["terminated"] == term) & (info["truncated"] == trunc)
        return (state, obs2), (obs, action, obs2, reward, term, trunc, info["final_observation"], flags_agree)

    _, out = jax.lax.scan(body, (state, obs), jax.random.split(key_run, n_steps))
    return out


class Bundle:
    """Per-env objects compiled once and shared by the tests of that env."""

    def __init__(self, name: str):
        self.env, self.params = envs.make(name)
        self.space = self.env.task_space
        self.tasks = jax.jit(lambda k: self.space.sample_batch(k, N_ENVS))(jax.random.key(0))
        self.short_tasks = _with_horizon(self.tasks, HORIZON)
        self.run = jax.jit(jax.vmap(lambda k, p: rollout(self.env, k, p)))
        self.keys = jax.random.split(jax.random.key(1), N_ENVS)


@pytest.fixture(scope="module", params=ENV_NAMES)
def bundle(request):
    return Bundle(request.param)


def test_default_params_in_task_space(bundle):
    space, params = bundle.space, bundle.params
    assert isinstance(space, envs.TaskSpace)
    assert dataclasses.is_dataclass(params)
    assert bool(space.contains(params)), f"{bundle.env.name}: default params outside its task space"
    assert space.low.shape == space.high.shape == (space.dim,)


def test_jit_vmap_over_keys_and_tasks(bundle):
    env, tasks = bundle.env, bundle.short_tasks
    obs, action, next_obs, reward, term, trunc, final_obs, flags_agree = bundle.run(bundle.keys, tasks)
    assert reward.shape == (N_ENVS, N_STEPS) and reward.dtype == jnp.float32
    assert term.dtype == jnp.bool_ and trunc.dtype == jnp.bool_
    assert bool(jnp.all(jnp.isfinite(reward)))
    assert bool(jnp.all(flags_agree)), "info['terminated'/'truncated'] disagree with the returned flags"
    done = np.asarray(term | trunc)
    assert done.any(axis=1).all(), f"{env.name}: no episode ended in {N_STEPS} steps with horizon {HORIZON}"
    # every observation (including the first of each new episode) inside the space of its task
    for i in range(N_ENVS):
        task_i = batch_slice(tasks, i)
        obs_space, act_space = env.observation_space(task_i), env.action_space(task_i)
        first_end = int(np.argmax(done[i]))
        for t in sorted({0, first_end, min(first_end + 1, N_STEPS - 1), N_STEPS - 1}):
            assert in_space(obs_space, batch_slice(obs, (i, t))), f"{env.name}: obs outside space at t={t}"
            assert in_space(obs_space, batch_slice(final_obs, (i, t)))
            assert in_space(act_space, batch_slice(action, (i, t)))
    # when the episode did not end, final_observation is the returned obs
    for a, b in zip(jax.tree.leaves(next_obs), jax.tree.leaves(final_obs)):
        np.testing.assert_array_equal(np.asarray(a)[~done], np.asarray(b)[~done])


def test_same_key_same_trajectory(bundle):
    a = bundle.run(bundle.keys, bundle.tasks)
    b = bundle.run(bundle.keys, bundle.tasks)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    # the rows of the batch used different keys and tasks: they are not all identical
    rows = [np.asarray(leaf).reshape(N_ENVS, -1) for leaf in jax.tree.leaves(a[2]) + [a[3]]]
    assert any(not np.array_equal(r[0], r[1]) for r in rows), f"{bundle.env.name}: key ignored"


def test_sampled_tasks_inside_task_space_and_round_trip(bundle):
    space, tasks = bundle.space, bundle.tasks
    assert bool(jnp.all(jax.vmap(space.contains)(tasks)))
    space.check(batch_slice(tasks, 0))
    vecs = jax.vmap(space.to_vector)(tasks)
    assert vecs.shape == (N_ENVS, space.dim)
    assert np.all(np.asarray(vecs) >= space.low - 1e-6) and np.all(np.asarray(vecs) <= space.high + 1e-6)
    back = jax.jit(jax.vmap(space.from_vector))(vecs)
    for name in space.names:
        np.testing.assert_allclose(
            np.asarray(getattr(back, name), np.float64),
            np.asarray(getattr(tasks, name), np.float64),
            rtol=1e-6,
            err_msg=f"{bundle.env.name}.{name}",
        )
    # the decoded tasks drive the env exactly like the originals
    for x, y in zip(jax.tree.leaves(bundle.run(bundle.keys, back)), jax.tree.leaves(bundle.run(bundle.keys, tasks))):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def flat_task(tree) -> np.ndarray:
    """All leaves of a (batched) params pytree as one float64 row per task."""
    leaves = [np.asarray(x, np.float64) for x in jax.tree.leaves(tree)]
    n = leaves[0].shape[0]
    return np.concatenate([x.reshape(n, -1) for x in leaves], axis=1)


def test_auto_reset_to_a_new_task(bundle):
    env = bundle.env
    # different horizons make the two tasks differ even for envs without free fields
    first = _with_horizon(batch_slice(bundle.tasks, 0), 5)
    second = _with_horizon(batch_slice(bundle.tasks, 1), 4)
    wrapped = TaskResetWrapper(env)
    n_steps = 12

    def run(key):
        obs, state = wrapped.reset(key, first)

        def body(state, k):
            k_act, k_step = jax.random.split(k)
            action = env.action_space(first).sample(k_act)
            _, state, _, term, trunc, info = wrapped.step(k_step, state, action, second)
            return state, (term | trunc, info["task"], state.task)

        return jax.lax.scan(body, state, jax.random.split(key, n_steps))[1]

    done, task_of_step, task_after = jax.jit(run)(jax.random.key(8))
    done = np.asarray(done)
    assert done.any(), f"{env.name}: no episode ended within {n_steps} steps"
    end = int(np.argmax(done))  # last step of the first episode
    want_first = flat_task(jax.tree.map(lambda x: x[None], first))[0]
    want_second = flat_task(jax.tree.map(lambda x: x[None], second))[0]
    of_step, after = flat_task(task_of_step), flat_task(task_after)
    np.testing.assert_allclose(of_step[: end + 1], np.tile(want_first, (end + 1, 1)))
    np.testing.assert_allclose(of_step[end + 1 :], np.tile(want_second, (n_steps - end - 1, 1)))
    np.testing.assert_allclose(after[end:], np.tile(want_second, (n_steps - end, 1)))
    assert done[end + 1 :].any(), "the second task's episodes (horizon 4) must end too"
