"""Tasks with a puck or block on the table: reach, push, pick-place, push-wall, push-back, shelf-place.

Every object here is one free body (a puck or a 4 cm block) moved by
:func:`move_object`: ``world.move_free_object``'s grasp / carry / push / settle
rule, plus the rigid geometry of the task (the table, push-wall's wall,
shelf-place's shelf) as axis-aligned boxes:

* the fingers (the TCP, padded by ``FINGER``) cannot enter a box; a hand above
  it passes freely;
* the object (padded by its half sizes) cannot enter a box: a box it lands on
  holds it up (the shelf board is a support surface), a box it is pushed or
  carried into stops it, and the hand that drives it stops with it;
* a carried object cannot be pushed into the table;
* a stopped hand holds its mocap back by the same amount (no wind-up that
  could fling the hand through the object or the box).

A box is left through the face the point came in by (the one of least
penetration among those it was outside of a step before), so a block falling
onto a board comes to rest on top of it and one pushed into a wall slides
along its face.

Simplified against MuJoCo: only the TCP collides (not the hand body above
it, nor the open fingers' span); pucks and blocks never tip or rotate (the
quaternion stays the identity); rewards read the pads at ``tcp +- half the
finger gap`` (``rewards.caging``) and approximate the per-task caging variants.

Meta-World v3 sources: ``metaworld/envs/sawyer_{reach,push,pick_place,push_wall,push_back,shelf_place}_v3.py``
(ranges, targets, success thresholds, rewards) and the matching
``metaworld/policies/*_v3_policy.py`` (the experts' phases).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from envs.manipulation import world
from envs.manipulation.rewards import caging, hamacher, tolerance
from envs.manipulation.task import Task, action, move_toward, obs_hand

REST_Z = 0.02  # centre height of a puck / block resting on the table
PUCK = dict(width=0.55, radius=0.03, height=0.02, rest_z=REST_Z)  # closure at contact, push disc, half height
BLOCK = dict(width=0.75, radius=0.03, height=0.02, rest_z=REST_Z)  # 4 cm cube: the fingers close further
HALF = (0.02, 0.02, 0.02)  # half extents of the puck (radius, radius, half height) and of the block
FINGER = 0.01  # how close the TCP may come to a wall or shelf face
TARGET_RADIUS = 0.05  # v3's reward snaps to 10 strictly below this
_INSIDE_EPS = 1e-6


# --- geometry: boxes the fingers and the object cannot enter ------------------------------------------
def _with_z(v, z) -> jax.Array:
    return jnp.asarray(v, jnp.float32).at[2].set(z)


def _box(center, half) -> tuple[jax.Array, jax.Array]:
    center, half = jnp.asarray(center, jnp.float32), jnp.asarray(half, jnp.float32)
    return center - half, center + half


def out_of_box(prev: jax.Array, p: jax.Array, lo: jax.Array, hi: jax.Array) -> jax.Array:
    """``p`` moved out of the open box ``(lo, hi)`` through the face ``prev`` came in by."""
    inside = jnp.all(p > lo) & jnp.all(p < hi)
    depth = jnp.concatenate([p - lo, hi - p])  # distance to leave through each face (lo faces, then hi faces)
    came = jnp.concatenate([prev <= lo + _INSIDE_EPS, prev >= hi - _INSIDE_EPS])
    cost = jnp.where(came.any(), jnp.where(came, depth, jnp.inf), depth)
    face = jnp.argmin(cost)
    axis = face % 3
    bound = jnp.where(face < 3, lo[axis], hi[axis])
    return jnp.where(inside, p.at[axis].set(bound), p)


def out_of_boxes(prev: jax.Array, p: jax.Array, boxes, pad) -> jax.Array:
    """``p`` out of every box in ``boxes`` (``(lo[n, 3], hi[n, 3])``), each padded by ``pad`` (two passes)."""
    lo, hi = boxes
    pad = jnp.asarray(pad, jnp.float32)
    lo, hi = jnp.concatenate([lo, lo]) - pad, jnp.concatenate([hi, hi]) + pad
    return jax.lax.scan(lambda q, box: (out_of_box(prev, q, *box), None), p, (lo, hi))[0]


def move_object(prev, state, act, spec: dict, boxes=None, half=HALF):
    """One step of a free object with the task's boxes (see the module docstring)."""
    offset = jnp.asarray(world.TCP_OFFSET, jnp.float32)
    arm_hand = state.hand
    if boxes is not None:  # the fingers stop at the boxes' faces
        tcp = out_of_boxes(world.tcp_of(prev.hand), world.tcp_of(state.hand), boxes, FINGER)
        state = state.replace(hand=tcp - offset)
    state = world.move_free_object(prev, state, act, **spec)
    # fingers below the object's bottom (under a shelf board) do not push it
    below = world.tcp_of(state.hand)[2] < prev.obj[2] - spec["height"] - FINGER
    obj = jnp.where(~state.grasped & below, world.settle(prev.obj, spec["rest_z"]), state.obj)
    fixed = obj.at[2].set(jnp.maximum(obj[2], spec["rest_z"]))  # a carried object stays above the table
    if boxes is not None:
        fixed = out_of_boxes(prev.obj, fixed, boxes, half)
    delta = fixed - obj
    blocked = jnp.any(jnp.abs(delta[:2]) > 0)  # stopped sideways (resting on a support is not a block)
    # The hand is stopped by what it drives: a held object moves it back by the correction; a pushed one
    # keeps the TCP on the rim of its push disc.
    tcp = world.tcp_of(state.hand)
    rim = fixed[:2] - tcp[:2]
    dist = jnp.linalg.norm(rim)
    level = (tcp[2] < fixed[2] + spec["height"]) & (tcp[2] >= fixed[2] - spec["height"] - FINGER)
    pushing = (dist < spec["radius"]) & level
    away = jnp.where(dist > 1e-6, -rim / jnp.maximum(dist, 1e-6), jnp.array([0.0, -1.0]))
    pushed_back = tcp.at[:2].set(fixed[:2] + spec["radius"] * away)
    tcp = jnp.where(state.grasped, tcp + delta, jnp.where(blocked & pushing, pushed_back, tcp))
    hand = tcp - offset
    # The mocap is held back by the same correction, so it cannot wind up behind an obstacle and fling the
    # hand through it (MuJoCo's weld lets it run ahead; its contacts are stiff enough not to tunnel).
    mocap = jnp.clip(state.mocap + hand - arm_hand, jnp.asarray(world.HAND_LOW), jnp.asarray(world.HAND_HIGH))
    return state.replace(obj=fixed, hand=hand, hand_vel=hand - prev.hand, mocap=mocap)


