"""The OPEN-style learned optimizer: optax contract, exact SGD reduction, features, I/O."""

from __future__ import annotations

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from metarl.optimizers import LearnedOptimizer, load_learned_optimizer, save_learned_optimizer
from metarl.optimizers import features as F

LAMBDA = 1e-3  # default step_mult / exp_mult


def ppo_like_params(seed: int = 0) -> dict:
    """The tree shape metarl.agents.networks builds: actor/critic MLPs plus log_std."""
    shapes = {
        "actor": {"hidden_0": (4, 6), "hidden_1": (6, 6), "head": (6, 2)},
        "critic": {"hidden_0": (4, 6), "hidden_1": (6, 6), "head": (6, 1)},
    }
    rng = np.random.default_rng(seed)
    normal = lambda shape: jnp.asarray(rng.standard_normal(shape), jnp.float32)  # noqa: E731
    params = {
        net: {name: {"kernel": normal(shape), "bias": normal(shape[-1:])} for name, shape in layers.items()}
        for net, layers in shapes.items()
    }
    params["log_std"] = jnp.zeros((2,), jnp.float32)
    return params


def random_like(tree, seed: int):
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(lambda x: jnp.asarray(rng.standard_normal(x.shape), jnp.float32), tree)


@pytest.fixture(scope="module")
def network_meta():
    """Randomly initialised meta-parameters (flax init), built once per module."""
    opt = LearnedOptimizer(meta_init="network")
    return jax.vmap(opt.init_meta)(jax.random.split(jax.random.PRNGKey(0), 3))


def member(population, i):
    return jax.tree_util.tree_map(lambda x: x[i], population)


@functools.cache
def _jitted_update(options):
    opt = LearnedOptimizer(options)

    def run(meta, grads, state, params, extra):
        return opt.transform(meta).update(grads, state, params, **extra)

    return jax.jit(run)


def learned_update(opt, meta, grads, params, state=None, **extra):
    """One jitted update; compiled once per optimizer options and extra-arg set."""
    if state is None:
        state = opt.transform(meta).init(params)
    return _jitted_update(opt.options)(meta, grads, state, params, extra)


STEP_ARGS = {"progress": 0.3, "epoch_progress": 0.5, "key": jax.random.PRNGKey(0)}


def with_head_bias(opt: LearnedOptimizer, bias) -> dict:
    """Zero network except the output bias: the outputs (m, e, s) are constants."""
    meta = opt.sgd_meta_params(0.0)
    meta["network"]["head"]["bias"] = jnp.asarray(bias, jnp.float32)
    return meta


def assert_trees_equal(a, b):
    jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)


def assert_trees_close(a, b, **kw):
    jax.tree_util.tree_map(lambda x, y: np.testing.assert_allclose(x, y, **kw), a, b)


# --- reduces to SGD -------------------------------------------------------------------


@pytest.mark.parametrize("lr", [1e-3, 2.5e-4, 3e-2, 0.7])
def test_sgd_meta_params_match_optax_sgd_exactly(lr):
    opt = LearnedOptimizer()
    meta = opt.sgd_meta_params(lr)
    sgd = optax.sgd(lr)
    params = ppo_like_params()
    state, sgd_state = opt.transform(meta).init(params), sgd.init(params)
    for step in range(3):
        grads = random_like(params, 10 + step)
        # extra args must not matter when the network is off
        extra = {"progress": step / 3, "epoch_progress": 0.5, "key": jax.random.PRNGKey(step)}
        ours, state = learned_update(opt, meta, grads, params, state, **extra)
        ref, sgd_state = sgd.update(grads, sgd_state, params)
        assert_trees_equal(ours, ref)
        params = optax.apply_updates(params, ours)


def test_sgd_meta_params_with_mean_subtraction_off_and_noise_everywhere():
    opt = LearnedOptimizer(subtract_mean=False, noise_on=("actor", "critic", "log_std"))
    params = ppo_like_params()
    grads = random_like(params, 1)
    ours, _ = learned_update(opt, opt.sgd_meta_params(0.01), grads, params, **STEP_ARGS)
    ref, _ = optax.sgd(0.01).update(grads, optax.sgd(0.01).init(params), params)
    assert_trees_equal(ours, ref)


