"""Reset-free RL: the ResetFree wrapper (EARL's intervention protocol), four rooms and tabletop."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs import four_rooms as fr
from envs import tabletop as tt
from envs.reset_free import GoalEnv, ResetFree, ResetFreeState

UP, DOWN, LEFT, RIGHT = 0, 1, 2, 3
FR = fr.FourRooms()
TT = tt.Tabletop()


def fr_state(x, y, goal=fr.GOAL_CELL, time=0):
    return fr.FourRoomsState(time=jnp.int32(time), pos=jnp.int32(fr.cell(x, y)), goal=jnp.int32(goal))


def fr_xy(state_or_obs):
    pos = state_or_obs.pos if hasattr(state_or_obs, "pos") else int(np.argmax(np.asarray(state_or_obs)[: fr.NUM_CELLS]))
    return tuple(int(v) for v in fr.cell_xy(int(pos)))


def rollout(wrapper, params, actions, state=None, key=jax.random.key(0)):
    """Scan ``wrapper.step`` over ``actions``; returns (final state, per-step outputs)."""
    if state is None:
        _, state = wrapper.reset(key, params)

    def body(state, xs):
        k, a = xs
        obs, state, reward, term, trunc, info = wrapper.step(k, state, a, params)
        return state, (obs, state, reward, term, trunc, info)

    keys = jax.random.split(key, len(actions))
    return jax.jit(lambda s: jax.lax.scan(body, s, (keys, jnp.asarray(actions))))(state)


# --- the wrapper -------------------------------------------------------------------------
def test_wrapper_never_resets_between_interventions():
    """The env's own horizon (3) passes without a reset; only every H = 5 steps is one."""
    params = FR.default_params.replace(max_steps_in_episode=jnp.int32(3))
    wrapper = ResetFree(FR, 5)
    final, (obs, states, reward, term, trunc, info) = rollout(wrapper, params, [RIGHT] * 12)
    xs = [fr_xy(o)[0] for o in np.asarray(obs)]
    assert xs == [2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2, 3]  # steps 5 and 10 intervene: back to (1, 1)
    final_xs = [fr_xy(o)[0] for o in np.asarray(info["final_obs"])]
    assert final_xs == [2, 3, 4, 5, 6, 2, 3, 4, 5, 6, 2, 3]  # the pre-intervention observation
    np.testing.assert_array_equal(info["final_obs"], info["final_observation"])
    intervened = np.arange(1, 13) % 5 == 0
    np.testing.assert_array_equal(trunc, intervened)
    np.testing.assert_array_equal(info["intervened"], intervened)
    np.testing.assert_array_equal(info["truncated"], intervened)
    assert not np.asarray(term).any() and not np.asarray(reward).any()
    # where no intervention happened, final_obs is the returned obs
    np.testing.assert_array_equal(np.asarray(obs)[~intervened], np.asarray(info["final_obs"])[~intervened])
    # the inner clock runs past the env's horizon (3) between interventions
    np.testing.assert_array_equal(states.env.time, [1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2])
    np.testing.assert_array_equal(states.since_intervention, [1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2])
    np.testing.assert_array_equal(states.steps, np.arange(1, 13))
    np.testing.assert_array_equal(info["interventions"], [1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3])
    assert int(final.interventions) == 3 == math.ceil(12 / 5)
    np.testing.assert_array_equal(states.start, np.full(12, fr.START_CELL))


def test_success_is_terminated_but_not_a_reset():
    """Sitting on the goal for 2.5 intervals: terminated every step, the state persists."""
    params = FR.default_params.replace(max_steps_in_episode=jnp.int32(2))
    wrapper = ResetFree(FR, 4)
    _, state = wrapper.reset(jax.random.key(1), params)
    obs, state = wrapper.set_goal(state, jnp.int32(fr.START_CELL), params)  # goal = where the agent is
    assert int(state.env.goal) == fr.START_CELL and obs[fr.NUM_CELLS + fr.START_CELL] == 1.0
    # up and left are blocked by the outer wall at (1, 1): the agent stays on its goal
    _, (obs, states, reward, term, trunc, info) = rollout(wrapper, params, [UP, LEFT] * 5, state=state)
    term, trunc = np.asarray(term), np.asarray(trunc)
    # steps 1..4 succeed; the intervention at step 4 brings the forward goal (17, 17) back
    np.testing.assert_array_equal(term, [True] * 4 + [False] * 6)
    np.testing.assert_array_equal(info["success"], term)
    np.testing.assert_array_equal(reward, term.astype(np.float32))
    np.testing.assert_array_equal(trunc, [False, False, False, True, False, False, False, True, False, False])
    assert [fr_xy(o) for o in np.asarray(obs)] == [(1, 1)] * 10
    np.testing.assert_array_equal(states.env.goal, [fr.START_CELL] * 3 + [fr.GOAL_CELL] * 7)
    np.testing.assert_array_equal(states.env.time, [1, 2, 3, 0, 1, 2, 3, 0, 1, 2])  # horizon 2 ignored
    assert int(states.interventions[-1]) == math.ceil(10 / 4)


