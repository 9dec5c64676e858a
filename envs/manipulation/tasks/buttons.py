"""Pressed fixtures: button-press-topdown, handle-press-side.

Each task is one fixed body at ``obj_init`` with one joint (``state.q``) that the fingers push
(:mod:`~envs.manipulation.tasks.fixture_rules`: push contacts only, the fixture's solid parts keep the
TCP out, a joint at its limit stops the hand). Geometry follows the v3 assets
(``metaworld/assets/objects/assets/{buttonbox,handle_press}.xml``):

* **button-press-topdown.** The box is turned so the button slides along z;
  the observation is the button's frame origin + (0, 0, 0.193), i.e. its top
  (``q = 0`` at rest, negative pressed). The XML's range is ``[-0.06, 0]``,
  but MuJoCo's soft limit lets the arm press on until the cap meets the box
  (measured: ``q = -0.084`` under the v3 expert), and success (the top within
  0.024 of the ``hole`` site 0.093 below it) needs ``q <= -0.069``, so the hard
  stop here is the cap on the box, ``q = -0.082``. The spring
  (``stiffness 0.5``, ``springref 0.5``, ``damping 1``) lifts a released
  button by 3.5 mm per step, never into the finger resting on it.
* **handle-press-side.** A bar along y at ``box + (0.216, 0, 0.15 + q)``
  (a box here) slides down, ``q`` in ``[-0.1, 0]`` (start -0.001); observed:
  the bar's top (``handleStart``); target: ``goalPress``.

Only the TCP collides: the rest of the hand and the arm pass through the fixtures.
Meta-World v3 sources: ``metaworld/envs/sawyer_<task>_v3.py`` and
``metaworld/policies/sawyer_<task>_v3_policy.py``; "measured" numbers are from metaworld 3.1.1 + mujoco 3.3.0.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from envs.manipulation import world
from envs.manipulation.rewards import hamacher, tolerance
from envs.manipulation.task import obs_obj
from envs.manipulation.tasks.fixture_rules import FINGER, TOUCH, ZERO_QUAT, Fixture, box_at, go, tcp_obs, v


# --- button-press-topdown ---------------------------------------------------------------------------------
BUTTON_TOP = 0.193  # v3 observes the button frame + (0, 0, 0.193); the cap's top is 0.194 above the box
BUTTON_START = 0.1935  # the "buttonStart" site (the reward's initial gap)
BUTTON_TRAVEL = 0.082  # the cap (bottom at box + 0.172) meets the box top (box + 0.09)
BUTTON_CAP = 0.043  # cap radius (its square is the button's footprint here)
BUTTON_RETURN = 0.0035  # spring: 0.5 N/m * (0.5 - q) through damping 1 -> ~0.29 m/s * 0.0125 s
BUTTON_BOX = ((-0.12, -0.12, -0.114), (0.12, 0.12, 0.09))  # the button box's collision boxes, joined
_BUTTON_QUAT = (math.cos(0.785), -math.sin(0.785), 0.0, 0.0)  # box euler (-1.57, 0, 0), MuJoCo xquat


class ButtonPressTopdown(Fixture):
    """Press the button down from above (success on z alone)."""

    name = "button-press-topdown"
    obj_low, obj_high = (-0.1, 0.8, 0.115), (0.1, 0.9, 0.115)
    goal_offset = (0.0, 0.0, 0.1)  # the "hole" site
    obj_quat = _BUTTON_QUAT
    success_threshold = 0.024

    def handle(self, state, params):
        return state.obj + jnp.stack([0.0, 0.0, BUTTON_TOP + state.q])

    def joint(self, q, tcp_prev, tcp, params):
        box = params.obj_init
        top = lambda q, xy: jnp.concatenate([xy, (box[2] + BUTTON_TOP + q)[None]])
        xy = box[:2] + jnp.clip(tcp[:2] - box[:2], -BUTTON_CAP, BUTTON_CAP)  # nearest point of the cap
        q = world.move_joint(q, lambda q: top(q, xy), tcp_prev, tcp, radius=FINGER + TOUCH,
                             low=-BUTTON_TRAVEL, high=0.0, hook=False)
        # the spring lifts it back, but not into a finger resting on the cap
        over = jnp.all(jnp.abs(tcp[:2] - box[:2]) <= BUTTON_CAP + FINGER)
        ceiling = jnp.where(over, tcp[2] - FINGER - box[2] - BUTTON_TOP, 0.0)
        return jnp.maximum(q, jnp.minimum(q + BUTTON_RETURN, jnp.minimum(ceiling, 0.0)))

    def solids(self, q, params):
        box = params.obj_init
        column = box_at(box, (-BUTTON_CAP, -BUTTON_CAP, 0.09), (BUTTON_CAP, BUTTON_CAP, BUTTON_TOP + q))
        return (box_at(box, *BUTTON_BOX), column), ()

    def success(self, state, params):
        return jnp.abs(self.handle(state, params)[2] - self.target(params)[2]) <= self.success_threshold

    def reward(self, state, act, params):
        # v3 ("v2" reward): 5 H(closed, near) + 5 pressed once the fingers are within 0.03 of the button.
        button, tcp = self.handle(state, params), world.tcp_of(state.hand)
        tcp_to_obj = jnp.linalg.norm(button - tcp)
        near = tolerance(tcp_to_obj, 0.0, 0.01, jnp.linalg.norm(button - self.tcp_init))
        closed = 1.0 - world.opening_of(state.closure)
        gap = jnp.abs(self.target(params)[2] - button[2])
        pressed = tolerance(gap, 0.0, 0.005, BUTTON_START - self.goal_offset[2])
        return 5.0 * hamacher(closed, near) + jnp.where(tcp_to_obj <= 0.03, 5.0 * pressed, 0.0)

    def scripted_action(self, obs, params):
        # v3's phases: above the button, then straight down through it, fingers shut.
        button, tcp = obs_obj(obs), tcp_obs(obs)
        aligned = jnp.linalg.norm(tcp[:2] - button[:2]) <= 0.01
        above = button + v((0.0, 0.0, 0.06))
        return go(obs, jnp.where(aligned, button - v((0.0, 0.0, 0.05)), above))


# --- handle-press-side --------------------------------------------------------------------------------------
HANDLE_X = 0.216  # the bar's axis (and handleStart, goalPress) in x from the box, after its 90 deg turn
HANDLE_Z = 0.15  # bar axis height at q = 0
HANDLE_RADIUS, HANDLE_HALF = 0.022, 0.07  # the bar (a cylinder along y)
HANDLE_LOW, HANDLE_HIGH = -0.1, 0.0
HANDLE_HOUSING = ((-0.22, -0.087, 0.0), (0.184, 0.087, 0.293))  # the press's body, bounding its meshes
HANDLE_ARM = ((0.056, -0.032, -0.011), (0.206, 0.032, 0.011))  # the lever arm, around the bar's height
# The bar as a box: a round bar would slide the finger into the 1 cm slit between it and the body.
HANDLE_BAR = ((HANDLE_X - HANDLE_RADIUS, -HANDLE_HALF, -HANDLE_RADIUS),
              (HANDLE_X + HANDLE_RADIUS, HANDLE_HALF, HANDLE_RADIUS))


class HandlePressSide(Fixture):
    """Press the side-mounted handle down (success on z alone, 0.02)."""

    name = "handle-press-side"
    hand_init = (0.0, 0.6, 0.2)
    obj_low, obj_high = (-0.35, 0.65, -0.001), (-0.25, 0.75, 0.001)
    goal_offset = (HANDLE_X, 0.0, 0.075)  # the "goalPress" site
    obj_quat = ZERO_QUAT
    success_threshold = 0.02
    q_init = -0.001

    def handle(self, state, params):
        return state.obj + jnp.stack([HANDLE_X, 0.0, HANDLE_Z + HANDLE_RADIUS + state.q])

    def joint(self, q, tcp_prev, tcp, params):
        box = params.obj_init
        y = box[1] + jnp.clip(tcp[1] - box[1], -HANDLE_HALF, HANDLE_HALF)
        top = lambda q: jnp.stack([box[0] + HANDLE_X, y, box[2] + HANDLE_Z + HANDLE_RADIUS + q])
        return world.move_joint(q, top, tcp_prev, tcp, radius=FINGER + TOUCH, low=HANDLE_LOW, high=HANDLE_HIGH,
                                hook=False)

    def solids(self, q, params):
        moving = v(params.obj_init) + jnp.stack([0.0, 0.0, HANDLE_Z + q])
        return (box_at(params.obj_init, *HANDLE_HOUSING), box_at(moving, *HANDLE_ARM), box_at(moving, *HANDLE_BAR)), ()

    def success(self, state, params):
        return jnp.abs(self.handle(state, params)[2] - self.target(params)[2]) <= self.success_threshold

    def reward(self, state, act, params):
        # v3: 10 H(reach, in_place), 10 on success.
        handle, tcp, target = self.handle(state, params), world.tcp_of(state.hand), self.target(params)
        start = params.obj_init + v((HANDLE_X, 0.0, HANDLE_Z + HANDLE_RADIUS + self.q_init))
        gap = jnp.abs(handle[2] - target[2])
        in_place = tolerance(gap, 0.0, 0.02, jnp.abs(jnp.abs(start[2] - target[2]) - 0.02))
        reach = tolerance(jnp.linalg.norm(handle - tcp), 0.0, 0.02,
                          jnp.abs(jnp.linalg.norm(start - self.tcp_init) - 0.02))
        return jnp.where(gap <= self.success_threshold, 10.0, 10.0 * hamacher(reach, in_place))

    def scripted_action(self, obs, params):
        # v3's phases: over the handle, then down through it. Lift first so as not to clip the bar on the way.
        handle, tcp = obs_obj(obs), tcp_obs(obs)
        aligned = jnp.linalg.norm(tcp[:2] - handle[:2]) <= 0.015
        above = handle + v((0.0, 0.0, 0.1))
        lift = jnp.stack([tcp[0], tcp[1], above[2]])
        far = jnp.where(tcp[2] < handle[2] + 0.05, lift, above)
        return go(obs, jnp.where(aligned, handle - v((0.0, 0.0, 0.3)), far))


TASKS = (ButtonPressTopdown(), HandlePressSide())