# --- optax contract -------------------------------------------------------------------


def test_chain_jit_scan_and_plain_optax_loop():
    lr, clip = 0.1, 10.0
    opt = LearnedOptimizer()
    chained = optax.chain(optax.clip_by_global_norm(clip), opt.transform(opt.sgd_meta_params(lr)))
    reference = optax.chain(optax.clip_by_global_norm(clip), optax.sgd(lr))
    params = ppo_like_params()
    target = random_like(params, 3)

    def loss(p):
        return sum(jnp.sum((a - b) ** 2) for a, b in zip(jax.tree_util.tree_leaves(p), jax.tree_util.tree_leaves(target)))

    def run(tx, with_extra):
        def step(carry, i):
            p, s = carry
            g = jax.grad(loss)(p)
            extra = {"progress": i / 40.0, "epoch_progress": 0.0, "key": jax.random.PRNGKey(i)} if with_extra else {}
            u, s2 = tx.update(g, s, p, **extra)
            # the state keeps its structure and dtypes (required by lax.scan)
            return (optax.apply_updates(p, u), s2), loss(p)

        return jax.lax.scan(step, (params, tx.init(params)), jnp.arange(40))

    (p_ours, _), losses = jax.jit(lambda: run(chained, True))()
    (p_ref, _), _ = jax.jit(lambda: run(reference, False))()
    assert_trees_close(p_ours, p_ref, rtol=1e-6, atol=1e-7)
    assert float(losses[-1]) < 0.5 * float(losses[0])  # it actually learns


def test_vmap_over_a_population_of_meta_params(network_meta):
    opt = LearnedOptimizer()
    population = network_meta
    params = ppo_like_params()
    grads = random_like(params, 1)

    def one_update(meta):
        return learned_update(opt, meta, grads, params, **STEP_ARGS)[0]

    batched = jax.jit(jax.vmap(one_update))(population)
    singles = [one_update(member(population, i)) for i in range(3)]
    for i, single in enumerate(singles):
        assert_trees_close(member(batched, i), single, rtol=1e-5, atol=1e-9)
    # different members really give different updates
    assert not np.allclose(singles[0]["actor"]["head"]["kernel"], singles[1]["actor"]["head"]["kernel"])


def test_update_needs_params():
    opt = LearnedOptimizer()
    tx = opt.transform(opt.sgd_meta_params(0.1))
    params = {"w": jnp.ones(2)}
    with pytest.raises(ValueError, match="needs params"):
        tx.update(params, tx.init(params))


# --- the output formula, hand-computed --------------------------------------------------


def test_constant_outputs_give_the_open_step():
    b_m, b_e = 2.0, 300.0
    params = ppo_like_params()
    grads = random_like(params, 1)
    expected = -LAMBDA * b_m * np.exp(LAMBDA * b_e)

    opt = LearnedOptimizer(subtract_mean=False)
    updates, _ = learned_update(opt, with_head_bias(opt, [b_m, b_e, 0.0]), grads, params, **STEP_ARGS)
    for leaf in jax.tree_util.tree_leaves(updates):
        np.testing.assert_allclose(leaf, np.full(leaf.shape, expected), rtol=1e-6)

    # a constant step is removed entirely by OPEN's mean subtraction
    opt = LearnedOptimizer(subtract_mean=True)
    updates, _ = learned_update(opt, with_head_bias(opt, [b_m, b_e, 0.0]), grads, params, **STEP_ARGS)
    for leaf in jax.tree_util.tree_leaves(updates):
        np.testing.assert_allclose(leaf, 0.0, atol=1e-9)


