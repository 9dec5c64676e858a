"""SAC: hand-checked losses and targets, the tanh-Gaussian density, the agent's update, tasks and
evaluation, determinism, a real learning run on Pendulum, and the ``metarl-train agent=sac`` job."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hydra import compose, initialize_config_dir

import envs
from envs.wrappers import Wrapper
from metarl.agents.policy import evaluate_policy
from metarl.agents.pytrees import strongly_typed
from metarl.agents.sac import SAC, SACConfig, policy_params
from metarl.agents import sac as sac_module
from envs.wrappers import AnyStepSuccess
from metarl.agents.sac_eval import evaluate_on_tasks
from metarl.agents.sac_loss import actor_loss, alpha_loss, critic_loss, polyak, soft_target
from metarl.agents.sac_networks import (critic_values, init_actor, init_critics, log1m_tanh_sq, sample_action,
                                        tanh_gaussian_log_prob)
from metarl.config import build_dataclass
from metarl.io.artifacts import find_artifact, read_header
from metarl.io.outputs import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = shutil.which("metarl-train", path=str(Path(sys.executable).parent)) or "metarl-train"
TINY = dict(num_envs=2, steps_per_update=8, gradient_steps=4, batch_size=16, buffer_size=256, learning_starts=32,
            total_timesteps=256, hidden_sizes=(16, 16))


@pytest.fixture(scope="module")
def pendulum():
    return envs.make("Pendulum-v1")


@pytest.fixture(scope="module")
def tiny(pendulum):
    """A tiny SAC on Pendulum with its jitted init and update (compiled once for the module)."""
    agent = SAC(SACConfig(**TINY), *pendulum)
    return agent, jax.jit(agent.init), jax.jit(agent.update)


def _numpy(x) -> np.ndarray:
    return np.asarray(jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x)


def _leaves_equal(a, b) -> bool:
    """Bit for bit (NaN equals NaN), leaf by leaf."""
    return all(_numpy(x).tobytes() == _numpy(y).tobytes() for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


# --- losses and targets, by hand ------------------------------------------------------------------
def test_soft_target_hand_computed():
    reward = jnp.array([1.0, 2.0, 3.0, 2.0])
    terminated = jnp.array([0.0, 1.0, 0.0, 0.0])  # the last one is the second one cut by a time limit instead
    next_q = jnp.array([[5.0, 1.0, 2.0, 1.0], [4.0, 3.0, 7.0, 3.0]])  # twin critics: the min is taken
    next_logp = jnp.array([-1.0, 0.5, 2.0, 0.5])
    y = soft_target(reward, terminated, next_q, next_logp, alpha=0.5, gamma=0.9, reward_scale=2.0)
    expected = [
        2 * 1 + 0.9 * (4 - 0.5 * -1),  # min(5, 4) = 4; the entropy bonus -alpha*logp = +0.5
        2 * 2,  # terminated: no bootstrap
        2 * 3 + 0.9 * (2 - 0.5 * 2),
        2 * 2 + 0.9 * (1 - 0.5 * 0.5),  # truncated (not terminated): still bootstraps
    ]
    np.testing.assert_allclose(y, expected, rtol=1e-6)
    assert math.isclose(expected[0], 6.05) and math.isclose(expected[3], 4.675)


def test_critic_loss_is_half_the_summed_mse_and_actor_loss_leaves_the_critics_alone():
    k_c, k_a, k_o = jax.random.split(jax.random.key(0), 3)
    critics = init_critics(k_c, 3, 2, (8,), layer_norm=True)
    actor = init_actor(k_a, 3, 2, (8,), layer_norm=False)
    obs, action = jax.random.normal(k_o, (5, 3)), jnp.full((5, 2), 0.3)
    target = jnp.arange(5.0)
    loss, q = critic_loss(critics, obs, action, target, "relu")
    assert q.shape == (2, 5)
    np.testing.assert_allclose(loss, 0.5 * (np.mean((q[0] - target) ** 2) + np.mean((q[1] - target) ** 2)), rtol=1e-6)
    noise = jnp.zeros((5, 2))
    grads = jax.grad(lambda c: actor_loss(actor, c, obs, noise, jnp.asarray(0.2), "relu")[0])(critics)
    assert all(np.all(np.asarray(g) == 0) for g in jax.tree.leaves(grads))
    a_loss, logp = actor_loss(actor, critics, obs, noise, jnp.asarray(0.2), "relu")
    sampled, _ = sample_action(*_mean_log_std(actor, obs), noise)
    np.testing.assert_allclose(a_loss, np.mean(0.2 * logp - np.min(critic_values(critics, obs, sampled, "relu"), 0)),
                               rtol=1e-5)


def _mean_log_std(actor, obs):
    from metarl.agents.sac_networks import actor_mean_log_std

    return actor_mean_log_std(actor, obs, "relu")


def test_polyak_hand_computed():
    target, online = {"w": jnp.array([0.0, 10.0])}, {"w": jnp.array([1.0, 0.0])}
    once = polyak(target, online, 0.1)
    np.testing.assert_allclose(once["w"], [0.1, 9.0], rtol=1e-6)
    np.testing.assert_allclose(polyak(once, online, 0.1)["w"], [0.19, 8.1], rtol=1e-6)


def test_alpha_grows_when_the_entropy_is_below_target_and_shrinks_above():
    log_alpha, target_entropy = jnp.log(0.5), -1.0
    low_entropy = jnp.array([3.0, 3.0])  # log pi = 3: entropy -3 < -1
    np.testing.assert_allclose(alpha_loss(log_alpha, low_entropy, target_entropy), -0.5 * (3 - 1), rtol=1e-6)
    grad = jax.grad(alpha_loss)(log_alpha, low_entropy, target_entropy)
    np.testing.assert_allclose(grad, -0.5 * (3 - 1), rtol=1e-6)  # d/dlog_alpha of -alpha (logp + H)
    assert float(log_alpha - 0.1 * grad) > float(log_alpha)  # a descent step raises alpha
    high_entropy = jnp.array([-3.0, -3.0])  # entropy 3 > -1
    assert float(jax.grad(alpha_loss)(log_alpha, high_entropy, target_entropy)) > 0  # a descent step lowers alpha


# --- the tanh-squashed Gaussian ---------------------------------------------------------------------
def test_tanh_gaussian_log_prob_matches_the_numerical_density():
    mean, std = 0.3, 0.7
    a = np.linspace(-0.995, 0.995, 801)
    logp = tanh_gaussian_log_prob(jnp.asarray(np.arctanh(a))[:, None], jnp.full((801, 1), mean),
                                  jnp.full((801, 1), np.log(std)))
    # P(A <= a) = Phi((atanh(a) - mean) / std); its derivative in a, by central differences in float64
    cdf = np.vectorize(lambda x: 0.5 * (1 + math.erf((np.arctanh(x) - mean) / (std * math.sqrt(2)))))
    h = 1e-5
    numerical = (cdf(a + h) - cdf(a - h)) / (2 * h)
    np.testing.assert_allclose(np.exp(np.asarray(logp, np.float64)), numerical, rtol=2e-3, atol=1e-6)
    assert abs(np.trapezoid(numerical, a) - 1) < 2e-3  # a density on (-1, 1)
    # independent entries: the log-prob of a vector is the sum over entries
    u = jnp.array([[0.2, -1.1]])
    two = tanh_gaussian_log_prob(u, jnp.array([[0.3, 0.0]]), jnp.array([[np.log(0.7), 0.0]]))
    one = [tanh_gaussian_log_prob(u[:, i:i + 1], jnp.array([[m]]), jnp.array([[s]]))
           for i, (m, s) in enumerate([(0.3, np.log(0.7)), (0.0, 0.0)])]
    np.testing.assert_allclose(two, one[0] + one[1], rtol=1e-6)


def test_squash_correction_is_stable_where_tanh_saturates():
    u = jnp.array([0.0, 1.0, 10.0, 30.0, -30.0])
    np.testing.assert_allclose(log1m_tanh_sq(u[:2]), np.log(1 - np.tanh([0.0, 1.0]) ** 2), rtol=1e-5)
    values = np.asarray(log1m_tanh_sq(u))
    assert np.all(np.isfinite(values)) and values[3] == pytest.approx(2 * (np.log(2) - 30), rel=1e-6)
    action, logp = sample_action(jnp.array([[40.0]]), jnp.array([[-5.0]]), jnp.array([[0.0]]))
    assert float(action[0, 0]) == 1.0 and np.isfinite(logp).all()


# --- the agent ----------------------------------------------------------------------------------
def test_time_limit_keeps_bootstrapping_from_the_final_observation():
    env, params = envs.make("Pendulum-v1", max_steps_in_episode=10)
    agent = SAC(SACConfig(**{**TINY, "num_envs": 1, "steps_per_update": 12, "total_timesteps": 240}), env, params)
    state = agent.init(jax.random.key(3))
    traj, *_ = jax.jit(agent.collect)(state, jax.random.key(4), jnp.asarray(True))
    ends = np.flatnonzero(np.asarray(traj["episode_end"][:, 0]))
    assert ends.tolist() == [9]  # the 10th step hits the time limit
    assert not np.asarray(traj["terminated"]).any()  # a time limit is a truncation: the target bootstraps
    obs, next_obs = np.asarray(traj["obs"][:, 0]), np.asarray(traj["next_obs"][:, 0])
    np.testing.assert_array_equal(next_obs[:9], obs[1:10])  # within an episode: the next observation
    assert not np.allclose(next_obs[9], obs[10])  # at the limit: the final observation, not the reset one
    assert np.all(np.abs(np.asarray(traj["action"])) <= 1)  # actions are stored in the tanh range


def test_no_learning_before_learning_starts_then_every_update(tiny):
    agent, init, update = tiny
    assert agent.config.learning_starts_update == 1 and agent.config.update_to_data == 0.25
    state = init(jax.random.key(0))
    first, metrics = update(state)
    assert int(metrics["gradient_steps"]) == 0 and np.isnan(metrics["critic_loss"])
    assert _leaves_equal(first.params, state.params) and _leaves_equal(first.target_critic, state.target_critic)
    assert int(first.buffer.size) == 16 and int(metrics["timesteps"]) == 16
    second, metrics = update(first)
    assert int(metrics["gradient_steps"]) == 4 and int(second.buffer.size) == 32
    for name in ("critic_loss", "actor_loss", "alpha_loss", "entropy", "q_mean", "alpha"):
        assert np.isfinite(metrics[name]), name
    assert not _leaves_equal(second.params, first.params)
    assert float(metrics["alpha"]) != 1.0


def test_gradient_step_moves_the_targets_by_polyak(tiny):
    agent, init, update = tiny
    state, _ = update(init(jax.random.key(1)))
    batch = jax.tree.map(lambda x: x[:16], state.buffer.data)
    learner = (state.params, state.target_critic, state.log_alpha, state.opt_state)
    (params, target, _, _), metrics = jax.jit(agent.gradient_step)(learner, batch, jax.random.key(2))
    expected = jax.tree.map(lambda t, c: 0.995 * t + 0.005 * c, state.target_critic, params["critic"])
    for got, want in zip(jax.tree.leaves(target), jax.tree.leaves(expected)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert set(metrics) == {"critic_loss", "actor_loss", "alpha_loss", "entropy", "q_mean"}


def test_same_key_same_run_and_vmap_over_seeds(tiny):
    agent, init, update = tiny

    def three_updates(key):
        state = init(key)
        for _ in range(3):
            state, _ = update(state)
        return state

    a, b, c = three_updates(jax.random.key(7)), three_updates(jax.random.key(7)), three_updates(jax.random.key(8))
    assert _leaves_equal(a, b)
    assert not _leaves_equal(a.params, c.params)
    keys = jax.random.split(jax.random.key(9), 2)
    states = jax.jit(jax.vmap(agent.init))(keys)
    states, metrics = jax.jit(jax.vmap(agent.update))(states)
    single, single_metrics = update(init(keys[1]))
    for got, want in zip(jax.tree.leaves(jax.tree.map(lambda x: x[1], states)), jax.tree.leaves(single)):
        np.testing.assert_allclose(_numpy(got).astype(np.float64), _numpy(want).astype(np.float64), rtol=1e-5,
                                   atol=1e-6)
    assert metrics["timesteps"].shape == (2,) and int(single_metrics["timesteps"]) == 16


def test_an_update_on_its_own_output_compiles_once(tiny):
    """Pendulum's reset state holds weakly typed scalars; init returns them strong, so the signature never changes."""
    agent, init, _ = tiny
    traces = []

    def counted(state):
        traces.append(None)  # runs once per trace
        return agent.update(state)

    update = jax.jit(counted)
    state = init(jax.random.key(0))
    for _ in range(3):
        state, _ = update(state)
    assert len(traces) == 1
    weak = jnp.asarray(0.5)  # a Python scalar turned array: weakly typed
    strong = strongly_typed({"x": weak, "n": jnp.zeros(2, jnp.int32)})
    assert weak.weak_type and not strong["x"].weak_type and strong["x"].dtype == weak.dtype
    assert float(strong["x"]) == 0.5 and strong["n"].dtype == jnp.int32


