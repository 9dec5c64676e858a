"""The rules free objects follow in the pegs, balls and tools tasks, and their experts' common moves.

Used by :mod:`~envs.manipulation.tasks.pegs`, :mod:`~envs.manipulation.tasks.balls_and_blocks` and
:mod:`~envs.manipulation.tasks.tools`. Geometry, ranges, targets and success rules follow Meta-World v3
(``sawyer_<task>_v3.py`` and the task XMLs); the rules objects follow are kinematic (``world.py``) plus a
few task-specific ones, each a small function in its family module. Shared here:

* **Obstacles.** Each task lists its fixed obstacles. The hand moves one axis at a time
  (``slide_hand``) and refuses a step that would put the TCP, or the object it holds, inside one: the
  held object stops the hand, as a weld would. A loose object pushed or falling into an obstacle stops
  where it is (it rests on it) (``free_object``, ``fall``).
* **Experts.** The v3 experts' phases: reach above the grasp point, down, close (``pick``); believe the
  object held (``holding``); move the TCP (``drive``) or the held object (``carry``) with Meta-World's
  P-controller.

Every object keeps its orientation (the kinematic world has no rotations); the reported quaternions
follow each v3 task's convention.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from envs.manipulation import world
from envs.manipulation.task import action, move_toward, obs_hand

EPS = 1e-4
FALL_STEPS = (world.FALL_SPEED, 0.01, 0.005, 0.002)  # a falling object stops on what it would hit
OPEN, CLOSE = -1.0, 1.0


def v(*xs) -> jnp.ndarray:
    """The float32 vector ``xs``."""
    return jnp.asarray(xs, jnp.float32)


def f(x) -> jnp.ndarray:
    """A params field as a float32 jax array (``params_for`` gives numpy arrays)."""
    return jnp.asarray(x, jnp.float32)


def at_z(v, z) -> jnp.ndarray:
    """``v`` (params may hold numpy arrays) with its height replaced."""
    return jnp.asarray(v, jnp.float32).at[2].set(z)


def select(cases, default):
    """The value of the first true condition in ``cases`` ((cond, value) pairs), else ``default``."""
    out = default
    for cond, value in reversed(cases):
        out = jnp.where(cond, value, out)
    return out


# --- geometry helpers ---------------------------------------------------------------------------------
def overlap(lo1, hi1, lo2, hi2) -> jnp.ndarray:
    """Two axis-aligned boxes intersect (open intervals: touching faces do not count)."""
    return jnp.all(lo1 < hi2 - EPS) & jnp.all(lo2 < hi1 - EPS)


def point_in(p, lo, hi) -> jnp.ndarray:
    return jnp.all(p > lo) & jnp.all(p < hi)


def slide_hand(prev, state, blocked):
    """Move the hand from ``prev.hand`` toward ``state.hand`` one axis at a time (x, y, z), refusing each
    axis step that ends in a blocked pose (``blocked(hand) -> bool``). A pose that is already blocked
    may move freely, so nothing gets stuck inside an obstacle."""

    def axis_step(axis, pos):
        cand = jnp.where(jnp.arange(3) == axis, state.hand, pos)
        hit = jax.vmap(blocked)(jnp.stack([cand, pos]))  # one traced copy of the obstacle test
        return jnp.where(hit[0] & ~hit[1], pos, cand)

    pos = jax.lax.fori_loop(0, 3, axis_step, prev.hand)
    return state.replace(hand=pos, hand_vel=pos - prev.hand)


def grasp_at(prev, state, act, ref, *, width, reach_xy=0.025, reach_z=0.03):
    """``world.grasp`` with the fingers closing on ``ref`` (a point of a long object: handle, stick),
    while the carried offset is that of the object's reported position ``prev.obj``."""
    state = world.grasp(prev, state, act, ref, width=width, reach_xy=reach_xy, reach_z=reach_z)
    started = state.grasped & ~prev.grasped
    offset = jnp.where(started, prev.obj - world.tcp_of(prev.hand), state.grip_offset)
    return state.replace(grip_offset=offset)


