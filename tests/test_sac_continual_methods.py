"""Continual World's regularisers on the SAC runner: the Gaussian Fisher EWC uses, the penalty's anchor and
weights at a switch (CW's accumulation, shared layers only), and that the penalty holds the shared weights."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from metarl.agents import replay
from metarl.agents.sac import SAC, MemoryProjection
from metarl.agents.sac_networks import actor_mean_log_std, init_actor, unit_activations
from metarl.continual import agem
from metarl.continual import regularizers as R
from metarl.continual.methods import MethodConfig
from metarl.continual.plasticity import dormant_scores
from metarl.continual.runner import RunConfig
from metarl.continual.sac_hooks import HIDDEN_GAIN, fresh_incoming, gaussian_fisher, shared_only
from metarl.continual.sac_runner import SACContinualRunner, SwitchConfig
from metarl.continual.streams import from_spec
from test_continual_world import PENDULUM_SPEC, TINY


def test_the_gaussian_fisher_matches_a_monte_carlo_estimate_of_the_score_outer_product():
    """E_a[(∇θ log N(a; μθ(s), σθ(s)))²] by sampling equals CW's closed form Σ_j ((∂μ_j)² + 2(∂σ_j)²)/σ_j²."""
    actor = init_actor(jax.random.key(0), 3, 2, (8,), layer_norm=False)
    actor = jax.tree.map(lambda x: x + 0.3 * jax.random.normal(jax.random.key(1), x.shape), actor)  # a non-trivial σ(s)
    obs = jnp.tile(jnp.array([[0.5, -1.0, 0.2]]), (16, 1))
    closed = gaussian_fisher(actor, obs, "relu", heads=0)

    def log_prob(p, u):
        mean, log_std = actor_mean_log_std(p, obs[:1], "relu")
        return jnp.sum(-0.5 * jnp.square((u - mean[0]) / jnp.exp(log_std[0])) - log_std[0])

    mean, log_std = actor_mean_log_std(actor, obs[:1], "relu")
    u = mean[0] + jnp.exp(log_std[0]) * jax.random.normal(jax.random.key(2), (40_000, 2))
    scores = jax.vmap(jax.grad(log_prob), in_axes=(None, 0))(actor, u)
    sampled = jax.tree.map(lambda g: jnp.mean(jnp.square(g), axis=0), scores)
    for c, s in zip(jax.tree.leaves(closed), jax.tree.leaves(sampled)):
        c, s = np.asarray(c), np.asarray(s)
        big = s > 1e-3 * s.max()
        np.testing.assert_allclose(c[big], s[big], rtol=0.06)
        assert (c >= 1e-5).all()  # CW clips each state's Fisher from below


def test_only_the_shared_layers_carry_importance_under_multi_head():
    weights = {"hidden_0": {"kernel": jnp.ones((2, 2))}, "head": {"kernel": jnp.ones((2, 4)), "bias": jnp.ones(4)}}
    multi = shared_only(weights, multi_head=True)
    assert float(jnp.sum(multi["head"]["kernel"])) == 0 and float(jnp.sum(multi["hidden_0"]["kernel"])) == 4
    assert shared_only(weights, multi_head=False) is weights


@pytest.fixture(scope="module")
def stream():
    return from_spec(PENDULUM_SPEC)


RUN = RunConfig(eval_every_steps=2048, eval_episodes=4, eval_max_steps=200, seeds=2)


def _second_task(runner, key=1, updates=20):
    """Train task 0, switch to task 1 as the stream does (leave, switch, start), train task 1; return the actor
    at the switch, the state after task 1 and the method state."""
    hooks, agent = runner.hooks, runner.agent
    train = jax.jit(lambda s: agent.run(s, updates)[0])
    state = jax.jit(agent.init)(jax.random.key(key))
    mstate = hooks.init(state)
    state = train(state)
    state, mstate = jax.jit(hooks.leave_task)(state, mstate, jnp.int32(1))
    at_switch = state.params["actor"]
    state = jax.jit(runner._switch_fn)(state, jnp.int32(1))
    state, mstate = jax.jit(hooks.start_task)(state, mstate, jnp.int32(1))
    return at_switch, train(state), mstate


