"""Meta-World v3's reward building blocks, in JAX: tolerance, Hamacher product, gripper caging.

``tolerance`` is ``reward_utils.tolerance`` with its default long-tail sigmoid:
1 inside ``[low, high]``, ``1 / (1 + (3 d / margin)^2)`` outside, where ``d`` is
the distance to the nearest bound, so the value is exactly 0.1 at ``d = margin``.
``margin = 0`` gives an indicator. Everything is elementwise, jit- and vmap-safe.
"""

from __future__ import annotations

import jax.numpy as jnp

LONG_TAIL_SCALE = 3.0  # sqrt(1/0.1 - 1): value 0.1 at the margin


def tolerance(x, low=0.0, high=0.0, margin=0.0):
    """1 inside ``[low, high]``, a long tail falling to 0.1 at ``margin`` outside it."""
    x = jnp.asarray(x, jnp.float32)
    inside = (x >= low) & (x <= high)
    d = jnp.where(x < low, low - x, x - high)
    safe_margin = jnp.where(margin > 0, margin, 1.0)
    tail = 1.0 / (1.0 + (LONG_TAIL_SCALE * d / safe_margin) ** 2)
    return jnp.where(inside, 1.0, jnp.where(margin > 0, tail, 0.0)).astype(jnp.float32)


def hamacher(a, b):
    """Hamacher product ``ab / (a + b - ab)``; 0 when both are 0 (Meta-World's fuzzy AND)."""
    a, b = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
    denom = a + b - a * b
    return jnp.where(denom > 0, a * b / jnp.where(denom > 0, denom, 1.0), 0.0)


def caging(tcp, obj, obj_init, tcp_init, opening, grip_action, *, pad_margin=0.05, obj_radius=0.015,
           xz_thresh=0.005, high_density=False):
    """Gripper caging reward in [0, 1], built like Meta-World's ``_gripper_caging_reward``.

    Meta-World reads the two finger pads; here the pads sit at ``tcp ± half the
    finger gap`` along y (the gap is ``0.1 * opening``), which is where the
    kinematic gripper puts them.
    """
    tcp, obj, obj_init, tcp_init = (jnp.asarray(v, jnp.float32) for v in (tcp, obj, obj_init, tcp_init))
    half_gap = 0.05 * opening
    left, right = tcp[1] + half_gap, tcp[1] - half_gap
    left_init, right_init = tcp_init[1] + 0.05, tcp_init[1] - 0.05
    y_left = tolerance(jnp.abs(left - obj[1]), obj_radius, pad_margin,
                       jnp.abs(jnp.abs(obj_init[1] - left_init) - pad_margin))
    y_right = tolerance(jnp.abs(right - obj[1]), obj_radius, pad_margin,
                        jnp.abs(jnp.abs(obj_init[1] - right_init) - pad_margin))
    y_caging = hamacher(y_left, y_right)
    xz = jnp.array([0, 2])
    xz_margin = jnp.linalg.norm(obj_init[xz] - tcp_init[xz]) - xz_thresh
    xz_caging = tolerance(jnp.linalg.norm(tcp[xz] - obj[xz]), 0.0, xz_thresh, jnp.maximum(xz_margin, 1e-3))
    cage = hamacher(y_caging, xz_caging)
    gripping = jnp.where(cage > 0.97, jnp.clip(grip_action, 0.0, 1.0), 0.0)
    caging_and_gripping = hamacher(cage, gripping)
    return jnp.where(high_density, 0.5 * (caging_and_gripping + cage), caging_and_gripping)
