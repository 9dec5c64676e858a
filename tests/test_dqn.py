"""DQN: hand-computed TD targets, losses and first Adam step (plain and double), the target schedule, epsilon,
epsilon-greedy actions, terminal vs truncated discounts in the env loop, a real learning run on a small
gridworld, determinism and config errors."""

from __future__ import annotations

import dataclasses
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.gridworld import GridWorld
from envs.gridworld_levels import Level, ObjType, params_from_level
from envs.wrappers import LogWrapper
from metarl.agents import dqn
from metarl.agents.dqn import DQNConfig
from metarl.agents.policy import evaluate_policy
from metarl.config import build_dataclass

RIGHT = 3  # GridWorld's actions: up, down, left, right, no-op
GRID = dict(max_grid_size=6, max_n_objs=3, max_n_obj_types=3)  # the smallest padding GridWorld(level="small") takes
GOAL, TRAP = ObjType(1.0, 1.0, 0.0), ObjType(-1.0, 1.0, 0.0)  # reward, P(terminate | collected), P(respawn)
# 5x5 room: start top-left, +1 goal bottom-right (8 steps), -1 trap top-right; both end the episode; 20-step limit
ROOM = Level(5, 20, (GOAL, TRAP), ((0, (4, 4)), (1, (0, 4))), start=(0, 0))
OPTIMAL_LENGTH = 8


@pytest.fixture(scope="module")
def gridworld():
    return GridWorld(level="small", **GRID)


def _linear(kernel, bias=None) -> dict:
    """Hand-set parameters of a linear Q function (``hidden_sizes=()``)."""
    kernel = jnp.asarray(kernel, jnp.float32)
    bias = jnp.zeros(kernel.shape[1], jnp.float32) if bias is None else jnp.asarray(bias, jnp.float32)
    return {"head": {"kernel": kernel, "bias": bias}}


def _bits(tree) -> list[bytes]:
    return [np.asarray(x).tobytes() for x in jax.tree.leaves(tree)]


# --- TD targets, loss and one gradient step by hand ---------------------------------------------------------
ONLINE = _linear([[1.0, 0.0, 2.0], [0.0, 1.0, -1.0]])
TARGET = _linear([[0.5, 1.0, 0.0], [2.0, 0.0, 1.0]])
BATCH = {
    "obs": jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),  # online Q: [1, 0, 2], [0, 1, -1], [1, 1, 1]
    "action": jnp.array([2, 0, 1], jnp.int32),  # so Q(obs, action) = 2, 0, 1
    "reward": jnp.array([1.0, 0.0, 0.5]),
    "discount": jnp.array([0.9, 0.0, 0.9]),  # the second transition is terminal
    "next_obs": jnp.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]),
    # target Q(next): [2, 0, 1], [.5, 1, 0], [2.5, 1, 1]; online Q(next): [0, 1, -1], [1, 0, 2], [1, 1, 1]
}
# DQN: max of the target net: 1 + .9 * 2 = 2.8; terminal: 0; .5 + .9 * 2.5 = 2.75
DQN_TD = [2.8 - 2, 0.0 - 0, 2.75 - 1]
# double DQN: the online net picks (actions 1, 2, 0 - a tie goes to the first), the target net values them:
# 1 + .9 * 0 = 1; terminal: 0 (whatever was picked); .5 + .9 * 2.5 = 2.75
DOUBLE_TD = [1.0 - 2, 0.0 - 0, 2.75 - 1]


def _huber(x, delta=1.0):
    x = abs(x)
    return 0.5 * x * x if x <= delta else delta * (x - 0.5 * delta)