def test_l2_anchors_at_the_switch_counts_finished_tasks_and_holds_the_shared_layers(stream):
    cfg = MethodConfig("l2", cw_l2_coef=1e5)
    l2 = SACContinualRunner(stream, TINY, cfg, RUN, SwitchConfig())
    at_switch, state, mstate = _second_task(l2)
    penalty = R.find_anchor(state.opt_state["actor"])  # survives the switch's optimizer reset
    assert float(penalty.coef) == pytest.approx(2e5)  # d/dθ of λ Σ (θ − θ*)² is 2λ (θ − θ*)
    np.testing.assert_array_equal(np.asarray(penalty.anchor["hidden_0"]["kernel"]),
                                  np.asarray(at_switch["hidden_0"]["kernel"]))
    assert float(jnp.min(penalty.weight["hidden_1"]["kernel"])) == 1.0 and float(jnp.max(penalty.weight["head"]["kernel"])) == 0
    _, after_two = l2.hooks.leave_task(state, mstate, jnp.int32(2))
    assert float(jnp.min(after_two["weight"]["hidden_0"]["kernel"])) == 2.0  # CW adds ones per finished task

    def drift(layer):
        return float(jnp.linalg.norm(state.params["actor"][layer]["kernel"] - at_switch[layer]["kernel"]))

    # task 1 trained its own (unregularised) head; the shared layers stayed at the anchor (without the penalty
    # they move as much as the head: 0.14 and 0.30 against 0.09 in this setting)
    assert drift("head") > 0.01
    for layer in ("hidden_0", "hidden_1"):
        assert drift(layer) < 0.01 * drift("head"), (layer, drift(layer), drift("head"))


def test_ewc_weights_are_the_finished_tasks_fisher_and_accumulate_when_asked(stream):
    ewc = SACContinualRunner(stream, TINY, MethodConfig("ewc", ewc_coef=1e4, ewc_accumulate=True), RUN, SwitchConfig())
    at_switch, state, mstate = _second_task(ewc)
    penalty = R.find_anchor(state.opt_state["actor"])
    assert float(penalty.coef) == pytest.approx(2e4)
    first = mstate["weight"]
    assert float(jnp.min(first["hidden_0"]["kernel"])) >= 1e-5 and float(jnp.max(first["head"]["kernel"])) == 0
    _, summed = ewc.hooks.leave_task(state, mstate, jnp.int32(2))
    fisher = ewc.hooks.importance(state, jax.random.split(state.key)[1])
    np.testing.assert_allclose(np.asarray(summed["weight"]["hidden_0"]["kernel"]),
                               np.asarray(first["hidden_0"]["kernel"] + fisher["hidden_0"]["kernel"]), rtol=1e-5)
    last_only = SACContinualRunner(stream, TINY, MethodConfig("ewc"), RUN, SwitchConfig()).hooks
    _, replaced = last_only.leave_task(state, mstate, jnp.int32(2))
    np.testing.assert_allclose(np.asarray(replaced["weight"]["hidden_0"]["kernel"]),
                               np.asarray(fisher["hidden_0"]["kernel"]), rtol=1e-5)




# --- A-GEM -------------------------------------------------------------------------------------------------
def test_agem_leaves_each_finished_tasks_transitions_in_a_memory_that_survives_the_switch(stream):
    runner = SACContinualRunner(stream, TINY, MethodConfig("agem", agem_per_task=64, agem_batch=16), RUN, SwitchConfig())
    assert runner.hooks.capacity == 64  # two tasks: only the first ever leaves
    state = jax.jit(runner.agent.init)(jax.random.key(0))
    assert int(state.opt_state["memory"].size) == 0
    state, _ = jax.jit(lambda s: runner.agent.run(s, 10))(state)
    state, _ = jax.jit(runner.hooks.leave_task)(state, (), jnp.int32(1))
    stored = state.opt_state["memory"]
    assert int(stored.size) == 64
    buffer_obs = np.asarray(state.buffer.data["obs"][: int(state.buffer.size)])
    for row in np.asarray(stored.data["obs"][:5]):  # drawn from the finished task's buffer
        assert (np.abs(buffer_obs - row).sum(axis=1) == 0).any()
    switched = jax.jit(runner._switch_fn)(state, jnp.int32(1))
    assert int(switched.buffer.size) == 0 and int(switched.opt_state["memory"].size) == 64