def test_periodic_reset_restarts_the_whole_learner_and_keeps_the_buffer(pendulum):
    """reset_every=3: updates 1 and 2 are plain SAC (update 0 only collects); after update 3 the learner is a fresh
    draw from that update's reset key, with the initial temperature and zeroed optimizers; update 4 learns again."""
    plain = SAC(SACConfig(**TINY), *pendulum)
    resetting = SAC(SACConfig(**{**TINY, "reset_every": 3}), *pendulum)
    init, step, step_plain = jax.jit(resetting.init), jax.jit(resetting.update), jax.jit(plain.update)
    state = plain_state = init(jax.random.key(3))
    for _ in range(2):
        state, _ = step(state)
        plain_state, _ = step_plain(plain_state)
    assert _leaves_equal(state, plain_state)  # nothing resets before the third update
    before = state
    state, _ = step(state)
    key_learn = jax.random.split(before.key, 3)[2]
    draw = jax.jit(lambda k: resetting.init_params(*jax.random.split(jax.random.fold_in(k, sac_module._RESET_STREAM))))
    fresh = draw(key_learn)  # under jit, as in the update (eager XLA may differ in the last bit)
    assert _leaves_equal(state.params, fresh) and _leaves_equal(state.target_critic, fresh["critic"])
    assert float(state.log_alpha) == 0.0  # log(init_alpha = 1)
    for net in ("actor", "critic", "alpha"):
        assert all(not np.any(_numpy(x)) for x in jax.tree.leaves(state.opt_state[net])), net  # counts and moments 0
    plain_third = step_plain(before)[0]
    assert _leaves_equal(state.buffer, plain_third.buffer) and _leaves_equal(state.env_state, plain_third.env_state)
    assert not _leaves_equal(plain_third.params, fresh)
    state, metrics = step(state)  # update 4: learns from the fresh learner and the old buffer
    assert int(metrics["gradient_steps"]) == 4 and not _leaves_equal(state.params, fresh)
    assert int(state.opt_state["critic"][0].count) == 4


