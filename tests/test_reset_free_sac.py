"""The reset-free SAC agent (RISC's continuous agent) against hand-computed values, and a short tabletop run."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.core import spaces
from envs.tabletop import Tabletop
from metarl.agents.dqn import DQNConfig
from metarl.agents.sac_config import SACConfig
from metarl.agents.sac_networks import actor_mean_log_std
from metarl.jobs.reset_free import build
from metarl.reset_free import benchmarks
from metarl.reset_free.config import ResetFreeConfig
from metarl.reset_free.runner import build_runner
from metarl.reset_free.sac_agent import SACAgent

TASK = benchmarks.get("tabletop-v1")
GAMMA = 0.99


def _cfg(**overrides) -> SACConfig:
    return SACConfig(**{**TASK.agent_settings, "hidden_sizes": (8,), "batch_size": 4, "learning_starts": 50,
                        **overrides})


def _agent(**kwargs) -> SACAgent:
    env, params = envs.make("earl-tabletop")
    return SACAgent(_cfg(), env, params, **kwargs)


def _constant(heads, values):
    """Twin MLPs (stacked on axis 0) whose head ``i`` outputs ``values[i]`` everywhere: zero kernels, head bias."""
    def fix(path, leaf):
        name = jax.tree_util.keystr(path)
        if "head" in name and "bias" in name:
            return jnp.broadcast_to(jnp.asarray(values, jnp.float32).reshape(2, 1), leaf.shape)
        return jnp.zeros_like(leaf) if "kernel" in name else leaf
    return jax.tree_util.tree_map_with_path(fix, heads)


def _with_success_heads(state, values):
    heads = _constant(state.critic.params, values)
    return state.replace(critic=state.critic.replace(params=heads, target=heads))


def _obs(n=None, seed=0):
    shape = (12,) if n is None else (n, 12)
    return jax.random.uniform(jax.random.PRNGKey(seed), shape, minval=-2.0, maxval=2.0)


@pytest.fixture(scope="module")
def agent():
    return _agent()


@pytest.fixture(scope="module")
def state(agent):
    return jax.jit(agent.init)(jax.random.PRNGKey(0))


# --- construction --------------------------------------------------------------------------------------
def test_refuses_action_spaces_it_cannot_store():
    env, params = envs.make("earl-four-rooms")
    with pytest.raises(ValueError, match="Box action space in \\[-1, 1\\]"):
        SACAgent(_cfg(), env, params)

    class WideTabletop(Tabletop):
        def action_space(self, params=None):
            return spaces.Box(-2.0, 2.0, (3,), jnp.float32)

    wide = WideTabletop()
    with pytest.raises(ValueError, match="Box action space in \\[-1, 1\\]"):
        SACAgent(_cfg(), wide, wide.default_params)
    tabletop = Tabletop()
    with pytest.raises(ValueError, match="agent.reset_every=5: the reset-free SAC agent has no periodic resets"):
        SACAgent(_cfg(reset_every=5), tabletop, tabletop.default_params)
    with pytest.raises(ValueError, match="agent.noise_exponent=1.0: the reset-free SAC agent acts with i.i.d."):
        SACAgent(_cfg(noise_exponent=1.0), tabletop, tabletop.default_params)


def test_interface_attributes(agent):
    assert agent.example_action.shape == (3,) and agent.example_action.dtype == jnp.float32
    assert (agent.gamma, agent.batch_size, agent.buffer_size, agent.learning_starts, agent.train_every) == \
        (GAMMA, 4, 10_000_000, 50, 1)


def test_job_builds_the_agent_config_the_task_names():
    # EARL's learning_starts (1e4) is past the ci budget (2e3 steps): the ci scale needs it lowered
    _, rf, sac = build({"task": "tabletop-v1", "scale": "ci", "agent": {"hidden_sizes": [32, 32],
                                                                        "learning_starts": 200}})
    assert isinstance(sac, SACConfig) and sac.hidden_sizes == (32, 32) and sac.reward_scale == 10.0
    assert sac.target_entropy == -1.5 and sac.learning_starts == 200
    assert (rf.total_steps, rf.eval_every, rf.phase_step_limit) == (2_000, 1_000, 200)
    assert isinstance(build({"task": "four-rooms-v1", "scale": "ci"})[2], DQNConfig)


# --- P_succ ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("heads, expected", [((0.3, 0.7), 0.3), ((0.9, 0.6), 0.6), ((1.4, 2.0), 1.0),
                                             ((-0.2, 0.5), 0.0)])
def test_p_success_min_over_heads_and_clip(agent, state, heads, expected):
    fixed = _with_success_heads(state, heads)
    p = jax.jit(agent.p_success)
    one = p(fixed, _obs(), jax.random.PRNGKey(1))
    many = p(fixed, _obs(5), jax.random.PRNGKey(2))
    assert one.shape == () and many.shape == (5,)
    np.testing.assert_allclose(one, expected, rtol=1e-6)
    np.testing.assert_allclose(many, np.full(5, expected), rtol=1e-6)


def test_p_success_averages_the_min_over_policy_actions(agent, state):
    # success head i = w_i * relu(a_0 + 2) + c_i; the actor is nearly deterministic at a_0 = tanh(0.5)
    w, c = jnp.array([1.0, -1.0]), jnp.array([-2.0, 3.0])
    heads = _constant(state.critic.params, (0.0, 0.0))
    heads["hidden_0"]["kernel"] = heads["hidden_0"]["kernel"].at[:, 12, 0].set(1.0)  # input 12 = a_0
    heads["hidden_0"]["bias"] = heads["hidden_0"]["bias"].at[:, 0].set(2.0)
    heads["head"]["kernel"] = heads["head"]["kernel"].at[:, 0, 0].set(w)
    heads["head"]["bias"] = c[:, None]
    actor = jax.tree.map(jnp.zeros_like, state.params["actor"])
    actor["head"]["bias"] = jnp.array([0.5, 0.0, 0.0, -50.0, -50.0, -50.0])  # mean 0.5, log-std -> its minimum
    fixed = state.replace(params={**state.params, "actor": actor}, critic=state.critic.replace(params=heads))
    a0 = np.tanh(0.5)
    expected = np.clip(min(1.0 * (a0 + 2) - 2.0, -1.0 * (a0 + 2) + 3.0), 0, 1)  # min(0.462, 0.538)
    got = jax.jit(agent.p_success)(fixed, _obs(3), jax.random.PRNGKey(3))
    np.testing.assert_allclose(got, np.full(3, expected), atol=0.02)


# --- learning -------------------------------------------------------------------------------------------
def _batch(success, discount, reward=None):
    n = len(success)
    return {"obs": _obs(n, 4), "action": jax.random.uniform(jax.random.PRNGKey(5), (n, 3), minval=-1, maxval=1),
            "reward": jnp.asarray(success if reward is None else reward, jnp.float32),
            "discount": jnp.asarray(discount, jnp.float32), "next_obs": _obs(n, 6),
            "success": jnp.asarray(success, jnp.float32)}


def test_success_critic_step_loss_by_hand(agent, state):
    fixed = _with_success_heads(state, (0.3, 0.5))
    # rows 2 and 3 are truncations by the runner's rule (discount 0) yet still bootstrap in the success target
    batch = _batch([1.0, 0.0, 0.0, 1.0], [0.0, GAMMA, 0.0, 0.0])
    step = jax.jit(agent.success_critic_step)
    new, loss = step(fixed.critic, fixed.params["actor"], batch, jax.random.PRNGKey(7))
    target = np.array([1.0, GAMMA * 0.3, GAMMA * 0.3, 1.0])
    expected = np.mean(np.square(np.array([0.3, 0.5])[:, None] - target[None]))
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    assert not np.allclose(new.params["head"]["bias"], fixed.critic.params["head"]["bias"])


def test_terminated_from_the_runners_discount():
    agent = _agent()
    np.testing.assert_array_equal(agent.terminated(jnp.array([0.0, GAMMA])), [1.0, 0.0])
    env, params = envs.make("earl-tabletop")
    no_future = SACAgent(_cfg(gamma=0.0), env, params)
    np.testing.assert_array_equal(no_future.terminated(jnp.array([0.0, 0.0])), [0.0, 0.0])


def test_discount_reaches_sacs_target(agent, state):
    # constant SAC critics c (online and target), alpha ~ 0: y = 10 r + discount * c, loss = mean (c - y)^2
    c = 0.7
    critic = _constant(state.params["critic"], (c, c))
    fixed = state.replace(params={**state.params, "critic": critic}, target_critic=critic, log_alpha=jnp.float32(-30))
    learn = jax.jit(agent.learn, static_argnums=3)
    reward = np.array([1.0, 0.0, 1.0, 0.0], np.float32)
    for discount in (0.0, GAMMA):
        batch = _batch([0.0] * 4, [discount] * 4, reward)
        new, loss = learn(fixed, batch, jax.random.PRNGKey(8), False)
        expected = np.mean(np.square(c - (10.0 * reward + discount * c)))
        np.testing.assert_allclose(loss, expected, rtol=1e-4)
        assert jax.tree.all(jax.tree.map(jnp.array_equal, new.critic, fixed.critic))  # critic=False: untouched


# --- acting ---------------------------------------------------------------------------------------------
def test_act_is_uniform_before_learning_starts_then_the_policy(agent, state):
    keys = jax.random.split(jax.random.PRNGKey(9), 4000)
    obs = _obs()
    act = jax.jit(jax.vmap(agent.act, in_axes=(None, None, 0, None)))
    uniform = np.asarray(act(state, obs, keys, jnp.int32(agent.learning_starts - 1)))
    assert uniform.shape == (4000, 3) and uniform.min() >= -1 and uniform.max() <= 1
    assert uniform.min() < -0.99 and uniform.max() > 0.99
    np.testing.assert_allclose(uniform.mean(0), 0.0, atol=0.05)
    np.testing.assert_allclose(uniform.var(0), 1 / 3, atol=0.03)
    policy = np.asarray(act(state, obs, keys, jnp.int32(agent.learning_starts)))
    assert policy.min() >= -1 and policy.max() <= 1
    assert policy.var(0).max() < 0.15  # the initial actor: near tanh(0) with std e^-1.5
    assert len(np.unique(policy[:, 0])) > 100  # still a sample


def test_deploy_is_greedy_or_a_sample(agent, state):
    obs = _obs(2)
    deploy = jax.jit(agent.deploy)
    first, second = deploy(state, obs, jax.random.PRNGKey(1)), deploy(state, obs, jax.random.PRNGKey(2))
    np.testing.assert_array_equal(first, second)
    mean, _ = actor_mean_log_std(state.params["actor"], obs, "relu")
    np.testing.assert_allclose(first, np.tanh(mean), rtol=1e-6)
    sampler = _agent(eval_greedy=False)
    a, b = sampler.deploy(state, obs, jax.random.PRNGKey(1)), sampler.deploy(state, obs, jax.random.PRNGKey(2))
    assert not np.allclose(a, b)


# --- a short run ----------------------------------------------------------------------------------------
def test_tabletop_ci_runs_and_is_reproducible():
    # RISC exercises every piece (SAC, success critic, switches); fbrl's phases are the DQN runner tests' subject
    algorithm = "risc"
    cfg = dataclasses.replace(_cfg(), hidden_sizes=(32, 32), batch_size=32, learning_starts=200)
    rf = ResetFreeConfig(algorithm=algorithm, seeds=2).resolved(TASK, ci=True)
    runner = build_runner(TASK, rf, cfg)
    assert runner.periods == 2 and isinstance(runner.agent, SACAgent)

    start = runner.init_seeds()  # once: each init_seeds call traces and compiles its init again

    def run():
        carry, rows = start, []
        for _ in range(runner.periods):
            carry, metrics = runner.period(carry)
            rows.append({k: np.asarray(v) for k, v in jax.device_get(metrics).items()})
        return rows

    first, second = run(), run()
    for a, b in zip(first, second):
        for name, value in a.items():
            assert value.shape == (2,) and np.all(np.isfinite(value)), name
            np.testing.assert_array_equal(value, b[name], err_msg=name)
    assert list(first[-1]["steps"]) == [2_000, 2_000]
    assert np.all(first[-1]["td_loss"] > 0)  # SAC learned in the second period


def test_scripted_demonstrations_reach_both_goals_and_end_in_terminals():
    cfg = dataclasses.replace(_cfg(), hidden_sizes=(8,), batch_size=8, learning_starts=100)
    rf = ResetFreeConfig(algorithm="risc", seeds=1, demos=3).resolved(TASK, ci=True)
    runner = build_runner(TASK, rf, cfg)
    demo = jax.jit(runner._demonstrations)(jax.random.PRNGKey(0))
    steps = runner.demo_steps
    assert demo["obs"].shape == (3 * 2 * steps, 12)
    success = np.asarray(demo["success"]).reshape(3, 2, steps).astype(bool)
    assert success.any(axis=2).all()  # every forward and every backward demonstration reaches its goal
    goals = np.asarray(demo["obs"]).reshape(3, 2, steps, 12)[:, :, 0, 6:]
    np.testing.assert_allclose(goals[:, 1], [[0.0, 0.0, 2.5, 0.0, -1.0, -1.0]] * 3)  # back to the start
    discount = np.asarray(demo["discount"]).reshape(3, 2, steps)
    np.testing.assert_array_equal(discount[success], 0.0)  # reaching the goal is terminal
    assert np.allclose(discount[~success], rf_gamma := cfg.gamma) and rf_gamma > 0  # the last step only truncates