def test_learned_noise_only_on_actor_leaves():
    b_s = 3.0
    params = ppo_like_params()
    grads = random_like(params, 1)
    key = STEP_ARGS["key"]
    paths = F.leaf_paths(params)
    leaves = jax.tree_util.tree_leaves(params)
    # one N(0, 1) draw over all parameters, in leaf order, masked to the actor
    eps = np.asarray(jax.random.normal(key, (sum(p.size for p in leaves),)))
    offsets = np.cumsum([0] + [p.size for p in leaves])
    noise = [
        LAMBDA * b_s * eps[offsets[i] : offsets[i + 1]].reshape(p.shape) * (path[0] in ("actor", "log_std"))
        for i, (p, path) in enumerate(zip(leaves, paths))
    ]

    opt = LearnedOptimizer(subtract_mean=False)
    updates, _ = learned_update(opt, with_head_bias(opt, [0.0, 0.0, b_s]), grads, params, **STEP_ARGS)
    for u, n in zip(jax.tree_util.tree_leaves(updates), noise):
        np.testing.assert_allclose(u, -n, rtol=1e-5, atol=1e-9)

    opt = LearnedOptimizer(subtract_mean=True)
    updates, _ = learned_update(opt, with_head_bias(opt, [0.0, 0.0, b_s]), grads, params, **STEP_ARGS)
    mean = sum(n.sum() for n in noise) / sum(n.size for n in noise)
    for u, n in zip(jax.tree_util.tree_leaves(updates), noise):
        np.testing.assert_allclose(u, -(n - mean), rtol=1e-4, atol=1e-8)
    total = sum(float(jnp.sum(u)) for u in jax.tree_util.tree_leaves(updates))
    assert abs(total) < 1e-6


# --- features ---------------------------------------------------------------------------


def test_momenta_hand_computed():
    betas = jnp.array([0.1, 0.5, 0.9])
    m = F.update_momenta(jnp.zeros((2, 3)), jnp.array([2.0, -1.0]), betas)
    np.testing.assert_allclose(m, [[1.8, 1.0, 0.2], [-0.9, -0.5, -0.1]], rtol=1e-6)
    m = F.update_momenta(m, jnp.array([0.0, 1.0]), betas)
    np.testing.assert_allclose(m, [[0.18, 0.5, 0.18], [0.81, 0.25, 0.01]], rtol=1e-5)


def test_tensor_features_hand_computed():
    p = np.array([[1.0, -2.0], [0.5, 3.0]], np.float32)  # a (in=2, out=2) kernel
    g = np.array([[0.1, -1.0], [0.0, 2.0]], np.float32)
    m = np.stack([g * 0.9, -g], axis=-1).astype(np.float32)  # two timescales
    dorm = np.array([0.0, 2.0], np.float32)
    feats = np.asarray(
        F.tensor_features(jnp.asarray(p), jnp.asarray(g), jnp.asarray(m), progress=0.25, epoch_progress=0.5,
                          layer_proportion=0.5, dormancy=jnp.asarray(dorm))
    )
    assert feats.shape == (2, 2, F.num_features(2)) == (2, 2, 11)
    raw = np.concatenate(
        [p[..., None], np.sign(m), np.log(np.abs(m) + 1e-13), np.sign(g)[..., None], np.log(np.abs(g) + 1e-13)[..., None]],
        axis=-1,
    )
    rms = np.sqrt(1e-5 + (raw**2).mean(axis=(0, 1), keepdims=True))
    np.testing.assert_allclose(feats[..., :7], raw / rms, rtol=1e-5)
    # e.g. the parameter feature: RMS of [1, -2, 0.5, 3] = sqrt(14.25 / 4)
    np.testing.assert_allclose(feats[0, 1, 0], -2.0 / np.sqrt(14.25 / 4 + 1e-5), rtol=1e-6)
    np.testing.assert_allclose(feats[..., 7], 0.25)
    np.testing.assert_allclose(feats[..., 8], 0.5)
    np.testing.assert_allclose(feats[..., 9], 0.5)
    # dormancy is per output unit: the same for every row of the kernel
    np.testing.assert_allclose(feats[..., 10], [[0.0, 2.0], [0.0, 2.0]])


def test_dormancy_shape_checked():
    with pytest.raises(ValueError, match="dormancy of shape"):
        F.broadcast_dormancy(jnp.ones(3), (4, 2))
    np.testing.assert_allclose(F.broadcast_dormancy(jnp.float32(0.5), (2, 2)), 0.5)


