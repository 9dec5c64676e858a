"""Pegs: peg-insert-side, peg-unplug-side.

Geometry, ranges, targets and success rules follow Meta-World v3 (``sawyer_<task>_v3.py`` and the task
XMLs); the rules objects follow are kinematic (``world.py``, :mod:`~envs.manipulation.tasks.object_rules`)
plus a few task-specific ones, each a small function below:

* **Obstacles.** The peg box with its side tunnel (peg-insert-side), the plug wall (peg-unplug-side).
  The hand refuses a step that would put the TCP, or the object it holds, inside one
  (``object_rules.slide_hand``).
* **Sockets.** The plug slides only along its socket's axis until it is out (``state.q`` = how far it
  has been pulled); then it is a free object that the wall stops.

Every object keeps its orientation (the kinematic world has no rotations); the reported quaternions
follow each v3 task's convention.
"""

from __future__ import annotations

import jax.numpy as jnp

from envs.manipulation import world
from envs.manipulation.rewards import caging, hamacher, tolerance
from envs.manipulation.task import SCALAR_FIRST_IDENTITY, SCALAR_LAST_IDENTITY, Task, obs_hand, obs_obj
from envs.manipulation.tasks.object_rules import (
    EPS, carry, drive, f, fall, free_object, holding, overlap, pick, point_in, rect_prism, slide_hand, v,
)


# =========================================================================================================
# peg-insert-side
# =========================================================================================================
PEG_GRASP = (0.03, 0.0, 0.01)  # site pegGrasp (the observation) minus the peg's centre
PEG_HEAD = (-0.13, 0.0, -0.01)  # site pegHead minus pegGrasp
PEG_HALF = (0.12, 0.015, 0.015)  # the peg is a 0.24 x 0.03 x 0.03 bar along x
PEG_REST_Z = 0.015 + 0.01  # pegGrasp height with the peg lying on the table
PEG_WIDTH = 0.95  # closure at which the fingers touch the 3 cm bar
PEG_BOX_HALF = (0.1, 0.1, 0.2)  # the box (after its 90 degree turn): x, y half sizes, height
PEG_TUNNEL = (0.03, 0.10, 0.16)  # the side hole: |y - box_y| < 0.03, box_z + 0.10 < z < box_z + 0.16
PEG_TARGET = (0.03, 0.0, 0.13)  # target minus box (v3)
PEG_SCALE = (1.0, 2.0, 2.0)
# v3's two collision-box reward regions in front of the hole, (zero corner, one corner) minus the box
PEG_PRISMS = (((0.11, 0.1, 0.01), (0.15, -0.1, 0.096)), ((0.11, 0.1, 0.16), (0.17, -0.1, 0.19)))


def _peg_collides(obj, box):
    """The peg (reported at ``obj``) inside the box anywhere but the tunnel, or under the table."""
    centre = obj - v(*PEG_GRASP)
    lo, hi = centre - v(*PEG_HALF), centre + v(*PEG_HALF)
    hx, hy, height = PEG_BOX_HALF
    box_lo, box_hi = box + v(-hx, -hy, 0.0), box + v(hx, hy, height)
    in_tunnel = ((lo[1] >= box[1] - PEG_TUNNEL[0] - EPS) & (hi[1] <= box[1] + PEG_TUNNEL[0] + EPS)
                 & (lo[2] >= box[2] + PEG_TUNNEL[1] - EPS) & (hi[2] <= box[2] + PEG_TUNNEL[2] + EPS))
    return (overlap(lo, hi, box_lo, box_hi) & ~in_tunnel) | (lo[2] < -EPS)


def _peg_tcp_blocked(tcp, box):
    """Fingers (1 cm x 2 cm around the TCP, the hand above) inside the box."""
    return (jnp.abs(tcp[0] - box[0]) < PEG_BOX_HALF[0] + 0.01) & (jnp.abs(tcp[1] - box[1]) < PEG_BOX_HALF[1] + 0.02) \
        & (tcp[2] < box[2] + PEG_BOX_HALF[2])