def test_agem_projected_gradients_never_raise_the_memory_loss_to_first_order_and_an_empty_memory_changes_nothing(stream):
    dots = []  # (gᵀg_ref before, g̃ᵀg_ref after) per network and step

    def spy(grads, ref):
        out = agem.project(grads, ref)
        jax.debug.callback(lambda a, b: dots.append((float(a), float(b))), optax_vdot(grads, ref), optax_vdot(out, ref))
        return out

    plain = SACContinualRunner(stream, TINY, MethodConfig("finetune"), RUN, SwitchConfig())
    env, first = plain.env, plain.env.task_params(0)
    with_memory = SAC(plain.agent_cfg, env, first, memory=MemoryProjection(256, 32, spy))
    state = jax.jit(with_memory.init)(jax.random.key(3))
    base = jax.jit(plain.agent.init)(jax.random.key(3))
    trained, _ = jax.jit(lambda s: with_memory.run(s, 20))(state)
    batch = replay.sample(trained.buffer, jax.random.key(4), 32)
    step = jax.jit(with_memory.gradient_step)

    # an empty memory: the step is exactly the plain agent's
    learner = (base.params, base.target_critic, base.log_alpha, base.opt_state)
    expected, _ = jax.jit(plain.agent.gradient_step)(learner, batch, jax.random.key(5))
    got, _ = step((state.params, state.target_critic, state.log_alpha, state.opt_state), batch, jax.random.key(5))
    for a, b in zip(jax.tree.leaves(expected[0]), jax.tree.leaves(got[0])):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    # a memory of a conflicting task (the same transitions, rewards negated): every projected g̃ has g̃ᵀg_ref >= 0
    drawn = replay.sample(trained.buffer, jax.random.key(7), 256)
    memory = replay.add(trained.opt_state["memory"], {**drawn, "reward": -10.0 * drawn["reward"]})
    learner = (trained.params, trained.target_critic, trained.log_alpha, {**trained.opt_state, "memory": memory})
    jax.effects_barrier()
    dots.clear()
    for i in range(12):
        learner, _ = step(learner, replay.sample(trained.buffer, jax.random.key(100 + i), 32), jax.random.key(i))
    jax.effects_barrier()
    before, after = np.array(dots).T
    assert len(dots) == 24 and (before < 0).any()  # the projection did act
    assert (after >= -1e-4 * np.abs(before).max()).all(), after
    np.testing.assert_array_equal(after[before >= 0], before[before >= 0])  # agreeing gradients pass unchanged


def optax_vdot(a, b):
    return optax.tree_utils.tree_vdot(a, b)


