"""earl-peg-kin: EARL's sawyer_peg (insert the peg; pull it out and put it back) on the kinematic Sawyer world."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs import earl_peg as ep
from envs.manipulation import world
from envs.manipulation.tasks import pegs
from envs.manipulation.tasks.object_rules import OPEN, carry, drive, holding, pick
from envs.reset_free import ResetFree

ENV = ep.SawyerPegKin()
PARAMS = ENV.default_params
F32 = jnp.float32
BOX_FACE_X = ep.BOX[0] + pegs.PEG_BOX_HALF[0]  # the box's side with the hole (x = -0.2)
EARL_HAND = (0.00615235, 0.6001898, 0.19430117)  # the hand (MuJoCo's tcp_center) of EARL's saved initial states


def v(*xs):
    return jnp.asarray(xs, F32)


# --- scripted controllers (they read only the observation) -----------------------------
def _peg(obs):
    """TCP, peg head, goal head and the peg's grasp point from an observation."""
    tcp = world.tcp_of(obs[0:3])
    head, goal = obs[4:7], obs[11:14]
    return tcp, head, goal, ep.grasp_point(head)


def _pick(obs, grasp):
    tcp = world.tcp_of(obs[0:3])
    target, grip = pick(tcp, grasp)
    return drive(obs, target, grip)


def insert(obs):
    """Reach, grasp, lift and line the head up 10 cm in front of the hole, push it in, release it there."""
    tcp, head, goal, grasp = _peg(obs)
    lined_up = goal + v(0.10, 0.0, 0.0)
    aligned = (jnp.linalg.norm(head[1:] - lined_up[1:]) < 0.004) & (head[0] < lined_up[0] + 0.01)
    held = holding(obs, grasp, pegs.PEG_WIDTH)
    in_hole = (head[0] < BOX_FACE_X - 0.03) & (jnp.linalg.norm(head[1:] - goal[1:]) < 0.02)
    at_goal = (jnp.linalg.norm(head - goal) < 0.01) | (in_hole & ~held)  # released, it drops to the hole's floor
    moved = carry(obs, head, jnp.where(aligned, goal, lined_up))
    release = jnp.concatenate([jnp.zeros(3, F32), v(OPEN)])  # open in place: the peg stays in the hole
    return jnp.where(at_goal, release, jnp.where(held, moved, _pick(obs, grasp)))


def extract(obs):
    """Grasp the peg, pull it straight out of the hole, carry it over its goal, lower it, release, lift."""
    tcp, head, goal, grasp = _peg(obs)
    held = holding(obs, grasp, pegs.PEG_WIDTH)
    inside = head[0] < BOX_FACE_X + 0.03  # (head) not yet clear of the box
    over = jnp.linalg.norm(head[:2] - goal[:2]) < 0.005
    drop = v(0.0, 0.0, 0.01)  # let go 1 cm above the table: the fingers cannot press the peg into it
    down = head[2] <= goal[2] + 0.013
    pull = carry(obs, head, jnp.stack([BOX_FACE_X + 0.05, head[1], head[2]]))
    across = carry(obs, head, jnp.stack([goal[0], goal[1], head[2]]))
    lower = carry(obs, head, goal + drop)
    release = jnp.concatenate([jnp.zeros(3, F32), v(OPEN)])
    carrying = jnp.where(inside, pull, jnp.where(~over, across, jnp.where(down, release, lower)))
    placed = (jnp.linalg.norm(head - goal) < 0.01) & ~held  # released on its goal: lift the open hand away
    lift = drive(obs, jnp.stack([tcp[0], tcp[1], jnp.float32(0.15)]), OPEN)
    return jnp.where(placed, lift, jnp.where(held, carrying, _pick(obs, grasp)))


@functools.partial(jax.jit, static_argnums=0)
def run(policy, state, keys):
    """``step_env`` the policy from ``state`` (one step per key); per-step (success, reward, done, obs)."""

    def body(s, key):
        obs, s, reward, done, info = ENV.step_env(key, s, policy(ENV.get_obs(s, PARAMS)), PARAMS)
        return s, (info["success"], reward, done, obs)

    return jax.lax.scan(body, state, keys)