@pytest.mark.parametrize("interval", [1, 2, 3, 5])
def test_interventions_are_ceil_steps_over_interval(interval):
    wrapper = ResetFree(FR, interval)
    n = 15
    _, (_, states, _, term, trunc, info) = rollout(wrapper, FR.default_params, [DOWN, RIGHT, UP] * (n // 3))
    want = [math.ceil(t / interval) for t in range(1, n + 1)]  # includes every T = k * interval
    np.testing.assert_array_equal(states.interventions, want)
    np.testing.assert_array_equal(info["interventions"], want)
    np.testing.assert_array_equal(trunc, np.arange(1, n + 1) % interval == 0)
    assert not np.asarray(term).any()


class Pit(fr.FourRooms):
    """Four rooms where every cell with x >= 3 is irreversible."""

    def irreversible(self, state, params):
        return fr.cell_xy(state.pos)[0] >= 3


def test_irreversible_state_calls_an_intervention():
    wrapper = ResetFree(Pit(), 100)
    _, (obs, states, _, term, trunc, info) = rollout(wrapper, FR.default_params, [RIGHT] * 5)
    np.testing.assert_array_equal(trunc, [False, True, False, True, False])
    assert [fr_xy(o)[0] for o in np.asarray(obs)] == [2, 1, 2, 1, 2]
    assert [fr_xy(o)[0] for o in np.asarray(info["final_obs"])] == [2, 3, 2, 3, 2]
    np.testing.assert_array_equal(states.interventions, [1, 1, 2, 2, 3])
    np.testing.assert_array_equal(states.since_intervention, [1, 0, 1, 0, 1])


def test_jit_and_vmap_over_keys():
    wrapper = ResetFree(TT, 3)
    params = TT.default_params
    keys = jax.random.split(jax.random.key(4), 16)
    obs, state = jax.jit(jax.vmap(wrapper.reset, in_axes=(0, None)))(keys, params)
    assert obs.shape == (16, tt.OBS_SIZE) and obs.dtype == jnp.float32
    assert isinstance(state, ResetFreeState) and state.env.goal.shape == (16, 6)
    assert len({tuple(g) for g in np.asarray(state.env.goal)}) > 1  # forward goals drawn per key
    np.testing.assert_array_equal(state.start, np.tile(tt.INITIAL_STATE, (16, 1)))
    step = jax.jit(jax.vmap(wrapper.step, in_axes=(0, 0, 0, None)))
    actions = jnp.tile(jnp.array([-1.0, 0.0, -1.0]), (16, 1))
    for t in range(1, 7):
        obs, state, reward, term, trunc, info = step(keys, state, actions, params)
        assert trunc.shape == (16,) and bool(jnp.all(trunc == (t % 3 == 0)))
        assert set(info) >= {"intervened", "success", "interventions", "final_obs", "terminated", "truncated"}
    np.testing.assert_array_equal(state.interventions, np.full(16, 2))
    # set_goal under vmap: every env now pursues its start
    obs, state = jax.jit(jax.vmap(wrapper.set_goal, in_axes=(0, 0, None)))(state, state.start, params)
    np.testing.assert_array_equal(obs[:, 6:], state.start)
    # equal wrappers are one static argument
    assert ResetFree(TT, 3) == wrapper and hash(ResetFree(tt.Tabletop(), 3)) == hash(wrapper)
    assert ResetFree(TT, 4) != wrapper and ResetFree(FR, 3) != wrapper


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "10", None])
def test_bad_interval(bad):
    with pytest.raises(ValueError, match="steps_per_intervention must be a positive int"):
        ResetFree(FR, bad)


def test_env_without_goal_is_refused():
    cartpole, _ = envs.make("CartPole-v1")
    with pytest.raises(ValueError, match="CartPole-v1 has no initial-state distribution or goal"):
        ResetFree(cartpole, 10)
    with pytest.raises(ValueError, match="goal must have shape"):
        FR.with_goal(fr_state(1, 1), jnp.zeros(2, jnp.int32), FR.default_params)


