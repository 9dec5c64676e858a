"""RL² with the transformer core: empty context at trial start, the attention window, TBPTT replay,
one step against numpy, learning on a bandit, config errors.

Tiny sizes throughout (width 8, windows of 2-4 steps); each compiled program is built once per module.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import envs
from metarl.agents import rl2_network, rl2_transformer
from metarl.agents.env_spec import EnvSpec
from metarl.agents.rl2 import RL2Config, evaluate, input_dim, make_train, run_trial, trial_layout, with_horizon
from metarl.config import build_dataclass

W, T, N = 3, 10, 4  # window, steps of the hand-made sequences, envs in the rollout


def _net(key, in_dim, layers, window=W, hidden=8, heads=2):
    return rl2_network.init_network(
        jax.random.PRNGKey(key), in_dim, 2, cell="transformer", hidden=hidden, encoder_widths=(8,), head_widths=(),
        continuous=False, context_window=window, num_layers=layers, num_heads=heads,
    )


@pytest.fixture(scope="module")
def bandit3():
    return envs.make("bandit-bernoulli", num_arms=2, arm_distribution="dependent", max_steps_in_episode=3)


@pytest.fixture(scope="module")
def nets(bandit3):
    """1- and 2-layer cores (window 3) on the bandit's inputs, and one jitted unroll for both."""
    in_dim = input_dim(EnvSpec.of(bandit3[0]))
    unroll = jax.jit(lambda p, c, x: rl2_network.unroll(p, c, x, "tanh"))
    return in_dim, {1: _net(1, in_dim, 1), 2: _net(2, in_dim, 2)}, unroll


def _sequence(in_dim, batch, key=0):
    return jax.random.normal(jax.random.PRNGKey(key), (T, batch, in_dim))


# --- the carry -----------------------------------------------------------------------------------------
def test_params_alone_give_the_core_and_the_carry(nets):
    _, by_layers, _ = nets
    for layers, params in by_layers.items():
        assert rl2_network.cell_of(params) == "transformer"
        assert rl2_transformer.sizes(params["transformer"]) == (layers, W, 8, 2)
        width = layers * W * 2 * 8 + 1  # keys and values of W steps per layer, and the count
        assert rl2_network.carry_width(params) == width
        assert rl2_network.initial_carry(params, 5).shape == (5, width)
        # every leaf is an array (no python ints to break jit, vmap or optax)
        assert all(isinstance(leaf, jax.Array) for leaf in jax.tree.leaves(params))
        optax.adam(1e-3).init(params)


def test_zero_carry_is_the_empty_context(nets):
    """A carry whose count is 0 behaves as the zero carry whatever its slots hold: a trial that starts from
    the leftovers of another trial (count reset) gives the same outputs at every step."""
    in_dim, by_layers, unroll = nets
    inputs = _sequence(in_dim, 11)
    for params in by_layers.values():
        zero = rl2_network.initial_carry(params, 11)
        leftover, _, _ = unroll(params, zero, _sequence(in_dim, 11, key=7))  # another trial's final context
        assert float(jnp.abs(leftover[:, :-1]).max()) > 0.1
        emptied = leftover.at[:, -1].set(0.0)
        _, outs, values = unroll(params, zero, inputs)
        _, outs_left, values_left = unroll(params, emptied, inputs)
        np.testing.assert_allclose(outs_left, outs, atol=1e-6)
        np.testing.assert_allclose(values_left, values, atol=1e-6)
        # ... and without the reset, the leftovers do matter (so the check above can fail)
        _, _, values_kept = unroll(params, leftover, inputs)
        assert float(jnp.abs(values_kept[0] - values[0]).max()) > 1e-3
        # nor does an env depend on the other envs of the batch: permuting the envs permutes the outputs
        _, outs_perm, values_perm = unroll(params, zero, inputs[:, ::-1])
        np.testing.assert_allclose(values_perm, values[:, ::-1], atol=1e-6)
        np.testing.assert_allclose(outs_perm, outs[:, ::-1], atol=1e-6)