run_many = jax.vmap(run, in_axes=(None, 0, None))


def first_success(success):
    success = np.asarray(success)
    return int(np.argmax(success)) + 1 if success.any() else None


def every_start():
    """One rho_0 state per EARL start (the reset's draw replaced by each start in turn)."""
    _, state = ENV.reset(jax.random.key(0), PARAMS)
    return jax.vmap(lambda o: state.replace(obj=o))(ep.start_grasp_points())


# --- layout ---------------------------------------------------------------------------------
def test_obs_layout_goal_and_spaces():
    obs, state = ENV.reset(jax.random.key(3), PARAMS)
    assert obs.shape == (14,) and obs.dtype == jnp.float32 and ENV.goal_obs_size == 7
    assert ENV.observation_space(PARAMS).contains(obs)
    assert ENV.action_space(PARAMS).shape == (4,)
    np.testing.assert_allclose(obs[0:3], ep.HAND_INIT)  # hand at rest (EARL's hand_init_pos)
    np.testing.assert_allclose(obs[0:3], EARL_HAND, atol=0.01)  # EARL's observed tcp_center, within 1 cm
    assert float(obs[3]) == 1.0  # gripper open
    np.testing.assert_allclose(obs[4:7], ENV.head(state), atol=1e-7)  # the peg head ...
    np.testing.assert_allclose(obs[4:7], state.obj + v(*pegs.PEG_HEAD), atol=1e-7)  # ... = grasp point + pegHead offset
    np.testing.assert_array_equal(obs[7:14], state.goal)  # goal
    goal = ENV.forward_goal(jax.random.key(0), PARAMS)
    assert goal.shape == (7,) and goal.dtype == jnp.float32
    np.testing.assert_allclose(goal, [0.0, 0.6, 0.2, 1.0, -0.27, 0.6, 0.13], atol=1e-7)  # EARL's goal_states[0]
    np.testing.assert_array_equal(goal, state.goal)
    # the goal peg is peg-insert-side's hole target of the box at BOX
    np.testing.assert_allclose(goal[4:7], v(*ep.BOX) + v(*pegs.PEG_TARGET), atol=1e-7)
    # the backward goal of a state is its own first 7 observation entries
    np.testing.assert_allclose(ENV.start_goal(state, PARAMS), obs[0:7], atol=1e-7)


def test_rho0_draws_only_the_15_starts():
    obs, state = jax.jit(jax.vmap(lambda k: ENV.reset(k, PARAMS)))(jax.random.split(jax.random.key(0), 1500))
    heads = np.asarray(obs[:, 4:7])
    starts = np.asarray(ep.start_heads())
    dist = np.linalg.norm(heads[:, None, :] - starts[None], axis=-1)  # [1500, 15]
    assert (dist.min(axis=1) < 1e-6).all()  # every draw is one of the 15 ...
    counts = np.bincount(dist.argmin(axis=1), minlength=15)
    assert (counts > 60).all(), counts  # ... and all 15 are drawn (100 each on average)
    np.testing.assert_allclose(starts[:, :2], ep.EARL_START_HEADS, atol=0)
    np.testing.assert_allclose(starts[:, 2], 0.015, atol=1e-7)  # lying on the table
    # the starts lie inside peg-insert-side's object range (the bar's centre = head + (0.1, 0, 0))
    centre = starts + np.asarray([0.1, 0.0, 0.0])
    assert ((centre[:, :2] >= np.asarray(pegs.PegInsertSide.obj_low[:2])) &
            (centre[:, :2] <= np.asarray(pegs.PegInsertSide.obj_high[:2]))).all()
    np.testing.assert_allclose(obs[:, 0:4], np.tile([*ep.HAND_INIT, 1.0], (1500, 1)))
    np.testing.assert_array_equal(obs[:, 7:14], np.tile(ep.EARL_GOAL_STATE, (1500, 1)).astype(np.float32))
    assert (np.asarray(state.time) == 0).all() and not np.asarray(state.grasped).any()
    assert not np.asarray(jax.vmap(ENV.is_success, in_axes=(0, None))(state, PARAMS)).any()


