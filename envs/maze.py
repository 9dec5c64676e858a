"""Maze for unsupervised environment design (PLR / ACCEL conventions).

The level *is* the params: walls, goal, agent start and direction, active
width/height (padded to the static maximum), and the time limit. Conventions
follow minimax / jaxued (docs/algorithms.md §1.3):

* Positions are ``(x, y)``; ``wall_map[y, x]``. Directions: 0 right (+x),
  1 down (+y), 2 left, 3 up.
* 7 MiniGrid actions: 0 turn left, 1 turn right, 2 forward; 3-6 (pickup, drop,
  toggle, done) do nothing.
* Walls, the grid edge and the goal block movement. Moving forward into the
  goal gives ``1 - 0.9 * (t + 1) / T`` (``t`` = steps taken before this one,
  ``T = max_steps_in_episode``) and terminates; reaching ``T`` truncates.

Observation: flat float32 vector of length ``view_size**2 * 3 + 4``:

* ``obs[:V*V*3].reshape(V, V, 3)`` is the egocentric view. Row ``i`` is
  ``V-1-i`` cells ahead of the agent (row ``V-1`` is the agent's own row),
  column ``j`` is ``j - V//2`` cells to the agent's right. The agent sits at
  ``[V-1, V//2]`` and is not drawn. Channels: 0 wall (cells outside the level
  read as walls), 1 goal, 2 outside the level.
* ``obs[V*V*3:]`` is the one-hot agent direction.

Level tools, all pure and jittable: :meth:`Maze.generate_level` (DR sampler),
:func:`distance_map` / :func:`shortest_path_length` / :func:`is_solvable`
(BFS by relaxation), :func:`mutate_level` (ACCEL edits), plus the host-side
:func:`render_level` / :func:`level_from_string` and the held-out
:data:`NAMED_MAZES`.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.core import EnvState, Environment, StaticIdentity, spaces
from envs.maze_levels import NAMED_LAYOUTS
from envs.registry import register
from envs.task_space import Field, TaskSpace

# (dx, dy) per direction: right, down, left, up.
DIR_TO_VEC = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]], np.int32)
NUM_ACTIONS = 7
ACTION_LEFT, ACTION_RIGHT, ACTION_FORWARD = 0, 1, 2
UNREACHABLE = -1
DEFAULT_MAX_STEPS = 250

NAMED_MAZES = NAMED_LAYOUTS
_AGENT_CHARS = ">v<^"


@struct.dataclass
class MazeParams:
    """One level. Cells with ``x >= width`` or ``y >= height`` are outside it."""

    wall_map: jax.Array  # bool [max_height, max_width]
    goal_pos: jax.Array  # int32 [2] (x, y)
    agent_pos: jax.Array  # int32 [2] (x, y)
    agent_dir: jax.Array  # int32 [] 0 right, 1 down, 2 left, 3 up
    width: jax.Array  # int32 []
    height: jax.Array  # int32 []
    max_steps_in_episode: jax.Array  # int32 []


@struct.dataclass
class MazeState(EnvState):
    agent_pos: jax.Array
    agent_dir: jax.Array


# --- level geometry -----------------------------------------------------------
def _cell_coords(shape: tuple[int, int]) -> tuple[jax.Array, jax.Array]:
    ys, xs = jnp.meshgrid(jnp.arange(shape[0]), jnp.arange(shape[1]), indexing="ij")
    return xs, ys


def _inside_mask(level: MazeParams) -> jax.Array:
    xs, ys = _cell_coords(level.wall_map.shape)
    return (xs < level.width) & (ys < level.height)


def _at(mask_shape: tuple[int, int], pos: jax.Array) -> jax.Array:
    """Bool map that is True only at ``pos`` (x, y)."""
    xs, ys = _cell_coords(mask_shape)
    return (xs == pos[0]) & (ys == pos[1])


def _blocked(level: MazeParams, pos: jax.Array) -> jax.Array:
    """True when ``pos`` is outside the level or a wall."""
    x, y = pos[0], pos[1]
    inside = (x >= 0) & (x < level.width) & (y >= 0) & (y < level.height)
    h, w = level.wall_map.shape
    return ~inside | level.wall_map[jnp.clip(y, 0, h - 1), jnp.clip(x, 0, w - 1)]


def is_valid_level(level: MazeParams) -> jax.Array:
    """Agent and goal inside the level, on free cells, and distinct; direction in 0..3."""
    agent_ok = ~_blocked(level, level.agent_pos)
    goal_ok = ~_blocked(level, level.goal_pos)
    distinct = jnp.any(level.agent_pos != level.goal_pos)
    dir_ok = (level.agent_dir >= 0) & (level.agent_dir < 4)
    h, w = level.wall_map.shape
    size_ok = (level.width >= 1) & (level.width <= w) & (level.height >= 1) & (level.height <= h)
    return agent_ok & goal_ok & distinct & dir_ok & size_ok


# --- shortest paths -------------------------------------------------------------
def distance_map(level: MazeParams, source: jax.Array | None = None) -> jax.Array:
    """BFS distance (4-connected moves) from ``source`` (default: agent) to every cell.

    Computed by relaxation ``d <- min(d, min_neighbour(d) + 1)`` inside a
    ``lax.while_loop`` that stops when nothing changes (at most H*W sweeps),
    so it runs under ``jit``/``vmap``. The goal blocks movement, so it is a
    sink: reachable, but paths do not continue through it. Walls and cells
    outside the level are unreachable. Unreachable cells hold ``UNREACHABLE``.
    """
    source = level.agent_pos if source is None else jnp.asarray(source, jnp.int32)
    shape = level.wall_map.shape
    big = shape[0] * shape[1] + 1
    open_cells = _inside_mask(level) & ~level.wall_map
    is_source = _at(shape, source)
    relays = open_cells & ~_at(shape, level.goal_pos)  # cells a path may pass through
    dist0 = jnp.where(is_source, 0, big).astype(jnp.int32)

    def sweep(carry):
        dist, _, it = carry
        spread = jnp.pad(jnp.where(relays | is_source, dist, big), 1, constant_values=big)
        nearest = jnp.minimum(
            jnp.minimum(spread[:-2, 1:-1], spread[2:, 1:-1]),
            jnp.minimum(spread[1:-1, :-2], spread[1:-1, 2:]),
        )
        new = jnp.where(open_cells, jnp.minimum(dist, nearest + 1), dist)
        return new, jnp.any(new != dist), it + 1

    def not_done(carry):
        _, changed, it = carry
        return changed & (it < big)

    dist, _, _ = jax.lax.while_loop(not_done, sweep, (dist0, jnp.array(True), jnp.array(0)))
    return jnp.where(dist >= big, UNREACHABLE, dist).astype(jnp.int32)


def shortest_path_length(level: MazeParams) -> jax.Array:
    """Fewest forward moves from the agent into the goal (turns not counted); -1 if none."""
    dist = distance_map(level)
    h, w = level.wall_map.shape
    gx, gy = jnp.clip(level.goal_pos[0], 0, w - 1), jnp.clip(level.goal_pos[1], 0, h - 1)
    return jnp.where(is_valid_level(level), dist[gy, gx], UNREACHABLE)


def is_solvable(level: MazeParams) -> jax.Array:
    return shortest_path_length(level) > 0


# --- level generation and mutation -------------------------------------------------
def _pick_cell(key: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Uniform (x, y) among True cells of ``mask``, and whether any exists."""
    logits = jnp.where(mask.ravel(), 0.0, -jnp.inf)
    idx = jax.random.categorical(key, logits)
    w = mask.shape[1]
    return jnp.stack([idx % w, idx // w]).astype(jnp.int32), jnp.any(mask)


def generate_level(
    key: jax.Array,
    n_walls: int = 25,
    max_height: int = 13,
    max_width: int = 13,
    height: Any = None,
    width: Any = None,
    max_steps_in_episode: Any = DEFAULT_MAX_STEPS,
) -> MazeParams:
    """Domain-randomised level: ``n_walls`` cells drawn uniformly with replacement
    inside the ``width x height`` level, then the agent (random direction) and the
    goal on distinct free cells. If walls fill the level, agent and goal cells are
    cleared so the level stays valid.
    """
    height = max_height if height is None else height
    width = max_width if width is None else width
    height, width = jnp.asarray(height, jnp.int32), jnp.asarray(width, jnp.int32)
    k_walls, k_agent, k_dir, k_goal = jax.random.split(key, 4)
    cells = jax.random.randint(k_walls, (n_walls,), 0, width * height)
    wall_map = jnp.zeros((max_height, max_width), bool).at[cells // width, cells % width].set(True)
    level = MazeParams(
        wall_map=wall_map,
        goal_pos=jnp.zeros(2, jnp.int32),
        agent_pos=jnp.zeros(2, jnp.int32),
        agent_dir=jax.random.randint(k_dir, (), 0, 4),
        width=width,
        height=height,
        max_steps_in_episode=jnp.asarray(max_steps_in_episode, jnp.int32),
    )
    inside = _inside_mask(level)
    free = inside & ~wall_map
    agent_pos, _ = _pick_cell(k_agent, jnp.where(jnp.any(free), free, inside))
    not_agent = ~_at(wall_map.shape, agent_pos)
    free_for_goal = free & not_agent
    goal_pos, _ = _pick_cell(k_goal, jnp.where(jnp.any(free_for_goal), free_for_goal, inside & not_agent))
    return clear_start_and_goal(level.replace(agent_pos=agent_pos, goal_pos=goal_pos))


def clear_start_and_goal(level: MazeParams) -> MazeParams:
    """Remove walls under the agent and the goal (repairs teacher proposals)."""
    shape = level.wall_map.shape
    occupied = _at(shape, level.agent_pos) | _at(shape, level.goal_pos)
    return level.replace(wall_map=level.wall_map & ~occupied)


def _edit_once(key: jax.Array, level: MazeParams, move_agent: bool) -> MazeParams:
    k_op, k_flip, k_goal, k_agent = jax.random.split(key, 4)
    shape = level.wall_map.shape
    op = jax.random.randint(k_op, (), 0, 4 if move_agent else 3)
    inside = _inside_mask(level)
    agent_or_goal = _at(shape, level.agent_pos) | _at(shape, level.goal_pos)

    # op 1: flip one in-level cell that holds neither agent nor goal
    cell, any_cell = _pick_cell(k_flip, inside & ~agent_or_goal)
    flip = _at(shape, cell) & any_cell
    flipped = level.replace(wall_map=level.wall_map ^ flip)

    # op 2 / 3: move goal (or agent) to a random free cell; stay put if none
    empty = inside & ~level.wall_map & ~agent_or_goal
    goal_pos, any_goal = _pick_cell(k_goal, empty)
    moved_goal = level.replace(goal_pos=jnp.where(any_goal, goal_pos, level.goal_pos))
    agent_pos, any_agent = _pick_cell(k_agent, empty)
    moved_agent = level.replace(agent_pos=jnp.where(any_agent, agent_pos, level.agent_pos))

    options = [level, flipped, moved_goal] + ([moved_agent] if move_agent else [])
    return jax.tree.map(lambda *xs: jnp.stack(xs)[op], *options)


def mutate_level(key: jax.Array, level: MazeParams, n_edits: Any, move_agent: bool = False) -> MazeParams:
    """ACCEL mutation: ``n_edits`` edits, each uniformly one of

    * no-op,
    * flip the wall state of a uniformly chosen in-level cell that is neither
      agent nor goal,
    * move the goal to a uniformly chosen empty cell,
    * (only with ``move_agent=True``) move the agent to a uniformly chosen empty cell.

    Agent and goal stay distinct, in bounds and on free cells; solvability is
    not preserved (check it with :func:`is_solvable`). ``n_edits`` may be traced.
    """

    def body(i, lvl):
        return _edit_once(jax.random.fold_in(key, i), lvl, move_agent)

    return jax.lax.fori_loop(0, n_edits, body, level)


# --- text I/O (host side) ----------------------------------------------------------
def render_level(level: MazeParams, agent_pos: Any = None, agent_dir: Any = None) -> str:
    """ASCII picture of a level (``#`` wall, ``.`` free, ``G`` goal, arrow = agent).

    ``agent_pos``/``agent_dir`` override the level's start (e.g. a mid-episode state).
    """
    walls = np.asarray(level.wall_map)
    h, w = int(level.height), int(level.width)
    ax, ay = np.asarray(level.agent_pos if agent_pos is None else agent_pos).tolist()
    gx, gy = np.asarray(level.goal_pos).tolist()
    direction = int(level.agent_dir if agent_dir is None else agent_dir)
    rows = []
    for y in range(h):
        row = []
        for x in range(w):
            if (x, y) == (ax, ay):
                row.append(_AGENT_CHARS[direction % 4])
            elif (x, y) == (gx, gy):
                row.append("G")
            else:
                row.append("#" if walls[y, x] else ".")
        rows.append("".join(row))
    return "\n".join(rows)


def level_from_string(
    text: str, max_height: int = 13, max_width: int = 13, max_steps_in_episode: int = DEFAULT_MAX_STEPS
) -> MazeParams:
    """Parse a layout written as :func:`render_level` prints it (padded to the maximum)."""
    rows = [r.strip() for r in text.strip().splitlines() if r.strip()]
    if not rows or len({len(r) for r in rows}) != 1:
        raise ValueError("maze layout must be a non-empty rectangle of characters")
    h, w = len(rows), len(rows[0])
    if h > max_height or w > max_width:
        raise ValueError(f"maze layout is {h}x{w}, larger than the maximum {max_height}x{max_width}")
    bad = sorted({c for r in rows for c in r} - set("#.G" + _AGENT_CHARS))
    if bad:
        raise ValueError(f"maze layout has unknown characters {bad}; use # . G > v < ^")
    agents = [(x, y) for y, r in enumerate(rows) for x, c in enumerate(r) if c in _AGENT_CHARS]
    goals = [(x, y) for y, r in enumerate(rows) for x, c in enumerate(r) if c == "G"]
    if len(agents) != 1 or len(goals) != 1:
        raise ValueError(f"maze layout needs exactly one agent and one goal, got {len(agents)} and {len(goals)}")
    walls = np.zeros((max_height, max_width), bool)
    walls[:h, :w] = np.array([[c == "#" for c in r] for r in rows])
    (ax, ay), (gx, gy) = agents[0], goals[0]
    return MazeParams(
        wall_map=jnp.asarray(walls),
        goal_pos=jnp.array([gx, gy], jnp.int32),
        agent_pos=jnp.array([ax, ay], jnp.int32),
        agent_dir=jnp.asarray(_AGENT_CHARS.index(rows[ay][ax]), jnp.int32),
        width=jnp.asarray(w, jnp.int32),
        height=jnp.asarray(h, jnp.int32),
        max_steps_in_episode=jnp.asarray(max_steps_in_episode, jnp.int32),
    )


def named_maze_params(name: str, max_height: int = 13, max_width: int = 13) -> MazeParams:
    """The held-out level ``name`` (one of :data:`NAMED_MAZES`)."""
    if name not in NAMED_MAZES:
        raise ValueError(f"unknown maze {name!r}; choose one of {', '.join(NAMED_MAZES)}")
    return level_from_string(NAMED_MAZES[name], max_height, max_width)


# --- the environment ------------------------------------------------------------------
class MazeTaskSpace(TaskSpace):
    """TaskSpace whose membership also requires a valid level (see :func:`is_valid_level`)."""

    def contains(self, params: Any) -> jax.Array:
        return super().contains(params) & is_valid_level(params)

    def check(self, params: Any) -> None:
        super().check(params)
        if not bool(is_valid_level(params)):
            raise ValueError(
                f"{self.name}: invalid level (agent and goal must be distinct free cells inside the level)"
            )


class Maze(StaticIdentity, Environment):
    """Partially observable navigation maze; ``params`` is the level."""

    def __init__(self, max_height: int = 13, max_width: int = 13, view_size: int = 5, n_walls: int = 25):
        super().__init__()
        for arg, value in (("max_height", max_height), ("max_width", max_width)):
            if int(value) != value or value < 2:
                raise ValueError(f"Maze: {arg} must be an integer >= 2, got {value!r}")
        if int(view_size) != view_size or view_size < 1 or view_size % 2 == 0:
            raise ValueError(f"Maze: view_size must be a positive odd integer, got {view_size!r}")
        if int(n_walls) != n_walls or n_walls < 0:
            raise ValueError(f"Maze: n_walls must be a non-negative integer, got {n_walls!r}")
        self.max_height, self.max_width = int(max_height), int(max_width)
        self.view_size, self.n_walls = int(view_size), int(n_walls)
        with jax.ensure_compile_time_eval():  # concrete even when built inside jit
            self._default = self.generate_level(jax.random.PRNGKey(0))

    # static settings identify the env (jit uses ``self`` as a static argument)
    def _static(self) -> tuple:
        return (type(self), self.max_height, self.max_width, self.view_size, self.n_walls)



    @property
    def name(self) -> str:
        return "Maze"

    @property
    def default_params(self) -> MazeParams:
        return self._default

    @property
    def num_actions(self) -> int:
        return NUM_ACTIONS

    @property
    def obs_size(self) -> int:
        return self.view_size * self.view_size * 3 + 4

    def action_space(self, params: MazeParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(NUM_ACTIONS)

    def observation_space(self, params: MazeParams | None = None) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (self.obs_size,), jnp.float32)

    def generate_level(self, key: jax.Array, params: MazeParams | None = None) -> MazeParams:
        """DR sampler; size and time limit come from ``params`` when given."""
        if params is None:
            return generate_level(key, self.n_walls, self.max_height, self.max_width)
        return generate_level(
            key, self.n_walls, self.max_height, self.max_width, params.height, params.width, params.max_steps_in_episode
        )

    @property
    def task_space(self) -> MazeTaskSpace:
        hi_pos = np.array([self.max_width - 1, self.max_height - 1])
        fields = (
            Field("wall_map", shape=(self.max_height, self.max_width), kind="bool"),
            Field("goal_pos", 0, hi_pos, (2,), "int"),
            Field("agent_pos", 0, hi_pos, (2,), "int"),
            Field("agent_dir", 0, 3, (), "int"),
        )
        return MazeTaskSpace(
            self._default,
            fields,
            sampler=functools.partial(self.generate_level, params=self._default),
            derive=clear_start_and_goal,
            name="maze",
        )

    def reset_env(self, key: jax.Array, params: MazeParams) -> tuple[jax.Array, MazeState]:
        state = MazeState(
            time=jnp.zeros((), jnp.int32),
            agent_pos=jnp.asarray(params.agent_pos, jnp.int32),
            agent_dir=jnp.asarray(params.agent_dir, jnp.int32),
        )
        return self.get_obs(state, params), state

    def step_env(self, key: jax.Array, state: MazeState, action: Any, params: MazeParams):
        action = jnp.asarray(action, jnp.int32)
        forward = action == ACTION_FORWARD
        target = state.agent_pos + forward * jnp.asarray(DIR_TO_VEC)[state.agent_dir]
        hits_goal = forward & jnp.all(target == params.goal_pos)
        stay = _blocked(params, target) | hits_goal
        agent_pos = jnp.where(stay, state.agent_pos, target)
        turn = (action == ACTION_RIGHT).astype(jnp.int32) - (action == ACTION_LEFT).astype(jnp.int32)
        agent_dir = (state.agent_dir + turn) % 4
        horizon = jnp.asarray(params.max_steps_in_episode, jnp.float32)
        reward = jnp.where(hits_goal, 1.0 - 0.9 * (state.time + 1).astype(jnp.float32) / horizon, 0.0)
        new_state = MazeState(time=state.time + 1, agent_pos=agent_pos, agent_dir=agent_dir)
        obs = self.get_obs(new_state, params)
        return obs, new_state, reward.astype(jnp.float32), hits_goal, {"success": hits_goal}

    def get_obs(self, state: MazeState, params: MazeParams, key: jax.Array | None = None) -> jax.Array:
        v = self.view_size
        dirs = jnp.asarray(DIR_TO_VEC)
        ahead, right = dirs[state.agent_dir], dirs[(state.agent_dir + 1) % 4]
        rows, cols = jnp.meshgrid(jnp.arange(v), jnp.arange(v), indexing="ij")
        n_ahead, n_right = (v - 1 - rows)[..., None], (cols - v // 2)[..., None]
        cells = state.agent_pos + n_ahead * ahead + n_right * right  # [V, V, 2] as (x, y)
        x, y = cells[..., 0], cells[..., 1]
        outside = (x < 0) | (x >= params.width) | (y < 0) | (y >= params.height)
        wall = params.wall_map[jnp.clip(y, 0, self.max_height - 1), jnp.clip(x, 0, self.max_width - 1)]
        goal = ~outside & (x == params.goal_pos[0]) & (y == params.goal_pos[1])
        view = jnp.stack([wall | outside, goal, outside], axis=-1).astype(jnp.float32)
        return jnp.concatenate([view.ravel(), jax.nn.one_hot(state.agent_dir, 4, dtype=jnp.float32)])


# --- registry ----------------------------------------------------------------------
def _make_maze(max_height: int = 13, max_width: int = 13, view_size: int = 5, n_walls: int = 25):
    env = Maze(max_height, max_width, view_size, n_walls)
    return env, env.default_params


def _make_named_maze(name: str, max_height: int = 13, max_width: int = 13, view_size: int = 5, n_walls: int = 25):
    env = Maze(max_height, max_width, view_size, n_walls)
    return env, named_maze_params(name, max_height, max_width)


register("maze", _make_maze)
for _name in NAMED_MAZES:
    register(f"maze-{_name}", functools.partial(_make_named_maze, _name))
