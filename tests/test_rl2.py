"""RL²: the in-context invariants (carry, inputs, GAE, TBPTT), learning on a bandit, determinism.

Trials here are tiny: 2-armed Bernoulli bandits, GRU/encoder widths of 8-32.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from metarl.agents import rl2_network
from metarl.agents.distributions import log_prob_entropy
from metarl.agents.env_spec import EnvSpec
from metarl.agents.gae import gae
from metarl.agents.rl2 import (
    RL2Config,
    evaluate,
    input_parts,
    input_dim,
    make_batch,
    make_train,
    rl2_loss,
    run_trial,
    trial_advantages,
    trial_gae,
    trial_layout,
    with_horizon,
)
from metarl.agents.rl2_config import TrialLayout

N = 4


def _net(key, spec, cell="gru", hidden=8):
    return rl2_network.init_network(
        key, input_dim(spec), spec.action_dim, cell=cell, hidden=hidden, encoder_widths=(8,), head_widths=(),
        continuous=spec.continuous,
    )


@pytest.fixture(scope="module")
def bandit3():
    """A 2-armed dependent bandit with 3-pull episodes (made with the horizon as a params override)."""
    return envs.make("bandit-bernoulli", num_arms=2, arm_distribution="dependent", max_steps_in_episode=3)


@pytest.fixture(scope="module")
def short_trial(bandit3):
    """One trial of k=2 episodes x 3 pulls = 6 steps, TBPTT chunks of 3 (one per episode), 4 envs."""
    env, env_params = bandit3
    spec = EnvSpec.of(env)
    cfg = RL2Config(num_envs=N, episodes_per_trial=2, bptt_chunk=3, hidden_size=8, encoder_widths=(8,),
                    head_widths=(), num_minibatches=1)
    layout = trial_layout(cfg, env, env_params)
    params = _net(jax.random.PRNGKey(1), spec)
    tasks = with_horizon(env.task_space.sample_batch(jax.random.PRNGKey(2), N), layout.horizon)
    rollout = jax.jit(lambda p, k: run_trial(p, env, tasks, k, layout, cfg.activation))
    traj = jax.device_get(rollout(params, jax.random.PRNGKey(3)))
    return cfg, layout, spec, params, traj


# --- the trial: carry, inputs, episode bookkeeping -------------------------------------------------------
def test_trial_layout_holds_k_episodes_and_overrides_the_sampler_horizon(short_trial):
    cfg, layout, _, _, traj = short_trial
    assert (layout.horizon, layout.trial_steps, layout.num_chunks) == (3, 6, 2)
    # the bandit's own sampler says 100 steps; the env params' horizon (3) wins, so episodes end at steps 2 and 5
    assert traj["done"].tolist() == [[False] * N, [False] * N, [True] * N, [False] * N, [False] * N, [True] * N]
    rewards = traj["reward"]
    np.testing.assert_allclose(traj["episode_returns"][:, 0], rewards[:3].sum(0))
    np.testing.assert_allclose(traj["episode_returns"][:, 1], rewards[3:].sum(0))
    np.testing.assert_allclose(traj["trial_return"], rewards.sum(0))


def test_carry_is_reset_only_at_trial_start(short_trial):
    cfg, _, _, params, traj = short_trial
    carries = traj["carries"]  # chunk starts: step 0 (trial start) and step 3 (first step of episode 2)
    np.testing.assert_array_equal(carries[0], 0.0)
    assert np.all(np.abs(carries[1]).max(axis=-1) > 1e-3), "carry was reset at the in-trial episode boundary"
    # ... it is the carry after episode 1, continued from the trial-start carry
    continued, _, _ = rl2_network.unroll(params, jnp.zeros_like(carries[0]), traj["inputs"][:3], cfg.activation)
    np.testing.assert_allclose(carries[1], continued, atol=1e-6)


def test_action_distribution_depends_on_the_previous_episode(short_trial):
    cfg, _, _, params, traj = short_trial
    inputs = jnp.asarray(traj["inputs"])
    zero = jnp.zeros_like(jnp.asarray(traj["carries"][0]))
    _, logits, _ = rl2_network.unroll(params, zero, inputs, cfg.activation)
    # a carry reset at the boundary would make step 3 the same as a fresh start on its inputs
    _, fresh, _ = rl2_network.unroll(params, zero, inputs[3:], cfg.activation)
    assert float(jnp.abs(logits[3] - fresh[0]).max()) > 1e-4
    # change only the first pull's reward input of episode 1 (step 1 sees it): step 3's policy changes
    changed = inputs.at[1, :, -2].set(1.0 - inputs[1, :, -2])
    _, logits_changed, _ = rl2_network.unroll(params, zero, changed, cfg.activation)
    assert float(jnp.abs(logits_changed[3] - logits[3]).max()) > 1e-5


def test_previous_action_and_reward_are_zero_at_trial_start_and_carry_across_episodes(short_trial):
    _, _, spec, _, traj = short_trial
    parts = jax.tree.map(np.asarray, input_parts(traj["inputs"], spec))
    for name in ("prev_action", "prev_reward", "prev_done"):
        np.testing.assert_array_equal(parts[name][0], 0.0, err_msg=name)
    actions, rewards = traj["action"], traj["reward"]
    for t in range(1, 6):  # including step 3, the first of episode 2
        np.testing.assert_array_equal(parts["prev_action"][t], np.eye(2)[actions[t - 1]])
        np.testing.assert_array_equal(parts["prev_reward"][t], rewards[t - 1])
        np.testing.assert_array_equal(parts["prev_done"][t], traj["done"][t - 1].astype(np.float32))
    assert np.all(parts["prev_done"][3] == 1.0)


# --- GAE: only the trial boundary masks --------------------------------------------------------------
GAMMA, LAM = 0.9, 0.5
REWARDS = [1.0, 0.0, 2.0, 1.0]
VALUES = [0.5, 1.0, 0.2, 0.8]
LAST_VALUE = 0.6
# By hand, gamma*lambda = 0.45; the episode ends at t=1 and cuts nothing:
#   d1 = 0 + 0.9*0.2 - 1.0 = -0.82 (bootstraps into the next episode's first value), d2 = 2 + 0.9*0.8 - 0.2 = 2.52,
#   d0 = 1 + 0.9*1.0 - 0.5 = 1.4.
# terminal:  d3 = 1 - 0.8 = 0.2;            A3 = 0.2,  A2 = 2.52 + 0.45*0.2 = 2.61,
#            A1 = -0.82 + 0.45*2.61 = 0.3545,  A0 = 1.4 + 0.45*0.3545 = 1.559525
# bootstrap: d3 = 1 + 0.9*0.6 - 0.8 = 0.74;  A3 = 0.74, A2 = 2.52 + 0.45*0.74 = 2.853,
#            A1 = -0.82 + 0.45*2.853 = 0.46385,  A0 = 1.4 + 0.45*0.46385 = 1.6087325
HAND = {"terminal": [1.559525, 0.3545, 2.61, 0.2], "bootstrap": [1.6087325, 0.46385, 2.853, 0.74]}


@pytest.mark.parametrize("rule", ["terminal", "bootstrap"])
def test_gae_runs_across_in_trial_episode_ends(rule):
    cfg = RL2Config(gamma=GAMMA, gae_lambda=LAM, trial_end=rule)
    col = lambda x: jnp.asarray(x, jnp.float32)[:, None]  # noqa: E731  one env
    traj = {"reward": col(REWARDS), "value": col(VALUES), "done": jnp.asarray([[False], [True], [False], [False]])}
    adv, target = trial_advantages(traj, jnp.asarray([LAST_VALUE]), cfg)
    np.testing.assert_allclose(adv[:, 0], HAND[rule], rtol=1e-6)
    np.testing.assert_allclose(target[:, 0], np.asarray(HAND[rule]) + VALUES, rtol=1e-6)
    # the hand values really test the episode end: an episode-cutting GAE gives something else at t=0, 1
    cut, _ = gae(traj["reward"], traj["value"], jnp.concatenate([traj["value"][1:], col([LAST_VALUE])[:1]]),
                 traj["done"], traj["done"], GAMMA, LAM)
    assert abs(float(cut[1, 0]) - HAND[rule][1]) > 0.1


@pytest.mark.parametrize("rule", ["terminal", "bootstrap"])
def test_gae_trial_boundary_cuts_the_trace(rule):
    # two 2-step trials back to back; next_values[1] is the next trial's first value (used only by "bootstrap")
    r, v, nv = jnp.asarray([1.0, 2.0, 0.0, 1.0]), jnp.asarray([0.5, 0.4, 0.3, 0.2]), jnp.asarray([0.4, 0.3, 0.2, 0.6])
    end = jnp.asarray([False, True, False, True])
    adv, _ = trial_gae(r, v, nv, end, GAMMA, LAM, rule)
    boot = 1.0 if rule == "bootstrap" else 0.0
    a1 = 2.0 + boot * 0.9 * 0.3 - 0.4
    a0 = 1.0 + 0.9 * 0.4 - 0.5 + 0.45 * a1
    a3 = 1.0 + boot * 0.9 * 0.6 - 0.2
    a2 = 0.0 + 0.9 * 0.2 - 0.3 + 0.45 * a3
    np.testing.assert_allclose(adv, [a0, a1, a2, a3], rtol=1e-6)


# --- TBPTT -------------------------------------------------------------------------------------------
def test_bptt_chunk_must_divide_the_trial(bandit3):
    env, env_params = bandit3
    cfg = RL2Config(num_envs=N, episodes_per_trial=2, bptt_chunk=4, num_minibatches=1)
    with pytest.raises(ValueError, match=r"bptt_chunk=4 does not divide the trial length .*=6"):
        trial_layout(cfg, env, env_params)
    with pytest.raises(ValueError, match="bptt_chunk=4"):
        make_train(env, cfg, env_params=env_params)
    with pytest.raises(ValueError, match="num_minibatches=3 does not divide num_envs=4"):
        RL2Config(num_envs=4, num_minibatches=3)


def test_replay_from_stored_carries_reproduces_the_rollout(short_trial):
    cfg, layout, _, params, traj = short_trial
    chunked = lambda x: jnp.asarray(x).reshape((layout.num_chunks, layout.chunk) + x.shape[1:])  # noqa: E731
    outs, values = rl2_network.replay(params, jnp.asarray(traj["carries"]), chunked(traj["inputs"]), cfg.activation)
    logp = jnp.take_along_axis(jax.nn.log_softmax(outs), chunked(traj["action"])[..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(logp, chunked(traj["logp"]), atol=1e-6)
    np.testing.assert_allclose(values, chunked(traj["value"]), atol=1e-6)


def test_no_gradient_crosses_a_chunk_boundary(short_trial):
    cfg, layout, _, params, traj = short_trial
    carries = jnp.asarray(traj["carries"])
    inputs = jnp.asarray(traj["inputs"]).reshape((layout.num_chunks, layout.chunk) + traj["inputs"].shape[1:])

    def chunk2_loss(carries, inputs):
        outs, values = rl2_network.replay(params, carries, inputs, cfg.activation)
        return jnp.sum(outs[1] ** 2) + jnp.sum(values[1] ** 2)

    g_carries, g_inputs = jax.jit(jax.grad(chunk2_loss, argnums=(0, 1)))(carries, inputs)
    assert float(jnp.abs(g_carries[0]).max()) == 0.0 and float(jnp.abs(g_inputs[0]).max()) == 0.0
    assert float(jnp.abs(g_carries[1]).max()) > 0.0 and float(jnp.abs(g_inputs[1]).max()) > 0.0

    # the same loss through one unbroken unroll does reach chunk 1 (so the check above can fail)
    def unbroken_loss(inputs):
        _, outs, values = rl2_network.unroll(params, carries[0], inputs.reshape((-1,) + inputs.shape[2:]), cfg.activation)
        return jnp.sum(outs[layout.chunk:] ** 2) + jnp.sum(values[layout.chunk:] ** 2)

    assert float(jnp.abs(jax.jit(jax.grad(unbroken_loss))(inputs)[0]).max()) > 0.0


def test_tbptt_loss_equals_the_whole_trial_loss_when_a_chunk_covers_the_trial(short_trial):
    cfg, layout, _, params, traj = short_trial
    adv, targets = trial_advantages(traj, jnp.asarray(traj["last_value"]), cfg)
    whole = TrialLayout(horizon=layout.horizon, episodes=layout.episodes, chunk=layout.trial_steps)
    batch_whole = make_batch({**traj, "carries": traj["carries"][:1]}, adv, targets, whole)  # the trial-start carry
    batch_chunks = make_batch(traj, adv, targets, layout)  # 2 chunks, each from its stored carry
    assert float(jnp.abs(traj["carries"][0]).max()) == 0.0

    def full_sequence_loss(p):  # PPO-clip written over one unroll of the whole trial from the zero carry
        _, outs, values = rl2_network.unroll(p, jnp.zeros_like(traj["carries"][0]), traj["inputs"], cfg.activation)
        logp, entropy = log_prob_entropy(outs, traj["action"], None)
        ratio = jnp.exp(logp - traj["logp"])
        a = (adv - adv.mean()) / (adv.std() + 1e-8)
        actor = -jnp.mean(jnp.minimum(ratio * a, jnp.clip(ratio, 1 - cfg.clip_eps, 1 + cfg.clip_eps) * a))
        clipped = traj["value"] + jnp.clip(values - traj["value"], -cfg.clip_eps, cfg.clip_eps)
        value = 0.5 * jnp.mean(jnp.maximum((values - targets) ** 2, (clipped - targets) ** 2))
        return actor + cfg.vf_coef * value - cfg.ent_coef * jnp.mean(entropy)

    assert cfg.normalize_advantages and cfg.clip_value  # the settings full_sequence_loss writes out
    loss = lambda batch: jax.jit(jax.value_and_grad(lambda p: rl2_loss(p, batch, cfg)[0]))(params)  # noqa: E731
    (whole_loss, whole_grad), (chunk_loss, chunk_grad) = loss(batch_whole), loss(batch_chunks)
    ref_loss, ref_grad = jax.jit(jax.value_and_grad(full_sequence_loss))(params)
    np.testing.assert_allclose(whole_loss, ref_loss, rtol=1e-6)
    np.testing.assert_allclose(chunk_loss, ref_loss, rtol=1e-6)  # stored carries: the same forward loss
    for got, want in zip(jax.tree.leaves(whole_grad), jax.tree.leaves(ref_grad)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    # chunks cut the gradient through the carry, so their gradient differs (the checks above could fail)
    assert any(float(jnp.abs(g - w).max()) > 1e-6 for g, w in zip(jax.tree.leaves(chunk_grad), jax.tree.leaves(ref_grad)))


def test_gaussian_head_and_lstm_cell_on_a_continuous_env():
    env, env_params = envs.make("Pendulum-v1")  # 200-step episodes, actions in [-2, 2]
    spec = EnvSpec.of(env)
    cfg = RL2Config(num_envs=N, episodes_per_trial=2, bptt_chunk=100, cell="lstm", num_minibatches=1)
    layout = trial_layout(cfg, env, env_params)
    params = _net(jax.random.PRNGKey(1), spec, cell="lstm")
    tasks = with_horizon(env.task_space.sample_batch(jax.random.PRNGKey(2), N), layout.horizon)
    traj = jax.device_get(jax.jit(lambda p, k: run_trial(p, env, tasks, k, layout))(params, jax.random.PRNGKey(3)))
    assert traj["carries"].shape == (4, N, 16)  # LSTM carry [c, h]
    np.testing.assert_array_equal(traj["carries"][0], 0.0)
    parts = jax.tree.map(np.asarray, input_parts(traj["inputs"], spec))
    np.testing.assert_array_equal(parts["prev_action"][0], 0.0)
    np.testing.assert_array_equal(parts["prev_action"][1:], np.clip(traj["action"][:-1], -2.0, 2.0))  # the env's action
    assert np.all(parts["prev_done"][200] == 1.0)
    chunked = lambda x: jnp.asarray(x).reshape((layout.num_chunks, layout.chunk) + x.shape[1:])  # noqa: E731
    outs, _ = rl2_network.replay(params, jnp.asarray(traj["carries"]), chunked(traj["inputs"]), cfg.activation)
    logp = -0.5 * ((chunked(traj["action"]) - outs) ** 2).sum(-1) - 0.5 * np.log(2 * np.pi)  # log_std = 0 at init
    np.testing.assert_allclose(logp, chunked(traj["logp"]), atol=1e-5)


# --- learning, evaluation and determinism ---------------------------------------------------------------
PULLS = 10
LEARN = RL2Config(num_envs=64, episodes_per_trial=PULLS, num_trials=300, hidden_size=32, encoder_widths=(32,),
                  head_widths=(), lr=3e-3, update_epochs=4, num_minibatches=4)


@pytest.fixture(scope="module")
def learned():
    """RL² on a 2-armed dependent bandit (means p, 1-p), one pull per episode, 10 episodes per trial:
    everything the agent knows about the task comes through the previous action/reward inputs and the carry."""
    env, env_params = envs.make("bandit-bernoulli", num_arms=2, arm_distribution="dependent", max_steps_in_episode=1)
    train = make_train(env, LEARN, env_params=env_params)
    state, metrics = train(jax.random.PRNGKey(0))
    return env, env_params, train, jax.device_get((state, metrics))


@pytest.fixture(scope="module")
def evaluate_on_held_out(learned):
    """``run(params, key, greedy) -> [1000, k]`` returns on 1000 tasks not seen in training (one compile per mode)."""
    env, env_params, _, _ = learned
    held_out = env.task_space.sample_batch(jax.random.PRNGKey(123), 1000)

    def run(params, key=jax.random.PRNGKey(5), greedy=False):
        return np.asarray(evaluate(params, env, held_out, key, PULLS, config=LEARN, greedy=greedy, env_params=env_params))

    return run


def test_rl2_learns_in_context_on_a_bandit(learned, evaluate_on_held_out):
    env, _, train, (state, metrics) = learned
    run = evaluate_on_held_out
    assert metrics["episode_returns"].shape == (LEARN.num_trials, PULLS)
    assert train.layout.total_timesteps(LEARN) == 64 * PULLS * LEARN.num_trials
    spec = EnvSpec.of(env)
    untrained = rl2_network.init_network(jax.random.PRNGKey(9), input_dim(spec), 2, cell="gru", hidden=32,
                                         encoder_widths=(32,), head_widths=(), continuous=False)
    before, after = run(untrained), run(state.params)
    assert after.shape == (1000, PULLS)
    # random play earns n/2 = 5 (+-0.05 over 1000 trials); an oracle 7.5; RL² measured ~6.8 here
    assert abs(before.sum(1).mean() - PULLS / 2) < 0.25
    assert after.sum(1).mean() > PULLS / 2 + 1.0
    # in-context adaptation: the first pull is a coin flip, later pulls exploit what was seen
    assert after[:, 0].mean() < 0.58
    assert after[:, 5:].mean() > after[:, 0].mean() + 0.12
    # the training curve shows the same (last 50 trials)
    curve = metrics["episode_returns"][-50:].mean(0)
    assert curve[5:].mean() > curve[0] + 0.1
    assert run(state.params, greedy=True).sum(1).mean() > PULLS / 2 + 1.0


def test_same_key_same_run(learned, evaluate_on_held_out):
    _, _, train, (state, metrics) = learned
    again_state, again = jax.device_get(train(jax.random.PRNGKey(0)))
    for name in metrics:
        np.testing.assert_array_equal(again[name], metrics[name], err_msg=name)
    jax.tree.map(np.testing.assert_array_equal, again_state.params, state.params)
    run = evaluate_on_held_out
    np.testing.assert_array_equal(run(state.params, jax.random.PRNGKey(3)), run(state.params, jax.random.PRNGKey(3)))
    assert not np.array_equal(run(state.params, jax.random.PRNGKey(3)), run(state.params, jax.random.PRNGKey(4)))
