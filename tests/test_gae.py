"""GAE with gymnax-1.0 semantics, checked against hand-computed numbers."""

import jax.numpy as jnp
import numpy as np

from metarl.agents.gae import gae, legacy_gae

# One env, 4 steps; the episode is truncated at t=1 (time limit) and terminated at t=3.
REWARDS = jnp.array([1.0, 1.0, 1.0, 1.0])
VALUES = jnp.array([0.5, 0.6, 0.7, 0.8])  # V(s_t)
NEXT_VALUES = jnp.array([0.6, 2.0, 0.8, 0.9])  # V(s'_t); at t=1 the value of final_observation
TERMINATED = jnp.array([False, False, False, True])
DONE = jnp.array([False, True, False, True])
GAMMA, LAMBDA = 0.9, 0.5


def test_gae_truncation_in_the_middle():
    adv, targets = gae(REWARDS, VALUES, NEXT_VALUES, TERMINATED, DONE, GAMMA, LAMBDA)
    # deltas: 1+.9*.6-.5=1.04, 1+.9*2-.6=2.2 (truncation bootstraps), 1+.9*.8-.7=1.02, 1-.8=0.2 (terminal)
    # A3=.2; A2=1.02+.45*.2=1.11; A1=2.2 (trace cut); A0=1.04+.45*2.2=2.03
    np.testing.assert_allclose(adv, [2.03, 2.2, 1.11, 0.2], rtol=1e-6)
    np.testing.assert_allclose(targets, [2.53, 2.8, 1.81, 1.0], rtol=1e-6)


def test_gae_batched_over_envs_matches_per_env():
    rng = np.random.default_rng(0)
    t, n = 7, 3
    r, v, nv = (jnp.asarray(rng.normal(size=(t, n)), jnp.float32) for _ in range(3))
    term = jnp.asarray(rng.random((t, n)) < 0.2)
    done = jnp.logical_or(term, jnp.asarray(rng.random((t, n)) < 0.2))
    adv, _ = gae(r, v, nv, term, done, 0.99, 0.95)
    for e in range(n):
        single, _ = gae(r[:, e], v[:, e], nv[:, e], term[:, e], done[:, e], 0.99, 0.95)
        np.testing.assert_allclose(adv[:, e], single, rtol=1e-5, atol=1e-6)
    assert adv.dtype == jnp.float32


def test_legacy_gae_treats_time_limit_as_terminal():
    # Legacy form: the truncation at t=1 neither bootstraps nor continues the trace.
    values = VALUES
    adv, _ = legacy_gae(REWARDS, values, jnp.array(0.9), DONE, GAMMA, LAMBDA)
    # deltas: 1+.9*.6-.5=1.04, 1-.6=.4, 1+.9*.8-.7=1.02, 1-.8=.2
    np.testing.assert_allclose(adv, [1.04 + 0.45 * 0.4, 0.4, 1.02 + 0.45 * 0.2, 0.2], rtol=1e-6)