# --- four rooms -----------------------------------------------------------------------------
def test_four_rooms_layout_and_registry():
    env, params = envs.make("earl-four-rooms")
    assert isinstance(env, GoalEnv) and env == FR and int(params.max_steps_in_episode) == 100
    walls = fr.WALLS
    assert walls.shape == (19, 19) and walls[0].all() and walls[-1].all() and walls[:, 0].all() and walls[:, -1].all()
    assert not walls[1:18, 1:18][np.arange(17) != 8][:, np.arange(17) != 8].any()  # rooms are open
    openings = {(x, 9) for x in range(19) if not walls[9, x]} | {(9, y) for y in range(19) if not walls[y, 9]}
    assert openings == set(fr.DOORWAYS) == {(9, 4), (9, 13), (4, 9), (13, 9)}
    assert env.observation_space(params).shape == (722,) and env.action_space(params).n == 4


def test_four_rooms_walls_block_and_doorways_pass():
    step = jax.jit(FR.step_env)
    params, key = FR.default_params, jax.random.key(0)

    def move(x, y, action):
        _, s, *_ = step(key, fr_state(x, y), action, params)
        return fr_xy(s)

    assert move(1, 1, UP) == (1, 1) and move(1, 1, LEFT) == (1, 1)  # outer walls
    assert move(1, 1, DOWN) == (1, 2) and move(1, 1, RIGHT) == (2, 1)
    assert move(8, 5, RIGHT) == (8, 5) and move(10, 5, LEFT) == (10, 5)  # inner vertical wall
    assert move(8, 4, RIGHT) == (9, 4) and move(9, 4, RIGHT) == (10, 4)  # doorway
    assert move(9, 4, UP) == (9, 4) and move(9, 4, DOWN) == (9, 4)  # a doorway is one cell of the wall
    assert move(5, 8, DOWN) == (5, 8) and move(4, 8, DOWN) == (4, 9) and move(4, 9, DOWN) == (4, 10)
    assert move(13, 10, UP) == (13, 9) and move(9, 13, LEFT) == (8, 13)
    assert move(17, 17, DOWN) == (17, 17) and move(17, 17, RIGHT) == (17, 17)


def test_four_rooms_bfs_optimum_and_success():
    dist = fr.distances_from(fr.START_CELL)
    assert fr.shortest_path_length() == 32 == dist[fr.GOAL_CELL]  # Manhattan: a monotone path exists
    assert fr.shortest_path_length(fr.GOAL_CELL, fr.START_CELL) == 32
    assert (dist[fr.WALLS.ravel()] == -1).all() and (dist[~fr.WALLS.ravel()] >= 0).all()
    assert dist[fr.cell(9, 4)] == 8 + 3 and fr.shortest_path_length(fr.cell(8, 5), fr.cell(10, 5)) == 4
    # follow the BFS gradient from the goal: success exactly at step 32, reward 1, start_goal
    to_goal = fr.distances_from(fr.GOAL_CELL)
    params = FR.default_params
    obs, state = FR.reset(jax.random.key(0), params)
    assert fr_xy(state) == (1, 1) and int(FR.start_goal(state, params)) == fr.START_CELL
    assert np.flatnonzero(obs).tolist() == [fr.START_CELL, fr.NUM_CELLS + fr.GOAL_CELL]
    step = jax.jit(FR.step_env)
    for t in range(1, 33):
        here = int(state.pos)
        action = min(range(4), key=lambda a: to_goal[fr.NEXT_CELL[here, a]])
        obs, state, reward, term, info = step(jax.random.key(t), state, action, params)
        assert bool(term) == (t == 32) and float(reward) == float(t == 32) and bool(info["success"]) == (t == 32)
    assert fr_xy(state) == (17, 17) and int(FR.start_goal(state, params)) == fr.GOAL_CELL
    assert bool(FR.is_success(state, params))
    # gymnax's episodic step: the success ends the episode (deployed evaluation)
    _, _, _, term, trunc, _ = FR.step(jax.random.key(0), fr_state(16, 17), RIGHT, params)
    assert bool(term) and not bool(trunc)
    _, _, _, term, trunc, _ = FR.step(jax.random.key(0), fr_state(1, 1, time=99), UP, params)
    assert not bool(term) and bool(trunc)


