"""Four rooms (MiniGrid FourRooms, 19x19) as in RISC's reset-free four-rooms experiment.

Layout (``(x, y)`` = (column, row), MiniGrid's convention): outer walls; interior cells
1..17; a vertical wall at x = 9 and a horizontal wall at y = 9, each split into two
segments by the crossing, and one doorway in each of the four segments. MiniGrid draws
the doorways at random on every reset; here they are FIXED at the segments' middles:
``(9, 4)`` and ``(9, 13)`` in the vertical wall, ``(4, 9)`` and ``(13, 9)`` in the
horizontal wall (see :data:`DOORWAYS`).

The agent starts at ``(1, 1)`` (rho_0 is that single state); the forward goal is
``(17, 17)`` (RISC: ``agent_pos=[1, 1]``, ``goal_pos=[17, 17]``). Actions: 0 up (y - 1),
1 down (y + 1), 2 left (x - 1), 3 right (x + 1); a wall blocks the move. MiniGrid's
turn-left / turn-right / forward actions are not used: RISC's MiniGrid envs also move in
the four directions directly (its order is right, down, left, up; ours is the
gridworld's up, down, left, right).

A goal is a cell, an int32 flat index ``y * 19 + x`` (:func:`cell`). Observation (float32,
722): one-hot agent cell (361) then one-hot goal cell (361). Reward 1.0 when the next
state is at its goal (success), else 0. Episode horizon ``max_steps_in_episode`` = 100
(RISC's evaluation horizon and phase limit). Success is a property of the state (the agent
on the goal cell), so a blocked move while standing on the goal is a success again
(MiniGrid rewards only moves onto the goal cell).

:func:`distances_from` / :func:`shortest_path_length` give BFS shortest-path lengths on
the static layout (numpy), e.g. ``shortest_path_length() == 32`` from start to goal.
"""

from __future__ import annotations

import functools
from collections import deque

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.core import EnvState, StaticIdentity, spaces
from envs.registry import register
from envs.reset_free import GoalEnv

SIZE = 19
NUM_CELLS = SIZE * SIZE
NUM_ACTIONS = 4
DOORWAYS = ((9, 4), (9, 13), (4, 9), (13, 9))  # (x, y)
START = (1, 1)
GOAL = (17, 17)
# (dx, dy) per action: up, down, left, right
ACTION_DELTAS = ((0, -1), (0, 1), (-1, 0), (1, 0))
HORIZON = 100


def cell(x: int, y: int) -> int:
    """Flat index of cell ``(x, y)``."""
    return int(y) * SIZE + int(x)


def cell_xy(index) -> tuple:
    """``(x, y)`` of a flat index (works on ints and arrays)."""
    return index % SIZE, index // SIZE