@pytest.mark.parametrize("double, td", [(False, DQN_TD), (True, DOUBLE_TD)])
def test_td_errors_and_loss_match_hand_computed(double, td):
    errors, q_taken = dqn.td_errors(ONLINE, TARGET, BATCH, double)
    np.testing.assert_allclose(errors, td, rtol=1e-6)
    np.testing.assert_allclose(q_taken, [2.0, 0.0, 1.0])
    cfg = DQNConfig(hidden_sizes=(), double_dqn=double, lr=0.01)
    learner = dqn.DQNLearner(ONLINE, TARGET, dqn.optimizer(cfg).init(ONLINE), jnp.zeros((), jnp.int32))
    _, metrics = jax.jit(dqn.learn, static_argnames="cfg")(learner, BATCH, cfg)
    expected_loss = np.mean([_huber(x) for x in td])  # DQN: (.32 + 0 + 1.25) / 3; double: (.5 + 0 + 1.25) / 3
    assert expected_loss == pytest.approx(0.52333333 if not double else 0.58333333)
    assert float(metrics["loss"]) == pytest.approx(expected_loss, rel=1e-6)
    assert float(metrics["q_mean"]) == pytest.approx(1.0)
    assert float(metrics["td_abs"]) == pytest.approx(np.mean(np.abs(td)), rel=1e-6)


def test_first_adam_step_moves_the_taken_actions_toward_their_targets():
    """d loss / d Q(o_i, a_i) = -clip(td_i, -1, 1) / B; Adam's first step is -lr * sign(gradient) entry by entry
    (zero where the gradient is exactly zero); global-norm clipping at 10 leaves this small gradient alone."""
    cfg = DQNConfig(hidden_sizes=(), double_dqn=False, lr=0.01)
    learner = dqn.DQNLearner(ONLINE, TARGET, dqn.optimizer(cfg).init(ONLINE), jnp.zeros((), jnp.int32))
    new, metrics = dqn.learn(learner, BATCH, cfg)
    clipped = np.clip(DQN_TD, -1.0, 1.0)  # [.8, 0, 1]
    grad_kernel, grad_bias = np.zeros((2, 3)), np.zeros(3)
    for obs, action, c in zip(np.asarray(BATCH["obs"]), np.asarray(BATCH["action"]), clipped):
        grad_kernel[:, action] -= c * obs / 3
        grad_bias[action] -= c / 3
    assert float(metrics["grad_norm"]) == pytest.approx(np.sqrt(np.sum(grad_kernel**2) + np.sum(grad_bias**2)),
                                                        rel=1e-5)
    np.testing.assert_allclose(new.params["head"]["kernel"], ONLINE["head"]["kernel"] - 0.01 * np.sign(grad_kernel),
                               atol=1e-6)
    np.testing.assert_allclose(new.params["head"]["bias"], -0.01 * np.sign(grad_bias), atol=1e-6)
    assert int(new.gradient_steps) == 1


def test_learn_vmaps_over_batches():
    """Two batches side by side: the one above, and the same with every discount 0 (rewards only):
    td = reward - Q = [-1, 0, -.5] -> Huber [.5, 0, .125]."""
    cfg = DQNConfig(hidden_sizes=(), double_dqn=True)
    learner = dqn.DQNLearner(ONLINE, TARGET, dqn.optimizer(cfg).init(ONLINE), jnp.zeros((), jnp.int32))
    no_bootstrap = {**BATCH, "discount": jnp.zeros(3)}
    batches = jax.tree.map(lambda a, b: jnp.stack([a, b]), BATCH, no_bootstrap)
    learners = jax.tree.map(lambda x: jnp.stack([x, x]), learner)
    _, metrics = jax.jit(jax.vmap(lambda lrn, b: dqn.learn(lrn, b, cfg)))(learners, batches)
    np.testing.assert_allclose(metrics["loss"], [1.75 / 3, 0.625 / 3], rtol=1e-6)


def test_target_network_hard_copy_and_polyak_schedule():
    batch = {**BATCH, "discount": jnp.zeros(3)}
    hard = DQNConfig(hidden_sizes=(), target_update_every=2)
    learner = dqn.DQNLearner(ONLINE, TARGET, dqn.optimizer(hard).init(ONLINE), jnp.zeros((), jnp.int32))
    one, _ = dqn.learn(learner, batch, hard)
    assert _bits(one.target_params) == _bits(TARGET)  # one gradient step: not due yet
    two, _ = dqn.learn(one, batch, hard)
    assert _bits(two.target_params) == _bits(two.params) and _bits(two.params) != _bits(one.params)

    soft = DQNConfig(hidden_sizes=(), target_update_every=1, tau=0.25)
    stepped, _ = dqn.learn(learner, batch, soft)
    jax.tree.map(lambda t, p, old: np.testing.assert_allclose(t, 0.25 * p + 0.75 * old, rtol=1e-6),
                 stepped.target_params, stepped.params, TARGET)