def test_pink_noise_drives_the_acting_samples_and_is_renewed_at_each_episode_end(pendulum):
    """noise_exponent=1: each env's action is tanh(mean + std * its sequence at its step); a sequence is read one
    step per env step and replaced when the episode ends (Pendulum-v1: 200 steps) or the horizon runs out."""
    env, params = pendulum
    config = SACConfig(**{**TINY, "num_envs": 3, "steps_per_update": 50, "noise_exponent": 1.0})
    agent = SAC(config, env, params)
    assert agent.noise_horizon == 200  # Pendulum's episode length
    state = jax.jit(agent.init)(jax.random.key(0))
    assert state.noise.shape == (3, 1, 200) and np.all(np.asarray(state.noise_step) == 0)
    collect = jax.jit(agent.collect)
    traj, env_state, obs, (noise, step) = collect(state, jax.random.key(1), jnp.asarray(False))
    mean, log_std = jax.vmap(lambda o: sac_module.actor_mean_log_std(state.params["actor"], o, "relu", 0))(traj["obs"])
    want = jnp.tanh(mean + jnp.exp(log_std) * jnp.moveaxis(state.noise[:, :, :50], -1, 0))
    np.testing.assert_allclose(np.asarray(traj["action"]), np.asarray(want), atol=1e-5)
    assert np.all(np.asarray(step) == 50) and _leaves_equal(noise, state.noise)
    ended_before = False
    for i in range(4):  # steps 50..249: the episodes end after step 200
        traj, env_state, obs, (noise, step) = collect(
            state.replace(env_state=env_state, obs=obs, noise=noise, noise_step=step), jax.random.key(2 + i),
            jnp.asarray(False))
        ended_before |= bool(np.any(np.asarray(traj["episode_end"])))
    assert ended_before and np.all(np.asarray(step) == 50)  # 200 steps, renewed, 50 more
    assert not np.allclose(np.asarray(noise), np.asarray(state.noise))
    short = SAC(SACConfig(**{**TINY, "num_envs": 3, "steps_per_update": 50, "noise_exponent": 2.0,
                             "noise_horizon": 30}), env, params)
    _, _, _, (_, step) = jax.jit(short.collect)(jax.jit(short.init)(jax.random.key(0)), jax.random.key(1),
                                                 jnp.asarray(False))
    assert np.all(np.asarray(step) == 20)  # 50 steps = one 30-step sequence, then 20 of the next