# --- tabletop -------------------------------------------------------------------------------
def tt_state(gripper, mug, attached=False, goal=tt.INITIAL_STATE):
    return tt.TabletopState(
        time=jnp.int32(0),
        gripper=jnp.asarray(gripper, jnp.float32),
        mug=jnp.asarray(mug, jnp.float32),
        attached=jnp.asarray(attached),
        goal=jnp.asarray(goal, jnp.float32),
    )


TT_STEP = jax.jit(TT.step_env)


def tt_move(state, action):
    obs, s, reward, term, info = TT_STEP(jax.random.key(0), state, jnp.asarray(action, jnp.float32), TT.default_params)
    return np.asarray(obs), s


def test_tabletop_hand_computed_steps():
    _, s = tt_move(tt_state([0, 0], [2.5, 0]), [1, 0.5, -1])  # move, nothing held
    np.testing.assert_allclose(s.gripper, [0.2, 0.1], atol=1e-7)
    np.testing.assert_array_equal(s.mug, [2.5, 0])
    assert not bool(s.attached)
    _, s = tt_move(tt_state([0, 0], [2.5, 0]), [5, -7, -1])  # actions clipped to [-1, 1]
    np.testing.assert_array_equal(s.gripper, np.float32([0.2, -0.2]))
    # grasp needs distance < 0.4 at the pre-move position: 0.4 exactly is not enough
    _, s = tt_move(tt_state([0, 0], [0.4, 0]), [1, 0, 1])
    assert not bool(s.attached) and np.asarray(s.mug).tolist() == [np.float32(0.4), 0.0]
    _, s = tt_move(tt_state([2.0, 0], [2.5, 0]), [1, 0, 1])  # 0.5 away: not grasped, gripper moves
    assert not bool(s.attached) and np.asarray(s.mug).tolist() == [2.5, 0.0]
    np.testing.assert_allclose(s.gripper, [2.2, 0], atol=1e-7)
    obs, s = tt_move(tt_state([0, 0], [0.3, 0.1]), [-1, 1, 1])  # grasp within 0.4, carry in the same step
    assert bool(s.attached)
    np.testing.assert_allclose(s.gripper, [-0.2, 0.2], atol=1e-7)
    np.testing.assert_allclose(s.mug, [0.1, 0.3], atol=1e-7)
    np.testing.assert_array_equal(obs[4:6], [0, 0])  # the held pair
    obs, s = tt_move(s, [1, 0, 0.3])  # held: kept while a[2] > 0 whatever the distance rule
    assert bool(s.attached)
    np.testing.assert_allclose(s.mug, [0.3, 0.3], atol=1e-6)
    obs, s = tt_move(s, [1, 0, 0])  # a[2] <= 0 releases before the move: the mug stays
    assert not bool(s.attached) and obs[4:6].tolist() == [-1, -1]
    np.testing.assert_allclose(s.mug, [0.3, 0.3], atol=1e-6)
    np.testing.assert_allclose(s.gripper, [0.2, 0.2], atol=1e-6)
    # clipping at 2.8: the gripper stops, the mug moves by the gripper's actual displacement, then is clipped
    _, s = tt_move(tt_state([2.7, -2.7], [2.75, -2.5], attached=True), [1, -1, 1])
    np.testing.assert_array_equal(s.gripper, np.float32([2.8, -2.8]))
    np.testing.assert_allclose(s.mug, [2.8, -2.6], atol=1e-6)  # x: 2.75 + 0.1 clipped; y: -2.5 - 0.1
    _, s = tt_move(tt_state([-2.8, 2.8], [-2.5, 2.5]), [-1, 1, -1])
    np.testing.assert_array_equal(s.gripper, np.float32([-2.8, 2.8]))


