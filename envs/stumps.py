"""Stump Track: a cheap 1-D stand-in for TeachMyAgent's Stump Tracks (no physics).

A walker starts at cell 0 of a track of ``length`` cells and must reach the
end. Stumps of height ``stump_height`` stand at cells ``ceil(k * stump_spacing)``
(k = 1, 2, ...) before the goal. Actions: 0 walk one cell, 1 jump two cells,
2 wait. Walking into a stump taller than ``STEP_HEIGHT`` is blocked; a jump
clears the cell in between if the stump there is at most ``MAX_JUMP`` tall,
and needs a landing cell that is not a tall stump.

So the two task parameters set difficulty and part of the space is
**infeasible**: stumps taller than ``MAX_JUMP`` (2.0) can never be passed,
and tall stumps closer than 2 cells apart (spacing < 2) leave no landing
cell. Low stumps (<= ``STEP_HEIGHT``) are walked over at any spacing.
Feasible share of the default box (height [0, 3], spacing [1, 6]) ≈ 55 %.

Reward: ``1 / length`` per cell gained, ``GOAL_BONUS`` (1.0) on reaching the
goal, ``-JUMP_COST`` per jump. ``info["success"]`` = the goal was reached.
A task is **mastered** when the return exceeds ``MASTERED_RETURN`` = 1.5,
which is only possible by reaching the goal (return without the goal < 1,
with it >= 2 - length/2 * JUMP_COST = 1.8).

Observation: heights of the next 3 cells (0 = free, goal and beyond are 0)
and the position ``x / length``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.core import EnvState, Environment, spaces
from envs.registry import register
from envs.task_space import Field, TaskSpace

STEP_HEIGHT = 0.3
MAX_JUMP = 2.0
JUMP_COST = 0.02
GOAL_BONUS = 1.0
MASTERED_RETURN = 1.5
VIEW = 3
TEST_SET_SEED = 31  # TeachMyAgent generates its fixed test sets with seed 31


@struct.dataclass
class StumpParams:
    stump_height: jax.Array = 1.0  # float32
    stump_spacing: jax.Array = 3.0  # float32
    max_steps_in_episode: int = 40


@struct.dataclass
class StumpState(EnvState):
    x: jax.Array  # int32 position


class StumpTrack(Environment):
    def __init__(self, length: int = 20, max_height: float = 3.0, min_spacing: float = 1.0, max_spacing: float = 6.0):
        super().__init__()
        if length < 4:
            raise ValueError(f"StumpTrack length must be >= 4, got {length}")
        self.length = length
        self.max_height, self.min_spacing, self.max_spacing = max_height, min_spacing, max_spacing

    @property
    def name(self) -> str:
        return "StumpTrack"

    @property
    def default_params(self) -> StumpParams:
        return StumpParams(jnp.float32(1.0), jnp.float32(3.0), 2 * self.length)

    @property
    def task_space(self) -> TaskSpace:
        default = StumpParams(np.float32(1.0), np.float32(3.0), 2 * self.length)
        fields = (
            Field("stump_height", 0.0, self.max_height),
            Field("stump_spacing", self.min_spacing, self.max_spacing),
        )
        return TaskSpace(default, fields, name=self.name)

    @property
    def num_actions(self) -> int:
        return 3

    def action_space(self, params=None):
        return spaces.Discrete(3)

    def observation_space(self, params=None):
        return spaces.Box(0.0, max(self.max_height, 1.0), (VIEW + 1,), jnp.float32)

    def heights(self, params: StumpParams) -> jax.Array:
        """Height of every cell ``0..length`` (stumps only strictly between start and goal)."""
        cells = jnp.arange(self.length + 1, dtype=jnp.float32)
        spacing = jnp.maximum(params.stump_spacing, 1e-3)
        # cell c holds a stump iff some k >= 1 has ceil(k * s) == c, i.e. floor(c / s) > floor((c - 1) / s)
        is_stump = (jnp.floor(cells / spacing) > jnp.floor((cells - 1) / spacing)) & (cells > 0)
        is_stump &= cells < self.length
        return jnp.where(is_stump, params.stump_height, 0.0).astype(jnp.float32)

    def _obs(self, x: jax.Array, heights: jax.Array) -> jax.Array:
        ahead = x + 1 + jnp.arange(VIEW)
        view = jnp.where(ahead <= self.length, heights[jnp.minimum(ahead, self.length)], 0.0)
        return jnp.concatenate([view, (x / self.length)[None]]).astype(jnp.float32)

    def reset_env(self, key, params: StumpParams):
        state = StumpState(time=jnp.zeros((), jnp.int32), x=jnp.zeros((), jnp.int32))
        return self._obs(state.x, self.heights(params)), state

    def step_env(self, key, state: StumpState, action, params: StumpParams):
        h = self.heights(params)
        x = state.x
        one, two = jnp.minimum(x + 1, self.length), jnp.minimum(x + 2, self.length)
        walk_ok = h[one] <= STEP_HEIGHT
        jump_ok = (h[one] <= MAX_JUMP) & (h[two] <= STEP_HEIGHT)
        new_x = jnp.select([(action == 0) & walk_ok, (action == 1) & jump_ok], [one, two], x)
        reached = new_x >= self.length
        reward = (new_x - x) / self.length + GOAL_BONUS * reached - JUMP_COST * (action == 1)
        new_state = StumpState(time=state.time + 1, x=new_x)
        info = {"success": reached}
        return self._obs(new_x, h), new_state, reward.astype(jnp.float32), reached, info

    def is_feasible(self, params: StumpParams) -> jax.Array:
        """Whether the goal can be reached at all: no stump above ``MAX_JUMP`` and no two tall stumps in a row."""
        tall = self.heights(params) > STEP_HEIGHT
        adjacent = jnp.any(tall[1:] & tall[:-1])
        return ~jnp.any(tall) | ((params.stump_height <= MAX_JUMP) & ~adjacent)


def test_tasks(env: StumpTrack | None = None, n: int = 100, seed: int = TEST_SET_SEED) -> StumpParams:
    """A fixed, seeded held-out set of ``n`` tasks drawn uniformly from the task space."""
    env = StumpTrack() if env is None else env
    return env.task_space.sample_batch(jax.random.PRNGKey(seed), n)


test_tasks.__test__ = False  # not a pytest test despite the name


def _factory(length: int = 20, max_height: float = 3.0, min_spacing: float = 1.0, max_spacing: float = 6.0):
    env = StumpTrack(length, max_height, min_spacing, max_spacing)
    return env, env.default_params


register("stumps", _factory)
