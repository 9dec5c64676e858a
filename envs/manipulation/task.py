"""The contract of one manipulation task (a Meta-World v3 class) and its shared defaults.

A :class:`Task` is static Python: ranges, geometry and a handful of pure JAX
methods. The env calls them with the task's ``ManipParams`` (task id, object
start ``obj_init`` and ``goal``, both drawn from the task's ranges):

* ``reset_state(params)`` -> the ``ManipState`` at the start of an episode;
* ``move_objects(prev, state, action, params)`` -> objects after the arm moved;
* ``observe_objects(state, params)`` -> the 14 object entries of the frame
  (object 1 pos + quat, object 2 pos + quat, zeros where unused);
* ``target(params)``, ``success(state, params)``, ``reward(state, action, params)``;
* ``scripted_action(obs, params)`` -> a hand-written expert's action (the test
  that the task is solvable and its success rule right).

``goal_offset`` makes ``goal`` a function of ``obj_init`` (door-open: the goal
is where the opened handle ends up); then the goal is not a free parameter.
``min_separation`` is Meta-World's redraw rule: the xy distance between
``obj_init`` and ``goal`` of a sampled task is at least this.
"""

from __future__ import annotations

import abc

import jax
import jax.numpy as jnp

from envs.manipulation import world
from envs.manipulation.world import ManipState

SCALAR_LAST_IDENTITY = (0.0, 0.0, 0.0, 1.0)
SCALAR_FIRST_IDENTITY = (1.0, 0.0, 0.0, 0.0)


class Task(abc.ABC):
    name: str = ""
    hand_init: tuple = (0.0, 0.6, 0.2)
    obj_low: tuple = (0.0, 0.0, 0.0)
    obj_high: tuple = (0.0, 0.0, 0.0)
    goal_low: tuple = (0.0, 0.0, 0.0)
    goal_high: tuple = (0.0, 0.0, 0.0)
    goal_offset: tuple | None = None  # goal = obj_init + goal_offset (goal not free)
    min_separation: float = 0.0
    obj_quat: tuple = SCALAR_LAST_IDENTITY
    success_threshold: float = 0.05

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}-v3)"

    # --- task parameters -------------------------------------------------
    def goal_bounds(self) -> tuple[tuple, tuple]:
        if self.goal_offset is None:
            return self.goal_low, self.goal_high
        low = tuple(lo + d for lo, d in zip(self.obj_low, self.goal_offset))
        high = tuple(hi + d for hi, d in zip(self.obj_high, self.goal_offset))
        return low, high

    def derive_goal(self, obj_init: jax.Array, goal: jax.Array, params=None) -> jax.Array:
        if self.goal_offset is None:
            return goal
        return obj_init + jnp.asarray(self.goal_offset, jnp.float32)

    # --- dynamics, observation, scoring (override what differs) ------------
    @property
    def tcp_init(self) -> jax.Array:
        return world.tcp_of(jnp.asarray(self.hand_init, jnp.float32))

    def reset_state(self, params) -> ManipState:
        return world.initial_state(self.hand_init, params.obj_init)

    def move_objects(self, prev: ManipState, state: ManipState, action: jax.Array, params) -> ManipState:
        return state

    def observe_objects(self, state: ManipState, params) -> jax.Array:
        quat = jnp.asarray(self.obj_quat, jnp.float32)
        return jnp.concatenate([state.obj, quat, jnp.zeros(7, jnp.float32)])

    def target(self, params) -> jax.Array:
        return params.goal

    def success(self, state: ManipState, params) -> jax.Array:
        return jnp.linalg.norm(state.obj - self.target(params)) <= self.success_threshold

    @abc.abstractmethod
    def reward(self, state: ManipState, action: jax.Array, params) -> jax.Array:
        """Built like v3's reward from tolerances and Hamacher products; in [0, 10]."""

    @abc.abstractmethod
    def scripted_action(self, obs: jax.Array, params) -> jax.Array:
        """A stateless expert's action from the observation (and the task, for a hidden goal)."""


def move_toward(pos: jax.Array, target: jax.Array, gain: float = 25.0) -> jax.Array:
    """The arm action that moves ``pos`` toward ``target``: Meta-World's policies' P-controller."""
    return jnp.clip(gain * (target - pos), -1.0, 1.0)


def action(move: jax.Array, grip) -> jax.Array:
    """Concatenate a 3-D arm move and the gripper command (+1 closes)."""
    return jnp.concatenate([move, jnp.asarray(grip, jnp.float32)[None]])


def obs_hand(obs: jax.Array) -> jax.Array:
    return obs[0:3]


def obs_obj(obs: jax.Array) -> jax.Array:
    return obs[4:7]


def obs_obj2(obs: jax.Array) -> jax.Array:
    return obs[11:14]