def fall(pos, rest_z, collides):
    """Fall toward ``rest_z`` by up to ``FALL_SPEED``, stopping on anything ``collides`` reports."""
    drops = jnp.asarray(FALL_STEPS, jnp.float32)  # largest first
    cands = jnp.tile(pos, (len(FALL_STEPS), 1))
    cands = cands.at[:, 2].set(jnp.maximum(jnp.asarray(rest_z, jnp.float32), pos[2] - drops))
    free = ~jax.vmap(collides)(cands)
    return jnp.where(free.any(), cands[jnp.argmax(free)], pos)  # the largest fall that does not collide


def free_object(prev, state, act, *, width, radius, height, rest_z, collides=None, tcp_blocked=None,
                 grasp_ref=None, reach_xy=0.025, reach_z=0.03):
    """Grasp, carry, push and settle object 1 (``state.obj``) among obstacles.

    ``collides(obj_pos)`` is True where the object would be inside an obstacle (or the table);
    ``tcp_blocked(tcp)`` where the fingers would be; ``grasp_ref(obj, tcp)`` is the point the fingers
    close on (default: the object's reported position).
    """
    collides = collides or (lambda p: p[2] < rest_z - EPS)
    tcp_blocked = tcp_blocked or (lambda tcp: jnp.zeros((), bool))
    ref_of = grasp_ref or (lambda obj, tcp: obj)
    state = grasp_at(prev, state, act, ref_of(prev.obj, world.tcp_of(state.hand)), width=width,
                      reach_xy=reach_xy, reach_z=reach_z)

    def blocked(hand):
        tcp = world.tcp_of(hand)
        return tcp_blocked(tcp) | (state.grasped & collides(tcp + state.grip_offset))

    state = slide_hand(prev, state, blocked)
    tcp = world.tcp_of(state.hand)
    carried = tcp + state.grip_offset
    ref = ref_of(prev.obj, tcp)
    between_fingers = (jnp.linalg.norm(tcp[:2] - ref[:2]) <= reach_xy) & (state.closure < width)  # as world's
    pushed = prev.obj + (world.push_out(ref, tcp, radius, height) - ref)
    pushed = jnp.where(collides(pushed) | between_fingers, prev.obj, pushed)
    loose = fall(pushed, rest_z, collides)
    return state.replace(obj=jnp.where(state.grasped, carried, loose))


def rect_prism(curr, zero, one):
    """``reward_utils.rect_prism_tolerance``: inside the box spanned by ``zero``/``one``, the product of
    the fractional coordinates measured from ``zero``; 1 outside."""
    lo, hi = jnp.minimum(zero, one), jnp.maximum(zero, one)
    inside = jnp.all(curr >= lo) & jnp.all(curr <= hi)
    return jnp.where(inside, jnp.prod((curr - zero) / (one - zero)), 1.0)


# --- expert helpers -----------------------------------------------------------------------------------
def opening_at(width: float) -> float:
    return float(1.0 - (1.0 - world.CLOSED_OPENING) * width)


def pick(tcp, grasp_point, *, hover=0.08, tol_xy=0.01, tol_z=0.008):
    """The reach-and-close phases of every v3 expert: above the grasp point, down to it, close."""
    far_xy = jnp.linalg.norm(tcp[:2] - grasp_point[:2]) > tol_xy
    far_z = jnp.abs(tcp[2] - grasp_point[2]) > tol_z
    goal = jnp.where(far_xy, grasp_point + v(0.0, 0.0, hover), grasp_point)
    return goal, jnp.where(far_xy | far_z, OPEN, CLOSE)


def holding(obs, ref, width: float, reach: float = 0.035):
    """The expert believes it holds the object: fingers stopped at its width, TCP at ``ref``."""
    tcp = world.tcp_of(obs_hand(obs))
    return (obs[3] <= opening_at(width) + 0.01) & (jnp.linalg.norm(tcp - ref) < reach)


def drive(obs, tcp_goal, grip, gain=25.0):
    """Action moving the TCP to ``tcp_goal`` (Meta-World's P-controller)."""
    return action(move_toward(world.tcp_of(obs_hand(obs)), tcp_goal, gain), grip)


def carry(obs, obj, obj_goal, grip=CLOSE, gain=25.0):
    """Action moving a held object from ``obj`` to ``obj_goal``."""
    return action(move_toward(obj, obj_goal, gain), grip)
