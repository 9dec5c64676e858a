"""metarl.agents.policy: the shared evaluation loop, checked against hand-computed returns."""

import jax
import jax.numpy as jnp
import numpy as np

import envs
from metarl.agents.policy import categorical_act, evaluate_policy


def test_bandit_returns_match_the_pulled_arm():
    env, params = envs.make("bandit-bernoulli", num_arms=2, max_steps_in_episode=5)
    params = params.replace(arm_means=jnp.array([0.0, 1.0]))
    always = lambda arm: (lambda p, obs, key: jnp.full(obs.shape[:1], arm, jnp.int32))  # noqa: E731
    key = jax.random.PRNGKey(0)
    out = jax.jit(lambda k: evaluate_policy(always(1), None, env, params, k, 4))(key)
    assert out["return"].shape == (4,)
    assert bool(jnp.all(out["finished"]))
    np.testing.assert_array_equal(out["length"], np.full(4, 5))
    np.testing.assert_array_equal(out["return"], np.full(4, 5.0))  # arm 1 pays 1 on every pull
    worst = jax.jit(lambda k: evaluate_policy(always(0), None, env, params, k, 4))(key)
    np.testing.assert_array_equal(worst["return"], np.zeros(4))


def test_same_key_same_result_and_greedy_ignores_key():
    env, params = envs.make("CartPole-v1")
    logits = lambda p, obs: jnp.stack([obs[:, 2], -obs[:, 2]], axis=-1) * p  # noqa: E731
    act = categorical_act(logits, greedy=True)
    run = jax.jit(lambda k: evaluate_policy(act, -10.0, env, params, k, 3, max_steps=50))
    a, b = run(jax.random.PRNGKey(1)), run(jax.random.PRNGKey(1))
    np.testing.assert_array_equal(a["return"], b["return"])
    # a capped run never exceeds its step budget, and CartPole pays 1 per step
    assert np.all(np.asarray(a["length"]) <= 50)
    np.testing.assert_allclose(a["return"], a["length"])


def test_per_episode_tasks_under_vmap():
    env, params = envs.make("CartPole-v1")
    batched = jax.tree.map(lambda x: jnp.stack([x, x]), params)
    act = categorical_act(lambda p, obs: jnp.zeros(obs.shape[:1] + (2,)))
    f = lambda k: evaluate_policy(act, None, env, batched, k, 2, batched_params=True, max_steps=20)  # noqa: E731
    out = jax.jit(jax.vmap(f))(jax.random.split(jax.random.PRNGKey(0), 3))
    assert out["return"].shape == (3, 2)
