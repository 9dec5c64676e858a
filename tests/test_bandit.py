"""Bandit: dynamics, observation, reward statistics, structured task samplers, regret."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs import bandit as B

N = 4000  # pulls per arm for the reward statistics


def _params(means, stds=None, steps=100):
    means = jnp.asarray(means, jnp.float32)
    stds = jnp.full(means.shape, 0.1, jnp.float32) if stds is None else jnp.asarray(stds, jnp.float32)
    return B.BanditParams(means, stds, jnp.asarray(steps, jnp.int32))


def _pull_every_arm(env, params, key):
    """Rewards of N independent first pulls of each arm: shape [num_arms, N]."""

    @jax.jit
    def pulls(key):
        def one(k, arm):
            _, state = env.reset(k, params)
            return env.step(k, state, arm, params)[2]

        arms = jnp.arange(env.num_arms)
        keys = jax.random.split(key, (env.num_arms, N))
        return jax.vmap(lambda ks, a: jax.vmap(lambda k: one(k, a))(ks))(keys, arms)

    return np.asarray(pulls(key))


def test_registry_overrides_and_errors():
    env, params = envs.make("bandit-bernoulli", num_arms=10)
    assert env.num_arms == 10 and params.arm_means.shape == (10,)
    assert env.observation_space(params).shape == (12,)
    env, params = envs.make("bandit-gaussian")
    assert env.kind == "gaussian" and env.num_arms == 5 and env.task_space.names == ("arm_means", "arm_stds")
    _, params = envs.make("bandit-bernoulli", num_arms=3, arm_means=[0.2, 0.5, 0.9], max_steps_in_episode=20)
    np.testing.assert_allclose(params.arm_means, [0.2, 0.5, 0.9])
    assert int(params.max_steps_in_episode) == 20
    assert envs.make("bandit-bernoulli")[0] == B.Bandit(5, "bernoulli")
    with pytest.raises(ValueError, match="num_arms=2"):
        envs.make("bandit-bernoulli", arm_distribution="dependent")
    with pytest.raises(ValueError, match="arm_distribution"):
        B.Bandit(arm_distribution="zipf")
    with pytest.raises(ValueError, match="kind"):
        B.Bandit(kind="poisson")
    with pytest.raises(ValueError, match="num_arms"):
        B.Bandit(num_arms=1)


def test_observation_layout_and_truncation():
    env = B.Bandit(num_arms=3, kind="bernoulli")
    params = _params([0.0, 1.0, 0.0], steps=4)  # deterministic rewards
    key = jax.random.PRNGKey(0)
    obs, state = env.reset(key, params)
    np.testing.assert_array_equal(obs, [0, 0, 0, 0, 0])
    obs, state, reward, term, trunc, info = env.step(key, state, 1, params)
    np.testing.assert_allclose(obs, [0, 1, 0, 1.0, 0.25])
    assert float(reward) == 1.0 and not bool(term) and not bool(trunc)
    assert float(info["regret"]) == 0.0
    obs, state, reward, term, trunc, info = env.step(key, state, 2, params)
    np.testing.assert_allclose(obs, [0, 0, 1, 0.0, 0.5])
    assert float(reward) == 0.0 and float(info["regret"]) == 1.0
    for t in range(2):
        obs, state, reward, term, trunc, info = env.step(key, state, 0, params)
        assert bool(trunc) == (t == 1) and not bool(term)
    np.testing.assert_allclose(info["final_observation"], [1, 0, 0, 0.0, 1.0])
    np.testing.assert_array_equal(obs, [0, 0, 0, 0, 0])  # auto-reset
    assert bool(env.observation_space(params).contains(info["final_observation"]))


def test_jit_vmap_determinism_and_obs_space():
    env = B.Bandit(num_arms=4, kind="gaussian", arm_distribution="uniform")
    tasks = env.task_space.sample_batch(jax.random.PRNGKey(1), 64)
    keys = jax.random.split(jax.random.PRNGKey(2), 64)
    actions = jnp.arange(64) % 4

    @jax.jit
    def rollout(keys, tasks):
        obs, states = jax.vmap(env.reset)(keys, tasks)
        obs, states, rewards, *_ = jax.vmap(env.step)(keys, states, actions, tasks)
        return obs, rewards

    obs1, rew1 = rollout(keys, tasks)
    obs2, rew2 = rollout(keys, tasks)
    np.testing.assert_array_equal(obs1, obs2)
    np.testing.assert_array_equal(rew1, rew2)
    assert obs1.shape == (64, 6)
    assert bool(jax.vmap(env.observation_space(tasks).contains)(obs1).all())
    np.testing.assert_array_equal(np.argmax(obs1[:, :4], axis=1), actions)
    _, rew3 = rollout(jax.random.split(jax.random.PRNGKey(3), 64), tasks)
    assert not np.allclose(rew1, rew3)


def test_bernoulli_rewards_match_means():
    env = B.Bandit(num_arms=4, kind="bernoulli")
    means = np.array([0.05, 0.3, 0.6, 0.9], np.float32)
    rewards = _pull_every_arm(env, _params(means), jax.random.PRNGKey(4))
    assert set(np.unique(rewards)) <= {0.0, 1.0}
    # 5 standard errors: sqrt(0.25 / 4000) ~ 0.008
    np.testing.assert_allclose(rewards.mean(axis=1), means, atol=0.04)


def test_gaussian_rewards_match_means_and_stds():
    env = B.Bandit(num_arms=3, kind="gaussian")
    means, stds = np.array([0.1, 0.5, 0.8]), np.array([0.05, 0.3, 1.0])
    rewards = _pull_every_arm(env, _params(means, stds), jax.random.PRNGKey(5))
    assert (np.abs(rewards.mean(axis=1) - means) < 5 * stds / np.sqrt(N)).all()  # 5 standard errors
    np.testing.assert_allclose(rewards.std(axis=1), stds, rtol=0.06)


def _sample_means(env, key, n=2000):
    return np.asarray(jax.jit(env.task_space.sample_batch, static_argnums=1)(key, n).arm_means)


def test_structured_samplers():
    key = jax.random.PRNGKey(6)
    uniform = _sample_means(B.Bandit(num_arms=5, arm_distribution="uniform"), key)
    assert uniform.min() >= 0 and uniform.max() <= 1
    assert abs(uniform.mean() - 0.5) < 0.02 and abs(uniform.var() - 1 / 12) < 0.01
    assert np.abs(np.corrcoef(uniform.T) - np.eye(5)).max() < 0.1  # independent arms

    good = B.Bandit(num_arms=5, arm_distribution="one_good_arm", good_mean=0.8, bad_mean=0.2)
    means = _sample_means(good, key)
    assert ((means == np.float32(0.8)).sum(axis=1) == 1).all()
    assert ((means == np.float32(0.2)).sum(axis=1) == 4).all()
    counts = np.bincount(means.argmax(axis=1), minlength=5)
    assert (np.abs(counts / 2000 - 0.2) < 0.04).all()  # the good arm is uniformly placed

    for name in ("dependent", "correlated"):
        dep = B.Bandit(num_arms=2, arm_distribution=name)
        means = _sample_means(dep, key)
        np.testing.assert_allclose(means.sum(axis=1), 1.0, atol=1e-6)
        assert abs(means[:, 0].mean() - 0.5) < 0.02 and abs(means[:, 0].var() - 1 / 12) < 0.01


def test_task_space_contains_and_round_trip():
    env = B.Bandit(num_arms=3, kind="gaussian")
    space = env.task_space
    task = space.sample(jax.random.PRNGKey(7))
    assert bool(space.contains(task))
    back = space.from_vector(space.to_vector(task))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), back, task)
    assert space.dim == 6
    assert not bool(space.contains(task.replace(arm_means=jnp.array([0.1, 1.5, 0.2]))))
    with pytest.raises(ValueError, match="arm_stds"):
        space.check(task.replace(arm_stds=jnp.array([0.1, 0.1, 5.0])))


def test_regret_helpers():
    params = _params([0.2, 0.5, 0.9], steps=10)
    assert float(B.best_arm_mean(params)) == pytest.approx(0.9)
    np.testing.assert_allclose(B.pull_regret(params, jnp.array([0, 1, 2])), [0.7, 0.4, 0.0], atol=1e-6)
    assert float(B.cumulative_regret(params, jnp.array([0, 1, 2, 2]))) == pytest.approx(1.1, abs=1e-6)
    assert float(B.oracle_return(params)) == pytest.approx(9.0)
    batch = jax.tree.map(lambda *xs: jnp.stack(xs), params, _params([0.3, 0.1, 0.2], steps=10))
    np.testing.assert_allclose(B.best_arm_mean(batch), [0.9, 0.3], atol=1e-6)


def test_thompson_sampling_from_observations_beats_random():
    """The observation alone (last action + reward) suffices for an in-context learner:
    Beta-Bernoulli Thompson sampling fed only with observations has far lower regret."""
    env = B.Bandit(num_arms=5, kind="bernoulli", arm_distribution="one_good_arm")
    horizon = 100

    def episode(key, task, thompson):
        obs, state = env.reset(key, task)

        def step(carry, k):
            obs, state, wins, losses = carry
            last = obs[: env.num_arms]  # one-hot of the previous pull (zeros at t=0)
            wins = wins + last * obs[env.num_arms]
            losses = losses + last * (1.0 - obs[env.num_arms])
            k_act, k_env = jax.random.split(k)
            sample = jax.random.beta(k_act, 1.0 + wins, 1.0 + losses)
            action = jnp.where(thompson, jnp.argmax(sample), jax.random.randint(k_act, (), 0, env.num_arms))
            obs, state, _, _, _, info = env.step(k_env, state, action, task)
            return (obs, state, wins, losses), info["regret"]

        zeros = jnp.zeros(env.num_arms)
        _, regret = jax.lax.scan(step, (obs, state, zeros, zeros), jax.random.split(key, horizon))
        return regret.sum()

    tasks = env.task_space.sample_batch(jax.random.PRNGKey(8), 64)
    keys = jax.random.split(jax.random.PRNGKey(9), 64)
    run = jax.jit(jax.vmap(episode, in_axes=(0, 0, None)))
    ts_regret, random_regret = float(run(keys, tasks, True).mean()), float(run(keys, tasks, False).mean())
    assert random_regret == pytest.approx(horizon * 0.8 * 4 / 5, rel=0.05)  # hand-computed: 64
    assert ts_regret < 0.3 * random_regret
