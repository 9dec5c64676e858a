"""Each intervention's exact effect on parameters and optimizer state."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from metarl.agents import networks
from metarl.continual import agem as AG
from metarl.continual import interventions as I
from metarl.continual import regularizers as R
from metarl.continual import replay as RP

HIDDEN = (8, 8)

# eager orthogonal init is slow on a loaded CPU; one compile per shape
_init_jit = jax.jit(networks.init_actor_critic, static_argnums=(1, 2, 3), static_argnames="continuous")


def _init_net(key, *args, **kwargs):
    return _init_jit(jax.random.split(key), *args, **kwargs)  # (actor, critic) key pair


def _setup(tx=None):
    """Params, fresh params and an Adam state with non-zero moments inside a chain."""
    params = _init_net(jax.random.PRNGKey(0), 3, 2, HIDDEN, continuous=False)
    fresh = _init_net(jax.random.PRNGKey(1), 3, 2, HIDDEN, continuous=False)
    tx = tx or optax.with_extra_args_support(
        optax.chain(R.grad_norm_probe(params), R.anchor_penalty(), optax.adam(1e-3))
    )
    state = tx.init(params)
    grads = jax.tree.map(lambda x: jnp.ones_like(x) * 0.5 + x, params)
    _, state = jax.jit(tx.update)(grads, state, params)
    return params, fresh, state


def _adam(state):
    return state[2][0]  # chain: (probe, anchor, adam=(ScaleByAdamState, EmptyState))


def _leaves_equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_reset_all_last_layers_and_critic():
    params, fresh, state = _setup()
    new, new_state, info = jax.jit(I.reset)(params, state, fresh, I.select_all(params))
    assert _leaves_equal(new, I._zero_biases(fresh))
    assert all(float(jnp.abs(x).sum()) == 0 for x in jax.tree.leaves((_adam(new_state).mu, _adam(new_state).nu)))
    assert int(_adam(new_state).count) == int(_adam(state).count) == 1
    assert float(info["reset_params"]) == sum(x.size for x in jax.tree.leaves(params))

    reset = jax.jit(I.reset)
    new, new_state, _ = reset(params, state, fresh, I.select_last_layers(params, 1))
    for net in ("actor", "critic"):
        assert _leaves_equal(new[net]["head"], fresh[net]["head"])
        assert _leaves_equal(new[net]["hidden_1"], params[net]["hidden_1"])
        assert float(jnp.abs(_adam(new_state).mu[net]["head"]["kernel"]).sum()) == 0
        assert _leaves_equal(_adam(new_state).nu[net]["hidden_0"], _adam(state).nu[net]["hidden_0"])

    new, new_state, _ = reset(params, state, fresh, I.select_nets(params, ("critic",)))
    assert _leaves_equal(new["critic"], fresh["critic"]) and _leaves_equal(new["actor"], params["actor"])
    assert _leaves_equal(_adam(new_state).mu["actor"], _adam(state).mu["actor"])
    assert float(sum(jnp.abs(x).sum() for x in jax.tree.leaves(_adam(new_state).nu["critic"]))) == 0
    with pytest.raises(ValueError, match="no network 'critc'"):
        I.select_nets(params, ("critc",))
    with pytest.raises(ValueError, match="k >= 1"):
        I.select_last_layers(params, 0)


def test_shrink_and_perturb_formula():
    params, fresh, state = _setup()
    new, new_state, _ = jax.jit(I.shrink_perturb, static_argnums=(3, 4))(params, state, fresh, 0.8, 0.1)
    for p, f, n in zip(jax.tree.leaves(params), jax.tree.leaves(fresh), jax.tree.leaves(new)):
        np.testing.assert_allclose(n, 0.8 * p + 0.1 * f, rtol=1e-6)
    assert _leaves_equal(new_state, state)


def test_redo_recycles_exactly_the_dormant_units():
    params, fresh, state = _setup()
    h0 = jnp.ones((5, 8)).at[:, 1].set(0.0).at[:, 6].set(0.001)  # unit 1 silent, unit 6 weak
    hiddens = {"actor": [h0, jnp.ones((5, 8))], "critic": [jnp.ones((5, 8)), jnp.ones((5, 8))]}
    new, new_state, info = jax.jit(I.redo, static_argnames="tau")(params, state, fresh, hiddens, tau=0.1)
    assert float(info["redo/actor/hidden_0"]) == 2 and float(info["redo_recycled"]) == 2
    a, a_new, f = params["actor"], new["actor"], fresh["actor"]
    dormant = np.array([1, 6])
    live = np.setdiff1d(np.arange(8), dormant)
    np.testing.assert_array_equal(a_new["hidden_0"]["kernel"][:, dormant], f["hidden_0"]["kernel"][:, dormant])
    np.testing.assert_array_equal(a_new["hidden_0"]["kernel"][:, live], a["hidden_0"]["kernel"][:, live])
    np.testing.assert_array_equal(a_new["hidden_0"]["bias"][dormant], 0.0)
    np.testing.assert_array_equal(a_new["hidden_1"]["kernel"][dormant, :], 0.0)
    np.testing.assert_array_equal(a_new["hidden_1"]["kernel"][live, :], a["hidden_1"]["kernel"][live, :])
    assert _leaves_equal(new["critic"], params["critic"]) and _leaves_equal(a_new["head"], a["head"])
    for moment in ("mu", "nu"):
        old_m, new_m = getattr(_adam(state), moment)["actor"], getattr(_adam(new_state), moment)["actor"]
        np.testing.assert_array_equal(new_m["hidden_0"]["kernel"][:, dormant], 0.0)
        np.testing.assert_array_equal(new_m["hidden_0"]["kernel"][:, live], old_m["hidden_0"]["kernel"][:, live])
        np.testing.assert_array_equal(new_m["hidden_0"]["bias"][dormant], 0.0)
        np.testing.assert_array_equal(new_m["hidden_1"]["kernel"][dormant], 0.0)
        np.testing.assert_array_equal(new_m["hidden_1"]["kernel"][live], old_m["hidden_1"]["kernel"][live])
        np.testing.assert_array_equal(new_m["hidden_1"]["bias"], old_m["hidden_1"]["bias"])
        assert float(jnp.abs(old_m["hidden_0"]["kernel"][:, dormant]).sum()) > 0  # they were non-zero
    # τ = 0 only recycles the exactly silent unit
    _, _, info0 = jax.jit(I.redo, static_argnames="tau")(params, state, fresh, hiddens, tau=0.0)
    assert float(info0["redo_recycled"]) == 1


def test_moment_reset_handles_inject_hyperparams():
    params, fresh, _ = _setup()
    tx = optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)
    state = tx.init(params)
    _, state = tx.update(jax.tree.map(jnp.ones_like, params), state, params)
    _, new_state, _ = jax.jit(I.reset)(params, state, fresh, I.select_nets(params, ("actor",)))
    assert float(sum(jnp.abs(x).sum() for x in jax.tree.leaves(new_state.inner_state[0].mu["actor"]))) == 0
    assert float(sum(jnp.abs(x).sum() for x in jax.tree.leaves(new_state.inner_state[0].mu["critic"]))) > 0


def test_continual_backprop_utility_maturity_and_replacement():
    params, fresh, state = _setup()
    # make outgoing weights of actor hidden_0 all ones so the utility is the activation
    params["actor"]["hidden_1"]["kernel"] = jnp.ones((8, 8))
    act = jnp.arange(1.0, 9.0) / 8
    hiddens = {"actor": [jnp.tile(act, (4, 1)), jnp.ones((4, 8))]}
    cbp = I.cbp_init(params, nets=("actor",))
    step = jax.jit(I.cbp_step, static_argnames=("decay", "maturity", "replacement_rate"))
    kw = dict(decay=0.9, maturity=2, replacement_rate=0.1)
    cbp1, p1, s1, info = step(cbp, params, state, fresh, hiddens, **kw)
    np.testing.assert_allclose(cbp1.utility["actor"][0], 0.1 * act, rtol=1e-6)  # (1-η)|h|·mean|w_out|
    assert float(info["cbp_replaced"]) == 0 and _leaves_equal(p1, params)
    cbp2, p2, s2, _ = step(cbp1, p1, s1, fresh, hiddens, **kw)
    # third step: 8 units are older than 2 -> 0.8 replacements pending, none yet
    cbp3, p3, s3, info = step(cbp2, p2, s2, fresh, hiddens, **kw)
    assert float(info["cbp_replaced"]) == 0
    assert float(cbp3.to_replace["actor"][0]) == pytest.approx(0.8)
    cbp4, p4, s4, info = step(cbp3, p3, s3, fresh, hiddens, **kw)
    # 0.8 + 0.8 = 1.6 -> replace the single lowest-utility unit (unit 0), carry 0.6
    assert float(info["cbp/actor/hidden_0"]) == 1
    assert float(cbp4.to_replace["actor"][0]) == pytest.approx(0.6)
    np.testing.assert_array_equal(cbp4.age["actor"][0], [0, 4, 4, 4, 4, 4, 4, 4])
    assert float(cbp4.utility["actor"][0][0]) == 0.0
    np.testing.assert_array_equal(p4["actor"]["hidden_0"]["kernel"][:, 0], fresh["actor"]["hidden_0"]["kernel"][:, 0])
    # hidden_1 (equal utilities) also replaced one unit: its incoming column is fresh
    assert float(info["cbp/actor/hidden_1"]) == 1
    keep = np.asarray(cbp4.age["actor"][1]) > 0
    np.testing.assert_array_equal(p4["actor"]["hidden_1"]["kernel"][0, keep], 0.0)  # unit 0's outgoing
    np.testing.assert_array_equal(p4["actor"]["hidden_1"]["kernel"][1:, keep], 1.0)
    np.testing.assert_array_equal(p4["actor"]["head"]["kernel"][~keep], 0.0)
    assert float(_adam(s4).nu["actor"]["hidden_0"]["bias"][0]) == 0.0
    assert float(_adam(s4).nu["actor"]["hidden_0"]["bias"][1]) > 0.0


def test_anchor_penalty_is_the_gradient_of_l2_init_and_ewc():
    params, fresh, state = _setup()
    tx = R.anchor_penalty()
    st = tx.init(params)
    zeros = jax.tree.map(jnp.zeros_like, params)
    tx = tx._replace(update=jax.jit(tx.update))
    out, _ = tx.update(zeros, st, fresh)
    assert all(float(jnp.abs(x).sum()) == 0 for x in jax.tree.leaves(out))  # inert until set
    lam = 0.3
    st = R.set_anchor(st, anchor=params, coef=2 * lam)  # L2-init λ‖θ−θ0‖²
    out, _ = tx.update(zeros, st, fresh)
    expected = jax.grad(lambda p: lam * sum(jnp.sum((a - b) ** 2) for a, b in zip(jax.tree.leaves(p), jax.tree.leaves(params))))(fresh)
    for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(expected)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    # EWC inside a chained state: set_anchor finds it; gradient = λ F (θ − θ*)
    obs = jax.random.normal(jax.random.PRNGKey(3), (16, 3))
    fisher = jax.jit(R.diagonal_fisher, static_argnums=(3, 4))(jax.random.PRNGKey(4), params, obs, "tanh", False)
    state = R.set_anchor(state, anchor=params, weight=fisher, coef=1e2)
    anchor_state = state[1]
    g = jax.grad(lambda p: R.penalty_value(p, anchor_state))(fresh)
    for gg, f, p, q in zip(jax.tree.leaves(g), jax.tree.leaves(fisher), jax.tree.leaves(fresh), jax.tree.leaves(params)):
        np.testing.assert_allclose(gg, 1e2 * f * (p - q), rtol=1e-4, atol=1e-7)


def test_diagonal_fisher_matches_per_sample_loop():
    params = _init_net(jax.random.PRNGKey(0), 3, 2, (4,), continuous=False)
    obs = jax.random.normal(jax.random.PRNGKey(1), (6, 3))
    key = jax.random.PRNGKey(2)
    fisher = jax.jit(R.diagonal_fisher, static_argnums=(3, 4))(key, params, obs, "tanh", False)
    keys = jax.random.split(key, 6)

    @jax.jit
    def sample_grad(p, o, k):
        logits = networks.apply_mlp(p, o[None], "tanh")[0][0]
        a = jax.random.categorical(k, jax.nn.log_softmax(logits))
        return jax.grad(lambda q: jax.nn.log_softmax(networks.apply_mlp(q, o[None], "tanh")[0][0])[a])(p)

    acc = None
    for o, k in zip(obs, keys):  # one state at a time, unlike the vmapped implementation
        sq = jax.tree.map(np.square, sample_grad(params["actor"], o, k))
        acc = sq if acc is None else jax.tree.map(np.add, acc, sq)
    for a, b in zip(jax.tree.leaves(fisher["actor"]), jax.tree.leaves(acc)):
        np.testing.assert_allclose(a, b / 6, rtol=1e-4, atol=1e-8)
    v_grad = jax.vmap(jax.grad(lambda p, o: networks.apply_mlp(p, o[None], "tanh")[0][0, 0]), (None, 0))(params["critic"], obs)
    np.testing.assert_allclose(fisher["critic"]["head"]["bias"], jnp.mean(v_grad["head"]["bias"] ** 2, 0))


def test_grad_norm_probe_records_layer_norms():
    params, _, _ = _setup()
    tx = R.grad_norm_probe(params)
    st = tx.init(params)
    grads = jax.tree.map(lambda x: 2 * jnp.ones_like(x), params)
    out, st = tx.update(grads, st, params)
    assert out is grads
    norms = R.read_grad_norms((st,))
    assert float(norms["actor/hidden_0"]) == pytest.approx(2 * np.sqrt(3 * 8 + 8))


def test_replay_reservoir_and_cloning_gradient():
    add = jax.jit(RP.buffer_add)
    buf = RP.buffer_init(4, 3, 2)
    obs = jnp.arange(12.0).reshape(4, 3)
    buf = add(buf, jax.random.PRNGKey(0), obs, jnp.zeros((4, 2)), jnp.arange(4.0), 1)
    np.testing.assert_array_equal(buf.obs, obs)
    assert int(buf.size) == 4 and int(buf.seen) == 4 and list(np.asarray(buf.task)) == [1] * 4
    # reservoir: after 400 more offers each original entry survives with prob 4/404
    many = jnp.full((400, 3), -1.0)
    buf2 = add(buf, jax.random.PRNGKey(1), many, jnp.zeros((400, 2)), jnp.zeros(400), 2)
    assert int(buf2.size) == 4 and int(buf2.seen) == 404
    assert int(jnp.sum(buf2.task == 2)) >= 2

    params = _init_net(jax.random.PRNGKey(0), 3, 2, (8,), continuous=False)
    tx = RP.replay_cloning(8, 3, 2, batch_size=5, coef=2.0, activation="tanh", continuous=False)
    st = tx.init(params)
    tx = tx._replace(update=jax.jit(tx.update))
    zeros = jax.tree.map(jnp.zeros_like, params)
    out, _ = tx.update(zeros, st, params, key=jax.random.PRNGKey(0))
    assert all(float(jnp.abs(x).sum()) == 0 for x in jax.tree.leaves(out))  # empty buffer: no-op
    o = jax.random.normal(jax.random.PRNGKey(5), (8, 3))
    fill = jax.jit(lambda st, out, value: RP.add_to_replay((st,), jax.random.PRNGKey(0), o, out, value, 0)[0])
    # targets equal to the current outputs: KL and value error are at their minimum
    targets = RP.policy_targets(params, o, "tanh")
    st_same = fill(st, *targets)
    out, _ = tx.update(zeros, st_same, params, key=jax.random.PRNGKey(0))
    assert max(float(jnp.abs(x).max()) for x in jax.tree.leaves(out)) < 1e-6
    other = _init_net(jax.random.PRNGKey(9), 3, 2, (8,), continuous=False)
    st_other = fill(st, *RP.policy_targets(other, o, "tanh"))
    out, _ = tx.update(zeros, st_other, params, key=jax.random.PRNGKey(0))
    idx = jax.random.randint(jax.random.fold_in(jax.random.PRNGKey(0), 0), (5,), 0, 8)  # seed 0, step 0
    b = st_other.buffer
    want = jax.jit(jax.grad(RP.cloning_loss), static_argnums=(5, 6, 7))(params, b.obs[idx], b.policy_out[idx], b.value[idx], jnp.ones(5), "tanh", False, 0.5)
    for a, w in zip(jax.tree.leaves(out), jax.tree.leaves(want)):
        np.testing.assert_allclose(a, 2.0 * w, rtol=1e-5, atol=1e-7)


def test_agem_projection_by_hand_and_under_vmap():
    g, ref = {"a": jnp.array([1.0, 0.0])}, {"a": jnp.array([-1.0, 1.0])}
    # g.ref = -1 < 0: g - (-1 / 2) ref = (0.5, 0.5), orthogonal to ref
    np.testing.assert_allclose(AG.project(g, ref)["a"], [0.5, 0.5])
    agree = {"a": jnp.array([1.0, 1.0])}
    np.testing.assert_array_equal(AG.project(agree, ref)["a"], agree["a"])  # g.ref = 0: unchanged
    zero = {"a": jnp.zeros(2)}
    np.testing.assert_array_equal(AG.project(g, zero)["a"], g["a"])  # empty memory: unchanged
    # random pairs: the projected gradient never points against ref, and moves only along ref
    keys = jax.random.split(jax.random.PRNGKey(3), 64)
    draw = lambda k: {"w": jax.random.normal(k, (3, 4)), "b": jax.random.normal(jax.random.fold_in(k, 1), (4,))}
    gs, refs = jax.vmap(draw)(keys), jax.vmap(lambda k: draw(jax.random.fold_in(k, 7)))(keys)
    out = jax.jit(jax.vmap(AG.project))(gs, refs)
    vdot = jax.vmap(optax.tree_utils.tree_vdot)
    before, after = vdot(gs, refs), vdot(out, refs)
    assert bool(jnp.any(before < 0)) and bool(jnp.any(before > 0))
    np.testing.assert_allclose(np.where(before < 0, after, 0.0), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.where(before >= 0, after - before, 0.0), 0.0, atol=1e-6)
    delta = jax.tree.map(jnp.subtract, out, gs)
    cos = vdot(delta, refs) / jnp.sqrt(vdot(delta, delta) * vdot(refs, refs) + 1e-30)
    assert bool(jnp.all((before >= 0) | (jnp.abs(cos) > 1 - 1e-5)))


def test_agem_transform_does_not_raise_the_memory_loss_to_first_order():
    params = _init_net(jax.random.PRNGKey(0), 3, 2, (8,), continuous=False)
    tx = AG.agem_projection(16, 3, 2, batch_size=16, activation="tanh", continuous=False)
    st = tx.init(params)
    update = jax.jit(tx.update)
    grads = jax.tree.map(lambda x: jax.random.normal(jax.random.PRNGKey(4), x.shape), params)
    out, _ = update(grads, st, params)
    for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(grads)):
        np.testing.assert_array_equal(a, b)  # empty memory
    # memory: 16 states with another network's outputs; the batch draws from all of it
    o = jax.random.normal(jax.random.PRNGKey(5), (16, 3))
    other = _init_net(jax.random.PRNGKey(9), 3, 2, (8,), continuous=False)
    st = RP.add_to_replay((st,), jax.random.PRNGKey(0), o, *RP.policy_targets(other, o, "tanh"), 0)[0]
    b = st.buffer
    idx = jax.random.randint(jax.random.fold_in(st.rng, 0), (16,), 0, 16)
    loss = lambda p: RP.cloning_loss(p, b.obs[idx], b.policy_out[idx], b.value[idx], jnp.ones(16), "tanh", False, 0.5)
    ref = jax.grad(loss)(params)
    against = jax.tree.map(lambda r: -r, ref)  # a step along -(-ref) would raise the memory loss
    mixed = jax.tree.map(lambda a, g: a + 0.1 * g, against, grads)
    out, st2 = update(mixed, st, params)
    assert int(st2.step) == 1
    assert float(optax.tree_utils.tree_vdot(mixed, ref)) < 0
    assert abs(float(optax.tree_utils.tree_vdot(out, ref))) < 1e-4 * float(optax.tree_utils.tree_vdot(ref, ref))
    # a small step along -out leaves the memory loss unchanged to first order; along -mixed it rises
    eps = 1e-3
    step = lambda d: float(loss(jax.tree.map(lambda p, x: p - eps * x, params, d)) - loss(params))
    assert step(mixed) > 0 and abs(step(out)) < 0.05 * step(mixed)
