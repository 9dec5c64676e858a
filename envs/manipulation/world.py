"""Kinematic Sawyer-style world: the arm, the gripper, and the rules objects follow.

Not a physics engine: each rule is a few lines of geometry, chosen so that the
interfaces and the motion that a policy sees match Meta-World v3
(``../shared/reference/manipulation_and_in_context.md`` §1, docs/manipulation.md):

* **Arm.** ``action[:3] * ACTION_SCALE`` moves a mocap point, clipped to the hand
  bounds. The hand follows it through a spring-damper (``SPRING``, ``DAMPING``,
  fitted to Meta-World's measured lag: 0.001, 0.021, 0.064 m after 1, 5, 10
  steps of a_x = +1). The tool centre point (TCP) is ``hand + TCP_OFFSET``.
* **Gripper.** ``action[3]`` sets the closure target ``(a3 + 1) / 2`` (+1 closes);
  the closure follows it at ``GRIP_RATE`` per step. The observed opening is
  ``1 - (1 - CLOSED_OPENING) * closure`` (1 open, 0.29 closed on nothing).
* **Grasp.** Fingers that close *through* an object's width while its centre is
  within reach of the TCP grasp it; the object then keeps its offset to the TCP
  and the closure stops at the object's width. Opening past it releases.
* **Push.** A free object that is not held is pushed out of the finger disc
  around the TCP (a 2-D contact in the table plane), then falls back to its
  resting height.
* **Joints.** An articulated handle moves along its joint (hinge or slide) by
  the TCP's displacement projected on the joint's direction, while the TCP
  touches it: only away from the TCP for ``push`` contacts, both ways for
  ``hook`` contacts (a hand hooked behind the handle), then clipped to limits.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import struct

from envs.core import EnvState

ACTION_SCALE = 0.01
HAND_LOW = (-0.5, 0.40, 0.05)
HAND_HIGH = (0.5, 1.0, 0.5)
OBS_HAND_LOW = (-0.525, 0.348, -0.0525)
OBS_HAND_HIGH = (0.525, 1.025, 0.7)
TCP_OFFSET = (0.0, 0.0, -0.045)
SPRING, DAMPING = 0.124, 0.41
GRIP_RATE = 0.3
CLOSED_OPENING = 0.29
FALL_SPEED = 0.02  # m per step for a released object
FRAME = 18  # hand 3, opening 1, object 1 pos+quat 7, object 2 pos+quat 7


@struct.dataclass
class ManipState(EnvState):
    mocap: jax.Array  # [3]
    hand: jax.Array  # [3]
    hand_vel: jax.Array  # [3]
    closure: jax.Array  # gripper closure in [0, 1]
    obj: jax.Array  # [3] free object 1 (or the articulated body)
    obj2: jax.Array  # [3] free object 2 (tool tasks), zeros when unused
    q: jax.Array  # joint position of the task's articulation (0 when none)
    q2: jax.Array  # a second joint (e.g. the nail of hammer), 0 when none
    grasped: jax.Array  # bool: object 1 held
    grip_offset: jax.Array  # [3] object 1 minus TCP at the grasp
    prev_frame: jax.Array  # [FRAME] the previous step's observation frame
    succeeded: jax.Array  # bool: success at some step of this episode (Meta-World's metric)


def tcp_of(hand: jax.Array) -> jax.Array:
    return hand + jnp.asarray(TCP_OFFSET, jnp.float32)


def opening_of(closure: jax.Array) -> jax.Array:
    return 1.0 - (1.0 - CLOSED_OPENING) * closure


def initial_state(hand_init, obj, obj2=None, q=0.0, q2=0.0) -> ManipState:
    """The state at reset (``prev_frame`` is filled by the env once it can observe)."""
    hand = jnp.asarray(hand_init, jnp.float32)
    zeros3 = jnp.zeros(3, jnp.float32)
    return ManipState(
        time=jnp.zeros((), jnp.int32), mocap=hand, hand=hand, hand_vel=zeros3,
        closure=jnp.zeros((), jnp.float32), obj=jnp.asarray(obj, jnp.float32),
        obj2=zeros3 if obj2 is None else jnp.asarray(obj2, jnp.float32),
        q=jnp.asarray(q, jnp.float32), q2=jnp.asarray(q2, jnp.float32),
        grasped=jnp.zeros((), bool), grip_offset=zeros3, prev_frame=jnp.zeros(FRAME, jnp.float32),
        succeeded=jnp.zeros((), bool),
    )


def move_arm(state: ManipState, action: jax.Array) -> ManipState:
    """Mocap, lagged hand and gripper closure after one action (objects untouched)."""
    action = jnp.clip(action, -1.0, 1.0)
    low, high = jnp.asarray(HAND_LOW), jnp.asarray(HAND_HIGH)
    mocap = jnp.clip(state.mocap + ACTION_SCALE * action[:3], low, high)
    hand_vel = DAMPING * state.hand_vel + SPRING * (mocap - state.hand)
    hand = jnp.clip(state.hand + hand_vel, low, high)
    target = 0.5 * (action[3] + 1.0)
    closure = state.closure + GRIP_RATE * (target - state.closure)
    return state.replace(mocap=mocap, hand=hand, hand_vel=hand - state.hand, closure=closure)


def grasp(prev: ManipState, state: ManipState, action: jax.Array, obj: jax.Array, *, width: float,
          reach_xy: float = 0.025, reach_z: float = 0.03) -> ManipState:
    """Update ``grasped``/``closure``/``grip_offset`` for object 1 at ``obj`` (before it moves).

    ``width`` is the closure at which the fingers touch the object. A grasp
    starts when the closure passes ``width`` this step with the object's centre
    within ``reach_xy`` (table plane) and ``reach_z`` (height) of the TCP.
    """
    tcp = tcp_of(state.hand)
    near = (jnp.linalg.norm(tcp[:2] - obj[:2]) <= reach_xy) & (jnp.abs(tcp[2] - obj[2]) <= reach_z)
    closing_through = (prev.closure < width) & (state.closure >= width)
    target = 0.5 * (jnp.clip(action[3], -1.0, 1.0) + 1.0)
    keeps = prev.grasped & (target >= width - 0.05)
    starts = ~prev.grasped & closing_through & near
    grasped = keeps | starts
    offset = jnp.where(starts, obj - tcp_of(prev.hand), prev.grip_offset)
    closure = jnp.where(grasped, jnp.minimum(state.closure, width), state.closure)
    return state.replace(grasped=grasped, grip_offset=offset, closure=closure)


def push_out(obj: jax.Array, pusher: jax.Array, radius: float, height: float) -> jax.Array:
    """Move ``obj`` (xy) out of a disc of ``radius`` around ``pusher`` if the pusher is low enough."""
    delta = obj[:2] - pusher[:2]
    dist = jnp.linalg.norm(delta)
    touching = (dist < radius) & (pusher[2] < obj[2] + height)
    direction = jnp.where(dist > 1e-6, delta / jnp.maximum(dist, 1e-6), jnp.array([0.0, 1.0]))
    new_xy = jnp.where(touching, pusher[:2] + radius * direction, obj[:2])
    return obj.at[:2].set(new_xy)


def settle(obj: jax.Array, rest_z) -> jax.Array:
    """An unheld object falls at ``FALL_SPEED`` to ``rest_z`` (never below it)."""
    return obj.at[2].set(jnp.maximum(jnp.asarray(rest_z, jnp.float32), obj[2] - FALL_SPEED))


def move_free_object(prev: ManipState, state: ManipState, action: jax.Array, *, width: float, radius: float,
                     height: float, rest_z, reach_xy: float = 0.025, reach_z: float = 0.03) -> ManipState:
    """Grasp, carry, push and settle object 1: the whole rule for a puck, block, ball or peg.

    An object between the open fingers (within grasp reach) is not pushed:
    that is how the gripper gets around it before closing.
    """
    state = grasp(prev, state, action, prev.obj, width=width, reach_xy=reach_xy, reach_z=reach_z)
    tcp = tcp_of(state.hand)
    carried = tcp + state.grip_offset
    between_fingers = (jnp.linalg.norm(tcp[:2] - prev.obj[:2]) <= reach_xy) & (state.closure < width)
    pushed = jnp.where(between_fingers, prev.obj, push_out(prev.obj, tcp, radius, height))
    loose = settle(pushed, rest_z)
    return state.replace(obj=jnp.where(state.grasped, carried, loose))


def move_joint(q: jax.Array, handle_fn: Callable[[jax.Array], jax.Array], tcp_prev: jax.Array, tcp: jax.Array, *,
               radius: float, low: float, high: float, hook: bool) -> jax.Array:
    """New joint position: the handle follows the TCP along the joint while they touch.

    ``handle_fn(q) -> [3]`` is the handle position. The displacement of the TCP
    is projected on ``d handle / d q``; with ``hook=False`` only motion that
    pushes the handle away from the TCP is passed on.
    """
    handle, tangent = jax.jvp(handle_fn, (q,), (jnp.ones_like(q),))
    touching = jnp.linalg.norm(tcp - handle) <= radius
    dq = jnp.dot(tcp - tcp_prev, tangent) / jnp.maximum(jnp.dot(tangent, tangent), 1e-9)
    pushes_away = dq * jnp.dot(handle - tcp_prev, tangent) > 0
    allowed = touching & (pushes_away | hook)
    return jnp.clip(q + jnp.where(allowed, dq, 0.0), low, high)


def rotate_z(v: jax.Array, angle: jax.Array) -> jax.Array:
    c, s = jnp.cos(angle), jnp.sin(angle)
    return jnp.stack([c * v[0] - s * v[1], s * v[0] + c * v[1], v[2]])


def rotate_x(v: jax.Array, angle: jax.Array) -> jax.Array:
    c, s = jnp.cos(angle), jnp.sin(angle)
    return jnp.stack([v[0], c * v[1] - s * v[2], s * v[1] + c * v[2]])


def quat_z(angle: jax.Array, scalar_first: bool = False) -> jax.Array:
    """Quaternion of a rotation by ``angle`` about z (scipy's scalar-last unless ``scalar_first``)."""
    half = 0.5 * angle
    xyz_w = jnp.stack([0.0 * half, 0.0 * half, jnp.sin(half), jnp.cos(half)])
    return jnp.roll(xyz_w, 1) if scalar_first else xyz_w