def test_pink_noise_runs_are_deterministic_and_white_noise_keeps_no_noise_state(tiny, pendulum):
    pink = SAC(SACConfig(**{**TINY, "noise_exponent": 1.0}), *pendulum)
    init, update = jax.jit(pink.init), jax.jit(pink.update)

    def run(key):
        state = init(key)
        for _ in range(3):
            state, _ = update(state)
        return state

    a, b = run(jax.random.key(5)), run(jax.random.key(5))
    assert _leaves_equal(a, b) and a.noise is not None
    white = tiny[1](jax.random.key(5))
    assert white.noise is None and white.noise_step is None


def test_task_set_draws_a_uniform_task_at_every_reset(pendulum):
    env, params = pendulum
    tasks = envs.stack_tasks([params.replace(max_steps_in_episode=5), params.replace(max_steps_in_episode=15)])
    config = SACConfig(**{**TINY, "num_envs": 8, "steps_per_update": 60, "total_timesteps": 960, "buffer_size": 512})
    agent = SAC(config, env, params, task_set=tasks)
    assert agent.eval_tasks is tasks  # evaluation defaults to the training task set
    drawn = jax.jit(jax.vmap(agent.draw_tasks))(jax.random.split(jax.random.key(0), 100))  # [100 draws, 8 envs]
    assert set(np.unique(drawn.max_steps_in_episode)) == {5, 15}
    assert abs(np.mean(np.asarray(drawn.max_steps_in_episode) == 5) - 0.5) < 0.06
    traj, *_ = jax.jit(agent.collect)(jax.jit(agent.init)(jax.random.key(1)), jax.random.key(2), jnp.asarray(True))
    ended = np.asarray(traj["episode_end"])
    lengths = np.asarray(traj["episode_length"])[ended]
    assert set(np.unique(lengths)) == {5, 15}  # every episode runs one task's time limit
    per_env = [set(np.asarray(traj["episode_length"])[:, e][ended[:, e]]) for e in range(8)]
    assert any(len(s) == 2 for s in per_env)  # envs switch tasks between episodes


