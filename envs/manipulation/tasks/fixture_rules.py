"""The rules fixtures follow (button, handle, window, lever and faucet tasks) and their experts' move.

Used by :mod:`~envs.manipulation.tasks.buttons` and :mod:`~envs.manipulation.tasks.windows_and_knobs`.
Each task is one fixed body at ``obj_init`` with one joint (``state.q``), a :class:`Fixture`. The
fingers (the TCP) drive it through :func:`world.move_joint` with *push* contacts only (Meta-World's
experts never grasp these), and the fixture's solid parts keep the TCP out (:func:`keep_out`): boxes
are left through the face the TCP came in by, rods (capsules) radially. A part that moves with the
joint is solid at its new position, so a joint at its limit stops the hand.

Only the TCP collides: the rest of the hand and the arm pass through the
fixtures (v3's experts push windows and levers with the wrist; these experts
use the fingertips). Collisions are swept along the TCP's step, so no part is
jumped however hard the arm's spring pulls. The experts aim the hand so that
the TCP reaches its target (:func:`go`, Meta-World's P-controller).
Meta-World v3 sources: ``metaworld/envs/sawyer_<task>_v3.py`` and
``metaworld/policies/sawyer_<task>_v3_policy.py``; "measured" numbers are from metaworld 3.1.1 + mujoco 3.3.0.
"""

from __future__ import annotations

import abc

import jax
import jax.numpy as jnp

from envs.manipulation import world
from envs.manipulation.task import Task, action, move_toward, obs_hand

F32 = jnp.float32
FINGER = 0.01  # the TCP stays this far from a solid face (finger thickness)
TOUCH = 0.008  # a push contact reaches this much further than the solid face
ZERO_QUAT = (0.0, 0.0, 0.0, 0.0)


def v(x) -> jax.Array:
    """``x`` as a float32 jax array."""
    return jnp.asarray(x, F32)


# --- solids the TCP cannot enter -----------------------------------------------------------------------
def out_of_box(prev: jax.Array, p: jax.Array, lo: jax.Array, hi: jax.Array) -> jax.Array:
    """``p`` stopped at the face of the open box ``(lo, hi)`` where the step ``prev -> p`` enters it.

    A swept test (slab method), so that a fast step cannot jump a thin part: a blocked hand whose
    mocap runs on is pulled ever harder by its spring. The point keeps its motion along the face.
    A point that starts inside leaves through the nearest face.
    """
    d = p - prev
    moving = jnp.abs(d) > 1e-12
    in_slab = (prev > lo) & (prev < hi)
    step = jnp.where(moving, d, 1.0)
    t_lo, t_hi = (lo - prev) / step, (hi - prev) / step
    near = jnp.where(moving, jnp.minimum(t_lo, t_hi), jnp.where(in_slab, -jnp.inf, jnp.inf))
    far = jnp.where(moving, jnp.maximum(t_lo, t_hi), jnp.where(in_slab, jnp.inf, -jnp.inf))
    enter, leave = jnp.max(near), jnp.min(far)
    started_inside = jnp.all(in_slab)
    hits = ~started_inside & (enter < leave) & (enter >= 0.0) & (enter < 1.0)
    axis = jnp.argmax(near)
    swept = p.at[axis].set(jnp.where(d[axis] > 0, lo[axis], hi[axis]))
    depth = jnp.concatenate([p - lo, hi - p])
    face = jnp.argmin(depth)
    nearest = p.at[face % 3].set(jnp.where(face < 3, lo[face % 3], hi[face % 3]))
    inside = jnp.all(p > lo) & jnp.all(p < hi)
    return jnp.where(hits, swept, jnp.where(started_inside & inside, nearest, p))


