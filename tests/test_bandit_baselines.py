"""Classical Bernoulli-bandit baselines (random, oracle, UCB1, Thompson, Gittins) and the RL² table."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from metarl.eval import bandit_baselines as bb

K, N, TASKS = 5, 100, 400


@pytest.fixture(scope="module")
def means():
    return jax.random.uniform(jax.random.key(7), (TASKS, K))


@pytest.fixture(scope="module")
def pseudo_totals(means):
    """Expected (pseudo-)reward totals of every policy on the same tasks, k = 5, n = 100."""
    return {p: np.asarray(bb.run(p, means, jax.random.key(1), N, pseudo=True)) for p in bb.POLICIES}


def test_random_is_half_of_n_on_uniform_means(means):
    totals = np.asarray(bb.run("random", means, jax.random.key(2), N))
    expected = N * np.asarray(means).mean(axis=1)  # per task: n * mean arm
    assert abs(totals.mean() - expected.mean()) < 0.8  # sampling error ~0.25
    assert abs(totals.mean() - N / 2) < 2.5  # n/2 in expectation over U[0,1] tasks


def test_oracle_dominates_every_policy(means, pseudo_totals):
    oracle = pseudo_totals["oracle"]
    np.testing.assert_allclose(oracle, N * np.asarray(means).max(axis=1), rtol=1e-5)
    for policy, totals in pseudo_totals.items():
        assert np.all(totals <= oracle * (1 + 1e-5) + 1e-4), policy


def test_learning_policies_beat_random_clearly(means, pseudo_totals):
    mean = {p: float(t.mean()) for p, t in pseudo_totals.items()}
    assert abs(mean["random"] - 50.0) < 2.5
    # measured (400 tasks): random 50, UCB1 ~66, Thompson ~75, Gittins ~78, oracle ~83
    assert mean["ucb1"] > mean["random"] + 10
    assert mean["thompson"] > mean["random"] + 18
    assert mean["gittins"] > mean["random"] + 22
    assert mean["gittins"] > mean["ucb1"] + 5  # the Bayes-index policy is the strongest here
    assert 76.0 < mean["gittins"] < mean["oracle"]  # Duan et al. (recalled): Gittins 78.3 at k=5, n=100


def test_run_accepts_env_params_single_tasks_and_is_deterministic(means, pseudo_totals):
    env, _ = envs.make("bandit-bernoulli", num_arms=K)
    batch = env.task_space.sample_batch(jax.random.key(3), TASKS)  # BanditParams, arm_means [TASKS, K]
    key = jax.random.key(4)
    # same shapes and statics as the fixture: no new compilation
    a = np.asarray(bb.run("thompson", batch, key, N, pseudo=True))
    b = np.asarray(bb.run("thompson", batch.arm_means, key, N, pseudo=True))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, np.asarray(bb.run("thompson", batch, jax.random.key(5), N, pseudo=True)))
    for policy in bb.POLICIES:  # the fixture's key again: the fixture's totals again
        np.testing.assert_array_equal(np.asarray(bb.run(policy, means, jax.random.key(1), N, pseudo=True)),
                                      pseudo_totals[policy])
    # one task (means [k]): a scalar. Deterministic arms [0, 1, 0], 10 pulls:
    sure = jnp.asarray([0.0, 1.0, 0.0], jnp.float32)
    # UCB1 by hand: each arm once (t = 0..2), then the 1-arm at t = 3..6 (index 1 + sqrt(2 ln t / n)
    # beats sqrt(2 ln t)), the two 0-arms at t = 7, 8 (sqrt(2 ln 7) = 1.97 > 1 + sqrt(2 ln 7 / 5) = 1.88),
    # the 1-arm at t = 9: 1 + 4 + 1 = 6.
    ucb = bb.run("ucb1", sure, key, 10)
    assert ucb.shape == () and float(ucb) == 6.0
    # Gittins never returns to an arm that failed once the 1-arm has succeeded: at most 2 misses
    assert float(bb.run("gittins", sure, key, 10)) >= 8.0
    with pytest.raises(ValueError, match="unknown policy"):
        bb.run("greedy", means, key, N)
    with pytest.raises(ValueError, match="n_pulls"):
        bb.run("random", means, key, 0)


def test_gittins_indices_match_published_values():
    # Gittins' tables (as reprinted in Christian & Griffiths, "Algorithms to Live By"):
    # record (wins, losses) under a uniform prior; discount 0.9 and 0.99
    t9 = bb.gittins_indices(0.9, 12)
    assert t9[0, 0] == pytest.approx(0.7029, abs=6e-5)
    assert t9[1, 1] == pytest.approx(0.6346, abs=6e-5)
    assert t9[2, 2] == pytest.approx(0.6010, abs=6e-5)
    assert t9[9, 1] == pytest.approx(0.8695, abs=6e-5)
    assert bb.gittins_indices(0.99, 2)[0, 0] == pytest.approx(0.8699, abs=6e-5)
    # structure: above the posterior mean, up in successes, down in failures; NaN past max_pulls
    s, f = np.meshgrid(np.arange(13), np.arange(13), indexing="ij")
    ok = s + f <= 12
    assert np.all(np.isnan(t9[~ok])) and np.all(np.isfinite(t9[ok]))
    assert np.all(t9[ok] > ((s + 1) / (s + f + 2))[ok])
    assert np.all(np.diff(t9, axis=0)[(s + f <= 11)[:-1]] > 0)
    assert np.all(np.diff(t9, axis=1)[(s + f <= 11)[:, :-1]] < 0)


def _bisection_index(a, b, gamma, depth=80):
    """Gittins index of Beta(a, b) by bisection on the retirement reward, exact recursion to ``depth``."""

    def value(lam):
        @functools.lru_cache(maxsize=None)
        def v(i, j, d):
            p = i / (i + j)
            retire = lam / (1 - gamma)
            if d == depth:
                return max(retire, p / (1 - gamma))
            return max(retire, p * (1 + gamma * v(i + 1, j, d + 1)) + (1 - p) * gamma * v(i, j + 1, d + 1))

        p = a / (a + b)
        return p * (1 + gamma * v(a + 1, b, 1)) + (1 - p) * gamma * v(a, b + 1, 1) - lam / (1 - gamma)

    lo, hi = 0.0, 1.0
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if value(mid) > 0 else (lo, mid)
    return (lo + hi) / 2


def test_gittins_indices_match_brute_force_bisection():
    gamma = 0.8
    table = bb.gittins_indices(gamma, 6)
    for s, f in [(0, 0), (1, 0), (0, 1), (3, 2), (0, 6), (5, 1)]:
        assert table[s, f] == pytest.approx(_bisection_index(s + 1, f + 1, gamma), abs=2e-6), (s, f)


def test_bandit_table_shapes_and_intervals():
    table = bb.bandit_table([3], [8], 64, jax.random.key(0), methods=("random", "oracle"))
    assert set(table) == {(3, 8, "random"), (3, 8, "oracle")}
    for mean, low, high in table.values():
        assert low <= mean <= high and 0 <= mean <= 8
    assert table[(3, 8, "oracle")][0] > table[(3, 8, "random")][0]
