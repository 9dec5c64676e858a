"""Optimizer zoo, config factory and ReDo dormancy helpers."""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import yaml

from metarl.optimizers import (
    LearnedOptimizer,
    build_optimizer,
    dormant_fraction,
    layer_dormancy,
    make_optimizer,
    neutral_dormancy,
    optimizer_names,
    redo_scores,
)

CONFIG_DIR = pathlib.Path(__file__).resolve().parents[1] / "configs" / "optimizer"
ZOO = ("adam", "adamw", "rmsprop", "sgd", "lion", "adopt", "schedule_free_adamw", "prodigy")


def _quadratic_loss(params):
    # ill-conditioned bowl with its minimum at (1, -2)
    return 0.5 * (params["w"][0] - 1.0) ** 2 + 5.0 * (params["w"][1] + 2.0) ** 2


def _minimise(tx, steps=1000):
    params = {"w": jnp.zeros(2, jnp.float32)}
    state = tx.init(params)

    def step(carry, _):
        params, state = carry
        grads = jax.grad(_quadratic_loss)(params)
        updates, state = tx.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), None

    (params, state), _ = jax.lax.scan(step, (params, state), None, length=steps)
    return params, state


def test_zoo_lists_every_required_optimizer():
    assert set(ZOO) <= set(optimizer_names())


@pytest.mark.parametrize("name", ZOO)
def test_zoo_optimizer_minimises_a_quadratic(name):
    lr = {"sgd": 0.02, "prodigy": 1.0, "lion": 0.01}.get(name, 0.05)
    tx = make_optimizer(name, lr)
    params, state = _minimise(tx)
    if name == "schedule_free_adamw":
        params = optax.contrib.schedule_free_eval_params(state, params)
    start = float(_quadratic_loss({"w": jnp.zeros(2)}))
    assert float(_quadratic_loss(params)) < 0.01 * start


def test_zoo_passes_kwargs_to_optax():
    # SGD with momentum 0.5 after two steps of constant gradient 1: 0.1*(1) then 0.1*(1 + 0.5)
    tx = make_optimizer("sgd", 0.1, momentum=0.5)
    params = {"w": jnp.zeros(())}
    state = tx.init(params)
    grads = {"w": jnp.ones(())}
    u1, state = tx.update(grads, state, params)
    u2, state = tx.update(grads, state, params)
    np.testing.assert_allclose([u1["w"], u2["w"]], [-0.1, -0.15], rtol=1e-6)


def test_zoo_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown optimizer 'adamm'.*adam"):
        make_optimizer("adamm", 1e-3)
    with pytest.raises(ValueError, match="bad arguments for optimizer 'adam'"):
        make_optimizer("adam", 1e-3, bogus=1)
    with pytest.raises(ValueError, match="needs a learning_rate"):
        make_optimizer("adam")
    make_optimizer("prodigy")  # learning-rate free: no lr needed


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_config_builds(path):
    cfg = yaml.safe_load(path.read_text())
    if str(cfg.get("learning_rate", "")).startswith("${"):  # hydra interpolation (e.g. ${agent.lr})
        cfg["learning_rate"] = 1e-3
    assert cfg["name"] == path.stem or (path.stem == "learned" and cfg["name"] == "learned")
    built = build_optimizer(cfg)
    if cfg["name"] == "learned":
        assert isinstance(built, LearnedOptimizer)
        tx = built.transform(built.init_meta(jax.random.PRNGKey(0)))
    else:
        tx = built
    params = {"w": jnp.ones(3)}
    updates, _ = jax.jit(tx.update)({"w": jnp.ones(3)}, tx.init(params), params)
    assert jnp.all(jnp.isfinite(updates["w"]))


def test_zoo_configs_cover_the_zoo():
    names = {p.stem for p in CONFIG_DIR.glob("*.yaml")}
    assert set(ZOO) - {"adam"} <= names  # adam.yaml belongs to the PPO config set


def test_build_optimizer_errors():
    with pytest.raises(ValueError, match="needs a 'name'"):
        build_optimizer({"learning_rate": 1.0})
    with pytest.raises(ValueError, match="unknown learned optimizer 'velo'"):
        build_optimizer({"name": "learned", "type": "velo"})
    with pytest.raises(ValueError, match="bad learned optimizer option"):
        build_optimizer({"name": "learned", "gru_size": 3})


# --- dormancy ---------------------------------------------------------------------------


def test_redo_scores_hand_computed():
    # E|h| per unit = [1, 0, 2, 1]; layer mean = 1
    h = jnp.array([[1.0, 0.0, 3.0, -2.0], [-1.0, 0.0, 1.0, 0.0]])
    np.testing.assert_allclose(redo_scores(h), [1.0, 0.0, 2.0, 1.0])
    # leading axes are all averaged: [time, batch, units]
    np.testing.assert_allclose(redo_scores(h.reshape(2, 1, 4)), [1.0, 0.0, 2.0, 1.0])
    # scale invariant
    np.testing.assert_allclose(redo_scores(7.0 * h), [1.0, 0.0, 2.0, 1.0], rtol=1e-6)


def test_redo_scores_unequal_units():
    # E|h| = [0.5, 1.5, 4]; mean = 2 -> [0.25, 0.75, 2]
    h = jnp.array([[0.5, -1.0, 4.0], [-0.5, 2.0, 4.0]])
    np.testing.assert_allclose(redo_scores(h), [0.25, 0.75, 2.0], rtol=1e-6)
    assert float(dormant_fraction(redo_scores(h), 0.0)) == 0.0
    assert float(dormant_fraction(redo_scores(h), 0.25)) == pytest.approx(1 / 3)
    assert float(dormant_fraction(redo_scores(h), 0.8)) == pytest.approx(2 / 3)


def test_redo_scores_dead_layer_is_all_dormant():
    scores = redo_scores(jnp.zeros((5, 3)))
    np.testing.assert_array_equal(scores, [0.0, 0.0, 0.0])
    assert float(dormant_fraction(scores)) == 1.0


def test_redo_scores_under_jit_and_vmap():
    h = jax.random.normal(jax.random.PRNGKey(0), (4, 16, 8))
    batched = jax.jit(jax.vmap(redo_scores))(h)
    for i in range(4):
        np.testing.assert_allclose(batched[i], redo_scores(h[i]), rtol=1e-6)
        assert float(batched[i].mean()) == pytest.approx(1.0, rel=1e-5)  # scores average to 1


def test_layer_and_neutral_dormancy_mirror_params():
    layer = {"kernel": jnp.zeros((5, 2)), "bias": jnp.zeros(2)}
    tree = layer_dormancy(layer, jnp.array([[1.0, 3.0]]))
    np.testing.assert_allclose(tree["kernel"], [0.5, 1.5])
    np.testing.assert_allclose(tree["bias"], [0.5, 1.5])
    ones = neutral_dormancy({"a": layer, "log_std": jnp.zeros(3), "s": jnp.zeros(())})
    assert ones["a"]["kernel"].shape == (2,) and ones["log_std"].shape == (3,) and ones["s"].shape == ()
    with pytest.raises(ValueError, match="units axis"):
        redo_scores(jnp.float32(1.0))