def out_of_capsule(prev: jax.Array, p: jax.Array, a: jax.Array, b: jax.Array, radius, substeps: int = 8):
    """``p`` stopped where the step ``prev -> p`` (in ``substeps``) first enters the capsule of ``radius``
    around the segment ``a``-``b``, pushed radially onto its surface."""
    ab = b - a
    points = prev + (jnp.arange(1, substeps + 1, dtype=F32) / substeps)[:, None] * (p - prev)
    t = jnp.clip((points - a) @ ab / jnp.maximum(jnp.dot(ab, ab), 1e-12), 0.0, 1.0)
    axis_points = a + t[:, None] * ab
    dist = jnp.linalg.norm(points - axis_points, axis=1)
    inside = dist < radius
    k = jnp.argmax(inside)
    out = axis_points[k] + radius * (points[k] - axis_points[k]) / jnp.maximum(dist[k], 1e-9)
    return jnp.where(inside.any(), jnp.where(dist[k] > 1e-9, out, prev), p)


def keep_out(prev_tcp: jax.Array, tcp: jax.Array, boxes=(), capsules=()) -> jax.Array:
    """The TCP out of ``boxes`` (``(lo, hi)``, padded by FINGER) and ``capsules`` (``(a, b, radius)``)."""
    pad = jnp.full(3, FINGER, F32)
    for _ in range(2):
        for a, b, r in capsules:
            tcp = out_of_capsule(prev_tcp, tcp, a, b, r + FINGER)
        for lo, hi in boxes:
            tcp = out_of_box(prev_tcp, tcp, lo - pad, hi + pad)
    return tcp


def box_at(origin, lo, hi):
    """The box ``(lo, hi)`` placed at ``origin``."""
    origin = v(origin)
    return origin + v(lo), origin + v(hi)


def with_tcp(prev, state, tcp, q):
    """``state`` with the joint at ``q`` and the hand moved so that its TCP is at ``tcp`` (within its range)."""
    hand = jnp.clip(tcp - v(world.TCP_OFFSET), v(world.HAND_LOW), v(world.HAND_HIGH))
    return state.replace(q=q, hand=hand, hand_vel=hand - prev.hand)


def tcp_obs(obs):
    """The TCP of the hand in an observation."""
    return obs_hand(obs) + v(world.TCP_OFFSET)


def go(obs, tcp_target, grip=1.0, gain=25.0):
    """Meta-World's P-controller on the hand, aimed so that the TCP reaches ``tcp_target``."""
    return action(move_toward(obs_hand(obs), tcp_target - v(world.TCP_OFFSET), gain), grip)


class Fixture(Task):
    """A fixed body at ``obj_init`` with one joint; subclasses give the joint and its parts."""

    hand_init = (0.0, 0.4, 0.2)
    q_init = 0.0

    def reset_state(self, params):
        return world.initial_state(self.hand_init, params.obj_init, q=self.q_init)

    @abc.abstractmethod
    def joint(self, q, tcp_prev, tcp, params):
        """The joint position after the TCP moved from ``tcp_prev`` to ``tcp``."""

    @abc.abstractmethod
    def solids(self, q, params):
        """``(boxes, capsules)`` at joint position ``q``."""

    def move_objects(self, prev, state, act, params):
        tcp_prev, tcp = world.tcp_of(prev.hand), world.tcp_of(state.hand)
        q = self.joint(state.q, tcp_prev, tcp, params)
        boxes, capsules = self.solids(q, params)
        return with_tcp(prev, state, keep_out(tcp_prev, tcp, boxes, capsules), q)

    @abc.abstractmethod
    def handle(self, state, params):
        """The observed point (Meta-World's ``_get_pos_objects``)."""

    def observe_objects(self, state, params):
        quat = jnp.asarray(self.obj_quat, F32)
        return jnp.concatenate([self.handle(state, params), quat, jnp.zeros(7, F32)])

    def target(self, params):
        return params.goal  # goal_offset makes it obj_init + offset

    def success(self, state, params):
        return jnp.linalg.norm(self.handle(state, params) - self.target(params)) <= self.success_threshold
