"""``networks.dense``: its hand-written backward pass equals plain autodiff."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl.agents import networks


def _plain(x, kernel, bias):
    return x @ kernel + bias


def _loss(layer):
    # A nonlinear read-out so every cotangent entry differs.
    return lambda x, k, b: jnp.sum(jnp.sin(layer(x, k, b)) * jnp.arange(1.0, 4.0))


@pytest.mark.parametrize("shape", [(5,), (7, 5), (4, 6, 5)])
def test_dense_gradients_match_autodiff(shape):
    kx, kk, kb = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(kx, shape)
    kernel = jax.random.normal(kk, (5, 3))
    bias = jax.random.normal(kb, (3,))
    np.testing.assert_allclose(networks.dense(x, kernel, bias), _plain(x, kernel, bias), rtol=1e-6)
    ours = jax.jit(jax.grad(_loss(networks.dense), argnums=(0, 1, 2)))(x, kernel, bias)
    reference = jax.grad(_loss(_plain), argnums=(0, 1, 2))(x, kernel, bias)
    for got, want in zip(ours, reference):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_dense_per_example_gradients_under_vmap_and_second_order():
    kx, kk = jax.random.split(jax.random.key(1))
    x = jax.random.normal(kx, (6, 2, 5))
    kernel = jax.random.normal(kk, (5, 3))
    bias = jnp.zeros((3,))
    per_example = jax.vmap(jax.grad(_loss(networks.dense), argnums=1), in_axes=(0, None, None))
    reference = jax.vmap(jax.grad(_loss(_plain), argnums=1), in_axes=(0, None, None))
    np.testing.assert_allclose(per_example(x, kernel, bias), reference(x, kernel, bias), rtol=1e-5, atol=1e-5)
    # Gradient of a gradient norm (meta-gradient style) also matches.
    def grad_norm(layer):
        return lambda k: jnp.sum(jax.grad(_loss(layer), argnums=1)(x[0], k, bias) ** 2)

    np.testing.assert_allclose(
        jax.grad(grad_norm(networks.dense))(kernel), jax.grad(grad_norm(_plain))(kernel), rtol=1e-4, atol=1e-4
    )


def test_mlp_gradient_matches_plain_layers():
    params = networks.init_mlp(jax.random.key(2), 4, (8, 8), 2, 0.01)
    obs = jax.random.normal(jax.random.key(3), (16, 4))

    def plain_mlp(layers, x):
        for i in range(2):
            x = jnp.tanh(_plain(x, layers[f"hidden_{i}"]["kernel"], layers[f"hidden_{i}"]["bias"]))
        return _plain(x, layers["head"]["kernel"], layers["head"]["bias"])

    ours = jax.grad(lambda p: jnp.sum(networks.apply_mlp(p, obs, "tanh")[0] ** 2))(params)
    reference = jax.grad(lambda p: jnp.sum(plain_mlp(p, obs) ** 2))(params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), ours, reference)
