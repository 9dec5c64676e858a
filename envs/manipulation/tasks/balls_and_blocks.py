"""Balls and blocks: basketball, sweep, sweep-into.

Geometry, ranges, targets and success rules follow Meta-World v3 (``sawyer_<task>_v3.py`` and the task
XMLs); the rules objects follow are kinematic (``world.py``, :mod:`~envs.manipulation.tasks.object_rules`)
plus a few task-specific ones, each a small function below:

* **Obstacles.** The backboard, pole and rim of the hoop (basketball). The hand refuses a step that
  would put the TCP, or the ball it holds, inside one; a loose ball falling onto one rests on it.
* **Holes.** The sweep-into block drops into the table's hole (and rests on its floor, against its
  walls).

Every object keeps its orientation (the kinematic world has no rotations); the reported quaternions
follow each v3 task's convention.
"""

from __future__ import annotations

import jax.numpy as jnp

from envs.manipulation import world
from envs.manipulation.rewards import caging, hamacher, tolerance
from envs.manipulation.task import SCALAR_FIRST_IDENTITY, SCALAR_LAST_IDENTITY, Task, obs_hand, obs_obj
from envs.manipulation.tasks.object_rules import (
    CLOSE, EPS, OPEN, at_z, carry, drive, f, free_object, holding, pick, point_in, select, v,
)


# =========================================================================================================
# basketball
# =========================================================================================================
BALL_R = 0.03
BALL_WIDTH = 0.56  # closure at which the fingers touch the 6 cm ball
HOOP = (0.0, -0.083, 0.25)  # the hoop's centre (site goal) minus the basket's base
RIM_R, RIM_TUBE = 0.045, 0.01
BOARD_LO, BOARD_HI = (-0.1, -0.01, 0.22), (0.1, 0.01, 0.36)
POLE_LO, POLE_HI = (-0.007, -0.007, 0.0), (0.007, 0.007, 0.226)


def _ball_collides(ball, basket):
    r = jnp.full(3, BALL_R, jnp.float32)
    board = point_in(ball, basket + v(*BOARD_LO) - r, basket + v(*BOARD_HI) + r)
    pole = point_in(ball, basket + v(*POLE_LO) - r, basket + v(*POLE_HI) + r)
    hoop = basket + v(*HOOP)
    ring = jnp.hypot(jnp.linalg.norm(ball[:2] - hoop[:2]) - RIM_R, ball[2] - hoop[2])
    return board | pole | (ring < BALL_R + RIM_TUBE) | (ball[2] < BALL_R - EPS)


def _hoop_tcp_blocked(tcp, basket):
    pad = jnp.full(3, 0.01, jnp.float32)
    return point_in(tcp, basket + v(*BOARD_LO) - pad, basket + v(*BOARD_HI) + pad) \
        | point_in(tcp, basket + v(*POLE_LO) - pad, basket + v(*POLE_HI) + pad)


class Basketball(Task):
    """Pick up the ball and bring it over the hoop (v3 scores the point 0.3 m high above its centre)."""

    name = "basketball"
    obj_low, obj_high = (-0.1, 0.6, 0.0299), (0.1, 0.7, 0.0301)
    goal_low, goal_high = (-0.1, 0.85, 0.0), (0.1, 0.9, 0.0)  # the basket's base
    min_separation = 0.15
    obj_quat = SCALAR_FIRST_IDENTITY
    success_threshold = 0.08

    def reset_state(self, params):
        ball = jnp.stack([f(params.obj_init)[0], f(params.obj_init)[1], jnp.float32(BALL_R)])
        return world.initial_state(self.hand_init, ball)

    def target(self, params):
        return f(params.goal) + v(*HOOP)

    def _scored_point(self, params):
        return self.target(params).at[2].set(0.3)

    def move_objects(self, prev, state, act, params):
        basket = f(params.goal)
        return free_object(prev, state, act, width=BALL_WIDTH, radius=0.04, height=BALL_R, rest_z=BALL_R,
                            collides=lambda p: _ball_collides(p, basket),
                            tcp_blocked=lambda t: _hoop_tcp_blocked(t, basket))

    def _distance(self, obj, params):
        return jnp.linalg.norm((obj - self._scored_point(params)) * v(1.0, 1.0, 2.0))

    def success(self, state, params):
        return self._distance(state.obj, params) <= self.success_threshold

    def reward(self, state, act, params):
        tcp, obj = world.tcp_of(state.hand), state.obj
        obj_init = self.reset_state(params).obj
        opened = world.opening_of(state.closure)
        dist = self._distance(obj, params)
        in_place = tolerance(dist, 0.0, self.success_threshold, self._distance(obj_init, params))
        grasped = caging(tcp, obj, obj_init, self.tcp_init, opened, act[3], pad_margin=0.06, obj_radius=0.025,
                         xz_thresh=0.005, high_density=True)
        lifted = (jnp.linalg.norm(obj - tcp) < 0.035) & (opened > 0) & (obj[2] - 0.01 > obj_init[2])
        grasped = jnp.where(lifted, 1.0, grasped)
        reward = hamacher(grasped, in_place) + jnp.where(lifted, 1.0 + 5.0 * in_place, 0.0)
        return jnp.where(dist < self.success_threshold, 10.0, reward)

    def scripted_action(self, obs, params):
        ball, hoop = obs_obj(obs), self.target(params)
        tcp = world.tcp_of(obs_hand(obs))
        goal_pick, grip = pick(tcp, ball)
        over_hoop = jnp.stack([hoop[0], hoop[1], jnp.float32(0.3)])
        # up first, clear of the rim (in front of it), then across
        lift = jnp.stack([ball[0], jnp.minimum(ball[1], hoop[1] - 0.09), jnp.float32(0.3)])
        carry_goal = jnp.where(ball[2] < 0.28, lift, over_hoop)
        return jnp.where(holding(obs, ball, BALL_WIDTH), carry(obs, ball, carry_goal),
                         drive(obs, goal_pick, grip))


