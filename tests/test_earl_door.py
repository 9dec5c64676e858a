"""earl-door-kin: EARL's sawyer_door (close the door; reopen it backward) on the kinematic Sawyer world."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs import earl_door as ed
from envs.manipulation.tasks import doors_drawers as dd
from envs.reset_free import ResetFree

ENV = ed.SawyerDoorKin()
PARAMS = ENV.default_params
F32 = jnp.float32
LOW, HIGH = -math.pi / 3, -math.pi / 3 + math.pi / 20


# the scripted controllers (they read only the observation) are the env's demonstrators
close_door, reopen_door = ed.close_door, ed.reopen_door


@functools.partial(jax.jit, static_argnums=0)
def run(policy, state, keys):
    """``step_env`` the policy from ``state`` (one step per key); per-step (success, reward, done, q)."""

    def body(s, key):
        obs, s, reward, done, info = ENV.step_env(key, s, policy(ENV.get_obs(s, PARAMS)), PARAMS)
        return s, (info["success"], reward, done, s.q)

    return jax.lax.scan(body, state, keys)


def first_success(success):
    success = np.asarray(success)
    return int(np.argmax(success)) + 1 if success.any() else None


def reset_batch(n, seed=0):
    return jax.jit(jax.vmap(lambda k: ENV.reset(k, PARAMS)))(jax.random.split(jax.random.key(seed), n))


# --- layout ---------------------------------------------------------------------------------
def test_obs_layout_goal_and_spaces():
    obs, state = ENV.reset(jax.random.key(3), PARAMS)
    assert obs.shape == (14,) and obs.dtype == jnp.float32
    assert ENV.observation_space(PARAMS).contains(obs)
    assert ENV.action_space(PARAMS).shape == (4,)
    np.testing.assert_allclose(obs[0:3], ed.HAND_INIT)  # hand at rest
    assert float(obs[3]) == 1.0  # gripper open
    np.testing.assert_allclose(obs[4:7], ed.handle_of_angle(state.q), atol=1e-7)  # handle
    np.testing.assert_array_equal(obs[7:14], state.goal)  # goal
    # the forward goal is EARL's goal_states[0]: [shut handle, 1.0, shut handle]
    goal = ENV.forward_goal(jax.random.key(0), PARAMS)
    assert goal.shape == (7,) and goal.dtype == jnp.float32
    np.testing.assert_allclose(goal, ed.EARL_GOAL_STATE, atol=1e-6)
    np.testing.assert_array_equal(goal, state.goal)
    # the handle at EARL's noiseless start angle is EARL's initial_states[0] handle
    np.testing.assert_allclose(ed.handle_of_angle(-math.pi / 3), ed.EARL_INITIAL_STATE[4:7], atol=1e-6)
    # the backward goal of a state is its own first 7 observation entries
    np.testing.assert_allclose(ENV.start_goal(state, PARAMS), obs[0:7], atol=1e-7)  # jit vs eager: last bit
    # the observed handle turns about EARL's hinge, and angle_of_handle inverts it
    for q in (-2.0, -1.0, -0.3, 0.0):
        h = ed.handle_of_angle(q)
        assert float(jnp.linalg.norm(h[:2] - jnp.asarray(ed.HINGE[:2]))) == pytest.approx(0.39070, abs=1e-4)
        assert float(ed.angle_of_handle(h)) == pytest.approx(q, abs=1e-5)


def test_rho0_angle_range_and_sign():
    obs, state = reset_batch(2000)
    q = np.asarray(state.q)
    assert (q >= LOW - 1e-6).all() and (q <= HIGH + 1e-6).all()
    assert q.min() < LOW + 0.01 and q.max() > HIGH - 0.01 and q.std() > 0.03  # U(0, pi/20) spread
    assert (q < dd.DOOR_HIGH).all() and (q > dd.DOOR_LOW).all()  # negative = open, inside the joint range
    shut = np.asarray(ed.handle_of_angle(0.0))
    assert (np.asarray(obs[:, 5]) < shut[1] - 0.2).all()  # the open door's handle swings toward the robot (-y)
    np.testing.assert_allclose(obs[:, 0:4], np.tile([*ed.HAND_INIT, 1.0], (2000, 1)))
    np.testing.assert_array_equal(obs[:, 7:14], np.tile(np.asarray(ENV.forward_goal(None, PARAMS)), (2000, 1)))
    assert (np.asarray(state.time) == 0).all()


def test_success_threshold_boundary():
    _, state = ENV.reset(jax.random.key(1), PARAMS)
    handle = ENV.handle(state)
    direction = jnp.asarray([0.6, 0.0, 0.8], F32)
    far_hand = jnp.asarray([0.4, 0.9, 0.4, 0.29], F32)
    step = jax.jit(ENV.step_env)  # hand and gripper goal entries are not compared
    for dist, expected in ((0.0, True), (0.0199, True), (0.0201, False), (0.1, False)):
        goal = jnp.concatenate([far_hand, handle + dist * direction])
        s = ENV.with_goal(state, goal, PARAMS)
        assert bool(ENV.is_success(s, PARAMS)) is expected, dist
        # reward and terminated of a step that leaves the door where it is (the arm goes up, away)
        _, _, reward, done, info = step(jax.random.key(0), s, jnp.asarray([0, 0, 1.0, -1], F32), PARAMS)
        assert float(reward) == float(expected) and bool(done) is expected and bool(info["success"]) is expected
    assert not bool(ENV.is_success(state, PARAMS))  # rho_0 is not the forward goal


# --- solvability: close from rho_0, reopen from the shut door ---------------------------------
def test_door_stays_put_without_contact():
    _, state = ENV.reset(jax.random.key(2), PARAMS)
    idle = lambda obs: jnp.zeros(4, F32)
    _, (success, _, _, q) = run(idle, state, jax.random.split(jax.random.key(0), 50))
    np.testing.assert_allclose(q, float(state.q), atol=0)
    assert not np.asarray(success).any()


def test_scripted_close_then_reopen_within_horizon():
    n = 8
    _, starts = reset_batch(n, seed=7)
    keys = jax.random.split(jax.random.key(1), ed.HORIZON)
    run_many = jax.vmap(run, in_axes=(None, 0, None))
    # forward: push the door shut
    shut, (success, reward, done, q) = run_many(close_door, starts, keys)
    steps = [first_success(s) for s in success]
    assert all(s is not None and s <= ed.HORIZON for s in steps), steps
    np.testing.assert_array_equal(reward, np.asarray(success, np.float32))
    np.testing.assert_array_equal(done, success)
    assert np.asarray(success)[:, -1].all()  # it stays shut
    np.testing.assert_allclose(shut.q, 0.0, atol=1e-6)
    # backward: from the shut door, reopen it to each start's own configuration (its start_goal)
    back_goals = jax.vmap(ENV.start_goal, in_axes=(0, None))(starts, PARAMS)
    back = jax.vmap(ENV.with_goal, in_axes=(0, 0, None))(shut, back_goals, PARAMS)
    assert not np.asarray(jax.vmap(ENV.is_success, in_axes=(0, None))(back, PARAMS)).any()
    reopened, (success, reward, _, q) = run_many(reopen_door, back, keys)
    back_steps = [first_success(s) for s in success]
    assert all(s is not None and s <= ed.HORIZON for s in back_steps), back_steps
    assert np.asarray(success)[:, -1].all()
    np.testing.assert_allclose(reopened.q, starts.q, atol=0.02)
    # and forward again from the reopened door: the cycle a reset-free agent practises
    fwd = jax.vmap(ENV.with_goal, in_axes=(0, None, None))(reopened, ENV.forward_goal(None, PARAMS), PARAMS)
    _, (success, _, _, _) = run_many(close_door, fwd, keys)
    assert all(first_success(s) is not None for s in success)


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
    fresh = np.asarray(states.env.q)[intervened]
    assert ((fresh >= LOW - 1e-6) & (fresh <= HIGH + 1e-6)).all()
    np.testing.assert_array_equal(np.asarray(states.env.time)[intervened], 0)
    np.testing.assert_allclose(np.asarray(states.start)[intervened], np.asarray(obs)[intervened][:, 0:7], atol=1e-7)
    goals = np.asarray(states.env.goal)[intervened]
    np.testing.assert_allclose(goals, np.tile(ed.EARL_GOAL_STATE, (len(goals), 1)), atol=1e-6)


def test_make_and_registry():
    assert "earl-door-kin" in envs.registered()
    env, params = envs.make("earl-door-kin")
    assert isinstance(env, ed.SawyerDoorKin) and env == ENV and hash(env) == hash(ENV)
    assert env.name == "earl-door-kin" and int(params.max_steps_in_episode) == 300
    _, short = envs.make("earl-door-kin", max_steps_in_episode=2)
    obs, state = env.reset(jax.random.key(0), short)
    for _ in range(2):  # gymnax's step: six values, auto-reset at the horizon
        obs, state, reward, term, trunc, info = env.step(jax.random.key(1), state, jnp.zeros(4, F32), short)
    assert bool(trunc) and int(state.time) == 0 and obs.shape == (14,)
    with pytest.raises(ValueError, match="action must have shape"):
        env.step_env(jax.random.key(0), state, jnp.zeros(3, F32), params)