def test_dormancy_reaches_only_its_units_weights(network_meta):
    """Zeroing unit 1's score changes exactly column 1 of that layer's kernel and bias[1]."""
    opt = LearnedOptimizer(subtract_mean=False)
    meta = member(network_meta, 1)
    params = ppo_like_params()
    grads = random_like(params, 1)
    ones = jax.tree_util.tree_map(lambda p: jnp.ones(p.shape[-1:]), params)
    dead = jax.tree_util.tree_map(lambda x: x, ones)
    dead["actor"]["hidden_1"] = {"kernel": jnp.array([1.0, 0, 1, 1, 1, 1]), "bias": jnp.array([1.0, 0, 1, 1, 1, 1])}
    u_ones, _ = learned_update(opt, meta, grads, params, dormancy=ones, **STEP_ARGS)
    u_dead, _ = learned_update(opt, meta, grads, params, dormancy=dead, **STEP_ARGS)
    changed = jax.tree_util.tree_map(lambda a, b: np.asarray(a != b), u_ones, u_dead)
    kernel, bias = changed["actor"]["hidden_1"]["kernel"], changed["actor"]["hidden_1"]["bias"]
    assert kernel[:, 1].all() and not np.delete(kernel, 1, axis=1).any()
    assert bias[1] and not np.delete(bias, 1).any()
    changed["actor"]["hidden_1"] = {}
    assert not any(leaf.any() for leaf in jax.tree_util.tree_leaves(changed))
    # the default (no dormancy given) means every unit scores 1
    u_default, _ = learned_update(opt, meta, grads, params, **STEP_ARGS)
    assert_trees_equal(u_default, u_ones)


def test_layer_proportions_follow_forward_order():
    params = ppo_like_params()
    props = dict(zip(F.leaf_paths(params), F.layer_proportions(params)))
    for net in ("actor", "critic"):
        for kind in ("kernel", "bias"):
            assert props[(net, "hidden_0", kind)] == 0.0
            assert props[(net, "hidden_1", kind)] == 0.5
            assert props[(net, "head", kind)] == 1.0
    assert props[("log_std",)] == 0.0
    flax_tree = {"params": {f"Dense_{i}": {"kernel": jnp.zeros((2, 2)), "bias": jnp.zeros(2)} for i in range(11)}}
    props = dict(zip(F.leaf_paths(flax_tree), F.layer_proportions(flax_tree)))
    assert props[("params", "Dense_2", "kernel")] == pytest.approx(0.2)
    assert props[("params", "Dense_10", "bias")] == 1.0


def test_missing_progress_and_key_fall_back_to_the_step_count(network_meta):
    opt = LearnedOptimizer(horizon=10, seed=5)
    meta = member(network_meta, 2)
    params = ppo_like_params()
    grads = random_like(params, 2)
    state = opt.transform(meta).init(params)
    for _ in range(3):
        _, state = learned_update(opt, meta, grads, params, state)
    key = jax.random.fold_in(jax.random.PRNGKey(5), 3)
    explicit, _ = learned_update(opt, meta, grads, params, state, progress=0.3, epoch_progress=0.0, key=key)
    implicit, _ = learned_update(opt, meta, grads, params, state)
    assert_trees_close(implicit, explicit, rtol=1e-6, atol=1e-10)
    other, _ = learned_update(opt, meta, grads, params, state, progress=0.9, epoch_progress=0.0, key=key)
    assert not np.allclose(other["critic"]["head"]["kernel"], explicit["critic"]["head"]["kernel"])


# --- config and file round trip ----------------------------------------------------------


def test_config_round_trip_and_validation():
    opt = LearnedOptimizer(gru_features=4, betas=(0.5, 0.9), noise_on=("actor",))

    again = LearnedOptimizer.from_config(json.loads(json.dumps(opt.config)))
    assert again.options == opt.options
    with pytest.raises(ValueError, match="betas"):
        LearnedOptimizer(betas=(0.5, 1.0))
    with pytest.raises(ValueError, match="meta_init"):
        LearnedOptimizer(meta_init="ones")
    with pytest.raises(ValueError, match="noise_on"):
        LearnedOptimizer(noise_on="actor")