def test_a_class_major_task_set_gives_each_class_its_own_envs():
    from envs.manipulation import benchmarks

    bench = dataclasses.replace(benchmarks.MT10(), goals_per_class=3)
    env, tasks = bench.train_env(), bench.train_tasks()  # 10 classes x 3 goals, class-major
    classes = np.asarray(tasks.task_id[::3])
    for num_envs, grouped in ((20, True), (16, False)):  # 16 envs cannot give 10 classes equal shares
        config = SACConfig(**{**TINY, "num_envs": num_envs})
        agent = SAC(config, env, jax.tree.map(lambda x: x[0], tasks), task_set=tasks)
        drawn = np.asarray(jax.jit(jax.vmap(agent.draw_tasks))(jax.random.split(jax.random.key(0), 200)).task_id)
        if grouped:
            assert agent.task_groups == 10
            np.testing.assert_array_equal(drawn, np.broadcast_to(np.repeat(classes, 2), drawn.shape))
        else:
            assert agent.task_groups == 1
            assert len(set(drawn[:, 0].tolist())) == 10  # one env visits every class
    shuffled = jax.tree.map(lambda x: x[np.random.RandomState(0).permutation(30)], tasks)
    assert SAC(SACConfig(**{**TINY, "num_envs": 20}), env, jax.tree.map(lambda x: x[0], tasks),
               task_set=shuffled).task_groups == 1


class _SuccessAtThirdStep(Wrapper):
    """Pendulum with ``info["success"]`` true only on the third step of an episode."""

    def step(self, key, state, action, params=None):
        obs, new_state, reward, terminated, truncated, info = self._env.step(key, state, action, params)
        return obs, new_state, reward, terminated, truncated, {**info, "success": state.time == 2}


def test_evaluation_counts_success_at_any_step(tiny, pendulum):
    agent, init, _ = tiny
    env, params = pendulum
    short = params.replace(max_steps_in_episode=10)
    act, pp = agent.policy(greedy=True), policy_params(init(jax.random.key(0)))
    flashing = _SuccessAtThirdStep(env)
    at_end = evaluate_policy(act, pp, flashing, short, jax.random.key(1), 4)
    assert not np.asarray(at_end["success"]).any()  # success read at the last step only
    anywhere = evaluate_policy(act, pp, AnyStepSuccess(flashing), short, jax.random.key(1), 4)
    assert np.asarray(anywhere["success"]).all()
    np.testing.assert_array_equal(anywhere["return"], at_end["return"])
    two_tasks = envs.stack_tasks([short, short.replace(g=5.0)])
    out = jax.jit(lambda p: evaluate_on_tasks(act, p, flashing, two_tasks, jax.random.key(2), 3))(pp)
    assert float(out["eval_success"]) == 1.0 and np.isfinite(out["eval_return"])
    assert set(agent.evaluate(init(jax.random.key(0)))) == {"eval_return", "eval_success"}