def wall_boxes():
    """push-wall-v3's brick wall: centre (0.1, 0.75, 0.06), half sizes (0.12, 0.01, 0.06)."""
    lo, hi = _box((0.1, 0.75, 0.06), (0.12, 0.01, 0.06))
    return lo[None], hi[None]


SHELF_PARTS = (  # (centre, half size) in the shelf's frame: v3's shelf.xml collision boxes
    ((-0.11, 0.0, 0.32), (0.01, 0.1, 0.32)),  # left side
    ((0.11, 0.0, 0.32), (0.01, 0.1, 0.32)),  # right side
    ((0.0, 0.0, 0.65), (0.12, 0.1, 0.01)),  # top
    ((0.0, -0.015, 0.24), (0.1, 0.095, 0.01)),  # the board the block goes on (top face at 0.25)
    ((0.0, -0.015, 0.05), (0.1, 0.095, 0.01)),  # lower board
    ((0.0, 0.09, 0.32), (0.1, 0.01, 0.32)),  # back
    ((0.0, -0.008, 0.021), (0.1, 0.088, 0.021)),  # base
)
SHELF_BOARD = 3
SHELF_GOAL_HEIGHT = 0.3  # the goal site sits 0.3 above the shelf's origin


def shelf_origin(goal: jax.Array) -> jax.Array:
    return jnp.asarray(goal, jnp.float32) - jnp.array([0.0, 0.0, SHELF_GOAL_HEIGHT], jnp.float32)