def test_save_and_load_round_trip(tmp_path, network_meta):
    opt = LearnedOptimizer(subtract_mean=False)
    meta = member(network_meta, 0)
    path = save_learned_optimizer(tmp_path / "open_test.npz", opt, meta, extra={"generation": 2, "fitness": 1.5})
    with np.load(path, allow_pickle=False) as data:  # readable without pickle
        assert "network/gru/ir/kernel" in data.files
    loaded, loaded_meta, header = load_learned_optimizer(path)
    assert loaded.config == opt.config and header["extra"] == {"generation": 2, "fitness": 1.5}
    assert_trees_equal(loaded_meta, meta)
    params = ppo_like_params()
    grads = random_like(params, 1)
    a, _ = learned_update(opt, meta, grads, params, **STEP_ARGS)
    b, _ = learned_update(loaded, loaded_meta, grads, params, **STEP_ARGS)
    assert_trees_equal(a, b)


def test_load_rejects_other_files(tmp_path):
    from metarl.io.artifacts import save_artifact

    save_artifact(tmp_path / "obj.npz", {"w": np.zeros(2)}, kind="objective", name="lpo")
    with pytest.raises(ValueError, match="not an optimizer"):
        load_learned_optimizer(tmp_path / "obj.npz")
    opt = LearnedOptimizer(gru_features=4)
    small = save_learned_optimizer(tmp_path / "small.npz", opt, opt.init_meta(jax.random.PRNGKey(0)))
    np.savez(tmp_path / "plain.npz", x=np.zeros(2))
    with pytest.raises(ValueError, match="not a metarl artifact"):
        load_learned_optimizer(tmp_path / "plain.npz")
    loaded, _, header = load_learned_optimizer(small)
    assert loaded.options.gru_features == 4 and header["kind"] == "learned_optimizer"
    # files from before the kind had its full name still load
    save_artifact(tmp_path / "legacy.npz", opt.init_meta(jax.random.PRNGKey(0)), kind="optimizer", name=opt.name,
                  config=opt.config)
    assert load_learned_optimizer(tmp_path / "legacy.npz")[0].options.gru_features == 4


# --- meta-training ------------------------------------------------------------------------


TINY_OPTIMIZER_META_TRAIN = [  # configs/meta_train.yaml with objective=ppo optimizer=learned, seconds of work
    "objective=ppo", "optimizer=learned", "optimizer.init_grad_scale=1.0", "env=cartpole",
    "meta.population_size=4", "meta.generations=2", "meta.checkpoint_every=1",
    "inner.total_timesteps=512", "inner.num_steps=32", "inner.num_minibatches=2", "inner.update_epochs=2",
    "fitness.num_seeds=1", "fitness.reference_seeds=1", "evaluate.enabled=false", "progress_bar=false",
]


