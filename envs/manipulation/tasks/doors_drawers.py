"""Articulated furniture: door-open, door-close (a hinged safe door), drawer-open, drawer-close.

Geometry follows Meta-World v3's assets (``doorlockB.xml``, ``drawer.xml``):

* **Door.** The safe's body sits at ``obj_init``; the door hangs on a hinge
  about z at ``body + (-0.185, -0.1, 0)`` with range ``[-2, 0]`` rad (0 closed,
  negative opens toward the robot). The observed object is the handle geom,
  ``hinge + Rz(q) (0.325, -0.062, 0)``, with the hinge's rotation as its
  (scalar-last) quaternion (Meta-World's geom also carries a fixed 90 degree
  turn about x from its mesh; it is left out, so a shut door reads identity).
  Two contacts move the door: a *hook* (the fingers in the gap between the
  handle bar and the panel, pulling or pushing both ways) and the panel's two
  faces (push only).
* **Drawer.** The case sits at ``obj_init``; the drawer link at
  ``case + (0, -0.01 + q, 0.09)`` slides along y. The XML's range is
  ``[-0.16, 0]``, but drawer-open's goal is 0.19 from the shut handle, so
  that limit would leave the handle exactly at the 0.03 threshold; MuJoCo's
  soft limit lets a hard pull go further, and the hard limit here is
  ``[-0.17, 0]`` (the handle then ends 0.02 from the goal, the reward's bound). Meta-World reads the link's frame
  origin (``get_body_com``) plus ``(0, -0.16, 0)`` (drawer-open) or
  ``(0, -0.16, 0.05)`` (drawer-close). Contacts: a hook behind the handle bar
  (both ways), the bar's front (push) and the drawer's front panel (push).
  The hook is a box fitted to where a pull catches the bar in MuJoCo
  (``scripts/metaworld_drawer_pull_map.py``): from the top of the bar down to
  the table, across the bar's length, and from a little in front of the bar's
  axis to a little behind it, wider in front with the fingers open.
* **Walls.** The TCP cannot enter the safe, the drawer case or the drawer box:
  the hand is put back onto the nearest face (not the bottom) while its mocap
  may keep pushing, as a weld would. At a joint limit a touching TCP is held
  by the handle or panel it pushes or pulls.

Simplified: contacts are spheres around a handle point (or the nearest panel
point) or, for the drawer's hook, a box, rather than meshes; the door's hook does
not check the gripper (Meta-World's expert closes it there); the outer side of the
door's handle bar and the open door's panel are not walls, only contacts.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from envs.manipulation import world
from envs.manipulation.rewards import hamacher, tolerance
from envs.manipulation.task import (SCALAR_FIRST_IDENTITY, SCALAR_LAST_IDENTITY, Task, action, move_toward,
                                    obs_hand, obs_obj)

_F = jnp.float32
WALL_MARGIN = 0.015  # finger half width kept between the TCP and a wall

# --- door (doorlockB.xml) ----------------------------------------------------
DOOR_HINGE = (-0.185, -0.1, 0.0)  # door_link in the safe body
DOOR_HANDLE = (0.325, -0.062, 0.0)  # the "handle" geom in door_link (Meta-World's obs)
DOOR_LOW, DOOR_HIGH = -2.0, 0.0  # doorjoint range
DOOR_HOOK = (0.345, -0.04, -0.045)  # TCP in the gap behind the handle bar, hand at handle height
DOOR_HOOK_RADIUS = 0.04
PANEL_X = (0.005, 0.365)  # panel extent along door_link x
PANEL_HALF_Z = 0.123
PANEL_RADIUS = 0.03  # half thickness 0.01 + finger
SAFE_LO, SAFE_HI = (-0.22, -0.11, -0.15), (0.22, 0.106, 0.15)  # incl. the closed panel

# --- drawer (drawer.xml) -------------------------------------------------------
DRAWER_LINK = (0.0, -0.01, 0.09)  # drawer_link frame in the case body at q = 0
DRAWER_LOW, DRAWER_HIGH = -0.17, 0.0
BAR_Y, BAR_HALF_X = -0.15, 0.05  # handle bar in drawer_link
BAR_GEOM_RADIUS = 0.009  # the bar capsule's radius in drawer.xml
BAR_RADIUS = 0.03  # push contact: the bar's radius + a finger
BAR_PUSH_TOP = 0.01  # a TCP higher above the bar's axis passes over it (MuJoCo: 2 cm above does)
DRAWER_HOOK_Z = -0.04  # the experts' hook point below the bar's axis: open fingers around the bar
# The hook box around the bar's axis, fitted to MuJoCo (scripts/metaworld_drawer_pull_map.py). Meta-World's
# finger pads sit either side of the TCP along y (about 3 cm apart closed, by the gripper reading, wider
# open): a pull catches when the rear pad is behind the bar, from the table up to the bar's top, 7 cm
# either side of its centre (caught at 6, not at 8). Along y from the bar's axis: open, caught from 3.5 cm
# in front (caught at 3; a hand coming from the front is stopped 4 cm in front and cannot pull) to 2 cm
# behind (at 3 cm behind the rear pad meets the drawer front and the hand cannot get down); closed, from
# 1.5 cm in front (caught at the axis, not at 3 cm in front; a hand from the front stops 2.3 cm in front)
# to 6 cm behind, the drawer front.
HOOK_HALF_X, HOOK_TOP = 0.07, 0.01
HOOK_FRONT_OPEN, HOOK_FRONT_CLOSED, HOOK_BACK_OPEN, HOOK_BACK_CLOSED = 0.035, 0.015, 0.02, 0.06
# Near the table the wrist above the fingers (Meta-World's right_hand mesh, its bottom 8.4 cm above the TCP,
# 10.6 cm deep along y) is at the bar's height and a pull drags the bar with it, whatever the gripper: in
# MuJoCo a TCP lowered to the table pulls from 3 cm in front of the bar's axis to 1 cm behind it (a hand that
# comes along the table, its open pads stopped 4 cm in front, still drags it 7-8 cm), up to 8 cm either side
# of its centre (not at 10), and not from 2 cm higher up (scripts/metaworld_drawer_pull_map.py --grid table).
WRIST_ABOVE_TCP, WRIST_HALF_X, WRIST_FRONT, WRIST_BACK = 0.084, 0.09, 0.04, 0.02
FRONT_Y, FRONT_HALF_X, FRONT_HALF_Z = -0.09, 0.1, 0.06
FRONT_RADIUS = 0.03
CASE_LO, CASE_HI = (-0.118, -0.1, 0.0), (0.118, 0.1, 0.168)
BOX_LO, BOX_HI = (-0.1, -0.09, -0.06), (0.1, 0.09, 0.06)  # drawer box in drawer_link
DRAWER_MAX_DIST = 0.2  # v3 drawer-open's maxDist (reward margin and goal)

GAUSS_SCALE = math.sqrt(-2.0 * math.log(0.1))


def _v(x) -> jnp.ndarray:
    return jnp.asarray(x, _F)


def gaussian_tolerance(x, low, high, margin):
    """``reward_utils.tolerance`` with the gaussian sigmoid (0.1 at ``margin`` outside the bounds)."""
    x = jnp.asarray(x, _F)
    d = jnp.where(x < low, low - x, jnp.where(x > high, x - high, 0.0))
    safe = jnp.where(margin > 0, margin, 1.0)
    tail = jnp.exp(-0.5 * (d / safe * GAUSS_SCALE) ** 2)
    return jnp.where(d == 0, 1.0, jnp.where(margin > 0, tail, 0.0)).astype(_F)


def keep_out(prev, state, lo, hi):
    """Put the TCP back onto the nearest face (sides, front, back, top) of the box ``[lo, hi]``."""
    lo, hi = lo - WALL_MARGIN, hi + WALL_MARGIN
    tcp = world.tcp_of(state.hand)
    inside = jnp.all(tcp > lo) & jnp.all(tcp < hi)
    depth = jnp.stack([tcp[0] - lo[0], hi[0] - tcp[0], tcp[1] - lo[1], hi[1] - tcp[1], hi[2] - tcp[2]])
    face = jnp.argmin(depth)
    axis = jnp.array([0, 0, 1, 1, 2])[face]
    value = jnp.stack([lo[0], hi[0], lo[1], hi[1], hi[2]])[face]
    out = jnp.where(jnp.arange(3) == axis, value, tcp)
    hand = jnp.where(inside, out - _v(world.TCP_OFFSET), state.hand)
    return state.replace(hand=hand, hand_vel=hand - prev.hand)


def joint_step(prev, state, q, contacts, low, high, moves=()):
    """Move the joint by the contact that drives it most (``world.move_joint`` per contact).

    ``moves`` are ready-made ``(free q, d handle / d q)`` candidates from
    contacts that are not spheres (the drawer's hook box).

    At a joint limit the handle stops and so does the TCP touching it: the part
    of its motion along the joint that the limit cut off is taken back, so the
    hand never passes through a handle or panel that cannot move further.
    """
    tcp_prev, tcp = world.tcp_of(prev.hand), world.tcp_of(state.hand)
    best_free, best_tangent = q, jnp.zeros(3, _F)
    candidates = [(world.move_joint(q, handle_fn, tcp_prev, tcp, radius=radius, low=-jnp.inf, high=jnp.inf,
                                    hook=hook), jax.jvp(handle_fn, (q,), (jnp.ones_like(q),))[1])
                  for handle_fn, radius, hook in contacts]
    for free, tangent in [*candidates, *moves]:
        wins = jnp.abs(free - q) > jnp.abs(best_free - q)
        best_free = jnp.where(wins, free, best_free)
        best_tangent = jnp.where(wins, tangent, best_tangent)
    new_q = jnp.clip(best_free, low, high)
    hand = state.hand - (best_free - new_q) * best_tangent
    return state.replace(q=new_q, hand=hand, hand_vel=hand - prev.hand)


# --- door helpers ----------------------------------------------------------------
def door_hinge(door):
    return door + _v(DOOR_HINGE)


def door_handle(door, q):
    return door_hinge(door) + world.rotate_z(_v(DOOR_HANDLE), q)


def door_hook(door, q):
    return door_hinge(door) + world.rotate_z(_v(DOOR_HOOK), q)


def door_panel_point(door, q, r, dz, side=0.0):
    """A point of the panel at distance ``r`` from the hinge, height ``dz``, ``side`` off its mid-plane."""
    return door_hinge(door) + world.rotate_z(jnp.stack([r, jnp.asarray(side, _F), dz]), q)


def door_angle_from_obs(obs):
    return 2.0 * jnp.arctan2(obs[9], obs[10])


def move_door(prev, state):
    door, q = prev.obj, prev.q
    tcp_prev = world.tcp_of(prev.hand)
    local = world.rotate_z(tcp_prev - door_hinge(door), -q)
    r = jnp.clip(local[0], *PANEL_X)
    dz = jnp.clip(local[2], -PANEL_HALF_Z, PANEL_HALF_Z)
    contacts = (
        (lambda a: door_hook(door, a), DOOR_HOOK_RADIUS, True),
        (lambda a: door_panel_point(door, a, r, dz), PANEL_RADIUS, False),
    )
    state = joint_step(prev, state, q, contacts, DOOR_LOW, DOOR_HIGH)
    return keep_out(prev, state, door + _v(SAFE_LO), door + _v(SAFE_HI))


# --- drawer helpers ----------------------------------------------------------------
def drawer_link(case, q):
    return case + _v(DRAWER_LINK) + jnp.stack([0.0, q, 0.0]).astype(_F)


def drawer_bar(case, q):
    return drawer_link(case, q) + _v((0.0, BAR_Y, 0.0))


def hook_reach(closure):
    """How far the hook box reaches in front of and behind the bar's axis at this gripper closure."""
    closed = jnp.clip(closure, 0.0, 1.0)
    front = HOOK_FRONT_OPEN + (HOOK_FRONT_CLOSED - HOOK_FRONT_OPEN) * closed
    return front, HOOK_BACK_OPEN + (HOOK_BACK_CLOSED - HOOK_BACK_OPEN) * closed


def under_bar(r):
    """Whether an offset ``r`` from the bar's axis is across the bar and not above its top."""
    return (jnp.abs(r[0]) <= HOOK_HALF_X) & (r[2] <= HOOK_TOP)


def wrist_at_bar(r):
    """Whether the wrist, with the TCP at an offset ``r`` from the bar's axis, is low enough to catch the bar."""
    low = r[2] <= BAR_GEOM_RADIUS - WRIST_ABOVE_TCP
    return low & (jnp.abs(r[0]) <= WRIST_HALF_X) & (r[1] >= -WRIST_FRONT) & (r[1] <= WRIST_BACK)


def drawer_hooked(case, q, tcp, closure):
    """Whether a pull (or push) of the TCP at ``tcp`` carries the drawer's bar along: inside the hook box
    (the finger pads around the bar) or with the wrist at the bar's height."""
    r = tcp - drawer_bar(case, q)
    front, back = hook_reach(closure)
    return (under_bar(r) & (r[1] >= -front) & (r[1] <= back)) | wrist_at_bar(r)


def stop_at_bar_front(prev, state):
    """A hand that comes from the front below the bar's top meets the bar with its rear finger pad.

    It stops at the front of the hook box: the pads get around the bar only
    when lowered onto it from above (MuJoCo stops that hand, fingers open,
    4 cm in front of the bar's axis and a pull from there moves nothing).
    Opening the fingers there pushes the hand back, as the rear pad meets
    the bar, rather than putting the pad behind it.
    """
    case = prev.obj
    front_prev, _ = hook_reach(prev.closure)
    front, _ = hook_reach(state.closure)
    tcp_prev, tcp = world.tcp_of(prev.hand), world.tcp_of(state.hand)
    bar = drawer_bar(case, state.q)
    was_in_front = tcp_prev[1] - drawer_bar(case, prev.q)[1] < -front_prev
    crosses = was_in_front & under_bar(tcp - bar) & (tcp[1] - bar[1] >= -front)
    hand = jnp.where(crosses, state.hand.at[1].set(bar[1] - front - 1e-4 - world.TCP_OFFSET[1]), state.hand)
    return state.replace(hand=hand, hand_vel=hand - prev.hand)


def move_drawer(prev, state):
    case, q = prev.obj, prev.q
    tcp_prev, tcp = world.tcp_of(prev.hand), world.tcp_of(state.hand)
    local = tcp_prev - drawer_link(case, q)
    bar_x = jnp.clip(local[0], -BAR_HALF_X, BAR_HALF_X)
    bar_z = jnp.where(local[2] > BAR_PUSH_TOP, 1.0, 0.0)  # over the bar's top: push point out of reach
    front_x = jnp.clip(local[0], -FRONT_HALF_X, FRONT_HALF_X)
    front_z = jnp.clip(local[2], -FRONT_HALF_Z, FRONT_HALF_Z)
    on_link = lambda a, p: drawer_link(case, a) + jnp.stack(p).astype(_F)
    contacts = (
        (lambda a: on_link(a, (bar_x, BAR_Y, bar_z)), BAR_RADIUS, False),
        (lambda a: on_link(a, (front_x, FRONT_Y, front_z)), FRONT_RADIUS, False),
    )
    # the hook is tested where the TCP starts the step, so a fast pull keeps hold of the bar
    hooked = drawer_hooked(case, q, tcp_prev, prev.closure)
    hook = (q + jnp.where(hooked, tcp[1] - tcp_prev[1], 0.0), _v((0.0, 1.0, 0.0)))
    state = stop_at_bar_front(prev, joint_step(prev, state, q, contacts, DRAWER_LOW, DRAWER_HIGH, moves=(hook,)))
    state = keep_out(prev, state, case + _v(CASE_LO), case + _v(CASE_HI))
    link = drawer_link(case, state.q)
    return keep_out(prev, state, link + _v(BOX_LO), link + _v(BOX_HI))


def _tcp_obs(obs):
    return world.tcp_of(obs_hand(obs))


def _hand_action(obs, tcp_target, gain=25.0, grip=0.0):
    return action(move_toward(_tcp_obs(obs), tcp_target, gain), grip)


# --- tasks -------------------------------------------------------------------------
class _Door(Task):
    obj_low, obj_high = (0.0, 0.85, 0.15), (0.1, 0.95, 0.15)
    obj_quat = SCALAR_LAST_IDENTITY
    q_init = 0.0

    def reset_state(self, params):
        return world.initial_state(self.hand_init, params.obj_init, q=self.q_init)

    def move_objects(self, prev, state, act, params):
        return move_door(prev, state)

    def handle(self, state):
        return door_handle(state.obj, state.q)

    def success(self, state, params):
        return jnp.linalg.norm(self.handle(state) - self.target(params)) <= self.success_threshold

    def observe_objects(self, state, params):
        quat = world.quat_z(state.q)  # scalar-last, rotating with the hinge
        return jnp.concatenate([self.handle(state), quat, jnp.zeros(7, _F)])


class DoorOpen(_Door):
    """Pull the safe's door open by hooking the fingers behind its handle (x-only success)."""

    name = "door-open"
    hand_init = (0.0, 0.6, 0.2)
    goal_offset = (-0.3, -0.45, 0.0)
    success_threshold = 0.08

    def success(self, state, params):
        return jnp.abs(self.handle(state)[0] - self.target(params)[0]) <= self.success_threshold

    def reward(self, state, act, params):
        # v3 door-open: 2 * H(ready, grab effort) + 8 * opened, 10 on success. Same terms and constants.
        hand = jnp.clip(state.hand, _v(world.OBS_HAND_LOW), _v(world.OBS_HAND_HIGH))
        door = self.handle(state) - _v((0.05, 0.0, 0.0))
        radius = jnp.linalg.norm(hand[:2] - door[:2])
        floor = jnp.where(radius <= 0.12, 0.0, 0.04 * jnp.log(jnp.maximum(radius - 0.12, 1e-9)) + 0.4)
        above_floor = jnp.where(hand[2] >= floor, 1.0, tolerance(floor - hand[2], 0.0, 0.01, floor / 2.0))
        in_place = tolerance(jnp.linalg.norm(hand - door - _v((0.05, 0.03, -0.01))), 0.0, 0.06, 0.5)
        ready = hamacher(above_floor, in_place)
        grab = (jnp.clip(act[3], -1.0, 1.0) + 1.0) / 2.0
        opened = 0.2 * (state.q < -math.pi / 90.0) + 0.8 * tolerance(2.0 * math.pi / 3.0 + state.q, 0.0, 0.5,
                                                                      math.pi / 3.0)
        r = 2.0 * hamacher(ready, grab) + 8.0 * opened
        return jnp.where(self.success(state, params), 10.0, r)

    def scripted_action(self, obs, params):
        # Phases as v3's policy: over the handle, down into the gap behind its bar, then swing it open.
        tcp, q = _tcp_obs(obs), door_angle_from_obs(obs)
        door = obs_obj(obs) - door_handle(jnp.zeros(3, _F), q)  # the safe body, from the handle and angle
        hook = door_hook(door, q)
        ahead = door_hook(door, jnp.maximum(q - 0.35, DOOR_LOW + 0.1))
        hooked = jnp.linalg.norm(tcp - hook) <= 0.03
        over = jnp.linalg.norm(tcp[:2] - hook[:2]) <= 0.02
        high = hook + _v((0.0, 0.0, 0.22))
        target = jnp.where(hooked, ahead, jnp.where(over, hook, high))
        return _hand_action(obs, target, grip=1.0)


class DoorClose(_Door):
    """Push the open door shut on its panel."""

    name = "door-close"
    hand_init = (-0.5, 0.6, 0.2)
    goal_offset = (0.2, -0.2, 0.0)
    success_threshold = 0.08
    q_init = -1.5708  # v3 resets the door open at -pi/2

    def reward(self, state, act, params):
        # v3 door-close: 3 * hand_in_place + 6 * in_place (gaussian tolerances), 10 when the handle is within
        # 0.05 of the target (out of reach with this geometry: the shut handle stays 0.071 away, as in v3).
        handle, target = self.handle(state), self.target(params)
        tcp = world.tcp_of(state.hand)
        handle_init = door_handle(params.obj_init, jnp.asarray(self.q_init, _F))
        to_target = jnp.linalg.norm(handle - target)
        in_place = gaussian_tolerance(to_target, 0.0, 0.05, jnp.linalg.norm(handle_init - target))
        hand_margin = jnp.linalg.norm(_v(self.hand_init) - handle) + 0.1
        hand_in_place = gaussian_tolerance(jnp.linalg.norm(tcp - target), 0.0, 0.0125, hand_margin)
        return jnp.where(to_target < 0.05, 10.0, 3.0 * hand_in_place + 6.0 * in_place)

    def scripted_action(self, obs, params):
        # Reach the panel's outer face above the handle, then push it round to shut.
        tcp, q = _tcp_obs(obs), door_angle_from_obs(obs)
        door = obs_obj(obs) - door_handle(jnp.zeros(3, _F), q)
        r, dz = 0.22, 0.07
        contact = door_panel_point(door, q, r, dz, side=-0.045)
        push = door_panel_point(door, jnp.minimum(q + 0.3, DOOR_HIGH), r, dz, side=-0.01)
        at_panel = jnp.linalg.norm(tcp - contact) <= 0.02
        local = world.rotate_z(tcp - door_hinge(door), -q)
        pushing = at_panel | ((jnp.abs(local[1] + 0.03) <= 0.02) & (jnp.abs(local[0] - r) <= 0.05))
        return _hand_action(obs, jnp.where(pushing, push, contact), grip=1.0)


class _Drawer(Task):
    obj_low, obj_high = (-0.1, 0.9, 0.0), (0.1, 0.9, 0.0)
    hand_init = (0.0, 0.6, 0.2)
    q_init = 0.0
    handle_offset = (0.0, -0.16, 0.0)

    def reset_state(self, params):
        return world.initial_state(self.hand_init, params.obj_init, q=self.q_init)

    def move_objects(self, prev, state, act, params):
        return move_drawer(prev, state)

    def handle(self, state):
        return drawer_link(state.obj, state.q) + _v(self.handle_offset)

    def success(self, state, params):
        return jnp.linalg.norm(self.handle(state) - self.target(params)) <= self.success_threshold

    def observe_objects(self, state, params):
        quat = _v(self.obj_quat)
        return jnp.concatenate([self.handle(state), quat, jnp.zeros(7, _F)])

    def bar_from_obs(self, obs):
        return obs_obj(obs) - _v(self.handle_offset) + _v((0.0, BAR_Y, 0.0))


class DrawerOpen(_Drawer):
    """Hook the fingers around the drawer's handle bar and pull it out."""

    name = "drawer-open"
    goal_offset = (0.0, -0.16 - DRAWER_MAX_DIST, 0.09)
    obj_quat = SCALAR_FIRST_IDENTITY  # MuJoCo xquat of drawer_link
    success_threshold = 0.03

    def reward(self, state, act, params):
        # v3 drawer-open: 5 * (opening + caging), caging scaled (3, 3, 1) on the obs hand, not the TCP.
        handle, target = self.handle(state), self.target(params)
        hand = jnp.clip(state.hand, _v(world.OBS_HAND_LOW), _v(world.OBS_HAND_HIGH))
        opening = tolerance(jnp.linalg.norm(handle - target), 0.0, 0.02, DRAWER_MAX_DIST)
        scale = _v((3.0, 3.0, 1.0))
        handle_init = target + _v((0.0, DRAWER_MAX_DIST, 0.0))
        margin = jnp.linalg.norm((handle_init - self.tcp_init) * scale)
        caging = tolerance(jnp.linalg.norm((handle - hand) * scale), 0.0, 0.01, margin)
        return 5.0 * (caging + opening)

    def scripted_action(self, obs, params):
        # Over the handle, down so the open fingers straddle its bar, then pull toward the robot.
        tcp, bar = _tcp_obs(obs), self.bar_from_obs(obs)
        hook = bar + _v((0.0, 0.0, DRAWER_HOOK_Z))
        hooked = jnp.linalg.norm(tcp - hook) <= 0.025
        over = jnp.linalg.norm(tcp[:2] - hook[:2]) <= 0.015
        target = jnp.where(hooked, hook + _v((0.0, -0.03, 0.0)),
                           jnp.where(over, hook, hook + _v((0.0, 0.0, 0.12))))
        return _hand_action(obs, target, grip=-1.0)


class DrawerClose(_Drawer):
    """Push the pulled-out drawer shut from the front."""

    name = "drawer-close"
    goal_offset = (0.0, -0.16, 0.09)
    obj_quat = (0.0, 0.0, 0.0, 0.0)  # v3 drawer-close reports zeros
    success_threshold = 0.055  # TARGET_RADIUS 0.04 + 0.015
    q_init = -0.15  # v3 pulls the drawer out by maxDist 0.15 at reset
    handle_offset = (0.0, -0.16, 0.05)

    def reward(self, state, act, params):
        # v3 drawer-close: 10 * H(H(reach, grip closed), in_place), 10 on success.
        handle, target = self.handle(state), self.target(params)
        tcp = world.tcp_of(state.hand)
        handle_init = drawer_link(params.obj_init, jnp.asarray(self.q_init, _F)) + _v(self.handle_offset)
        to_target = jnp.linalg.norm(handle - target)
        in_place = tolerance(to_target, 0.0, 0.04, jnp.abs(jnp.linalg.norm(handle_init - target) - 0.04))
        reach_margin = jnp.abs(jnp.linalg.norm(handle_init - self.tcp_init) - 0.005)
        reach = gaussian_tolerance(jnp.linalg.norm(handle - tcp), 0.0, 0.005, reach_margin)
        reach = hamacher(reach, jnp.clip(act[3], 0.0, 1.0))
        r = jnp.where(to_target <= self.success_threshold, 1.0, hamacher(reach, in_place))
        return 10.0 * r

    def scripted_action(self, obs, params):
        # Rise over the drawer, come down in front of its handle, push it home.
        tcp, bar = _tcp_obs(obs), self.bar_from_obs(obs)
        front = bar + _v((0.0, -0.045, 0.0))
        in_front = tcp[1] <= bar[1] - 0.03
        low = jnp.abs(tcp[2] - bar[2]) <= 0.02
        clear = tcp[2] >= CASE_HI[2] + 0.05
        push = bar + _v((0.0, -0.005, 0.0))
        high_front = front.at[2].set(CASE_HI[2] + 0.08)
        behind = jnp.where(clear, high_front, tcp.at[2].set(CASE_HI[2] + 0.08))
        target = jnp.where(in_front, jnp.where(low, push, front), behind)
        return _hand_action(obs, target, grip=1.0)


TASKS = (DoorOpen(), DrawerOpen(), DrawerClose(), DoorClose())