# =========================================================================================================
# sweep and sweep-into: the 4 cm block
# =========================================================================================================
BLOCK_HALF = 0.02
BLOCK_WIDTH = 0.845  # closure at which the fingers touch the 4 cm block
HOLE_HALF = 0.08  # the table's square hole (sweep-into), around the goal
POCKET_Z = -0.03  # the block's height resting in the hole


def _sweep_caging(tcp, obj, obj_init, tcp_init, opening, *, obj_radius, grip_margin, xz_thresh):
    """The sweep tasks' own ``_gripper_caging_reward``: (caging + gripping) / 2, gripping being the pads'
    tighter tolerance once caged (pads at ``tcp_y +- 0.05 * opening``, as in ``rewards.caging``)."""
    half = 0.05 * opening
    d_left, d_right = tcp[1] + half - obj[1], obj[1] - (tcp[1] - half)
    m_left = jnp.abs(jnp.abs(obj[1] - (tcp_init[1] + 0.05)) - 0.05)
    m_right = jnp.abs(jnp.abs(obj[1] - (tcp_init[1] - 0.05)) - 0.05)
    y_caging = hamacher(tolerance(d_right, obj_radius, 0.05, m_right), tolerance(d_left, obj_radius, 0.05, m_left))
    y_gripping = hamacher(tolerance(d_right, obj_radius, grip_margin, m_right),
                          tolerance(d_left, obj_radius, grip_margin, m_left))
    xz = jnp.array([0, 2])
    xz_margin = jnp.linalg.norm(obj_init[xz] - tcp_init[xz]) - xz_thresh
    xz_caging = tolerance(jnp.linalg.norm(tcp[xz] - obj[xz]), 0.0, xz_thresh, xz_margin)
    cage = hamacher(y_caging, xz_caging)
    return 0.5 * (cage + jnp.where(cage > 0.95, y_gripping, 0.0))


def _block_expert(obs, drop_at, hold_z, done):
    """Grasp the block, carry it at ``hold_z`` over ``drop_at`` (xy) and let go; ``done`` -> back off."""
    block = obs_obj(obs)
    tcp = world.tcp_of(obs_hand(obs))
    goal_pick, grip = pick(tcp, block)
    over = jnp.stack([drop_at[0], drop_at[1], jnp.float32(hold_z)])
    arrived = jnp.linalg.norm(block[:2] - drop_at[:2]) < 0.01
    carrying = carry(obs, block, over, jnp.where(arrived, OPEN, CLOSE))
    leave = drive(obs, tcp.at[2].set(0.15), OPEN)
    return select([(done, leave), (holding(obs, block, BLOCK_WIDTH), carrying)], drive(obs, goal_pick, grip))