class PegInsertSide(Task):
    """Pick up the bar and push its head into the box's side hole."""

    name = "peg-insert-side"
    obj_low, obj_high = (0.0, 0.5, 0.02), (0.2, 0.7, 0.02)  # the peg
    goal_low, goal_high = (-0.35, 0.4, -0.001), (-0.25, 0.7, 0.001)  # the box
    min_separation = 0.1
    obj_quat = SCALAR_LAST_IDENTITY
    success_threshold = 0.07

    def reset_state(self, params):
        centre = jnp.stack([f(params.obj_init)[0], f(params.obj_init)[1], jnp.float32(PEG_HALF[2])])
        return world.initial_state(self.hand_init, centre + v(*PEG_GRASP))

    def head(self, obj):
        return obj + v(*PEG_HEAD)

    def target(self, params):
        return f(params.goal) + v(*PEG_TARGET)

    def move_objects(self, prev, state, act, params):
        box = f(params.goal)
        return free_object(prev, state, act, width=PEG_WIDTH, radius=0.03, height=0.02, rest_z=PEG_REST_Z,
                            collides=lambda p: _peg_collides(p, box), tcp_blocked=lambda t: _peg_tcp_blocked(t, box))

    def _distance(self, state, params):
        return jnp.linalg.norm((self.head(state.obj) - self.target(params)) * v(*PEG_SCALE))

    def success(self, state, params):
        return self._distance(state, params) <= self.success_threshold

    def reward(self, state, act, params):
        tcp, obj, target = world.tcp_of(state.hand), state.obj, self.target(params)
        obj_init = self.reset_state(params).obj
        opened = world.opening_of(state.closure)
        dist = self._distance(state, params)
        margin = jnp.linalg.norm((self.head(obj_init) - target) * v(*PEG_SCALE))
        in_place = tolerance(dist, 0.0, self.success_threshold, margin)
        head = self.head(obj)
        boxes = [rect_prism(head, f(params.goal) + v(*z), f(params.goal) + v(*o)) for z, o in PEG_PRISMS]
        in_place = hamacher(in_place, hamacher(boxes[1], boxes[0]))
        grasped = caging(tcp, obj, obj_init, self.tcp_init, opened, act[3], pad_margin=0.03, obj_radius=0.0075,
                         xz_thresh=0.005, high_density=True)
        lifted = (jnp.linalg.norm(obj - tcp) < 0.08) & (opened > 0) & (obj[2] - 0.01 > obj_init[2])
        grasped = jnp.where(lifted, 1.0, grasped)
        reward = hamacher(grasped, in_place) + jnp.where(lifted, 1.0 + 5.0 * in_place, 0.0)
        return jnp.where(dist <= self.success_threshold, 10.0, reward)

    def scripted_action(self, obs, params):
        peg, target = obs_obj(obs), self.target(params)
        tcp = world.tcp_of(obs_hand(obs))
        head_to_grasp = -v(*PEG_HEAD)
        lined_up = target + head_to_grasp + v(0.10, 0.0, 0.0)  # head 10 cm in front of the target
        inserted = target + head_to_grasp - v(0.03, 0.0, 0.0)  # head 3 cm past it (the fingers stop it)
        aligned = (jnp.linalg.norm(peg[1:] - lined_up[1:]) < 0.004) & (peg[0] < lined_up[0] + 0.01)
        goal_pick, grip = pick(tcp, peg)
        carry_goal = jnp.where(aligned, inserted, lined_up)
        held = holding(obs, peg, PEG_WIDTH)
        return jnp.where(held, carry(obs, peg, carry_goal), drive(obs, goal_pick, grip))


# =========================================================================================================
# peg-unplug-side
# =========================================================================================================
PLUG_END = (0.084, 0.0, 0.131)  # site pegEnd (the observation) minus the wall's position, plugged in
PLUG_TARGET = (0.194, 0.0, 0.131)  # v3: plug + (0.15, 0, 0), i.e. wall + this
PLUG_DEPTH = 0.05  # the prong leaves the socket after this much pull
PLUG_LO, PLUG_HI = (-0.105, -0.04, -0.04), (0.06, 0.04, 0.04)  # the plug's extent around pegEnd
PLUG_REST_Z = 0.04  # pegEnd height with the plug lying on the table
PLUG_WIDTH = 0.35  # closure at which the fingers touch the 7.6 cm plug body
WALL_LO, WALL_HI = (-0.025, -0.1, 0.0), (0.025, 0.1, 0.2)  # the socket wall around its position


def _plug_collides(obj, wall):
    lo, hi = obj + v(*PLUG_LO), obj + v(*PLUG_HI)
    return overlap(lo, hi, wall + v(*WALL_LO), wall + v(*WALL_HI)) | (obj[2] < PLUG_REST_Z - EPS)


def _wall_tcp_blocked(tcp, wall):
    pad = v(0.01, 0.02, 0.0)
    return point_in(tcp, wall + v(*WALL_LO) - pad, wall + v(*WALL_HI) + pad)