def test_tabletop_success_boundary_and_goals():
    params = TT.default_params
    goal = tt.GOALS[2]  # mug at (0, 2)
    at = np.float32(0.2)
    ok = tt_state([0, 0], [at, 2.0], goal=goal)
    beyond = tt_state([0, 0], [np.nextafter(at, np.float32(1)), 2.0], goal=goal)
    assert bool(TT.is_success(ok, params)) and not bool(TT.is_success(beyond, params))
    assert bool(TT.is_success(tt_state([0, at], [0, 2.0], goal=goal), params))  # the gripper counts too
    assert not bool(TT.is_success(tt_state([0.15, 0], [0.15, 2.0], goal=goal), params))  # norm of all four
    assert bool(TT.is_success(tt_state([0, 0], [0, 2.0], attached=True, goal=goal), params))  # pair ignored
    # the step's reward and terminated are that test on the next state
    _, s_next, reward, term, info = TT_STEP(jax.random.key(0), tt_state([0, 0], [0, 2.2], True, goal),
                                            jnp.array([0.0, -1.0, 1.0]), params)
    assert bool(term) and float(reward) == 1.0 and bool(info["success"])
    # four forward goals, uniform; rho_0 and the backward goal are EARL's initial state
    goals = np.asarray(jax.vmap(TT.forward_goal, in_axes=(0, None))(jax.random.split(jax.random.key(0), 400), params))
    rows, counts = np.unique(goals, axis=0, return_counts=True)
    np.testing.assert_array_equal(rows, np.unique(tt.GOALS, axis=0))
    assert counts.min() > 70
    np.testing.assert_array_equal(tt.GOALS[:, 2:4], [[-2.5, -1], [-2.5, 1], [0, 2], [0, -2]])
    assert (tt.GOALS[:, :2] == 0).all() and (tt.GOALS[:, 4:] == -1).all()
    obs, state = TT.reset(jax.random.key(3), params)
    assert obs.shape == (12,) and obs.dtype == jnp.float32
    np.testing.assert_array_equal(obs[:6], tt.INITIAL_STATE)
    np.testing.assert_array_equal(obs[6:], state.goal)
    np.testing.assert_array_equal(TT.start_goal(state, params), [0, 0, 2.5, 0, -1, -1])
    env, params = envs.make("earl-tabletop")
    assert env == TT and int(params.max_steps_in_episode) == 200


def _earl_reference_step(qpos, held, action):
    """EARL's tabletop step written out in float64 numpy (as read from its source)."""
    a = np.clip(np.asarray(action, np.float64), -1, 1)
    a = -0.2 + (a + 1.0) * 0.5 * 0.4
    if a[2] > 0:
        held = held or np.linalg.norm(qpos[:2] - qpos[2:4]) < 0.4
    else:
        held = False
    grip = np.clip(qpos[:2] + a[:2], -2.8, 2.8)
    mug = np.clip(qpos[2:4] + (grip - qpos[:2]), -2.8, 2.8) if held else qpos[2:4]
    return np.concatenate([grip, mug]), held


def _scripted_rollout(n):
    """Actions of a noisy scripted policy (reach the mug, grasp, carry it towards a point beyond
    a wall for 25 steps, release for 5) and the float64 reference trajectory they produce."""
    rng = np.random.default_rng(0)
    targets = np.array([[3.5, 0.3], [-3.5, -1.0], [0.4, 3.5], [-1.0, -3.5]])
    qpos, held, carry_steps, trip = np.array([0.0, 0.0, 2.5, 0.0]), False, 0, 0
    actions, ref = [], []
    for _ in range(n):
        noise = rng.uniform(-0.6, 0.6, 2)
        if carry_steps >= 30:  # the release is over: next trip
            carry_steps, trip = 0, trip + 1
        if carry_steps < 25 and (held or np.linalg.norm(qpos[:2] - qpos[2:4]) < 0.35):
            move, grip = targets[trip % len(targets)] - qpos[:2], rng.uniform(0.01, 1.5)
            carry_steps += 1
        else:  # reach for the mug, or release after a carry
            move, grip = qpos[2:4] - qpos[:2], rng.uniform(-1.5, 0.0)
            carry_steps += carry_steps >= 25
        action = np.append(np.clip(5 * move, -1, 1) + noise, grip)
        actions.append(action)
        qpos, held = _earl_reference_step(qpos, held, action)
        ref.append((qpos.copy(), held))
    return np.array(actions, np.float32), ref


def test_tabletop_matches_earl_float64_reference():
    """A scripted rollout (grasps, carries, releases, wall clipping) against a float64 model."""
    actions, ref = _scripted_rollout(400)
    _, state = TT.reset(jax.random.key(0), TT.default_params)

    def body(s, a):
        _, s, *_ = TT.step_env(jax.random.key(0), s, a, TT.default_params)
        return s, (s.gripper, s.mug, s.attached)

    _, (grip, mug, held) = jax.jit(lambda s, a: jax.lax.scan(body, s, a))(state, jnp.asarray(actions))
    held = np.asarray(held)
    np.testing.assert_array_equal(held, [h for _, h in ref])
    assert held.sum() > 60 and np.sum(np.diff(held.astype(int)) == 1) >= 4  # several grasps and carries
    np.testing.assert_allclose(np.concatenate([grip, mug], axis=1), np.stack([q for q, _ in ref]), atol=2e-5)
    assert np.isclose(np.abs(np.asarray(mug)).max(), 2.8)  # the carried mug hit the bounds