def test_init_learner_and_q_values_shapes():
    cfg = DQNConfig(hidden_sizes=(8, 8), layer_norm=True)
    learner = dqn.init_learner(jax.random.key(0), 7, 4, cfg)
    assert _bits(learner.params) == _bits(learner.target_params) and int(learner.gradient_steps) == 0
    assert dqn.q_values(learner.params, jnp.ones((2, 3, 7))).shape == (2, 3, 4)
    assert dqn.q_values(learner.params, jnp.ones(7)).shape == (4,)


# --- exploration ---------------------------------------------------------------------------------------------
def test_epsilon_schedule():
    cfg = DQNConfig(epsilon_start=1.0, epsilon_end=0.1, epsilon_decay_steps=10_000)
    for step, expected in ((0, 1.0), (2_500, 0.775), (5_000, 0.55), (10_000, 0.1), (25_000, 0.1)):
        assert float(dqn.epsilon_at(cfg, step)) == pytest.approx(expected, abs=1e-6)
    traced = jax.jit(jax.vmap(lambda t: dqn.epsilon_at(cfg, t)))(jnp.array([0, 5_000, 10_000, 10**6]))
    np.testing.assert_allclose(traced, [1.0, 0.55, 0.1, 0.1], atol=1e-6)
    assert float(dqn.epsilon_at(dataclasses.replace(cfg, epsilon_decay_steps=0), 0)) == pytest.approx(0.1)


def test_act_is_greedy_at_epsilon_zero_and_uniform_at_one():
    params = _linear(np.eye(5)[:, ::-1] * 2.0, np.arange(5) * 0.1)  # obs e_i -> best action 4 - i
    obs = jnp.eye(5)[jnp.arange(1000) % 5]
    keys = jax.random.split(jax.random.key(0), 1000)
    greedy = jax.jit(jax.vmap(dqn.act, in_axes=(None, 0, 0, None)))(params, obs, keys, 0.0)
    assert greedy.dtype == jnp.int32
    np.testing.assert_array_equal(greedy, 4 - np.arange(1000) % 5)
    assert int(dqn.act(params, jnp.eye(5)[1], jax.random.key(1), 0.0)) == 3  # a single observation

    many = jnp.tile(jnp.eye(5)[:1], (20_000, 1))  # the greedy action is always 4; batched directly
    uniform = np.asarray(dqn.act(params, many, jax.random.key(2), 1.0))
    np.testing.assert_allclose(np.bincount(uniform, minlength=5) / 20_000, 0.2, atol=0.015)
    half = np.asarray(dqn.act(params, many, jax.random.key(3), 0.5))
    assert np.mean(half == 4) == pytest.approx(0.5 + 0.5 / 5, abs=0.015)  # greedy, or random and lucky


# --- discounts: a terminal step does not bootstrap, a time limit does ---------------------------------------
def test_bootstrap_discount():
    np.testing.assert_allclose(dqn.bootstrap_discount(0.95, jnp.array([False, True])), [0.95, 0.0])