def test_the_reference_script_refuses_a_folder_without_a_run_config_and_a_call_without_a_choice(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("cw_refs", Path(__file__).parents[1] / "scripts" / "cw_references.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    for argv, says in (([str(tmp_path), "--out", str(tmp_path / "o"), "--multitask"], "config.yaml does not exist"),
                       ([str(tmp_path), "--out", str(tmp_path / "o")], "--multitask and/or --single-task")):
        with pytest.raises(SystemExit) as exit_info:
            script.main(argv)
        assert exit_info.value.code == 2 and says in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing written


# --- reset and shrink-and-perturb ----------------------------------------------------------------------
def test_reset_and_shrink_perturb_rewrite_the_weights_at_a_later_switch_only(stream):
    reset = SACContinualRunner(stream, TINY, MethodConfig("reset", reset_which="critic"), RUN,
                               SwitchConfig(reset_optimizer=False))
    state = jax.jit(reset.agent.init)(jax.random.key(0))
    state, _ = jax.jit(lambda s: reset.agent.run(s, 10))(state)
    start = jax.jit(reset.hooks.start_task)
    same, _ = start(state, (), jnp.int32(0))  # the first segment: nothing fires
    for a, b in zip(jax.tree.leaves(same.params), jax.tree.leaves(state.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    new, _ = start(state, (), jnp.int32(1))
    for a, b in zip(jax.tree.leaves(new.params["actor"]), jax.tree.leaves(state.params["actor"])):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # which=critic keeps the actor
    assert not np.allclose(np.asarray(new.params["critic"]["hidden_0"]["kernel"]),
                           np.asarray(state.params["critic"]["hidden_0"]["kernel"]))
    np.testing.assert_array_equal(np.asarray(new.params["critic"]["hidden_0"]["bias"]), 0.0)
    for a, b in zip(jax.tree.leaves(new.target_critic), jax.tree.leaves(new.params["critic"])):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # the targets follow
    moments = [x for x in jax.tree.leaves(new.opt_state["critic"]) if x.ndim == 2]
    assert moments and all(float(jnp.max(jnp.abs(m))) == 0 for m in moments)  # Adam's moments zeroed
    assert any(float(jnp.max(jnp.abs(m))) > 0 for m in jax.tree.leaves(new.opt_state["actor"]) if m.ndim == 2)

    sp = SACContinualRunner(stream, TINY, MethodConfig("shrink_perturb", shrink=0.5, perturb=0.1), RUN, SwitchConfig())
    new, _ = jax.jit(sp.hooks.start_task)(state.replace(key=jax.random.key(9)), (), jnp.int32(1))
    _, k_fresh = jax.random.split(jax.random.key(9))
    fresh = sp.agent.init_params(*jax.random.split(k_fresh))
    np.testing.assert_allclose(np.asarray(new.params["actor"]["hidden_1"]["kernel"]),
                               np.asarray(0.5 * state.params["actor"]["hidden_1"]["kernel"]
                                          + 0.1 * fresh["actor"]["hidden_1"]["kernel"]), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="at task switches only"):
        SACContinualRunner(stream, TINY, MethodConfig("reset", every_updates=5), RUN, SwitchConfig())


# --- ReDo and continual backprop after each update -------------------------------------------------------
def _silence(layer, unit, critic=None):
    """The layer with hidden ``unit`` dead under ReLU (zero incoming weights, negative bias); ``critic``: only
    that member of the twin critics."""
    at = (slice(None), unit) if critic is None else (critic, slice(None), unit)
    bias_at = unit if critic is None else (critic, unit)
    return {**layer, "kernel": layer["kernel"].at[at].set(0.0), "bias": layer["bias"].at[bias_at].set(-1.0)}


@pytest.fixture(scope="module")
def replayed(stream):
    """A ``method=replay`` runner, its jitted 40-update training and the state after it (shared by the unit
    recycling tests, which need only trained networks and a filled buffer: one compile for all)."""
    runner = SACContinualRunner(stream, TINY, MethodConfig("replay"), RUN, SwitchConfig())
    train = jax.jit(lambda s: runner.agent.run(s, 40)[0])  # 40 updates x 16 transitions: more than the 512 slots
    return runner, train, train(jax.jit(runner.agent.init)(jax.random.key(0)))


@pytest.fixture(scope="module")
def silenced(replayed):
    """A trained SAC state and its learner with actor unit 3 of hidden_0 and unit 5 of critic 1's hidden_1 dead
    (the method under test did not run during training)."""
    state = replayed[2]
    params = {"actor": {**state.params["actor"], "hidden_0": _silence(state.params["actor"]["hidden_0"], 3)},
              "critic": {**state.params["critic"], "hidden_1": _silence(state.params["critic"]["hidden_1"], 5, 1)}}
    return state, (params, state.target_critic, state.log_alpha, state.opt_state)


def _with_bookkeeping(learner, recycler):
    params, target, log_alpha, opt = learner
    return params, target, log_alpha, {**opt, "after_learn": recycler.init(params)}


def _moments(opt, net, layer, name):
    return [np.asarray(m[layer][name]) for m in (s.mu for s in jax.tree.leaves(
        opt[net], is_leaf=lambda x: hasattr(x, "mu")) if hasattr(s, "mu"))]


def test_redo_recycles_each_dormant_unit_of_the_actor_and_of_each_critic_on_its_own(stream, silenced):
    runner = SACContinualRunner(stream, TINY, MethodConfig("redo", redo_tau=0.0, redo_every_updates=2), RUN,
                                SwitchConfig())
    recycler = runner.hooks.after_learn()
    state, learner = silenced[0], _with_bookkeeping(silenced[1], recycler)
    batch = replay.sample(state.buffer, jax.random.key(1), TINY.batch_size)
    apply = jax.jit(recycler.apply)
    (params, target, _, opt), count = apply(learner, batch, jax.random.key(2), jnp.int32(4))
    old = learner[0]
    # tau = 0: exactly the silent units, scored per network and per critic of the pair
    hiddens = unit_activations(old, batch["obs"], batch["action"], TINY.activation, recycler.heads)
    dormant = {"actor": [np.asarray(dormant_scores(h)) == 0 for h in hiddens["actor"]],
               "critic": [np.asarray(jax.vmap(dormant_scores)(h)) == 0 for h in hiddens["critic"]]}
    assert dormant["actor"][0][3] and dormant["critic"][1][1, 5] and not dormant["critic"][1][0, 5]
    assert float(count) == sum(m.sum() for ms in dormant.values() for m in ms)
    fresh = fresh_incoming(jax.random.key(2), old)
    for net in ("actor", "critic"):
        for i, mask in enumerate(dormant[net]):
            new, before, drawn = (tree[net][f"hidden_{i}"]["kernel"] for tree in (params, old, fresh))
            incoming = np.broadcast_to(mask[..., None, :], new.shape)
            np.testing.assert_allclose(np.where(incoming, new, 0), np.where(incoming, drawn, 0), rtol=1e-6)  # fresh in
            kept = ~incoming
            if i > 0:  # the previous layer's recycled units zeroed their outgoing row here
                kept &= ~np.broadcast_to(dormant[net][i - 1][..., :, None], new.shape)
            np.testing.assert_array_equal(np.where(kept, new, 0), np.where(kept, before, 0))  # the rest kept
    for net in ("actor", "critic"):  # outgoing rows into the heads: 0 for recycled units, the rest kept
        last = np.broadcast_to(dormant[net][-1][..., :, None], params[net]["head"]["kernel"].shape)
        np.testing.assert_array_equal(params[net]["head"]["kernel"], np.where(last, 0, old[net]["head"]["kernel"]))
    for m in _moments(opt, "actor", "hidden_0", "kernel"):
        assert np.abs(m[:, 3]).max() == 0.0 and np.abs(m).max() > 0.0  # the unit's Adam moments zeroed, not others
    for a, b in zip(jax.tree.leaves(target), jax.tree.leaves(learner[1])):
        np.testing.assert_array_equal(a, b)  # the target critics follow by Polyak averaging
    (same, _, _, _), none = apply(learner, batch, jax.random.key(2), jnp.int32(3))  # not a multiple of 2: no firing
    assert float(none) == 0.0
    for a, b in zip(jax.tree.leaves(same), jax.tree.leaves(old)):
        np.testing.assert_array_equal(a, b)


def test_cbp_replaces_the_lowest_utility_mature_unit_per_layer_and_critic_and_keeps_its_ages(stream, silenced):
    width = TINY.hidden_sizes[0]
    runner = SACContinualRunner(stream, TINY, MethodConfig("cbp", cbp_maturity=0, cbp_replacement_rate=1.0 / width),
                                RUN, SwitchConfig())
    recycler = runner.hooks.after_learn()
    state, learner = silenced[0], _with_bookkeeping(silenced[1], recycler)  # ages and utilities 0
    batch = replay.sample(state.buffer, jax.random.key(1), TINY.batch_size)
    (params, _, _, opt), count = jax.jit(recycler.apply)(learner, batch, jax.random.key(2), jnp.int32(0))
    bookkeeping = opt["after_learn"]
    assert float(count) == 2 + 2 * 2  # one unit per hidden layer: 2 actor layers, 2 per critic
    assert float(params["actor"]["hidden_0"]["bias"][3]) == 0.0  # the silent unit has the lowest utility
    fresh = fresh_incoming(jax.random.key(2), learner[0])
    np.testing.assert_allclose(params["critic"]["hidden_1"]["kernel"][1, :, 5],
                               fresh["critic"]["hidden_1"]["kernel"][1, :, 5], rtol=1e-6)
    ages = bookkeeping["critic"].age["critic"][1]  # [2 critics, width]
    assert ages.shape == (2, width) and int(ages[1, 5]) == 0 and int(ages.sum()) == 2 * (width - 1)
    assert int(bookkeeping["actor"].age["actor"][0][3]) == 0
    # the bookkeeping lives in the optimizer state, which a task switch keeps
    switched = jax.jit(runner._switch_fn)(state.replace(opt_state=opt), jnp.int32(1))
    np.testing.assert_array_equal(switched.opt_state["after_learn"]["critic"].age["critic"][1], ages)


def test_the_agent_runs_cbp_after_every_update_and_reports_the_units_it_recycled(stream):
    """SAC's own loop calls the hook (the tests above call it by hand); the stream sums ``units_recycled`` per chunk."""
    runner = SACContinualRunner(stream, TINY, MethodConfig("cbp", cbp_maturity=0, cbp_replacement_rate=0.2), RUN,
                                SwitchConfig())
    state = jax.jit(runner.agent.init)(jax.random.key(0))
    _, metrics = jax.jit(lambda s: runner.agent.run(s, 6))(state)
    recycled = np.asarray(metrics["units_recycled"])
    # no update before learning_starts, then every update recycles in every hidden layer of the three networks
    assert recycled.shape == (6,) and recycled[0] == 0 and (recycled[-2:] > 0).all()


def test_replay_keeps_a_reservoir_of_the_whole_stream_across_the_switch(replayed):
    runner, train, state = replayed
    assert not runner.switch_cfg.reset_buffer and runner.agent.reservoir  # the buffer is the replay memory
    assert int(state.buffer.position) == 640 and int(state.buffer.size) == TINY.buffer_size  # offered, kept
    hooks = runner.hooks
    state, _ = jax.jit(hooks.leave_task)(state, hooks.init(state), jnp.int32(1))
    switched = jax.jit(runner._switch_fn)(state, jnp.int32(1))
    for a, b in zip(jax.tree.leaves(switched.buffer), jax.tree.leaves(state.buffer)):
        np.testing.assert_array_equal(a, b)  # nothing emptied at the switch
    after = train(switched)
    task_of = np.asarray(after.buffer.data["obs"])[:, -2:].argmax(axis=1)  # the one-hot ends the observation
    first = np.mean(task_of == 0)
    # 640 of the 1280 transitions offered came from task 0: a uniform reservoir keeps about half of its slots for it
    assert 0.4 < first < 0.6, first


def test_fresh_incoming_weights_have_the_spread_of_the_networks_own_init():
    params = {"actor": init_actor(jax.random.key(0), 12, 2, (96, 48), layer_norm=False),
              "critic": jax.vmap(lambda k: init_actor(k, 12, 2, (96, 48), layer_norm=False))(jax.random.split(
                  jax.random.key(1)))}  # a stacked pair, as SAC's twin critics
    fresh = fresh_incoming(jax.random.key(2), params)
    assert set(fresh["actor"]) == {"hidden_0", "hidden_1"} and fresh["critic"]["hidden_0"]["kernel"].shape == (2, 12, 96)
    for net in ("actor", "critic"):
        for name in ("hidden_0", "hidden_1"):  # wide (12 -> 96) and tall (96 -> 48) orthogonal kernels
            init_std = float(jnp.std(params[net][name]["kernel"]))
            assert abs(float(jnp.std(fresh[net][name]["kernel"])) / init_std - 1) < 0.1, (net, name)
    assert HIDDEN_GAIN == pytest.approx(2 ** 0.5)