def test_policy_api_greedy_is_tanh_of_the_mean(tiny):
    agent, init, _ = tiny
    state = init(jax.random.key(0))
    obs = jax.random.normal(jax.random.key(1), (5, 3))
    greedy = agent.policy(greedy=True)(agent.policy_params(state), obs, jax.random.key(2))
    mean, _ = _mean_log_std(state.params["actor"], obs)
    assert greedy.shape == (5, 1)
    np.testing.assert_allclose(greedy, 2.0 * np.tanh(mean), rtol=1e-6)  # Pendulum's torque box is [-2, 2]
    act = agent.policy(greedy=False)
    a, b = act(agent.policy_params(state), obs, jax.random.key(3)), act(agent.policy_params(state), obs, jax.random.key(4))
    assert np.all(np.abs(a) <= 2) and not np.allclose(a, b)
    assert set(agent.policy_params(state)) == {"actor"}


def test_config_checks_one_line_each(pendulum):
    cartpole = envs.make("CartPole-v1")
    config = SACConfig(**TINY)
    assert config.num_updates == 16 and config.resolved("critic") == config.lr
    assert SACConfig(lr=1e-3, alpha_lr=1e-2).resolved("alpha") == 1e-2
    rows = [
        (lambda: config.validate(*cartpole), "agent.name=sac needs a continuous (Box) action space; CartPole-v1"),
        (lambda: SACConfig(**{**TINY, "batch_size": 512}).validate(), "agent.batch_size=512 is larger than"),
        (lambda: SACConfig(**{**TINY, "buffer_size": 8, "batch_size": 8}).validate(), "agent.buffer_size=8 is smaller"),
        (lambda: SACConfig(**{**TINY, "learning_starts": 10_000}).validate(), "agent.learning_starts=10000"),
        (lambda: SACConfig(**{**TINY, "total_timesteps": 8}).validate(), "agent.total_timesteps=8 is less"),
        (lambda: build_dataclass(SACConfig, {"lr": float("nan")}, "agent"), "agent.lr must be a finite number"),
        (lambda: build_dataclass(SACConfig, {"taus": 0.1}, "agent"), "agent.taus is not a setting (did you mean tau"),
        (lambda: build_dataclass(SACConfig, {"layer_norm": 1}, "agent"), "agent.layer_norm must be true or false"),
        (lambda: SACConfig(tau=0.0), "SACConfig.tau must be in (0, 1]"),
        (lambda: build_dataclass(SACConfig, {"reset_every": -5}, "agent"), "agent.reset_every must be"),
        (lambda: build_dataclass(SACConfig, {"noise_exponent": -1.0}, "agent"), "agent.noise_exponent must be"),
        (lambda: build_dataclass(SACConfig, {"noise_exponent": float("nan")}, "agent"),
         "agent.noise_exponent must be a finite number"),
        (lambda: build_dataclass(SACConfig, {"noise_horizon": 1}, "agent"), "agent.noise_horizon must be"),
    ]
    for make, message in rows:
        with pytest.raises(ValueError) as info:
            make()
        assert message in str(info.value) and "\n" not in str(info.value), str(info.value)


# --- learning -------------------------------------------------------------------------------------
def test_sac_learns_pendulum(pendulum):
    """Two seeds, 8k env steps at UTD 1 with 64x64 nets: greedy return far above random (about -1200)."""
    config = SACConfig(num_envs=4, steps_per_update=16, gradient_steps=64, batch_size=256, buffer_size=10_000,
                       learning_starts=1000, total_timesteps=8000, hidden_sizes=(64, 64), lr=1e-3, eval_episodes=10)
    agent = SAC(config, *pendulum)
    states = jax.jit(jax.vmap(agent.init))(jax.random.split(jax.random.key(0), 2))
    evaluate = jax.jit(jax.vmap(agent.evaluate))
    before = np.asarray(evaluate(states)["eval_return"])
    states, metrics = jax.jit(jax.vmap(lambda s: agent.run(s, config.num_updates)))(states)
    after = np.asarray(evaluate(states)["eval_return"])
    print(f"greedy return before {before}, after {after}; alpha {np.asarray(metrics['alpha'][:, -1])}")
    assert np.all(before < -900)
    assert np.all(after > -400), after
    assert np.all(np.asarray(metrics["timesteps"][:, -1]) == 8000)