class PegUnplugSide(Task):
    """Pull the plug out of the wall's socket along +x."""

    name = "peg-unplug-side"
    obj_low, obj_high = (-0.25, 0.6, -0.001), (-0.15, 0.8, 0.001)  # the wall (rand_vec)
    goal_offset = PLUG_TARGET
    obj_quat = SCALAR_FIRST_IDENTITY
    success_threshold = 0.07

    def plugged(self, params):
        return f(params.obj_init) + v(*PLUG_END)

    def reset_state(self, params):
        return world.initial_state(self.hand_init, self.plugged(params))

    def move_objects(self, prev, state, act, params):
        wall, start = f(params.obj_init), self.plugged(params)
        free = prev.q >= PLUG_DEPTH - 1e-6
        state = world.grasp(prev, state, act, prev.obj, width=PLUG_WIDTH)

        def in_socket_ok(held):  # the socket lets the plug slide out along +x only
            return (jnp.abs(held[1] - start[1]) < 1e-3) & (jnp.abs(held[2] - start[2]) < 1e-3) \
                & (held[0] > start[0] - 1e-3)

        def blocked(hand):
            tcp = world.tcp_of(hand)
            held = tcp + state.grip_offset
            held_bad = jnp.where(free, _plug_collides(held, wall), ~in_socket_ok(held))
            return _wall_tcp_blocked(tcp, wall) | (state.grasped & held_bad)

        state = slide_hand(prev, state, blocked)
        tcp = world.tcp_of(state.hand)
        carried = tcp + state.grip_offset
        # plugged: only the held plug moves, along the socket's axis
        socket_x = jnp.where(state.grasped, jnp.maximum(carried[0], start[0]), prev.obj[0])
        plugged_obj = start.at[0].set(socket_x)
        q = jnp.where(free, prev.q, jnp.clip(socket_x - start[0], 0.0, PLUG_DEPTH))
        # out of the socket: a free object that the wall stops
        collides = lambda p: _plug_collides(p, wall)
        between_fingers = (jnp.linalg.norm(tcp[:2] - prev.obj[:2]) <= 0.025) & (state.closure < PLUG_WIDTH)
        pushed = world.push_out(prev.obj, tcp, 0.045, 0.04)
        pushed = jnp.where(collides(pushed) | between_fingers, prev.obj, pushed)
        loose = fall(pushed, PLUG_REST_Z, collides)
        free_obj = jnp.where(state.grasped, carried, loose)
        return state.replace(obj=jnp.where(free, free_obj, plugged_obj), q=q)

    def success(self, state, params):
        return jnp.linalg.norm(state.obj - self.target(params)) <= self.success_threshold

    def reward(self, state, act, params):
        tcp, obj, target = world.tcp_of(state.hand), state.obj, self.target(params)
        obj_init = self.plugged(params)
        opened = world.opening_of(state.closure)
        tcp_to_obj = jnp.linalg.norm(obj - tcp)
        dist = jnp.linalg.norm(obj - target)
        grasped = caging(tcp, obj, obj_init, self.tcp_init, opened, act[3] / 0.8, pad_margin=0.05,
                         obj_radius=0.025, xz_thresh=0.005, high_density=True)  # v3: desired effort 0.8
        in_place = tolerance(dist, 0.0, 0.05, jnp.linalg.norm(obj_init - target))
        pulled = (opened > 0.5) & (obj[0] - obj_init[0] > 0.015) & (tcp_to_obj < 0.035)
        reward = jnp.where(pulled, 1.0 + 2.0 * grasped + 5.0 * in_place, 2.0 * grasped)
        return jnp.where(dist <= 0.05, 10.0, reward)  # v3 snaps to 10 only within 0.05 (success: 0.07)

    def scripted_action(self, obs, params):
        plug, target = obs_obj(obs), self.target(params)
        tcp = world.tcp_of(obs_hand(obs))
        grasp_point = plug + v(-0.02, 0.0, -0.01)  # v3's expert: the hand at pegEnd + (-0.02, 0, 0.035)
        goal_pick, grip = pick(tcp, grasp_point)
        held = holding(obs, grasp_point, PLUG_WIDTH, reach=0.02)
        pull = carry(obs, plug, jnp.stack([target[0] + 0.03, plug[1], plug[2]]))
        return jnp.where(held, pull, drive(obs, goal_pick, grip))


TASKS = (PegInsertSide(), PegUnplugSide())