def test_success_threshold_boundary():
    _, state = ENV.reset(jax.random.key(1), PARAMS)
    head = ENV.head(state)
    direction = v(0.6, 0.0, 0.8)
    far_hand = v(0.4, 0.9, 0.4, 0.29)
    step = jax.jit(ENV.step_env)  # hand and gripper goal entries are not compared
    for dist, expected in ((0.0, True), (0.0499, True), (0.0501, False), (0.2, False)):
        s = ENV.with_goal(state, jnp.concatenate([far_hand, head + dist * direction]), PARAMS)
        assert bool(ENV.is_success(s, PARAMS)) is expected, dist
        # reward and terminated of a step that leaves the peg where it is (the arm goes up, away)
        _, after, reward, done, info = step(jax.random.key(0), s, v(0, 0, 1.0, -1), PARAMS)
        np.testing.assert_array_equal(after.obj, state.obj)
        assert float(reward) == float(expected) and bool(done) is expected and bool(info["success"]) is expected


# --- solvability: insert from every start, put back, insert again ---------------------------------
def test_scripted_insert_then_extract_within_horizon():
    starts = every_start()
    keys = jax.random.split(jax.random.key(1), ep.HORIZON)
    # forward: reach, grasp, carry, insert, release
    inserted, (success, reward, done, obs) = run_many(insert, starts, keys)
    steps = [first_success(s) for s in success]
    assert all(s is not None and s <= ep.HORIZON for s in steps), steps
    np.testing.assert_array_equal(reward, np.asarray(success, np.float32))
    np.testing.assert_array_equal(done, success)
    assert np.asarray(success)[:, -1].all()  # it stays in
    assert not np.asarray(inserted.grasped).any()  # released: it rests in the hole
    heads = np.asarray(jax.vmap(ep.peg_head)(inserted.obj))
    assert (heads[:, 0] < BOX_FACE_X - 0.05).all()  # head inside the box, through the side hole
    np.testing.assert_allclose(heads, np.tile(ep.EARL_GOAL_STATE[4:], (15, 1)), atol=0.02)
    assert all(ENV.observation_space(PARAMS).contains(o) for o in np.asarray(obs).reshape(-1, 14)[::97])
    # backward: from the inserted peg, back to each start's own configuration (its start_goal)
    back_goals = jax.vmap(ENV.start_goal, in_axes=(0, None))(starts, PARAMS)
    back = jax.vmap(ENV.with_goal, in_axes=(0, 0, None))(inserted, back_goals, PARAMS)
    assert not np.asarray(jax.vmap(ENV.is_success, in_axes=(0, None))(back, PARAMS)).any()
    restored, (success, _, _, _) = run_many(extract, back, keys)
    back_steps = [first_success(s) for s in success]
    assert all(s is not None and s <= ep.HORIZON for s in back_steps), back_steps
    assert np.asarray(success)[:, -1].all() and not np.asarray(restored.grasped).any()  # put down, let go
    np.testing.assert_allclose(restored.obj, starts.obj, atol=0.01)  # where it started, on the table
    # and forward again from the restored peg: the cycle a reset-free agent practises
    fwd = jax.vmap(ENV.with_goal, in_axes=(0, None, None))(restored, ENV.forward_goal(None, PARAMS), PARAMS)
    _, (success, _, _, _) = run_many(insert, fwd, keys)
    assert all(first_success(s) is not None for s in success)