def shelf_boxes(goal: jax.Array):
    centers = jnp.asarray(np.array([c for c, _ in SHELF_PARTS]), jnp.float32) + shelf_origin(goal)
    halves = jnp.asarray(np.array([h for _, h in SHELF_PARTS]), jnp.float32)
    return centers - halves, centers + halves


# --- a stateless pick-and-carry expert (the phases of v3's push / pick-place / shelf policies) ---------
GRASP_DZ = 0.005  # the TCP closes this far above the object's centre


def grasp_and_carry(obs, carry_target, spec, gain: float = 25.0):
    """Approach from above, descend with open fingers, close, then drive the held object to ``carry_target``.

    ``carry_target(obj) -> [3]`` is where the *object* should go next. Whether
    the object is held is read from the observation: the object between the
    fingers and the opening stopped at the object's width.
    """
    hand, opening, obj = obs_hand(obs), obs[3], obs[4:7]
    tcp = world.tcp_of(hand)
    xy_err = jnp.linalg.norm(tcp[:2] - obj[:2])
    grasp_at = obj + jnp.array([0.0, 0.0, GRASP_DZ])
    z_err = jnp.abs(tcp[2] - grasp_at[2])
    held_opening = world.opening_of(jnp.float32(spec["width"]))
    holding = (xy_err < 0.02) & (jnp.abs(tcp[2] - obj[2]) < 0.03) & (opening < held_opening + 0.01)
    aligned = xy_err < 0.012
    at_grasp = aligned & (z_err < 0.01)
    above = obj + jnp.array([0.0, 0.0, 0.1])
    tcp_goal = jnp.where(aligned, grasp_at, above)
    approach = move_toward(tcp, tcp_goal, gain)
    carry = move_toward(obj, carry_target(obj), gain)
    move = jnp.where(holding, carry, approach)
    grip = jnp.where(holding | at_grasp, 1.0, -1.0)
    return action(move, grip)


# --- the tasks -----------------------------------------------------------------------------------------
class _Puck(Task):
    """Shared: one free object at ``(obj_init_xy, REST_Z)`` (v3 takes the height from the model, not the draw)."""

    spec = PUCK

    def start(self, params) -> jax.Array:
        return _with_z(params.obj_init, REST_Z)

    def reset_state(self, params):
        return world.initial_state(self.hand_init, self.start(params))

    def boxes(self, params):
        return None

    def move_objects(self, prev, state, act, params):
        return move_object(prev, state, act, self.spec, self.boxes(params))

    def _parts(self, state, params):
        tcp = world.tcp_of(state.hand)
        return tcp, state.obj, world.opening_of(state.closure), self.target(params), self.start(params)


class Reach(_Puck):
    """Move the TCP to a goal in the air; the puck only gets in the way."""

    name = "reach"
    obj_low, obj_high = (-0.1, 0.6, 0.02), (0.1, 0.7, 0.02)
    goal_low, goal_high = (-0.1, 0.8, 0.05), (0.1, 0.9, 0.3)
    min_separation = 0.15

    def success(self, state, params):
        return jnp.linalg.norm(world.tcp_of(state.hand) - params.goal) <= self.success_threshold

    def reward(self, state, act, params):
        margin = jnp.linalg.norm(jnp.asarray(self.hand_init) - params.goal)
        return 10.0 * tolerance(jnp.linalg.norm(world.tcp_of(state.hand) - params.goal), 0.0, 0.05, margin)

    def scripted_action(self, obs, params):
        hand_target = params.goal - jnp.asarray(world.TCP_OFFSET)
        return action(move_toward(obs_hand(obs), hand_target, 10.0), 0.0)


