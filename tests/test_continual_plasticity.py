"""Plasticity diagnostics on constructed activations and parameters."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl.agents import networks
from metarl.continual import plasticity as P

# eager orthogonal init is slow on a loaded CPU; one compile per shape
_init_jit = jax.jit(networks.init_actor_critic, static_argnums=(1, 2, 3), static_argnames="continuous")


def _init_net(key, *args, **kwargs):
    return _init_jit(jax.random.split(key), *args, **kwargs)  # (actor, critic) key pair


def _constructed():
    # per-unit E|h| = [0, 0.02, 0.08, 3.9] -> layer mean 1.0 -> scores equal E|h|
    return jnp.array(
        [
            [0.0, 0.02, 0.08, 3.9],
            [0.0, -0.02, -0.08, 3.9],
            [0.0, 0.02, 0.08, -3.9],
            [0.0, -0.02, -0.08, 3.9],
        ]
    )


def test_dormant_scores_and_fractions():
    h = _constructed()
    np.testing.assert_allclose(P.dormant_scores(h), [0.0, 0.02, 0.08, 3.9], rtol=1e-5)
    fractions = jax.jit(P.activation_stats)(h)
    assert float(fractions["dormant_0"]) == 0.25  # only the silent unit
    assert float(fractions["dormant_0.025"]) == 0.5
    assert float(fractions["dormant_0.1"]) == 0.75
    # convolution-shaped activations: space is averaged like the batch
    conv = jnp.broadcast_to(h[:, None, None, :], (4, 3, 2, 4))
    np.testing.assert_allclose(P.dormant_scores(conv), P.dormant_scores(h), rtol=1e-6)
    # an entirely silent layer is entirely dormant, not NaN
    assert float(P.dormant_fraction(jnp.zeros((5, 3)), 0.0)) == 1.0


def test_effective_and_stable_rank():
    m = jnp.zeros((5, 3)).at[0, 0].set(3.0).at[1, 1].set(1.0)  # σ = (3, 1, 0)
    p = np.array([0.75, 0.25])
    assert float(P.effective_rank(m)) == pytest.approx(np.exp(-np.sum(p * np.log(p))), rel=1e-5)
    assert float(P.effective_rank(jnp.eye(4))) == pytest.approx(4.0, rel=1e-5)
    rank1 = jnp.outer(jnp.arange(1.0, 6.0), jnp.array([1.0, -2.0, 0.5]))
    assert float(P.effective_rank(rank1)) == pytest.approx(1.0, abs=1e-3)
    # σ = (98, 1, 1): 98% < 99% after one, 99% after two
    assert int(P.stable_rank(jnp.diag(jnp.array([98.0, 1.0, 1.0])))) == 2
    assert int(P.stable_rank(jnp.diag(jnp.array([99.0, 1.0])))) == 1  # exactly 1-δ counts
    assert int(P.stable_rank(jnp.eye(6))) == 6
    assert int(P.stable_rank(jnp.zeros((4, 4)))) == 0 and float(P.effective_rank(jnp.zeros((4, 4)))) == 0.0
    assert int(jax.jit(P.stable_rank)(rank1)) == 1


def test_weight_stats_per_layer():
    params = {"actor": {"hidden_0": {"kernel": jnp.array([[1.0, -2.0]]), "bias": jnp.array([0.0, 1.0])}},
              "log_std": jnp.array([0.5])}
    init = jax.tree.map(jnp.zeros_like, params)
    grads = jax.tree.map(lambda x: 2 * jnp.ones_like(x), params)
    stats = jax.jit(P.weight_stats)(params, init, grads)
    layer = stats["actor/hidden_0"]
    assert float(layer["mean_abs_weight"]) == pytest.approx(1.0)  # (1+2+0+1)/4
    assert float(layer["dist_from_init"]) == pytest.approx(np.sqrt(6.0))
    assert float(layer["grad_norm"]) == pytest.approx(4.0)  # sqrt(4 entries * 4)
    assert float(stats["log_std"]["dist_from_init"]) == pytest.approx(0.5)
    flat = P.flatten_stats(stats)
    assert "actor/hidden_0/grad_norm" in flat


def test_mlp_activation_stats_finds_dead_relu_units():
    params = _init_net(jax.random.PRNGKey(0), 3, 2, (8, 8), continuous=False)
    # kill units 0..2 of the actor's first hidden layer: zero weights, negative bias
    layer = params["actor"]["hidden_0"]
    layer["kernel"] = layer["kernel"].at[:, :3].set(0.0)
    layer["bias"] = layer["bias"].at[:3].set(-1.0)
    obs = jax.random.normal(jax.random.PRNGKey(1), (64, 3))
    stats = jax.jit(lambda p, o: P.mlp_activation_stats(p, o, "relu"))(params, obs)
    assert set(stats) == {"actor/hidden_0", "actor/hidden_1", "critic/hidden_0", "critic/hidden_1"}
    assert float(stats["actor/hidden_0"]["dormant_0"]) >= 3 / 8
    assert float(stats["actor/hidden_0"]["effective_rank"]) <= 5.0 + 1e-3


@pytest.mark.parametrize("n", [1, 5, 8, 33])
def test_jacobi_eigenvalues_match_lapack_for_symmetric_matrices(n):
    from metarl.continual.plasticity import symmetric_eigenvalues

    m = np.random.RandomState(n).randn(n, n).astype(np.float32)
    m = m + m.T  # indefinite on purpose: the odd-size padding must not disturb the order
    expected = np.sort(np.linalg.eigvalsh(m.astype(np.float64)))[::-1]
    got = np.asarray(jax.jit(symmetric_eigenvalues)(jnp.asarray(m)))
    np.testing.assert_allclose(got, expected, atol=1e-4 * max(1.0, np.abs(expected).max()))
