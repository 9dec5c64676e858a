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


# --- update-magnitude recording (metarl.optimizers.instrument) ------------------------
from metarl.optimizers.instrument import (  # noqa: E402
    RecordingOptimizer,
    group_magnitudes,
    record_updates,
    recording,
    take_magnitudes,
)


def test_record_updates_hand_computed():
    params = {"actor": {"w": jnp.zeros((2, 2))}, "critic": {"w": jnp.zeros(3)}}
    grads = {"actor": {"w": jnp.asarray([[1.0, -2.0], [3.0, -4.0]])}, "critic": {"w": jnp.asarray([0.5, -0.5, 2.0])}}
    tx = record_updates(optax.sgd(0.1))
    state = tx.init(params)
    updates, state = tx.update(grads, state, params)
    np.testing.assert_allclose(updates["actor"]["w"], -0.1 * grads["actor"]["w"])  # the wrapped step is unchanged
    _, state = tx.update(jax.tree_util.tree_map(lambda g: 3.0 * g, grads), state, params)
    per_leaf, cleared = take_magnitudes(state)
    # mean |u| per step: actor 0.1 * mean(1,2,3,4) = 0.25, then 0.75 -> 0.5; critic 0.1 * 1 = 0.1, then 0.3 -> 0.2
    np.testing.assert_allclose(per_leaf["actor"]["w"], 0.5, rtol=1e-6)
    np.testing.assert_allclose(per_leaf["critic"]["w"], 0.2, rtol=1e-6)
    assert int(cleared.steps) == 0 and float(cleared.abs_sum["actor"]["w"]) == 0.0
    # element-weighted group means; log_std counts as actor
    params["log_std"] = jnp.zeros(4)
    per_leaf["log_std"] = jnp.asarray(1.0)
    groups = group_magnitudes(per_leaf, params)
    np.testing.assert_allclose(groups["actor"], (4 * 0.5 + 4 * 1.0) / 8, rtol=1e-6)
    np.testing.assert_allclose(groups["critic"], 0.2, rtol=1e-6)


def test_record_updates_applies_ppo_annealing_and_passes_extra_args():
    params = {"w": jnp.ones(2)}
    grads = {"w": jnp.asarray([1.0, -1.0])}
    tx = record_updates(optax.sgd(1.0), anneal_lr=True)
    _, state = tx.update(grads, tx.init(params), params, progress=0.25)
    np.testing.assert_allclose(take_magnitudes(state)[0]["w"], 0.75)  # PPO scales the step by 1 - progress
    learned = LearnedOptimizer()
    wrapped = recording(learned)
    assert isinstance(wrapped, RecordingOptimizer)
    meta = learned.sgd_meta_params(0.5)
    inner = learned.transform(meta)
    outer = wrapped.transform(meta)
    extra = {"progress": 0.5, "epoch_progress": 0.0, "key": jax.random.PRNGKey(0)}
    expected, _ = inner.update(grads, inner.init(params), params, **extra)
    got, state = outer.update(grads, outer.init(params), params, **extra)
    np.testing.assert_allclose(got["w"], expected["w"])
    np.testing.assert_allclose(take_magnitudes(state)[0]["w"], 0.5, rtol=1e-6)
    with pytest.raises(ValueError, match="wraps a learned optimizer"):
        RecordingOptimizer(optax.sgd(0.1))


@pytest.mark.slow
def test_instrumented_ppo_records_the_real_parameter_change():
    """One PPO update with one minibatch step: the record equals mean |θ_after − θ_before| per group."""
    import envs
    from metarl.agents.ppo import PPO, PPOConfig
    from metarl.optimizers.instrument import make_instrumented_train

    config = PPOConfig(total_timesteps=64, num_envs=2, num_steps=32, num_minibatches=1, update_epochs=1,
                       hidden_sizes=(8,), lr=1e-2, anneal_lr=True)
    env, env_params = envs.make("CartPole-v1")
    agent = PPO(config, env, env_params, optimizer=recording(optax.adam(1e-2, eps=1e-5), anneal_lr=True))
    state = agent.init(jax.random.PRNGKey(0))
    after, _ = jax.jit(agent.update)(state)
    per_leaf, _ = take_magnitudes(after.opt_state)
    recorded = group_magnitudes(per_leaf, after.params)
    for group in ("actor", "critic"):
        before = jax.tree_util.tree_leaves(state.params[group])
        moved = jax.tree_util.tree_leaves(after.params[group])
        change = sum(float(jnp.abs(a - b).sum()) for a, b in zip(moved, before)) / sum(b.size for b in before)
        np.testing.assert_allclose(float(recorded[group]), change, rtol=1e-4)
        assert change > 1e-4
    returns, magnitudes = make_instrumented_train(config, env, env_params, optimizer=optax.adam(1e-2, eps=1e-5))(
        jax.random.PRNGKey(0)
    )
    assert returns.shape == magnitudes["actor"].shape == (config.num_updates,)
    # first update: progress 0, same key -> the same step as above
    np.testing.assert_allclose(magnitudes["actor"][0], recorded["actor"], rtol=1e-4)
    with pytest.raises(ValueError, match="explicit optimizer"):
        make_instrumented_train(config, env, env_params, optimizer=None)