# --- the train job --------------------------------------------------------------------------------
def _compose(overrides: list[str]):
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base=None):
        return compose("train", overrides=overrides)


JOB_TINY = ["agent=sac", "env=pendulum", "+env.overrides.max_steps_in_episode=50", "agent.total_timesteps=384", "agent.num_envs=2", "agent.steps_per_update=32",
            "agent.gradient_steps=4", "agent.batch_size=16", "agent.learning_starts=128", "agent.hidden_sizes=[8,8]",
            "agent.buffer_size=512", "agent.eval_every=2", "agent.eval_episodes=1", "progress=false"]


def test_agent_names_keys_and_task_sets(monkeypatch):
    from metarl.jobs.train import build_agent_config, build_env, check_optimizer_use

    name, config = build_agent_config(_compose(["env=pendulum"]).agent)
    assert name == "ppo" and config.num_steps == 64  # no name: PPO, as before
    name, config = build_agent_config(_compose(["agent=sac", "env=pendulum"]).agent)
    assert name == "sac" and isinstance(config, SACConfig)
    assert (config.lr, config.gamma, config.num_envs, config.buffer_size) == (3e-3, 0.9, 16, 1_000_000)  # shared keys
    with pytest.raises(ValueError, match=r"^unknown agent 'foo' \(valid: ppo, sac\)$"):
        build_agent_config(_compose(["agent=sac", "agent.name=foo"]).agent)
    with pytest.raises(ValueError, match=r"^agent\.clip_epss is not a setting"):
        build_agent_config(_compose(["agent=sac", "+agent.clip_epss=0.1"]).agent)
    with pytest.raises(ValueError, match=r"^optimizer=sgd: agent=sac uses its own Adam"):
        check_optimizer_use("sac", ["agent=sac", "optimizer=sgd"])
    check_optimizer_use("ppo", ["optimizer=sgd"])

    with pytest.raises(ValueError, match=r"^env\.tasks \(a task set\) needs agent=sac"):
        build_env({"name": "Pendulum-v1", "tasks": "ML1:reach-v3:train"}, "ppo")
    _, params = envs.make("Pendulum-v1")
    seen = []

    def benchmark_tasks(spec):
        seen.append(spec)
        return envs.stack_tasks([params.replace(g=g) for g in (8.0, 10.0, 12.0)])

    monkeypatch.setattr(envs, "benchmark_tasks", benchmark_tasks, raising=False)
    _, env, env_params, tasks = build_env({"name": "Pendulum-v1", "tasks": "A:train", "eval_tasks": "A:test"}, "sac")
    assert seen == ["A:train", "A:test"] and np.asarray(tasks["eval_tasks"].g).tolist() == [8.0, 10.0, 12.0]
    with pytest.raises(ValueError, match=r"^env\.tasks='A' is not a batch of EnvParams for CartPole-v1"):
        build_env({"name": "CartPole-v1", "tasks": "A"}, "sac")
    agent = SAC(SACConfig(**TINY), env, env_params, task_set=tasks["tasks"], eval_tasks=tasks["eval_tasks"])
    assert agent.task_set is tasks["tasks"] and agent.eval_tasks is tasks["eval_tasks"]


def test_benchmark_splits_reach_the_agent_and_a_foreign_split_is_refused():
    from metarl.jobs.train import build_env

    cfg = _compose(["agent=sac", "env=manipulation", "env.name=push-v3"]).env
    _, env, _, tasks = build_env(cfg, "sac")
    train, test = tasks["tasks"], tasks["eval_tasks"]
    assert train.goal.shape == test.goal.shape == (50, 3) and env.task_names == ("push",)
    assert not set(map(tuple, np.asarray(train.goal).tolist())) & set(map(tuple, np.asarray(test.goal).tolist()))
    agent = SAC(SACConfig(**TINY), env, env.default_params, task_set=train, eval_tasks=test)
    state = agent.init(jax.random.key(0))
    drawn = np.asarray(state.env_state.env_state.task.goal)  # each env's first task comes from the train split
    assert all(tuple(g) in set(map(tuple, np.asarray(train.goal).tolist())) for g in drawn.tolist())
    with pytest.raises(ValueError, match=r"env\.tasks='MT1:reach-v3:train': task 0 does not fit push-v3"):
        build_env(_compose(["agent=sac", "env=manipulation", "env.name=push-v3",
                            "env.tasks=MT1:reach-v3:train"]).env, "sac")