def test_env_loop_stores_zero_discount_only_for_termination(gridworld):
    """Env 0 steps right onto a terminating goal; env 1 reaches its 2-step time limit. Both episodes end and
    reset, but only the terminal one gets discount 0; the truncated one keeps gamma and its ``next_obs`` is
    the observation the step reached (cell 2, time 2), not the reset observation."""
    terminal = Level(5, 20, (GOAL,), ((0, (0, 1)),), start=(0, 0))
    truncated = Level(5, 2, (GOAL,), ((0, (4, 4)),), start=(0, 0))
    tasks = jax.tree.map(lambda *x: jnp.stack(x), params_from_level(terminal, **GRID),
                         params_from_level(truncated, **GRID))
    cfg = DQNConfig(gamma=0.9, epsilon_start=0.0, epsilon_end=0.0)
    always_right = _linear(np.zeros((gridworld.obs_size, 5)), np.eye(5)[RIGHT])
    log_env = LogWrapper(gridworld)
    obs, env_state = jax.vmap(log_env.reset)(jax.random.split(jax.random.key(0), 2), tasks)
    step = jax.jit(lambda s, o, k, t: dqn.collect_step(log_env, tasks, cfg, always_right, s, o, k, t))
    (env_state, obs), first = step(env_state, obs, jax.random.key(1), 0)
    np.testing.assert_array_equal(first["episode_end"], [1.0, 0.0])
    np.testing.assert_allclose(first["discount"], [0.0, 0.9])  # terminated; env 1's time limit is not reached yet
    np.testing.assert_allclose(first["reward"], [1.0, 0.0])
    (env_state, obs), second = step(env_state, obs, jax.random.key(2), 2)
    np.testing.assert_array_equal(second["episode_end"], [1.0, 1.0])  # env 0 again; env 1 by its time limit
    np.testing.assert_allclose(second["discount"], [0.0, 0.9])  # ... and env 1 still bootstraps
    np.testing.assert_array_equal(second["action"], [RIGHT, RIGHT])
    with_goal = gridworld.num_cells  # tabular observations: one-hot of cell + num_cells * (goal still there)
    reached = np.asarray(second["next_obs"][1])
    assert np.argmax(reached[:-1]) == with_goal + 2 and reached[-1] == pytest.approx(0.002)  # cell (0, 2), time 2
    assert np.argmax(np.asarray(obs[1])[:-1]) == with_goal and float(obs[1][-1]) == 0.0  # the loop goes on from reset


# --- a real learning run, determinism ---------------------------------------------------------------------
LEARN = dict(lr=1e-3, gamma=0.9, batch_size=32, buffer_size=4_000, learning_starts=200, num_envs=4,
             total_timesteps=5_000, target_update_every=50, epsilon_decay_steps=2_000, hidden_sizes=(32,),
             log_interval=1_000)


@pytest.fixture(scope="module")
def learning_run(gridworld):
    """Two seeds of DQN (vmapped) on ROOM, then 4 greedy and 500 uniformly random episodes each; the jitted
    program is returned too, so the determinism test reuses it."""
    room = params_from_level(ROOM, **GRID)
    train = dqn.make_train(gridworld, room, DQNConfig(**LEARN))

    def run(keys):
        learners, metrics = jax.vmap(train)(keys)
        score = lambda p, k, eps, n: evaluate_policy(dqn.policy(eps), p, gridworld, room, k, n)  # noqa: E731
        greedy = jax.vmap(lambda p, k: score(p, k, 0.0, 4))(learners.params, keys)
        random = jax.vmap(lambda p, k: score(p, k, 1.0, 500))(learners.params, keys)
        return learners, metrics, greedy, random

    program = jax.jit(run)
    keys = jax.random.split(jax.random.key(0), 2)
    return program, keys, program(keys)


def test_dqn_learns_a_small_gridworld(learning_run):
    _, _, (learners, metrics, greedy, random) = learning_run
    random_return = float(np.mean(random["return"]))
    assert random_return < 0.2  # the uniform policy mostly times out (reaches the goal ~3%, the trap ~10%)
    # the optimum is 1 in 8 steps; each seed's greedy policy must reach the goal by the shortest path (+2 slack)
    np.testing.assert_allclose(greedy["return"], 1.0)
    assert np.all(np.asarray(greedy["length"]) <= OPTIMAL_LENGTH + 2), greedy["length"]
    # training metrics: one row per 1000 env steps, the last rows near the optimum despite epsilon 0.1
    assert metrics["episode_return"].shape == (2, 5)
    assert np.all(np.asarray(metrics["episode_return"][:, -1]) > 0.5)
    np.testing.assert_array_equal(metrics["timesteps"][0], [1000, 2000, 3000, 4000, 5000])
    np.testing.assert_allclose(metrics["epsilon"][0], [0.55, 0.1, 0.1, 0.1, 0.1], atol=1e-6)
    # 250 iterations of 4 env steps per row, learning from 200 env steps on: 200 + 250 + ... gradient steps
    np.testing.assert_array_equal(metrics["gradient_steps"][0], [201, 451, 701, 951, 1201])
    assert np.all(np.isfinite(np.asarray(metrics["loss"])))
    np.testing.assert_array_equal(learners.gradient_steps, [1201, 1201])