class Push(_Puck):
    """Slide the puck to a goal on the table (v3: the target is the goal's xy at the puck's height)."""

    name = "push"
    obj_low, obj_high = (-0.1, 0.6, 0.02), (0.1, 0.7, 0.02)
    goal_low, goal_high = (-0.1, 0.8, 0.01), (0.1, 0.9, 0.02)
    min_separation = 0.15
    success_threshold = 0.05

    def target(self, params):
        return _with_z(params.goal, REST_Z)

    def reward(self, state, act, params):
        # v3: 2c; 4c + 1 + 5 in_place with the TCP at the puck and the fingers open at all; 10 in the goal.
        # Caging reads pads at tcp +- half the finger gap (rewards.caging), not MuJoCo's pad bodies.
        tcp, obj, opening, target, start = self._parts(state, params)
        to_target = jnp.linalg.norm(obj - target)
        in_place = tolerance(to_target, 0.0, TARGET_RADIUS, jnp.linalg.norm(start - target))
        cage = caging(tcp, obj, start, self.tcp_init, opening, act[3], pad_margin=0.05, obj_radius=0.015,
                      xz_thresh=0.005, high_density=True)
        near = (jnp.linalg.norm(tcp - obj) < 0.02) & (opening > 0)
        reward = jnp.where(near, 4.0 * cage + 1.0 + 5.0 * in_place, 2.0 * cage)
        return jnp.where(to_target < TARGET_RADIUS, 10.0, reward)

    def scripted_action(self, obs, params):
        goal = self.target(params)
        return grasp_and_carry(obs, lambda obj: goal, self.spec)


class PickPlace(_Puck):
    """Pick the puck up and hold it at a goal in the air (success within 0.07; reward 10 below 0.05)."""

    name = "pick-place"
    obj_low, obj_high = (-0.1, 0.6, 0.02), (0.1, 0.7, 0.02)
    goal_low, goal_high = (-0.1, 0.8, 0.05), (0.1, 0.9, 0.3)
    min_separation = 0.15
    success_threshold = 0.07

    def reward(self, state, act, params):
        # v3: H(caging, in_place), + 1 + 5 in_place while the TCP holds the lifted puck, 10 below 0.05.
        # v3's own caging (margins from the current object) is approximated by rewards.caging's.
        tcp, obj, opening, target, start = self._parts(state, params)
        to_target = jnp.linalg.norm(obj - target)
        in_place = tolerance(to_target, 0.0, TARGET_RADIUS, jnp.linalg.norm(start - target))
        cage = caging(tcp, obj, start, self.tcp_init, opening, act[3], pad_margin=0.05, obj_radius=0.015,
                      xz_thresh=0.005, high_density=True)
        reward = hamacher(cage, in_place)
        lifted = (jnp.linalg.norm(tcp - obj) < 0.02) & (opening > 0) & (obj[2] - 0.01 > start[2])
        reward = reward + jnp.where(lifted, 1.0 + 5.0 * in_place, 0.0)
        return jnp.where(to_target < TARGET_RADIUS, 10.0, reward)

    def scripted_action(self, obs, params):
        goal = self.target(params)
        return grasp_and_carry(obs, lambda obj: goal, self.spec)


WALL_MIDPOINT = (-0.05, 0.77)  # v3's reward waypoint beside the wall