def test_box_wall_stops_a_misaligned_peg():
    """The same script aimed 5 cm above the hole: the held peg is stopped at the box's face."""
    starts = jax.tree.map(lambda x: x[:3], every_start())
    goal = ENV.forward_goal(None, PARAMS).at[6].add(0.05)
    high = jax.vmap(ENV.with_goal, in_axes=(0, None, None))(starts, goal, PARAMS)
    final, (_, _, _, obs) = run_many(insert, high, jax.random.split(jax.random.key(1), ep.HORIZON))
    assert np.asarray(final.grasped).all()  # it got the peg up to the box ...
    assert (np.asarray(obs)[:, :, 4] >= BOX_FACE_X - 1e-3).all()  # ... but the head never enters the box
    last = np.asarray(obs)[:, -50:, 4]  # stopped in front of the face (a refused step stops it short, <= 3 cm)
    assert (np.ptp(last, axis=1) < 1e-4).all() and (last[:, -1] <= BOX_FACE_X + 0.03).all(), last[:, -1]
    real = jax.vmap(ENV.with_goal, in_axes=(0, None, None))(final, ENV.forward_goal(None, PARAMS), PARAMS)
    assert not np.asarray(jax.vmap(ENV.is_success, in_axes=(0, None))(real, PARAMS)).any()


# --- reset-free wrapper and registry -----------------------------------------------------------
def test_reset_free_under_jit_and_vmap():
    wrapper = ResetFree(ENV, 5)
    n, steps = 4, 12
    obs, state = jax.vmap(wrapper.reset, in_axes=(0, None))(jax.random.split(jax.random.key(0), n), PARAMS)
    assert obs.shape == (n, 14)
    np.testing.assert_allclose(state.start, obs[:, 0:7], atol=1e-7)

    def body(state, key):
        key_act, key_step = jax.random.split(key)
        actions = jax.random.uniform(key_act, (n, 4), F32, -1.0, 1.0)
        out = jax.vmap(wrapper.step, in_axes=(0, 0, 0, None))(jax.random.split(key_step, n), state, actions, PARAMS)
        return out[1], out

    final, (obs, states, reward, term, trunc, info) = jax.jit(
        lambda s: jax.lax.scan(body, s, jax.random.split(jax.random.key(1), steps)))(state)
    assert obs.shape == (steps, n, 14) and obs.dtype == jnp.float32 and reward.shape == (steps, n)
    assert np.isfinite(np.asarray(obs)).all()
    intervened = (np.arange(1, steps + 1) % 5 == 0)[:, None].repeat(n, 1)
    np.testing.assert_array_equal(trunc, intervened)
    np.testing.assert_array_equal(info["final_obs"][~intervened], obs[~intervened])
    np.testing.assert_array_equal(final.interventions, 3)
    # after an intervention: a fresh rho_0 state whose configuration is the new backward goal
    fresh = np.asarray(obs)[intervened][:, 4:7]
    starts = np.asarray(ep.start_heads())
    assert (np.linalg.norm(fresh[:, None] - starts[None], axis=-1).min(axis=1) < 1e-6).all()
    np.testing.assert_array_equal(np.asarray(states.env.time)[intervened], 0)
    np.testing.assert_allclose(np.asarray(states.start)[intervened], np.asarray(obs)[intervened][:, 0:7], atol=1e-7)
    goals = np.asarray(states.env.goal)[intervened]
    np.testing.assert_allclose(goals, np.tile(ep.EARL_GOAL_STATE, (len(goals), 1)), atol=1e-7)


def test_make_and_registry():
    assert "earl-peg-kin" in envs.registered()
    env, params = envs.make("earl-peg-kin")
    assert isinstance(env, ep.SawyerPegKin) and env == ENV and hash(env) == hash(ENV)
    assert env.name == "earl-peg-kin" and int(params.max_steps_in_episode) == 200
    _, short = envs.make("earl-peg-kin", max_steps_in_episode=2)
    obs, state = env.reset(jax.random.key(0), short)
    for _ in range(2):  # gymnax's step: six values, auto-reset at the horizon
        obs, state, reward, term, trunc, info = env.step(jax.random.key(1), state, jnp.zeros(4, F32), short)
    assert bool(trunc) and int(state.time) == 0 and obs.shape == (14,)
    with pytest.raises(ValueError, match="action must have shape"):
        env.step_env(jax.random.key(0), state, jnp.zeros(3, F32), params)
