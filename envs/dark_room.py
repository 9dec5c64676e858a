"""Dark Room (Algorithm Distillation, Laskin et al. 2022): find a hidden goal cell in an empty room.

Layout and conventions follow toy-meta-gym's ``DarkRoom`` (corl-team): a ``size x size``
room without interior walls; a position is ``(row, col)`` and its cell index is
``row * size + col``. Actions: 0 no-op, 1 up (row - 1), 2 right (col + 1), 3 down
(row + 1), 4 left (col - 1); the room's edge blocks a move (the agent stays put).

* ``dark-room``: 9 x 9, reward 1.0 after **every** step that ends on the goal.
* ``dark-room-hard``: 17 x 17, reward 1.0 only the **first** time a step ends on the
  goal in the episode (sparse); later visits give 0.

Episodes last ``max_steps_in_episode`` = 20 steps and are only ever truncated (never
terminal; reaching the goal does not end the episode). The agent starts at the centre
``(size // 2, size // 2)`` ((4, 4) for 9 x 9), or uniformly at random over all cells with
``random_start=True``.

**Task** = ``params.goal``, the hidden goal ``(row, col)`` (int32 [2]). The
:class:`~envs.task_space.TaskSpace` box admits all ``size**2`` cells (the centre goal is a
valid task: from the centre its optimal return is 20). The task *sampler* draws uniformly
from the ``size**2 - 1`` non-centre cells by default (the 80 goals of the 9 x 9 room over
which the 16.5 mean optimum is quoted); ``include_centre_goal=True`` samples all cells.
:meth:`DarkRoom.all_goals` gives that same set as a batched params pytree.

Observation (float32, ``size**2``): one-hot of the agent's cell; the goal is not observed
(the agent must infer it from rewards, across episodes, in context).

Optimal return (:func:`optimal_return`): with start-to-goal Manhattan distance ``d``
and horizon ``T``, the dense room gives ``T + 1 - max(d, 1)`` for ``d <= T`` (``21 - d``
for ``d >= 1`` with ``T = 20``; 20 when the agent starts on the goal, by no-ops), the
hard room gives 1 if ``d <= T`` (0 otherwise). Centre start, 9 x 9, ``T = 20``: the mean
over the 80 non-centre goals is exactly 16.5 (sum of distances 360, mean ``d`` 4.5);
over all 81 cells it is 1340 / 81 = 16.543.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.core import Environment, EnvState, StaticIdentity, spaces
from envs.registry import register
from envs.task_space import Field, TaskSpace

NUM_ACTIONS = 5
# (d_row, d_col) per action: no-op, up, right, down, left (toy-meta-gym's order)
ACTION_DELTAS = ((0, 0), (-1, 0), (0, 1), (1, 0), (0, -1))
HORIZON = 20
SIZE = 9
HARD_SIZE = 17


@struct.dataclass
class DarkRoomParams:
    goal: jax.Array  # int32 [2]: hidden goal (row, col)
    max_steps_in_episode: jax.Array  # int32 []


@struct.dataclass
class DarkRoomState(EnvState):
    pos: jax.Array  # int32 [2]: agent (row, col)
    reached: jax.Array  # bool: the goal was reached this episode (the hard room pays once)


def optimal_return(params: DarkRoomParams, size: int = SIZE, reward_once: bool = False,
                   start: jax.Array | None = None) -> jax.Array:
    """Best achievable episode return of ``params`` from ``start`` (default: the centre).

    Walk straight to the goal (``d`` = Manhattan distance steps), then no-op on it. Dense:
    ``T + 1 - max(d, 1)`` if ``d <= T`` else 0; hard (``reward_once``): ``1`` if ``d <= T``.
    Works on a batch of params (leading axes) and under ``jit``.
    """
    goal = jnp.asarray(params.goal, jnp.int32)
    start = jnp.full((2,), size // 2, jnp.int32) if start is None else jnp.asarray(start, jnp.int32)
    d = jnp.sum(jnp.abs(goal - start), axis=-1)
    horizon = jnp.asarray(params.max_steps_in_episode, jnp.int32)
    reachable = d <= horizon
    value = jnp.ones_like(d) if reward_once else horizon + 1 - jnp.maximum(d, 1)
    return jnp.where(reachable, value, 0).astype(jnp.float32)


class DarkRoom(StaticIdentity, Environment):
    """Dark Room; see the module docstring.

    Args:
        size: side of the square room (9; the hard room 17).
        reward_once: pay only the first arrival on the goal (Dark Room Hard).
        random_start: start on a uniformly random cell instead of the centre.
        include_centre_goal: the task sampler also draws the centre cell.
        max_steps_in_episode: default horizon (a params field: tasks may change it).
    """

    def __init__(
        self,
        size: int = SIZE,
        reward_once: bool = False,
        random_start: bool = False,
        include_centre_goal: bool = False,
        max_steps_in_episode: int = HORIZON,
    ):
        super().__init__()
        if int(size) != size or size < 2:
            raise ValueError(f"DarkRoom: size must be an integer >= 2, got {size!r}")
        if int(max_steps_in_episode) != max_steps_in_episode or max_steps_in_episode < 1:
            raise ValueError(f"DarkRoom: max_steps_in_episode must be a positive integer, got {max_steps_in_episode!r}")
        self.size = int(size)
        self.reward_once = bool(reward_once)
        self.random_start = bool(random_start)
        self.include_centre_goal = bool(include_centre_goal)
        self.max_steps = int(max_steps_in_episode)
        self._deltas = np.asarray(ACTION_DELTAS, np.int32)

    def _static(self) -> tuple:
        return (self.size, self.reward_once, self.random_start, self.include_centre_goal, self.max_steps)

    def __repr__(self) -> str:
        return (f"DarkRoom(size={self.size}, reward_once={self.reward_once}, random_start={self.random_start}, "
                f"include_centre_goal={self.include_centre_goal}, max_steps_in_episode={self.max_steps})")

    # --- gymnax API ---------------------------------------------------------------
    @property
    def name(self) -> str:
        return "dark-room-hard" if self.reward_once else "dark-room"

    @property
    def num_actions(self) -> int:
        return NUM_ACTIONS

    @property
    def num_cells(self) -> int:
        return self.size * self.size

    @property
    def centre(self) -> tuple[int, int]:
        return (self.size // 2, self.size // 2)

    @property
    def default_params(self) -> DarkRoomParams:
        # the corner (0, 0): a fixed non-centre goal (the sampler gives the task distribution)
        return DarkRoomParams(goal=jnp.zeros((2,), jnp.int32),
                              max_steps_in_episode=jnp.asarray(self.max_steps, jnp.int32))

    def action_space(self, params: DarkRoomParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(NUM_ACTIONS)

    def observation_space(self, params: DarkRoomParams | None = None) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (self.num_cells,), jnp.float32)

    # --- tasks ----------------------------------------------------------------------
    def goal_cells(self) -> np.ndarray:
        """Cell indices the sampler draws from (non-centre ones unless ``include_centre_goal``)."""
        cells = np.arange(self.num_cells)
        if not self.include_centre_goal:
            cells = cells[cells != self.centre[0] * self.size + self.centre[1]]
        return cells

    def sample_task(self, key: jax.Array) -> DarkRoomParams:
        cells = jnp.asarray(self.goal_cells(), jnp.int32)
        cell = cells[jax.random.randint(key, (), 0, cells.shape[0])]
        return self.default_params.replace(goal=jnp.stack([cell // self.size, cell % self.size]).astype(jnp.int32))

    def all_goals(self) -> DarkRoomParams:
        """Every goal of the sampler's support as one batched params (leading axis = goal)."""
        cells = self.goal_cells()
        goals = np.stack([cells // self.size, cells % self.size], axis=-1).astype(np.int32)
        n = goals.shape[0]
        return DarkRoomParams(goal=jnp.asarray(goals),
                              max_steps_in_episode=jnp.full((n,), self.max_steps, jnp.int32))

    @property
    def task_space(self) -> TaskSpace:
        fields = [Field("goal", 0, self.size - 1, (2,), kind="int")]
        return TaskSpace(self.default_params, fields, sampler=self.sample_task, name=self.name)

    def optimal_return(self, params: DarkRoomParams) -> jax.Array:
        """Best episode return of ``params``: from the centre, or averaged over uniform starts
        with ``random_start`` (exact, over all cells)."""
        if not self.random_start:
            return optimal_return(params, self.size, self.reward_once)
        rows, cols = np.divmod(np.arange(self.num_cells), self.size)
        starts = jnp.asarray(np.stack([rows, cols], -1), jnp.int32)
        per_start = jax.vmap(lambda s: optimal_return(params, self.size, self.reward_once, s))(starts)
        return jnp.mean(per_start, axis=0)

    # --- dynamics ---------------------------------------------------------------------
    def reset_env(self, key: jax.Array, params: DarkRoomParams):
        if self.random_start:
            pos = jax.random.randint(key, (2,), 0, self.size)
        else:
            pos = jnp.asarray(self.centre)
        state = DarkRoomState(time=jnp.zeros((), jnp.int32), pos=pos.astype(jnp.int32),
                              reached=jnp.zeros((), jnp.bool_))
        return self.get_obs(state, params), state

    def step_env(self, key: jax.Array, state: DarkRoomState, action, params: DarkRoomParams):
        action = jnp.clip(jnp.asarray(action, jnp.int32), 0, NUM_ACTIONS - 1)
        pos = jnp.clip(state.pos + jnp.asarray(self._deltas)[action], 0, self.size - 1)
        on_goal = jnp.all(pos == jnp.asarray(params.goal, jnp.int32))
        paid = on_goal & ~state.reached if self.reward_once else on_goal
        new_state = DarkRoomState(time=state.time + 1, pos=pos, reached=state.reached | on_goal)
        info = {"on_goal": on_goal}
        return self.get_obs(new_state, params), new_state, paid.astype(jnp.float32), jnp.array(False), info

    def cell_of(self, pos: jax.Array) -> jax.Array:
        """Cell index ``row * size + col`` of a position."""
        return pos[..., 0] * self.size + pos[..., 1]

    def get_obs(self, state: DarkRoomState, params: DarkRoomParams | None = None, key=None) -> jax.Array:
        return (jnp.arange(self.num_cells) == self.cell_of(state.pos)).astype(jnp.float32)


def make_dark_room(
    random_start: bool = False, include_centre_goal: bool = False, max_steps_in_episode: int = HORIZON,
) -> tuple[DarkRoom, DarkRoomParams]:
    env = DarkRoom(SIZE, False, random_start, include_centre_goal, max_steps_in_episode)
    return env, env.default_params


def make_dark_room_hard(
    random_start: bool = False, include_centre_goal: bool = False, max_steps_in_episode: int = HORIZON,
) -> tuple[DarkRoom, DarkRoomParams]:
    env = DarkRoom(HARD_SIZE, True, random_start, include_centre_goal, max_steps_in_episode)
    return env, env.default_params


register("dark-room", make_dark_room)
register("dark-room-hard", make_dark_room_hard)

__all__ = [
    "ACTION_DELTAS",
    "DarkRoom",
    "DarkRoomParams",
    "DarkRoomState",
    "HORIZON",
    "NUM_ACTIONS",
    "make_dark_room",
    "make_dark_room_hard",
    "optimal_return",
]