class PushWall(_Puck):
    """Push the puck to a goal behind a wall (x in [-0.02, 0.22], y in [0.74, 0.76], 0.12 high)."""

    name = "push-wall"
    obj_low, obj_high = (-0.05, 0.6, 0.015), (0.05, 0.65, 0.015)
    goal_low, goal_high = (-0.05, 0.85, 0.01), (0.05, 0.9, 0.02)
    min_separation = 0.15
    success_threshold = 0.07

    def target(self, params):
        return _with_z(params.goal, REST_Z)

    def boxes(self, params):
        return wall_boxes()

    def reward(self, state, act, params):
        # v3: 2c; with the TCP at the puck: 2c + 1 + 4 T(to the midpoint, x scaled 3), and once past the
        # wall's line (y > 0.75) 2c + 1 + 4 + 3 T(to the target); 10 below 0.05.
        tcp, obj, opening, target, start = self._parts(state, params)
        midpoint = jnp.stack([jnp.float32(WALL_MIDPOINT[0]), jnp.float32(WALL_MIDPOINT[1]), obj[2]])
        scale = jnp.array([3.0, 1.0, 1.0])
        to_mid = jnp.linalg.norm((obj - midpoint) * scale)
        mid0 = jnp.linalg.norm((start - midpoint) * scale)
        to_target = jnp.linalg.norm(obj - target)
        part1 = tolerance(to_mid, 0.0, TARGET_RADIUS, mid0)
        part2 = tolerance(to_target, 0.0, TARGET_RADIUS, jnp.linalg.norm(start - target))
        cage = caging(tcp, obj, start, self.tcp_init, opening, act[3], pad_margin=0.05, obj_radius=0.015,
                      xz_thresh=0.005, high_density=True)
        near = (jnp.linalg.norm(tcp - obj) < 0.02) & (opening > 0)
        pushing = jnp.where(obj[1] > 0.75, 2.0 * cage + 5.0 + 3.0 * part2, 2.0 * cage + 1.0 + 4.0 * part1)
        reward = jnp.where(near, pushing, 2.0 * cage)
        return jnp.where(to_target < TARGET_RADIUS, 10.0, reward)

    def scripted_action(self, obs, params):
        # v3's expert: drag the puck left along the near side of the wall, forward past its end, then to the goal.
        goal = self.target(params)
        lo, hi = (b[0] for b in wall_boxes())
        clear_x = lo[0] - HALF[0] - 0.015  # puck edge left of the wall's end
        past_y = hi[1] + HALF[1] + 0.01  # puck behind the wall

        def route(obj):
            beside = jnp.array([clear_x - 0.02, jnp.minimum(obj[1], lo[1] - 0.05), REST_Z])
            forward = jnp.array([clear_x - 0.01, past_y + 0.03, REST_Z])
            return jnp.where(obj[1] > past_y, goal, jnp.where(obj[0] < clear_x, forward, beside))

        return grasp_and_carry(obs, route, self.spec)


class PushBack(_Puck):
    """Pull the block back toward the robot to a goal on the table."""

    name = "push-back"
    spec = BLOCK
    obj_low, obj_high = (-0.1, 0.8, 0.02), (0.1, 0.85, 0.02)
    goal_low, goal_high = (-0.1, 0.6, 0.0199), (0.1, 0.7, 0.0201)
    min_separation = 0.15
    success_threshold = 0.07

    def target(self, params):
        return _with_z(params.goal, REST_Z)

    def reward(self, state, act, params):
        # v3: H(caging, in_place), + 1 + 5 in_place while gripping (TCP within 0.01, 0 < opening < 0.55) and
        # the block has moved 1 cm toward the goal; 10 below 0.05. v3's caging variant (y-gripping term,
        # obj radius 0.007, xz 0.01) is approximated by rewards.caging with those radii.
        tcp, obj, opening, target, start = self._parts(state, params)
        to_target = jnp.linalg.norm(obj - target)
        to_target0 = jnp.linalg.norm(start - target)
        in_place = tolerance(to_target, 0.0, TARGET_RADIUS, to_target0)
        cage = caging(tcp, obj, start, self.tcp_init, opening, act[3], pad_margin=0.05, obj_radius=0.007,
                      xz_thresh=0.01, high_density=True)
        reward = hamacher(cage, in_place)
        gripping = (jnp.linalg.norm(tcp - obj) < 0.01) & (opening > 0) & (opening < 0.55)
        reward = reward + jnp.where(gripping & (to_target0 - to_target > 0.01), 1.0 + 5.0 * in_place, 0.0)
        return jnp.where(to_target < TARGET_RADIUS, 10.0, reward)

    def scripted_action(self, obs, params):
        goal = self.target(params)
        return grasp_and_carry(obs, lambda obj: goal, self.spec)