@pytest.mark.parametrize("layers", [1, 2])
def test_output_depends_on_exactly_the_last_layers_times_window_steps(nets, layers):
    """Env ``s + 1`` replays env 0's sequence with step ``s`` changed: the output at step ``t`` changes iff
    ``0 <= t - s <= L * W`` (causal; one layer sees W steps back, each further layer W more)."""
    in_dim, by_layers, unroll = nets
    params = by_layers[layers]
    base = _sequence(in_dim, 1)[:, 0]
    batch = jnp.repeat(base[:, None], T + 1, axis=1)
    batch = batch.at[jnp.arange(T), jnp.arange(1, T + 1)].add(2.0)  # env s + 1: step s changed
    _, outs, values = unroll(params, rl2_network.initial_carry(params, T + 1), batch)
    changed = np.maximum(np.abs(values[:, 1:] - values[:, :1]), np.abs(outs[:, 1:] - outs[:, :1]).max(-1))  # [t, s]
    lag = np.arange(T)[:, None] - np.arange(T)[None, :]
    expected = (lag >= 0) & (lag <= layers * W)
    assert np.all(changed[expected] > 1e-4), changed[expected].min()
    assert np.all(changed[~expected] < 1e-6), changed[~expected].max()


# --- TBPTT -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rollout(bandit3):
    """A trial of k=4 episodes x 3 pulls = 12 steps in chunks of 3, window 4 (longer than a chunk, shorter
    than the trial), 2 layers."""
    env, env_params = bandit3
    cfg = RL2Config(num_envs=N, episodes_per_trial=4, bptt_chunk=3, cell="transformer", hidden_size=8,
                    context_window=4, num_layers=2, num_heads=2, num_minibatches=1)
    layout = trial_layout(cfg, env, env_params)
    params = _net(3, input_dim(EnvSpec.of(env)), 2, window=4)
    tasks = with_horizon(env.task_space.sample_batch(jax.random.PRNGKey(2), N), layout.horizon)
    traj = jax.jit(lambda p, k: run_trial(p, env, tasks, k, layout))(params, jax.random.PRNGKey(3))
    return layout, params, jax.device_get(traj)