@pytest.mark.slow
def test_two_generation_meta_training_writes_a_loadable_optimizer(tmp_path, monkeypatch):
    """Through metarl-meta-train's main: objective=ppo optimizer=learned picks the optimizer job."""
    from metarl.cli.meta_train import main

    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    main([*TINY_OPTIMIZER_META_TRAIN, "+env.overrides.gravity=12.0", f"run_dir={run}", f"hydra.run.dir={tmp_path / 'hydra'}"])
    log = [json.loads(line) for line in (run / "meta_log.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in log] == [0, 1]
    assert all(np.isfinite(r["fitness_mean"]) for r in log)
    optimizer, meta_params, header = load_learned_optimizer(run / "learned_optimizer.npz")
    assert optimizer.config == LearnedOptimizer(init_grad_scale=1.0).config
    assert header["extra"]["generations"] == 2 and header["extra"]["envs"] == ["CartPole-v1"]
    # env.overrides reach the fitness and the reference, and the artifact records the whole config
    assert header["extra"]["env_overrides"] == {"gravity": 12.0}
    assert header["extra"]["resolved_config"]["env"]["overrides"] == {"gravity": 12.0}
    # the ES moved the mean away from its start (the SGD-like grad_scale = 1)
    assert float(meta_params["grad_scale"]) != 1.0
    assert (run / "reference_returns.json").is_file() and (run / "meta_curve.png").is_file()


def test_env_overrides_change_the_optimizer_fitness_environment(monkeypatch):
    """optimizer=learned honours env.overrides: every inner env is built with them."""
    import envs
    from metarl.agents.ppo import PPOConfig
    from metarl.meta import fitness as fitness_module
    from metarl.meta.fitness import FitnessConfig
    from metarl.meta.optimizer_fitness import make_fitness

    made = []
    real_make = envs.make
    monkeypatch.setattr(fitness_module.envs, "make", lambda name, **kw: made.append((name, kw)) or real_make(name, **kw))
    make_fitness(LearnedOptimizer(), ["CartPole-v1"], PPOConfig(), FitnessConfig(), {"CartPole-v1": 1.0},
                 overrides={"gravity": 12.0})
    assert made == [("CartPole-v1", {"gravity": 12.0})]


@pytest.mark.slow
def test_plugs_into_ppo_in_one_line():
    """PPO with the SGD-equivalent learned optimizer trains exactly like PPO with optax.sgd."""
    import envs
    from metarl.agents.ppo import PPOConfig, make_train

    config = PPOConfig(total_timesteps=256, num_envs=4, num_steps=32, num_minibatches=2, update_epochs=2)
    env, env_params = envs.make("CartPole-v1")
    opt = LearnedOptimizer()
    learned = make_train(config, env, env_params, optimizer=opt)
    reference = make_train(config, env, env_params, optimizer=optax.sgd(0.05))
    key = jax.random.PRNGKey(0)
    state, metrics = learned(key, None, opt.sgd_meta_params(0.05))
    ref_state, ref_metrics = reference(key)
    assert_trees_close(state.params, ref_state.params, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(metrics["value_loss"], ref_metrics["value_loss"], rtol=1e-5)
    moved = jax.tree_util.tree_map(lambda a, b: float(jnp.abs(a - b).max()), state.params, learned(key, None, opt.sgd_meta_params(0.0))[0].params)
    assert max(jax.tree_util.tree_leaves(moved)) > 1e-3  # the step really changed the agent


@pytest.mark.slow
def test_drives_an_a2c_lifetime_of_the_lpg_package():
    """One line plugs the learned optimizer into metarl.lpg's A2C lifetime; at its SGD point it is optax.sgd."""
    from envs.gridworld import GridWorld
    from envs.gridworld_levels import Level, ObjType, params_from_level
    from metarl.lpg import AgentConfig, make_a2c_lifetime

    env = GridWorld(6, 3, 3, tabular=True, level="small")
    types = (ObjType(1.0, 1.0, 0.0), ObjType(-1.0, 1.0, 0.0))
    level = params_from_level(Level(4, 20, types, ((0, (3, 3)), (1, (0, 3))), start=(0, 0)), 6, 3, 3)
    config = AgentConfig(num_envs=8, num_steps=5, eval_episodes=4, max_grad_norm=0.0)
    opt = LearnedOptimizer()
    learned = make_a2c_lifetime(config, env, optimizer=opt)
    plain = make_a2c_lifetime(config, env, optimizer=optax.sgd(4.0))
    key = jax.random.PRNGKey(4)
    a = learned(key, level, num_updates=3, optimizer_params=opt.sgd_meta_params(4.0))
    b = plain(key, level, num_updates=3)
    assert_trees_close(a.agent_params, b.agent_params, rtol=1e-5, atol=1e-5)
    assert float(jnp.abs(b.agent_params["actor"]["kernel"]).max()) > 0  # the lifetime really trained
    # a randomly initialised OPEN network (meta_init="network") also runs the lifetime to finite returns
    random_opt = LearnedOptimizer(meta_init="network")
    out = make_a2c_lifetime(config, env, optimizer=random_opt)(key, level, num_updates=3)
    assert out.returns.shape == (3,) and bool(jnp.isfinite(out.final_return))