class Sweep(Task):
    """Bring the block to the table's far side (x = 0.5) at its own y."""

    name = "sweep"
    obj_low, obj_high = (-0.1, 0.6, 0.02), (0.1, 0.7, 0.02)
    goal_low, goal_high = (0.49, 0.6, 0.0), (0.51, 0.7, 0.02)  # v3's goal_space; the goal is (0.5, obj_y, 0.01)
    obj_quat = SCALAR_FIRST_IDENTITY
    success_threshold = 0.05

    def derive_goal(self, obj_init, goal, params=None):
        return jnp.stack([jnp.float32(0.5), jnp.asarray(obj_init[1], jnp.float32), jnp.float32(0.01)])

    def target(self, params):  # from the block's start, whatever the params' goal field holds
        return self.derive_goal(f(params.obj_init), f(params.goal))

    def reset_state(self, params):
        return world.initial_state(self.hand_init, at_z(params.obj_init, BLOCK_HALF))

    def move_objects(self, prev, state, act, params):
        return free_object(prev, state, act, width=BLOCK_WIDTH, radius=0.03, height=BLOCK_HALF, rest_z=BLOCK_HALF)

    def success(self, state, params):
        return jnp.linalg.norm(state.obj - self.target(params)) <= self.success_threshold

    def reward(self, state, act, params):
        tcp, obj, goal = world.tcp_of(state.hand), state.obj, self.target(params)
        obj_init = self.reset_state(params).obj
        dist = jnp.linalg.norm(obj - goal)
        in_place = tolerance(dist, 0.0, 0.05, jnp.linalg.norm(obj_init - goal))
        grasped = _sweep_caging(tcp, obj, obj_init, self.tcp_init, world.opening_of(state.closure),
                                obj_radius=0.02, grip_margin=0.03, xz_thresh=0.005)
        reward = 2.0 * grasped + 6.0 * hamacher(grasped, in_place)
        return jnp.where(dist < 0.05, 10.0, reward)

    def scripted_action(self, obs, params):
        goal = self.target(params)
        done = jnp.linalg.norm(obs_obj(obs) - goal) < 0.02
        return _block_expert(obs, goal, 0.03, done)


def _in_hole(p, hole):
    return jnp.all(jnp.abs(p[:2] - hole[:2]) < HOLE_HALF)


def _block_in_table(p, hole):
    """Below the table's surface anywhere but inside the hole's walls, or below the hole's floor."""
    inside_walls = jnp.all(jnp.abs(p[:2] - hole[:2]) <= HOLE_HALF - BLOCK_HALF + EPS)
    return ((p[2] < BLOCK_HALF - EPS) & ~inside_walls) | (p[2] < POCKET_Z - EPS)


class SweepInto(Task):
    """Bring the block into the hole in the table (success on the xy distance: v3's target takes the
    block's own height)."""

    name = "sweep-into"
    obj_low, obj_high = (-0.1, 0.6, 0.02), (0.1, 0.7, 0.02)
    goal_low, goal_high = (-0.001, 0.8399, 0.0199), (0.001, 0.8401, 0.0201)  # the hole's centre
    min_separation = 0.15
    obj_quat = SCALAR_LAST_IDENTITY
    success_threshold = 0.05

    def reset_state(self, params):
        return world.initial_state(self.hand_init, at_z(params.obj_init, BLOCK_HALF))

    def move_objects(self, prev, state, act, params):
        hole = f(params.goal)
        state = free_object(prev, state, act, width=BLOCK_WIDTH, radius=0.03, height=BLOCK_HALF,
                             rest_z=POCKET_Z, collides=lambda p: _block_in_table(p, hole))
        # a loose block whose centre is over the hole slides in against the hole's walls
        lim = HOLE_HALF - BLOCK_HALF
        dropped = state.obj.at[:2].set(jnp.clip(state.obj[:2], hole[:2] - lim, hole[:2] + lim))
        over = ~state.grasped & _in_hole(state.obj, hole) & (state.obj[2] <= BLOCK_HALF + EPS)
        return state.replace(obj=jnp.where(over, dropped, state.obj))

    def _distance(self, obj, params):
        return jnp.linalg.norm(obj[:2] - f(params.goal)[:2])

    def success(self, state, params):
        return self._distance(state.obj, params) <= self.success_threshold

    def reward(self, state, act, params):
        tcp, obj = world.tcp_of(state.hand), state.obj
        obj_init = self.reset_state(params).obj
        dist = self._distance(obj, params)
        in_place = tolerance(dist, 0.0, 0.05, jnp.linalg.norm(obj_init[:2] - f(params.goal)[:2]))
        grasped = _sweep_caging(tcp, obj, obj_init, self.tcp_init, world.opening_of(state.closure),
                                obj_radius=0.02, grip_margin=0.025, xz_thresh=0.01)
        reward = 2.0 * grasped + 6.0 * hamacher(grasped, in_place)
        return jnp.where(dist < 0.05, 10.0, reward)

    def scripted_action(self, obs, params):
        done = obs_obj(obs)[2] < 0.0  # in the hole
        return _block_expert(obs, f(params.goal), 0.03, done)


TASKS = (Basketball(), Sweep(), SweepInto())