def test_replay_from_stored_carries_reproduces_the_rollout(rollout):
    layout, params, traj = rollout
    carries = traj["carries"]
    assert carries.shape == (4, N, 2 * 4 * 2 * 8 + 1)
    np.testing.assert_array_equal(carries[0], 0.0)
    np.testing.assert_array_equal(carries[:, :, -1], np.minimum(3 * np.arange(4), 4)[:, None].repeat(N, 1))  # counts
    chunked = lambda x: jnp.asarray(x).reshape((layout.num_chunks, layout.chunk) + x.shape[1:])  # noqa: E731
    outs, values = jax.jit(lambda p, c, x: rl2_network.replay(p, c, x, "tanh"))(
        params, jnp.asarray(carries), chunked(traj["inputs"]))
    logp = jnp.take_along_axis(jax.nn.log_softmax(outs), chunked(traj["action"])[..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(logp, chunked(traj["logp"]), atol=1e-5)
    np.testing.assert_allclose(values, chunked(traj["value"]), atol=1e-5)


# --- one step by hand ----------------------------------------------------------------------------------------
def _np_layer_norm(x, scale, bias):
    mean = x.mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(((x - mean) ** 2).mean(-1, keepdims=True) + 1e-5) * scale + bias


def _np_gelu(x):  # jax.nn.gelu's default (tanh) form
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


def _np_step(core, carry, x):
    """One env, one layer, one head, window 2, written out: the slots hold ``LN(x) W_kv + b_kv`` of the steps
    one and two back; position r's embedding goes into the normalised token, ``(LN(x) + P[r]) W_kv + b_kv``."""
    b = jax.tree.map(lambda a: np.asarray(a[0], np.float64), core["blocks"])
    pos = core["pos"][0]
    width = core["embed"]["kernel"].shape[1]
    slots, count = carry[:-1].reshape(2, 2 * width), carry[-1]
    h = x @ core["embed"]["kernel"] + core["embed"]["bias"]
    normed = _np_layer_norm(h, b["ln1"]["scale"], b["ln1"]["bias"])
    q = (normed + pos[0]) @ b["q"]["kernel"].reshape(width, width) + b["q"]["bias"]
    kv_now = normed @ b["kv"]["kernel"] + b["kv"]["bias"]
    kv = np.stack([(normed + pos[0]) @ b["kv"]["kernel"] + b["kv"]["bias"],  # this step, one back, two back
                   slots[0] + pos[1] @ b["kv"]["kernel"], slots[1] + pos[2] @ b["kv"]["kernel"]])
    k, v = kv[:, :width], kv[:, width:]
    logits = k @ q / np.sqrt(width)
    valid = np.array([True, count >= 1, count >= 2])
    weights = np.where(valid, np.exp(logits - logits[valid].max()), 0.0)
    weights /= weights.sum()
    attended = h + (weights @ v) @ b["o"]["kernel"] + b["o"]["bias"]
    mlp = _np_gelu(_np_layer_norm(attended, b["ln2"]["scale"], b["ln2"]["bias"]) @ b["mlp_in"]["kernel"]
                   + b["mlp_in"]["bias"])
    out = attended + mlp @ b["mlp_out"]["kernel"] + b["mlp_out"]["bias"]
    new_carry = np.concatenate([kv_now, slots[0], [min(count + 1, 2)]])
    return new_carry, _np_layer_norm(out, np.asarray(core["ln_out"]["scale"]), np.asarray(core["ln_out"]["bias"]))


def test_one_step_matches_numpy_attention():
    shapes = jax.eval_shape(lambda: rl2_transformer.init(jax.random.PRNGKey(0), 3, 4, window=2, layers=1, heads=1))
    rng = np.random.default_rng(0)
    # random everything (biases, norms, positions too), so each term is checked
    core = jax.tree.map(lambda a: rng.normal(scale=0.7, size=a.shape).astype(np.float32), shapes)
    core64 = jax.tree.map(lambda a: a.astype(np.float64), core)
    x = rng.normal(size=(4, 3)).astype(np.float32)
    carry = rng.normal(size=(4, 2 * 2 * 4 + 1)).astype(np.float32)
    carry[:, -1] = [0, 1, 2, 2]  # empty, one valid slot (the other masked), both
    new_carry, hidden = jax.jit(rl2_transformer.step)(core, jnp.asarray(carry), jnp.asarray(x))
    for env in range(4):
        want_carry, want_hidden = _np_step(core64, carry[env].astype(np.float64), x[env].astype(np.float64))
        np.testing.assert_allclose(hidden[env], want_hidden, rtol=1e-4, atol=1e-4, err_msg=f"env {env}")
        np.testing.assert_allclose(new_carry[env], want_carry, rtol=1e-5, atol=1e-5, err_msg=f"env {env}")


# --- learning ----------------------------------------------------------------------------------------------
PULLS = 10
# 60 trials learn reliably (last-20-trial return 6.49-6.76 over 6 seeds); compiling dominates the time
LEARN = RL2Config(num_envs=64, episodes_per_trial=PULLS, num_trials=60, cell="transformer", hidden_size=16,
                  context_window=PULLS - 1, num_layers=1, num_heads=2, encoder_widths=(), head_widths=(), lr=3e-3,
                  update_epochs=4, num_minibatches=4)


def test_transformer_rl2_learns_in_context_on_a_bandit():
    """As the GRU's test in test_rl2.py (2-armed dependent bandit, one pull per episode, 10 per trial); the
    window holds the whole trial. Every trial draws a fresh task (continuous arm means)."""
    env, env_params = envs.make("bandit-bernoulli", num_arms=2, arm_distribution="dependent", max_steps_in_episode=1)
    state, metrics = jax.device_get(make_train(env, LEARN, env_params=env_params)(jax.random.PRNGKey(0)))
    returns = metrics["episode_returns"]  # [trials, pulls], mean over the 64 envs
    # random play earns n/2 = 5 (the first trials do); an oracle 7.5
    assert abs(returns[:5].sum(1).mean() - PULLS / 2) < 0.3
    last = returns[-20:]
    assert last.sum(1).mean() > PULLS / 2 + 1.0
    # in-context adaptation: the first pull is a coin flip, later pulls exploit what was seen
    assert last[:, 0].mean() < 0.58
    assert last[:, 5:].mean() > last[:, 0].mean() + 0.12
    # the trained params apply without their config (the core is read from params): held-out tasks
    held_out = env.task_space.sample_batch(jax.random.PRNGKey(123), 500)
    scores = np.asarray(evaluate(state.params, env, held_out, jax.random.PRNGKey(5), PULLS, env_params=env_params))
    assert scores.sum(1).mean() > PULLS / 2 + 1.0


# --- config ---------------------------------------------------------------------------------------------
def test_transformer_settings_are_checked_in_one_line():
    bad = [
        ({"cell": "transformer", "hidden_size": 16, "num_heads": 3},
         "num_heads=3 does not divide RL2Config.hidden_size=16"),
        ({"cell": "transformer", "context_window": 0}, "RL2Config.context_window"),
        ({"cell": "transformer", "num_layers": 0}, "RL2Config.num_layers"),
        ({"cell": "transformer", "num_heads": 0}, "RL2Config.num_heads"),
    ]
    for settings, message in bad:
        with pytest.raises(ValueError, match=message) as error:
            RL2Config(**settings)
        assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match=r"^agent\.num_heads=3 does not divide agent\.hidden_size=16 "):
        build_dataclass(RL2Config, {"cell": "transformer", "hidden_size": 16, "num_heads": 3}, "agent")
    RL2Config(cell="gru", hidden_size=16, num_heads=3)  # the transformer's settings do not constrain the GRU