class ShelfPlace(_Puck):
    """Pick the block up and put it on a shelf board (0.25 high); the goal is 0.3 above the shelf's base."""

    name = "shelf-place"
    spec = BLOCK
    obj_low, obj_high = (-0.1, 0.5, 0.019), (0.1, 0.6, 0.021)
    goal_low, goal_high = (-0.1, 0.8, 0.299), (0.1, 0.9, 0.301)
    min_separation = 0.1
    success_threshold = 0.07

    def boxes(self, params):
        return shelf_boxes(params.goal)

    def rest_height(self, params) -> jax.Array:
        """Centre height of the block resting on the board."""
        center, half = SHELF_PARTS[SHELF_BOARD]
        return shelf_origin(params.goal)[2] + center[2] + half[2] + HALF[2]

    def reward(self, state, act, params):
        # v3: H(caging, in_place) with in_place cut below the board in front of it and zeroed behind the
        # goal at board height or lower, + 1 + 5 in_place while holding it lifted, 10 below 0.05.
        tcp, obj, opening, target, start = self._parts(state, params)
        to_target = jnp.linalg.norm(obj - target)
        in_place = tolerance(to_target, 0.0, TARGET_RADIUS, jnp.linalg.norm(start - target))
        cage = caging(tcp, obj, start, self.tcp_init, opening, act[3], pad_margin=0.05, obj_radius=0.02,
                      xz_thresh=0.01, high_density=False)
        reward = hamacher(cage, in_place)
        low = (obj[2] > 0.0) & (obj[2] < 0.24) & (jnp.abs(obj[0] - target[0]) < 0.15)
        front = target[1] - 3 * TARGET_RADIUS
        under = low & (obj[1] > front) & (obj[1] < target[1])
        bound_loss = hamacher((obj[1] - front) / (3 * TARGET_RADIUS), (0.24 - obj[2]) / 0.24)
        in_place = jnp.where(under, jnp.clip(in_place - bound_loss, 0.0, 1.0), in_place)
        in_place = jnp.where(low & (obj[1] > target[1]), 0.0, in_place)
        lifted = (jnp.linalg.norm(tcp - obj) < 0.025) & (opening > 0) & (obj[2] - 0.01 > start[2])
        reward = reward + jnp.where(lifted, 1.0 + 5.0 * in_place, 0.0)
        return jnp.where(to_target < TARGET_RADIUS, 10.0, reward)

    def scripted_action(self, obs, params):
        # v3's expert: grab the block, lift to the goal's height while centring on the shelf's x, move in,
        # then (beyond v3) set it down on the board and let go.
        goal = jnp.asarray(params.goal, jnp.float32)
        rest = self.rest_height(params)
        front = shelf_origin(goal)[1] + SHELF_PARTS[SHELF_BOARD][0][1] - SHELF_PARTS[SHELF_BOARD][1][1]

        def route(obj):
            lift = jnp.array([goal[0], obj[1], goal[2]])
            over = goal
            down = goal.at[2].set(rest - 0.005)
            low = (obj[2] < goal[2] - 0.01) & (obj[1] < front - HALF[1] - 0.01)
            there = jnp.linalg.norm(obj[:2] - goal[:2]) < 0.01
            return jnp.where(low, lift, jnp.where(there, down, over))

        obj = obs[4:7]
        placed = (jnp.linalg.norm(obj[:2] - goal[:2]) < 0.02) & (jnp.abs(obj[2] - rest) < 0.004)
        tcp = world.tcp_of(obs_hand(obs))
        leave = action(move_toward(tcp, obj + jnp.array([0.0, 0.0, 0.1])), -1.0)
        return jnp.where(placed, leave, grasp_and_carry(obs, route, self.spec))


TASKS = (Reach(), Push(), PickPlace(), PushWall(), PushBack(), ShelfPlace())