def test_same_key_same_run_and_other_keys_differ(learning_run):
    program, keys, first = learning_run
    again = program(keys)
    assert _bits(first) == _bits(again)
    learners = first[0]
    assert _bits(jax.tree.map(lambda x: x[0], learners.params)) != _bits(jax.tree.map(lambda x: x[1], learners.params))


def test_metrics_are_nan_before_learning_and_evaluation_rows(gridworld):
    cfg = DQNConfig(**{**LEARN, "total_timesteps": 400, "log_interval": 200, "learning_starts": 400,
                       "eval_episodes": 2, "hidden_sizes": (4,)})
    learner, metrics = jax.jit(dqn.make_train(gridworld, params_from_level(ROOM, **GRID), cfg))(jax.random.key(0))
    assert set(metrics) == {*dqn.METRIC_NAMES, *dqn.EVAL_METRIC_NAMES}
    assert np.isnan(float(metrics["loss"][0])) and np.isfinite(float(metrics["loss"][1]))  # learning at step 400
    np.testing.assert_array_equal(metrics["gradient_steps"], [0, 1])
    assert metrics["eval_return"].shape == (2,) and int(learner.gradient_steps) == 1


# --- config errors -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("field, value, message", [
    ("lr", 0.0, "DQNConfig.lr must be positive, got 0.0"),
    ("gamma", 1.5, "DQNConfig.gamma must be in [0, 1], got 1.5"),
    ("epsilon_end", -0.1, "DQNConfig.epsilon_end must be in [0, 1], got -0.1"),
    ("tau", 0.0, "DQNConfig.tau must be in (0, 1], got 0.0"),
    ("batch_size", 1.5, "DQNConfig.batch_size must be an integer, got 1.5"),
    ("hidden_sizes", (16, 0), "DQNConfig.hidden_sizes[1] must be positive, got 0"),
    ("double_dqn", "yes", "DQNConfig.double_dqn must be true or false, got 'yes'"),
    ("max_grad_norm", float("nan"), "DQNConfig.max_grad_norm must be a finite number, got nan"),
])
def test_bad_field_values_raise_one_line_errors(field, value, message):
    with pytest.raises(ValueError) as error:
        DQNConfig(**{field: value})
    assert str(error.value) == message


def test_bad_combinations_and_envs_raise_clear_errors(gridworld):
    room = params_from_level(ROOM, **GRID)
    cases = [
        (dict(batch_size=128, buffer_size=64), "agent.batch_size=128 is larger than agent.buffer_size=64"),
        (dict(num_envs=4, train_every=3, log_interval=1_000), "agent.log_interval=1000 is not a multiple"),
        (dict(total_timesteps=500, log_interval=1_000), "agent.total_timesteps=500 is less than one metrics row"),
        (dict(total_timesteps=2_500, log_interval=1_000, learning_starts=2_001), "DQN would never learn"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=re.escape(message)):
            dqn.make_train(gridworld, room, DQNConfig(**kwargs))
    with pytest.raises(ValueError, match="needs a discrete action space; Pendulum-v1 is continuous"):
        DQNConfig().validate(*envs.make("Pendulum-v1"))
    with pytest.raises(ValueError, match=r"agent\.gamma must be in \[0, 1\]"):
        build_dataclass(DQNConfig, {"gamma": 2.0}, "agent")
    with pytest.raises(ValueError, match=r"agent\.epsilon_decay is not a setting \(did you mean epsilon_decay_steps"):
        build_dataclass(DQNConfig, {"epsilon_decay": 5}, "agent")
