"""The reset-free runner: phases, switches, bootstrapping, interventions, and a small learning run.

A 7-cell corridor (start at cell 0, goal at cell 6, actions left/right) keeps the
programs small; four-rooms runs through the job at its CI scale in
``tests/test_reset_free_job.py``.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from gymnax.environments import spaces

from envs.core import StaticIdentity
from envs.reset_free import GoalEnv
from metarl.agents.dqn import DQNConfig
from metarl.reset_free.agents import DQNAgent
from metarl.reset_free.benchmarks import EARLTask
from metarl.reset_free.config import ResetFreeConfig
from metarl.reset_free.runner import ResetFreeRunner

CELLS = 7


@struct.dataclass
class CorridorParams:
    max_steps_in_episode: int = 20


@struct.dataclass
class CorridorState:
    time: jax.Array
    pos: jax.Array
    goal: jax.Array


class Corridor(StaticIdentity, GoalEnv):
    goal_obs_size = CELLS

    def _static(self):
        return ()

    @property
    def name(self):
        return "corridor"

    @property
    def default_params(self):
        return CorridorParams()

    def action_space(self, params=None):
        return spaces.Discrete(2)

    def observation_space(self, params=None):
        return spaces.Box(0.0, 1.0, (2 * CELLS,), jnp.float32)

    def forward_goal(self, key, params):
        return jnp.int32(CELLS - 1)

    def start_goal(self, state, params):
        return state.pos

    def is_success(self, state, params):
        return state.pos == state.goal

    def reset_env(self, key, params):
        state = CorridorState(jnp.int32(0), jnp.int32(0), jnp.int32(CELLS - 1))
        return self.get_obs(state, params), state

    def transition(self, key, state, action, params):
        pos = jnp.clip(state.pos + jnp.where(action == 1, 1, -1), 0, CELLS - 1).astype(jnp.int32)
        return state.replace(time=state.time + 1, pos=pos)

    def get_obs(self, state, params=None, key=None):
        cells = jnp.arange(CELLS)
        return jnp.concatenate([cells == state.pos, cells == state.goal]).astype(jnp.float32)


TASK = EARLTask(id="corridor-test", env="corridor", agent="dqn", total_steps=3_000, steps_per_intervention=3_000,
                phase_step_limit=20, eval_every=500, eval_episodes=2, eval_horizon=20, conservative_factor=0.95,
                minimum_steps=0, trajectory_proportion=1.0)
AGENT = DQNConfig(gamma=0.9, lr=1e-3, batch_size=32, learning_starts=200, hidden_sizes=(32,),
                  epsilon_decay_steps=1_000, target_update_every=100, buffer_size=3_000)


@functools.cache  # one runner (one compiled period) per setting in this module
def make_runner(agent=AGENT, **settings) -> ResetFreeRunner:
    cfg = ResetFreeConfig(**{"seeds": 2, **settings}).resolved(TASK)
    env = Corridor()
    agent = DQNAgent(agent, 2 * CELLS, 2, cfg.eval_epsilon, cfg.critic_lr, cfg.critic_tau)
    return ResetFreeRunner(TASK, cfg, agent, env, env.default_params)


def certain_critic(carry):
    """Success heads that say 1 everywhere: RISC then switches as soon as the rule allows."""
    def fix(path, leaf):
        name = jax.tree_util.keystr(path)
        if "head" in name and "bias" in name:
            return jnp.ones_like(leaf)
        return jnp.zeros_like(leaf) if "kernel" in name else leaf
    critic = carry.agent.critic
    params = jax.tree_util.tree_map_with_path(fix, critic.params)
    return carry.replace(agent=carry.agent.replace(critic=critic.replace(params=params, target=params)))


def stored(carry, seed=0):
    n = int(carry.buffer.size[seed])
    return {k: np.asarray(v[seed, :n]) for k, v in carry.buffer.data.items()}


@pytest.mark.parametrize("bootstrap, at_switch", [("correct", 0.9), ("timeout_as_terminal", 0.0)])
def test_risc_switches_after_minimum_steps_and_bootstraps_by_the_rule(bootstrap, at_switch):
    # P_succ = 1 and c = 1e-6: the switch probability is ~1 from minimum_steps on, so every phase is 3 steps
    # (the agent starts 6 cells from the goal, no success in 3 steps before learning starts)
    runner = make_runner(algorithm="risc", bootstrap=bootstrap, minimum_steps=3, conservative_factor=1e-6,
                         eval_every=150, total_steps=150)
    carry = certain_critic(runner.init_seeds())
    carry, metrics = runner.period(carry)
    data = stored(carry)
    success = data["success"].astype(bool)
    # until a phase ends in success, every third step ends one by a switch; only the bug cuts its bootstrap
    first_success = np.flatnonzero(success)[0] if success.any() else 150
    steps = np.arange(first_success)
    expected = np.where(steps % 3 == 2, at_switch, 0.9)
    assert first_success >= 6
    np.testing.assert_allclose(data["discount"][:first_success], expected, rtol=1e-6)
    assert int(metrics["switches"][0]) >= first_success // 3
    # directions alternate: the goal in the observation flips between the task goal (cell 6) and the start
    goals = data["obs"][:first_success, CELLS:].argmax(axis=1)
    assert goals[0] == CELLS - 1 and (goals[3:6] == goals[3]).all() and goals[3] != CELLS - 1


def test_fbrl_alternates_timed_out_phases_and_interventions_restart_forward():
    runner = make_runner(algorithm="fbrl", steps_per_intervention=10, phase_step_limit=4, eval_every=30,
                         total_steps=30)
    carry, metrics = runner.period(runner.init_seeds())
    data = stored(carry)
    goals, pos = data["obs"][:, CELLS:].argmax(axis=1), data["obs"][:, :CELLS].argmax(axis=1)
    assert int(metrics["switches"].sum()) == 0
    # forward 4 steps, backward 4 steps (towards the start cell), forward again until the intervention at step 10
    assert (goals[:4] == CELLS - 1).all() and (goals[4:8] == 0).all() and (goals[8:10] == CELLS - 1).all()
    assert metrics["interventions"].tolist() == [3, 3]  # ceil(30 / 10)
    assert (pos[[0, 10, 20]] == 0).all() and (goals[[10, 20]] == CELLS - 1).all()  # each from rho_0, forward
    # timeouts and interventions are truncations: the correct rule keeps bootstrapping through them
    np.testing.assert_allclose(data["discount"][~data["success"].astype(bool)], 0.9)


def test_naive_only_goes_forward_and_an_agent_without_the_goal_sees_it_zeroed():
    runner = make_runner(algorithm="naive", goal_conditioned=False, phase_step_limit=4, eval_every=40,
                         total_steps=40)
    carry, metrics = runner.period(runner.init_seeds())
    data = stored(carry)
    assert not data["obs"][:, CELLS:].any() and data["obs"][:, :CELLS].any()
    assert bool(carry.forward.all()) and int(metrics["backward_successes"].sum()) == 0
    with pytest.raises(ValueError, match="algorithm=risc .* needs a goal-conditioned agent"):
        ResetFreeConfig(algorithm="risc", goal_conditioned=False)


def test_fbrl_and_risc_learn_the_corridor_and_runs_are_deterministic():
    for algorithm in ("fbrl", "risc"):
        runner = make_runner(algorithm=algorithm)
        carry = runner.init_seeds()
        successes = []
        for _ in range(runner.periods):
            carry, metrics = runner.period(carry)
            successes.append(np.asarray(metrics["deployed_success"]))
        assert (successes[0] == 0).all() or (successes[-1] == 1).all()
        assert (successes[-1] == 1).all(), (algorithm, successes)  # both seeds deploy the 6-step path
        assert int(metrics["backward_successes"].min()) > 0  # and practise returning to the start
    again = make_runner(algorithm="risc")  # the same compiled program, run again from the same seed
    carry2 = again.init_seeds()
    for _ in range(again.periods):
        carry2, metrics2 = again.period(carry2)
    for a, b in zip(jax.tree.leaves(carry), jax.tree.leaves(carry2)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert dataclasses.asdict(again.cfg) == dataclasses.asdict(runner.cfg)