def _walls() -> np.ndarray:
    walls = np.zeros((SIZE, SIZE), bool)  # [y, x]
    walls[0, :] = walls[-1, :] = walls[:, 0] = walls[:, -1] = True
    walls[:, SIZE // 2] = True
    walls[SIZE // 2, :] = True
    for x, y in DOORWAYS:
        walls[y, x] = False
    return walls


WALLS = _walls()  # bool [y, x]


def _next_cells() -> np.ndarray:
    table = np.zeros((NUM_CELLS, NUM_ACTIONS), np.int32)
    for y in range(SIZE):
        for x in range(SIZE):
            for a, (dx, dy) in enumerate(ACTION_DELTAS):
                nx, ny = x + dx, y + dy
                blocked = not (0 <= nx < SIZE and 0 <= ny < SIZE) or WALLS[ny, nx]
                table[cell(x, y), a] = cell(x, y) if blocked else cell(nx, ny)
    return table


NEXT_CELL = _next_cells()  # int32 [cell, action] -> next cell
START_CELL = cell(*START)
GOAL_CELL = cell(*GOAL)


@functools.lru_cache(maxsize=None)
def _bfs(source: int) -> np.ndarray:
    dist = np.full(NUM_CELLS, -1, np.int64)
    if WALLS.flat[source]:
        dist.setflags(write=False)
        return dist
    dist[source] = 0
    queue = deque([source])
    while queue:
        c = queue.popleft()
        for n in NEXT_CELL[c]:
            if dist[n] < 0:
                dist[n] = dist[c] + 1
                queue.append(int(n))
    dist.setflags(write=False)
    return dist


def distances_from(source: int = START_CELL) -> np.ndarray:
    """BFS steps from cell ``source`` to every cell (int64 [361]; -1 for walls/unreachable).

    Moves are symmetric, so this is also the distance *to* ``source``."""
    return _bfs(int(source))


def shortest_path_length(start: int = START_CELL, goal: int = GOAL_CELL) -> int:
    """Fewest steps from ``start`` to ``goal`` (cells); -1 if unreachable."""
    return int(_bfs(int(start))[int(goal)])


DISTANCE_FROM_START = distances_from(START_CELL)


@struct.dataclass
class FourRoomsParams:
    max_steps_in_episode: jax.Array  # int32 []


@struct.dataclass
class FourRoomsState(EnvState):
    pos: jax.Array  # int32 agent cell
    goal: jax.Array  # int32 goal cell


class FourRooms(StaticIdentity, GoalEnv):
    """RISC's four rooms as a :class:`~envs.reset_free.GoalEnv` (see module docstring)."""

    def _static(self) -> tuple:
        return ()

    def __repr__(self) -> str:
        return "FourRooms()"

    @property
    def name(self) -> str:
        return "earl-four-rooms"

    @property
    def num_actions(self) -> int:
        return NUM_ACTIONS

    @property
    def default_params(self) -> FourRoomsParams:
        return FourRoomsParams(max_steps_in_episode=jnp.asarray(HORIZON, jnp.int32))

    def action_space(self, params: FourRoomsParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(NUM_ACTIONS)

    def observation_space(self, params: FourRoomsParams | None = None) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (2 * NUM_CELLS,), jnp.float32)

    # --- goals ------------------------------------------------------------------------
    def forward_goal(self, key: jax.Array, params: FourRoomsParams) -> jax.Array:
        return jnp.asarray(GOAL_CELL, jnp.int32)

    def start_goal(self, state: FourRoomsState, params: FourRoomsParams) -> jax.Array:
        return state.pos

    def is_success(self, state: FourRoomsState, params: FourRoomsParams) -> jax.Array:
        return state.pos == state.goal

    # --- dynamics -----------------------------------------------------------------------
    def reset_env(self, key: jax.Array, params: FourRoomsParams):
        state = FourRoomsState(
            time=jnp.zeros((), jnp.int32),
            pos=jnp.asarray(START_CELL, jnp.int32),
            goal=self.forward_goal(key, params),
        )
        return self.get_obs(state, params), state

    def transition(self, key: jax.Array, state: FourRoomsState, action, params: FourRoomsParams):
        action = jnp.clip(jnp.asarray(action, jnp.int32), 0, NUM_ACTIONS - 1)
        pos = jnp.asarray(NEXT_CELL)[state.pos, action]
        return state.replace(time=state.time + 1, pos=pos)

    goal_obs_size = NUM_CELLS  # the goal cell's one-hot closes the observation

    def get_obs(self, state: FourRoomsState, params: FourRoomsParams | None = None, key=None) -> jax.Array:
        cells = jnp.arange(NUM_CELLS)
        return jnp.concatenate([cells == state.pos, cells == state.goal]).astype(jnp.float32)


def make_four_rooms() -> tuple[FourRooms, FourRoomsParams]:
    env = FourRooms()
    return env, env.default_params


register("earl-four-rooms", make_four_rooms)

__all__ = [
    "DOORWAYS",
    "DISTANCE_FROM_START",
    "FourRooms",
    "FourRoomsParams",
    "FourRoomsState",
    "GOAL_CELL",
    "NEXT_CELL",
    "START_CELL",
    "WALLS",
    "cell",
    "cell_xy",
    "distances_from",
    "make_four_rooms",
    "shortest_path_length",
]