@pytest.fixture(scope="module")
def sac_runs(tmp_path_factory) -> dict[str, Path]:
    """Through the installed script, from another directory: a run in two chunks (``checkpoint_every=3``) and
    the same run resumed after its first checkpoint.

    The runs share a compilation cache: the resumed run compiles nothing the two-chunk one did not.
    """
    tmp = tmp_path_factory.mktemp("sac_runs")
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "JAX_COMPILATION_CACHE_DIR": str(tmp / "jax_cache"),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
    runs = {name: tmp / name for name in ("chunked", "resumed")}

    def train(run_dir: Path, *args: str) -> subprocess.CompletedProcess:
        result = subprocess.run([SCRIPT, *JOB_TINY, "seeds=2", *args, f"hydra.run.dir={run_dir}"], cwd=tmp, env=env,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    (tmp / "chunked.out").write_text(train(runs["chunked"], "checkpoint_every=3").stdout)
    shutil.copytree(runs["chunked"], runs["resumed"])
    shutil.rmtree(runs["resumed"] / "checkpoints" / "6")  # as if killed after the first chunk's checkpoint
    shutil.rmtree(runs["resumed"] / "checkpoint")
    train(runs["resumed"], "checkpoint_every=3", "resume=true")
    return runs


def test_installed_script_writes_every_output_and_resumes_bit_for_bit(sac_runs):
    """One test for both checks, so the three runs are built once (two tests would build them on two workers)."""
    from metarl.io.checkpoint import ESCheckpointer
    from metarl.jobs.train import build_agent_config

    run = sac_runs["chunked"]
    stdout = (run.parent / "chunked.out").read_text()
    assert "greedy eval at update 5" in stdout and f"wrote {run}" in stdout and "final return -" in stdout
    for name in ("config.yaml", "metrics.jsonl", "learning_curve.png", "checkpoint", "policy_checkpoint.json"):
        assert (run / name).exists(), name
    assert "name: sac" in (run / "config.yaml").read_text()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(r["update"], r["seed"]) for r in rows] == [(u, s) for u in range(6) for s in range(2)]
    assert rows[-1]["timesteps"] == 384 and rows[0]["critic_loss"] is None and rows[-1]["critic_loss"] is not None
    assert rows[-1]["episode_length"] == 50 and rows[-1]["episode_return"] < 0
    assert [r["eval_return"] is not None for r in rows[::2]] == [False, True, False, True, False, True]
    header = read_header(find_artifact(run))
    assert header["kind"] == "policy_checkpoint" and header["name"] == "sac"
    assert header["config"]["steps_per_update"] == 32 and "num_steps" not in header["config"]
    actor = load_checkpoint(run / "checkpoint")["actor"]
    assert np.asarray(actor["hidden_0"]["kernel"]).shape == (2, 3, 8)  # both seeds' actors
    assert (run / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"

    # resumed after the first chunk: the uninterrupted run's bits (that the chunk length does not change a run is
    # PPO's test_run_in_segments_equals_one_run; both agents run the job's same chunk loop)
    expected, got = (load_checkpoint(sac_runs[name] / "checkpoint") for name in ("chunked", "resumed"))
    assert jax.tree.structure(got) == jax.tree.structure(expected)
    assert _leaves_equal(got, expected)
    assert (sac_runs["resumed"] / "metrics.jsonl").read_text() == (run / "metrics.jsonl").read_text()
    # the checkpoint holds the whole state, replay buffer included
    _, config = build_agent_config(_compose(JOB_TINY).agent)
    agent = SAC(config, *envs.make("Pendulum-v1"))
    template = jax.eval_shape(jax.vmap(agent.init), jax.random.split(jax.random.key(0), 2))
    checkpointer = ESCheckpointer(sac_runs["chunked"] / "checkpoints")
    try:
        done, state, _ = checkpointer.restore(template, 3)
    finally:
        checkpointer.close()
    assert done == 3 and np.asarray(state.buffer.size).tolist() == [192, 192]
    assert np.asarray(state.update_step).tolist() == [3, 3]
