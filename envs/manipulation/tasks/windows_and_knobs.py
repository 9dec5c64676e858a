"""Slid and turned fixtures: window-open, window-close, lever-pull, faucet-close.

Each task is one fixed body at ``obj_init`` with one joint (``state.q``) that the fingers push
(:mod:`~envs.manipulation.tasks.fixture_rules`: push contacts only, the fixture's solid parts keep the
TCP out, a joint at its limit stops the hand). Geometry follows the v3 assets
(``metaworld/assets/objects/assets/{window_horiz,lever,faucet}.xml``):

* **window-open / -close.** The sash slides along x, ``q`` in ``[0, 0.2]``;
  its handle (a vertical bar at ``window + (-0.014 + q, -0.095, 0)``) is
  pushed either way. Observed: the site ``handleOpenStart`` (bar - 0.026 in
  x) or ``handleCloseStart`` (bar + 0.024).
* **lever-pull.** ``q`` is v3's ``lever_angle`` (minus the hinge's qpos): 0
  with the lever pointing at the robot, pi/2 straight up. The XML's range
  ``[0, 1.57]`` in qpos would forbid raising it at all, yet MuJoCo's arm
  forces the light lever through that soft limit (measured: qpos -1.45 under
  the v3 expert); here the lever turns in ``[-pi/2, pi]``: down to hanging
  (the XML's other stop), up over the top until it lies on the far side.
* **faucet-close.** The handle turns about z, ``q`` in ``[-1.57, 1.57]``
  (XML), from pointing at the robot (0) to the left (-pi/2, closed).

Only the TCP collides: the rest of the hand and the arm pass through the
fixtures (v3's experts push windows and levers with the wrist; these experts
use the fingertips).
Meta-World v3 sources: ``metaworld/envs/sawyer_<task>_v3.py`` and
``metaworld/policies/sawyer_<task>_v3_policy.py``; "measured" numbers are from metaworld 3.1.1 + mujoco 3.3.0.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from envs.manipulation import world
from envs.manipulation.rewards import hamacher, tolerance
from envs.manipulation.task import SCALAR_FIRST_IDENTITY, obs_obj
from envs.manipulation.tasks.fixture_rules import (
    F32, FINGER, TOUCH, ZERO_QUAT, Fixture, box_at, go, tcp_obs, v,
)

GAUSS_SCALE = math.sqrt(-2.0 * math.log(0.1))  # Meta-World's gaussian sigmoid: 0.1 at the margin


def gaussian_tolerance(x, low, high, margin):
    """``reward_utils.tolerance(..., sigmoid="gaussian")``: 1 inside, ``exp(-(s d / m)^2 / 2)`` outside."""
    x = v(x)
    d = jnp.where(x < low, low - x, jnp.maximum(x - high, 0.0))
    return jnp.exp(-0.5 * (GAUSS_SCALE * d / jnp.maximum(margin, 1e-9)) ** 2)


# --- window-open / window-close -------------------------------------------------------------------------------
WINDOW_LOW, WINDOW_HIGH = 0.0, 0.2
WINDOW_BAR_X, WINDOW_BAR_Y = -0.014, -0.095  # the handle's vertical bar in the sash at q = 0
WINDOW_BAR_HALF = 0.008  # capsule radius
WINDOW_HANDLE = ((-0.022, -0.103, -0.053), (-0.006, -0.017, 0.053))  # bar and its two arms to the sash
WINDOW_FRAME = ((-0.231, -0.031, -0.202), (0.231, 0.03, 0.181))  # frame, sashes and base, joined
WINDOW_OPEN_SITE, WINDOW_CLOSE_SITE = -0.04, 0.01  # handleOpenStart / handleCloseStart x in the sash


class _Window(Fixture):
    obj_quat = ZERO_QUAT
    site_x = 0.0
    push = 1.0  # the expert's push direction in x

    def handle(self, state, params):
        return state.obj + jnp.stack([self.site_x + state.q, WINDOW_BAR_Y, 0.0])

    def joint(self, q, tcp_prev, tcp, params):
        w = params.obj_init
        lo, hi = v(WINDOW_HANDLE[0]), v(WINDOW_HANDLE[1])
        yz = jnp.clip(tcp[1:] - w[1:], lo[1:], hi[1:]) + w[1:]  # nearest point of the handle's mid-plane
        bar = lambda q: jnp.concatenate([(w[0] + WINDOW_BAR_X + q)[None], yz])
        return world.move_joint(q, bar, tcp_prev, tcp, radius=WINDOW_BAR_HALF + FINGER + TOUCH, low=WINDOW_LOW,
                                high=WINDOW_HIGH, hook=False)

    def solids(self, q, params):
        w = v(params.obj_init)
        return (box_at(w + jnp.stack([q, 0.0, 0.0]), *WINDOW_HANDLE), box_at(w, *WINDOW_FRAME)), ()

    def success(self, state, params):
        return jnp.abs(self.handle(state, params)[0] - self.target(params)[0]) <= self.success_threshold

    def _reach(self, dist, margin):
        return tolerance(dist, 0.0, 0.02, margin)

    def reward(self, state, act, params):
        # v3: 10 H(reach, in_place) on x. v3 takes its initial handle position before MuJoCo refreshes the
        # sites; the intended value (the handle at reset) is used here.
        handle, tcp, target = self.handle(state, params), world.tcp_of(state.hand), self.target(params)
        start = self.handle(self.reset_state(params), params)
        init_gap = self._init_gap(params, start, target)
        in_place = tolerance(jnp.abs(handle[0] - target[0]), 0.0, 0.05, jnp.abs(init_gap - 0.05))
        reach = self._reach(jnp.linalg.norm(handle - tcp), jnp.abs(jnp.linalg.norm(start - self.tcp_init) - 0.02))
        return 10.0 * hamacher(reach, in_place)

    def scripted_action(self, obs, params):
        # v3's phases (to the handle's side, then push along x), with the fingertips at the handle's height.
        site, tcp = obs_obj(obs), tcp_obs(obs)
        ready = site + v((-0.01 * self.push, 0.0, 0.0))
        rel = (tcp - ready) * v((self.push, 1.0, 1.0))
        pushing = (jnp.abs(rel[1]) < 0.015) & (jnp.abs(rel[2]) < 0.015) & (rel[0] > -0.015) & (rel[0] < 0.04)
        return go(obs, jnp.where(pushing, ready + v((0.1 * self.push, 0.0, 0.0)), ready))


class WindowOpen(_Window):
    """Slide the window open (+x) by its handle (success on x alone, 0.05)."""

    name = "window-open"
    obj_low, obj_high = (-0.1, 0.7, 0.16), (0.1, 0.9, 0.16)
    goal_offset = (0.2, 0.0, 0.0)
    success_threshold = 0.05
    site_x = WINDOW_OPEN_SITE

    def _init_gap(self, params, start, target):
        return jnp.abs(params.obj_init[0] - target[0])  # v3 measures from the window body, not the handle


class WindowClose(_Window):
    """Slide the open window shut (-x) by its handle (success on x alone, 0.05)."""

    name = "window-close"
    obj_low, obj_high = (0.0, 0.75, 0.2), (0.0, 0.9, 0.2)
    goal_offset = (0.0, 0.0, 0.0)
    success_threshold = 0.05
    site_x = WINDOW_CLOSE_SITE
    q_init = 0.2
    push = -1.0

    def _init_gap(self, params, start, target):
        return jnp.abs(start[0] - target[0])

    def _reach(self, dist, margin):
        return gaussian_tolerance(dist, 0.0, 0.02, margin)  # window-close's reach is v3's gaussian one


# --- lever-pull ---------------------------------------------------------------------------------------------
LEVER_PIVOT = (0.12, 0.0, 0.25)  # lever_link1 in the lever body
LEVER_LENGTH = 0.2  # the leverStart site (the observed point) from the pivot
LEVER_RADIUS = 0.02  # rod 0.012 / tip ball 0.03, one capsule here
LEVER_LOW, LEVER_HIGH = -math.pi / 2, math.pi
LEVER_BASE = ((-0.041, -0.083, 0.0), (0.041, 0.083, 0.333))  # the column and the axle housing on it
LEVER_PLATE = ((-0.05, -0.092, 0.0), (0.05, 0.092, 0.026))
LEVER_GEOM_QUAT = (0.6625, 0.6625, -0.2472, 0.2472)  # objGeom's frame in lever_link1 (MuJoCo w, x, y, z)
LEVER_CONTACT = 0.185  # the expert pushes the rod this far from the pivot
LEVER_DELTA = math.asin((LEVER_RADIUS + FINGER + 0.004) / LEVER_CONTACT)  # the expert's angle behind the rod


def _quat_mul(a, b):
    """Hamilton product of (w, x, y, z) quaternions."""
    aw, ax, ay, az = a[0], a[1], a[2], a[3]
    bw, bx, by, bz = b[0], b[1], b[2], b[3]
    return jnp.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                      aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw])


def lever_point(pivot, angle, radius):
    """The point ``radius`` along the lever at lever angle ``angle`` (the hinge's qpos is ``-angle``)."""
    return pivot + world.rotate_x(jnp.stack([0.0, -radius, 0.0]), -angle)


class LeverPull(Fixture):
    """Raise the lever to point straight up (success: angle within pi/24 of pi/2)."""

    name = "lever-pull"
    obj_low, obj_high = (-0.1, 0.7, 0.0), (0.1, 0.8, 0.0)
    goal_offset = (0.12, 0.0, 0.25 + LEVER_LENGTH)
    obj_quat = (0.6625, -0.2472, 0.2472, 0.6625)  # at rest; scipy scalar-last of the turning handle geom
    success_threshold = math.pi / 24

    def pivot(self, params):
        return params.obj_init + v(LEVER_PIVOT)

    def handle(self, state, params):
        return lever_point(self.pivot(params), state.q, LEVER_LENGTH)

    def observe_objects(self, state, params):
        half = -0.5 * state.q  # the hinge turns by qpos = -angle about x
        hinge = jnp.stack([jnp.cos(half), jnp.sin(half), 0.0, 0.0])
        w, x, y, z = _quat_mul(hinge, v(LEVER_GEOM_QUAT))
        return jnp.concatenate([self.handle(state, params), jnp.stack([x, y, z, w]), jnp.zeros(7, F32)])

    def joint(self, q, tcp_prev, tcp, params):
        pivot = self.pivot(params)
        radius = jnp.clip(jnp.linalg.norm((tcp - pivot)[1:]), 0.04, LEVER_LENGTH)  # nearest point of the rod
        return world.move_joint(q, lambda a: lever_point(pivot, a, radius), tcp_prev, tcp,
                                radius=LEVER_RADIUS + FINGER + TOUCH, low=LEVER_LOW, high=LEVER_HIGH, hook=False)

    def solids(self, q, params):
        pivot, body = self.pivot(params), params.obj_init
        rod = (pivot, lever_point(pivot, q, LEVER_LENGTH), LEVER_RADIUS)
        return (box_at(body, *LEVER_BASE), box_at(body, *LEVER_PLATE)), (rod,)

    def success(self, state, params):
        return jnp.abs(state.q - math.pi / 2) <= self.success_threshold

    def reward(self, state, act, params):
        # v3: 10 H(ready_to_lift, in_place). Simplified: v3 scores its "shoulder" (hand + (0, .055, .07)),
        # which is what lifts the lever in MuJoCo; here the TCP lifts it, so the TCP is scored (same scale).
        lever, tcp = self.handle(state, params), world.tcp_of(state.hand)
        start, target = lever_point(self.pivot(params), 0.0, LEVER_LENGTH), self.target(params)
        scale = v((4.0, 1.0, 4.0))
        ready = tolerance(jnp.linalg.norm((tcp - lever) * scale), 0.0, 0.02,
                          jnp.linalg.norm((self.tcp_init - start) * scale))
        in_place = tolerance(jnp.linalg.norm(lever - target), 0.0, 0.04, jnp.linalg.norm(start - target))
        return 10.0 * hamacher(ready, in_place)

    def scripted_action(self, obs, params):
        # v3's phases: below the lever, up to it, then lift it along its arc (stopping at vertical).
        pivot, tip, tcp = self.pivot(params), obs_obj(obs), tcp_obs(obs)
        angle = jnp.arctan2(tip[2] - pivot[2], pivot[1] - tip[1])
        behind = lever_point(pivot, angle - LEVER_DELTA, LEVER_CONTACT)
        ahead = lever_point(pivot, jnp.minimum(angle + 0.6, math.pi / 2) - LEVER_DELTA, LEVER_CONTACT)
        pushing = jnp.linalg.norm(tcp - behind) <= 0.025
        under = jnp.linalg.norm(tcp[:2] - behind[:2]) <= 0.02
        below = behind - v((0.0, 0.0, 0.08))
        return go(obs, jnp.where(pushing, ahead, jnp.where(under, behind, below)))


# --- faucet-close -----------------------------------------------------------------------------------------------
FAUCET_PIVOT_Z = 0.125  # the handle's axis height (faucet_link2 at 0.124, the capsule 0.001 above)
FAUCET_SITE = (0.015, -0.175, -0.011)  # handleStartClose - (0, 0, 0.01), from the pivot at q = 0
FAUCET_LOW, FAUCET_HIGH = -1.57, 1.57
FAUCET_RADIUS = 0.017  # handle capsule
FAUCET_ROD = (0.065, 0.175)  # the capsule's segment, distance from the axis
FAUCET_HEAD = ((-0.032, -0.032, 0.0), (0.032, 0.032, 0.145))  # head and column
FAUCET_PLATE = ((-0.046, -0.046, 0.0), (0.046, 0.046, 0.018))
FAUCET_CONTACT = 0.15  # the expert pushes the handle this far from the axis
FAUCET_DELTA = math.asin((FAUCET_RADIUS + FINGER + 0.004) / FAUCET_CONTACT)


def faucet_point(pivot, q, radius):
    return pivot + world.rotate_z(jnp.stack([0.0, -radius, 0.0]), q)


class FaucetClose(Fixture):
    """Turn the faucet handle from the robot to the left (success: within 0.07 of the closed position)."""

    name = "faucet-close"
    obj_low, obj_high = (-0.1, 0.8, 0.0), (0.1, 0.85, 0.0)
    goal_offset = (-0.175, 0.0, 0.125)
    obj_quat = SCALAR_FIRST_IDENTITY  # faucetBase's xquat
    success_threshold = 0.07

    def pivot(self, params):
        return params.obj_init + v((0.0, 0.0, FAUCET_PIVOT_Z))

    def handle(self, state, params):
        return self.pivot(params) + world.rotate_z(v(FAUCET_SITE), state.q)

    def joint(self, q, tcp_prev, tcp, params):
        pivot = self.pivot(params)
        radius = jnp.clip(jnp.linalg.norm((tcp - pivot)[:2]), FAUCET_ROD[0], FAUCET_ROD[1])
        return world.move_joint(q, lambda a: faucet_point(pivot, a, radius), tcp_prev, tcp,
                                radius=FAUCET_RADIUS + FINGER + TOUCH, low=FAUCET_LOW, high=FAUCET_HIGH, hook=False)

    def solids(self, q, params):
        pivot, body = self.pivot(params), params.obj_init
        rod = (faucet_point(pivot, q, FAUCET_ROD[0]), faucet_point(pivot, q, FAUCET_ROD[1]), FAUCET_RADIUS)
        return (box_at(body, *FAUCET_HEAD), box_at(body, *FAUCET_PLATE)), (rod,)

    def reward(self, state, act, params):
        # v3: 2 (2 reach + 3 in_place), 10 on success; reach is v3's gaussian tolerance.
        handle, tcp, target = self.handle(state, params), world.tcp_of(state.hand), self.target(params)
        dist = jnp.linalg.norm(handle - target)
        in_place = tolerance(dist, 0.0, 0.07, jnp.abs(jnp.linalg.norm(params.obj_init - target) - 0.07))
        reach = gaussian_tolerance(jnp.linalg.norm(handle - tcp), 0.0, 0.01,
                                   jnp.abs(jnp.linalg.norm(params.obj_init - self.tcp_init) - 0.01))
        return jnp.where(dist <= self.success_threshold, 10.0, 2.0 * (2.0 * reach + 3.0 * in_place))

    def scripted_action(self, obs, params):
        # v3's phases: above the handle's right side, down beside it, then sweep it to the left.
        pivot, site, tcp = self.pivot(params), obs_obj(obs), tcp_obs(obs)
        rel = site - pivot
        q = jnp.arctan2(rel[1], rel[0]) - math.atan2(FAUCET_SITE[1], FAUCET_SITE[0])
        behind = faucet_point(pivot, q + FAUCET_DELTA, FAUCET_CONTACT)
        ahead = faucet_point(pivot, jnp.maximum(q - 0.6, -1.45) + FAUCET_DELTA, FAUCET_CONTACT)
        pushing = jnp.linalg.norm(tcp - behind) <= 0.025
        over = jnp.linalg.norm(tcp[:2] - behind[:2]) <= 0.012
        above = behind + v((0.0, 0.0, 0.08))
        return go(obs, jnp.where(pushing, ahead, jnp.where(over, behind, above)))


TASKS = (WindowOpen(), WindowClose(), LeverPull(), FaucetClose())
