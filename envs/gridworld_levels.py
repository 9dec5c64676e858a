"""GridWorld tasks: the params dataclass, the named LPG levels and the procedural distributions.

Cells are flat indices with the *active* side as stride: cell ``row * grid_size + col``
(row 0 at the top). Levels are therefore independent of the padding: ``walls`` has
``max_grid_size**2`` entries, but only the first ``grid_size**2`` are ever used.

Named levels (LPG, *Discovering Reinforcement Learning Algorithms*, Table of
environments; as re-implemented in EmptyJackson/groove). Type params are
(reward, p_terminate, p_respawn). The papers give no cells, so the start and object
cells below are our own choice, written as (row, col):

============  ====  =====  ===========================================  ==========================
level         side  steps  start; objects                               walls
============  ====  =====  ===========================================  ==========================
dense         11    500    (5,5); A (1,1) (9,9), B (1,9), C (9,1)       none
sparse        13    50     (1,1); A (11,11), B (11,1)                   none
long          11    1000   (5,5); A (0,0) (10,10), B (3,3) (7,7)        none
longer        9     2000   (4,1); A (0,8) (8,8), B (4,7) (2,6) (6,6)    column 4 except rows 1, 7
long_dense    11    2000   (2,2); A (0,0) (0,10) (10,0) (10,10)         column 5 except rows 0, 7;
                                                                        row 4 except columns 2, 8
============  ====  =====  ===========================================  ==========================

``longer`` uses 2A + 3B like GROOVE (the LPG original had 2A + 5B). The ``rand_*``
levels respawn objects at random free cells (and place them randomly at reset), so
only their start cell matters: the grid centre. ``rand_small`` has walls at cells 9
and 25, i.e. (1,2) and (3,4) on its 7x7 grid.
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.task_space import Field

# Padded defaults shared by every registered gridworld name, so one compiled
# program serves all of them (13 = largest named side, 5 = most objects/types).
MAX_GRID_SIZE = 13
MAX_N_OBJS = 5
MAX_N_OBJ_TYPES = 5
MAX_EPISODE_STEPS = 2000  # longest named level; upper bound of the task box


@struct.dataclass
class GridWorldParams:
    """One gridworld task. Per-object arrays have ``max_n_objs`` slots, per-type ones ``max_n_obj_types``."""

    max_steps_in_episode: jax.Array  # int32 scalar: time limit (truncation)
    grid_size: jax.Array  # int32 scalar: active side G
    walls: jax.Array  # bool (max_grid_size**2,): wall cells (index row*G + col)
    start_pos: jax.Array  # int32 scalar: agent start cell
    n_objs: jax.Array  # int32 scalar: slots [0, n_objs) are in use
    obj_ids: jax.Array  # int32 (max_n_objs,): type per slot, -1 = unused
    static_obj_poss: jax.Array  # int32 (max_n_objs,): object cells (tabular: also the respawn cells)
    obj_rewards: jax.Array  # float32 (max_n_obj_types,)
    obj_p_terminate: jax.Array  # float32 (max_n_obj_types,): P(episode ends | collected)
    obj_p_respawn: jax.Array  # float32 (max_n_obj_types,): per-step P(absent object reappears)


@dataclasses.dataclass(frozen=True)
class ObjType:
    reward: float
    p_terminate: float
    p_respawn: float


@dataclasses.dataclass(frozen=True)
class Level:
    """A named level, in plain Python (cells as (row, col))."""

    grid_size: int
    max_steps: int
    types: tuple[ObjType, ...]
    objects: tuple[tuple[int, tuple[int, int]], ...]  # (type id, (row, col)) per object
    start: tuple[int, int]
    walls: tuple[tuple[int, int], ...] = ()
    tabular: bool = True


def _column_wall(side: int, col: int, gap_rows: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    return tuple((r, col) for r in range(side) if r not in gap_rows)


def _row_wall(side: int, row: int, gap_cols: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    return tuple((row, c) for c in range(side) if c not in gap_cols)


_DENSE_TYPES = (ObjType(1.0, 0.0, 0.05), ObjType(-1.0, 0.5, 0.1), ObjType(-1.0, 0.0, 0.5))
_LONG_TYPES = (ObjType(1.0, 0.0, 0.01), ObjType(-1.0, 0.5, 1.0))
_DENSE_OBJS = ((0, (1, 1)), (0, (9, 9)), (1, (1, 9)), (2, (9, 1)))
_LONG_OBJS = ((0, (0, 0)), (0, (10, 10)), (1, (3, 3)), (1, (7, 7)))

LEVELS: MappingProxyType[str, Level] = MappingProxyType(
    {
        "dense": Level(11, 500, _DENSE_TYPES, _DENSE_OBJS, start=(5, 5)),
        "sparse": Level(
            13, 50, (ObjType(1.0, 1.0, 0.0), ObjType(-1.0, 1.0, 0.0)), ((0, (11, 11)), (1, (11, 1))), start=(1, 1)
        ),
        "long": Level(11, 1000, _LONG_TYPES, _LONG_OBJS, start=(5, 5)),
        "longer": Level(
            9,
            2000,
            (ObjType(1.0, 0.1, 0.01), ObjType(-1.0, 0.8, 1.0)),
            ((0, (0, 8)), (0, (8, 8)), (1, (4, 7)), (1, (2, 6)), (1, (6, 6))),
            start=(4, 1),
            walls=_column_wall(9, 4, (1, 7)),
        ),
        "long_dense": Level(
            11,
            2000,
            (ObjType(1.0, 0.0, 0.005),),
            ((0, (0, 0)), (0, (0, 10)), (0, (10, 0)), (0, (10, 10))),
            start=(2, 2),
            walls=_column_wall(11, 5, (0, 7)) + _row_wall(11, 4, (2, 8)),
        ),
        "rand_dense": Level(11, 500, _DENSE_TYPES, _DENSE_OBJS, start=(5, 5), tabular=False),
        "rand_long": Level(11, 1000, _LONG_TYPES, _LONG_OBJS, start=(5, 5), tabular=False),
        "rand_small": Level(
            7,
            500,
            (ObjType(1.0, 0.0, 0.05), ObjType(-1.0, 0.5, 0.1)),
            ((0, (0, 0)), (0, (6, 6)), (1, (0, 6)), (1, (6, 0))),
            start=(3, 3),
            walls=((1, 2), (3, 4)),
            tabular=False,
        ),
        "rand_sparse": Level(
            7,
            50,
            (ObjType(1.0, 1.0, 1.0), ObjType(-1.0, 1.0, 1.0)),
            ((0, (0, 0)), (1, (6, 6)), (1, (0, 6))),
            start=(3, 3),
            tabular=False,
        ),
        "rand_very_dense": Level(11, 2000, (ObjType(1.0, 0.0, 1.0),), ((0, (0, 0)),), start=(5, 5), tabular=False),
    }
)


@dataclasses.dataclass(frozen=True)
class Distribution:
    """A procedural level distribution (GROOVE's small/medium/large/all/rand_all)."""

    grid_sizes: tuple[int, int]  # inclusive
    n_objs: tuple[int, int]  # inclusive
    n_types: int  # object i has type i; types >= n_types are zero-padded
    n_walls: int  # wall candidates drawn without replacement from wall_side**2 cells
    wall_side: int
    steps: tuple[int, int]  # log-uniform integer, inclusive
    tabular: bool = True


DISTRIBUTIONS: MappingProxyType[str, Distribution] = MappingProxyType(
    {
        "small": Distribution((4, 6), (1, 3), 3, 7, 6, (20, 100)),
        "medium": Distribution((6, 8), (2, 4), 4, 10, 8, (100, 250)),
        "large": Distribution((8, 10), (2, 5), 5, 15, 10, (250, 750)),
        "all": Distribution((4, 10), (1, 5), 5, 15, 10, (20, 750)),
        "rand_all": Distribution((4, 10), (1, 5), 5, 15, 10, (20, 750), tabular=False),
    }
)


def _check_sizes(what: str, side: int, n_objs: int, n_types: int, max_grid_size: int, max_n_objs: int,
                 max_n_obj_types: int) -> None:
    if side > max_grid_size:
        raise ValueError(f"{what} needs max_grid_size >= {side}, got {max_grid_size}")
    if n_objs > max_n_objs:
        raise ValueError(f"{what} needs max_n_objs >= {n_objs}, got {max_n_objs}")
    if n_types > max_n_obj_types:
        raise ValueError(f"{what} needs max_n_obj_types >= {n_types}, got {max_n_obj_types}")


def level_params(
    name: str,
    max_grid_size: int = MAX_GRID_SIZE,
    max_n_objs: int = MAX_N_OBJS,
    max_n_obj_types: int = MAX_N_OBJ_TYPES,
) -> GridWorldParams:
    """Padded params of the named level ``name`` (a key of :data:`LEVELS`)."""
    if name not in LEVELS:
        raise ValueError(f"unknown gridworld level {name!r}; known: {', '.join(LEVELS)}")
    return params_from_level(LEVELS[name], max_grid_size, max_n_objs, max_n_obj_types, what=f"level {name!r}")


def params_from_level(
    lvl: Level,
    max_grid_size: int = MAX_GRID_SIZE,
    max_n_objs: int = MAX_N_OBJS,
    max_n_obj_types: int = MAX_N_OBJ_TYPES,
    what: str = "level",
) -> GridWorldParams:
    """Padded params of a :class:`Level` (named or hand-made)."""
    side = lvl.grid_size
    for rc in (lvl.start, *lvl.walls, *(c for _, c in lvl.objects)):
        if not (0 <= rc[0] < side and 0 <= rc[1] < side):
            raise ValueError(f"{what}: cell {rc} is outside the {side}x{side} grid")
    if any(not 0 <= t < len(lvl.types) for t, _ in lvl.objects):
        raise ValueError(f"{what}: an object's type id is not in 0..{len(lvl.types) - 1}")
    _check_sizes(what, lvl.grid_size, len(lvl.objects), len(lvl.types), max_grid_size, max_n_objs,
                 max_n_obj_types)

    def cell(rc: tuple[int, int]) -> int:
        return rc[0] * side + rc[1]

    walls = np.zeros(max_grid_size**2, bool)
    walls[[cell(rc) for rc in lvl.walls]] = True
    n = len(lvl.objects)
    obj_ids = np.full(max_n_objs, -1, np.int32)
    obj_ids[:n] = [t for t, _ in lvl.objects]
    poss = np.zeros(max_n_objs, np.int32)
    poss[:n] = [cell(rc) for _, rc in lvl.objects]

    def per_type(attr: str) -> jax.Array:
        values = np.zeros(max_n_obj_types, np.float32)
        values[: len(lvl.types)] = [getattr(t, attr) for t in lvl.types]
        return jnp.asarray(values)

    return GridWorldParams(
        max_steps_in_episode=jnp.int32(lvl.max_steps),
        grid_size=jnp.int32(side),
        walls=jnp.asarray(walls),
        start_pos=jnp.int32(cell(lvl.start)),
        n_objs=jnp.int32(n),
        obj_ids=jnp.asarray(obj_ids),
        static_obj_poss=jnp.asarray(poss),
        obj_rewards=per_type("reward"),
        obj_p_terminate=per_type("p_terminate"),
        obj_p_respawn=per_type("p_respawn"),
    )


def task_fields(
    max_grid_size: int,
    max_n_objs: int,
    max_n_obj_types: int,
    distribution: Distribution | None = None,
) -> tuple[Field, ...]:
    """Free fields of a gridworld task; a distribution tightens its size, count and length ranges."""
    cells = max_grid_size**2
    sides = (2, max_grid_size) if distribution is None else distribution.grid_sizes
    counts = (0, max_n_objs) if distribution is None else distribution.n_objs
    steps = (1, MAX_EPISODE_STEPS) if distribution is None else distribution.steps
    return (
        Field("max_steps_in_episode", steps[0], steps[1], kind="int"),
        Field("grid_size", sides[0], sides[1], kind="int"),
        Field("walls", shape=(cells,), kind="bool"),
        Field("start_pos", 0, cells - 1, kind="int"),
        Field("n_objs", counts[0], counts[1], kind="int"),
        Field("obj_ids", -1, max_n_obj_types - 1, shape=(max_n_objs,), kind="int"),
        Field("static_obj_poss", 0, cells - 1, shape=(max_n_objs,), kind="int"),
        Field("obj_rewards", -1.0, 1.0, shape=(max_n_obj_types,)),
        Field("obj_p_terminate", 0.0, 1.0, shape=(max_n_obj_types,)),
        Field("obj_p_respawn", 0.0, 1.0, shape=(max_n_obj_types,)),
    )


def canonicalize(params: GridWorldParams) -> GridWorldParams:
    """Unique form of a task (jittable): cells inside the active grid, no wall under
    the start, unused slots with id -1 at cell 0. Named levels and samples are fixed points."""
    n_cells = params.grid_size * params.grid_size
    cells = jnp.arange(params.walls.shape[0])
    start = jnp.minimum(params.start_pos, n_cells - 1)
    used = jnp.arange(params.obj_ids.shape[0]) < params.n_objs
    return params.replace(
        start_pos=start,
        walls=params.walls & (cells < n_cells) & (cells != start),
        obj_ids=jnp.where(used, params.obj_ids, -1),
        static_obj_poss=jnp.where(used, jnp.minimum(params.static_obj_poss, n_cells - 1), 0),
    )


def sample_distribution(
    key: jax.Array,
    dist: Distribution,
    max_grid_size: int,
    max_n_objs: int,
    max_n_obj_types: int,
) -> GridWorldParams:
    """One procedural level (jittable, vmappable over keys).

    Walls: ``n_walls`` distinct candidates from the first ``wall_side**2`` cells, keeping
    those inside the active grid, at most ``G**2 - n_objs - 1`` of them so that start and
    objects always fit. Start and objects go on distinct free cells; object i has type i.
    Type 0 has reward U[0,1] (so some object is rewarding), the others U[-1,1];
    p_terminate ~ logU[1e-2,1], p_respawn ~ logU[1e-3,1e-1]; episode length log-uniform int.
    """
    _check_sizes("distribution", dist.grid_sizes[1], dist.n_objs[1], dist.n_types, max_grid_size, max_n_objs,
                 max_n_obj_types)
    if dist.wall_side > max_grid_size:
        raise ValueError(
            f"distribution draws walls on a {dist.wall_side}-side grid but max_grid_size is {max_grid_size}"
        )
    # one draw, sliced, keeps this cheap to compile: [side, n, steps, 3 x per type, walls, cells]
    n_types, n_wall_cells, n_cells_max = dist.n_types, dist.wall_side**2, max_grid_size**2
    u = jax.random.uniform(key, (3 + 3 * n_types + n_wall_cells + n_cells_max,))
    u_types = u[3 : 3 + 3 * n_types].reshape(3, n_types)
    u_walls, u_cells = u[3 + 3 * n_types : 3 + 3 * n_types + n_wall_cells], u[3 + 3 * n_types + n_wall_cells :]

    def uniform_int(x: jax.Array, lo: int, hi: int) -> jax.Array:
        return jnp.minimum(lo + jnp.floor(x * (hi - lo + 1)), hi).astype(jnp.int32)

    def log_uniform(x: jax.Array, lo: float, hi: float) -> jax.Array:
        return jnp.exp(np.log(lo) + x * (np.log(hi) - np.log(lo))).astype(jnp.float32)

    side = uniform_int(u[0], *dist.grid_sizes)
    n_objs = uniform_int(u[1], *dist.n_objs)
    # log-uniform integer: floor over [lo, hi + 1) gives each integer its share (as envs.Field)
    steps = jnp.minimum(jnp.floor(log_uniform(u[2], dist.steps[0], dist.steps[1] + 1)), dist.steps[1])
    steps = steps.astype(jnp.int32)

    low = jnp.where(jnp.arange(n_types) == 0, 0.0, -1.0)  # first type is rewarding
    rewards = low + u_types[0] * (1.0 - low)
    p_term = log_uniform(u_types[1], 1e-2, 1.0)
    p_resp = log_uniform(u_types[2], 1e-3, 1e-1)

    def padded(x: jax.Array) -> jax.Array:
        return jnp.concatenate([x, jnp.zeros((max_n_obj_types - n_types,), jnp.float32)])

    n_cells = side * side
    # n_walls distinct candidates in random order (top-k of random priorities)
    candidates = jax.lax.top_k(u_walls, dist.n_walls)[1]
    inside = candidates < n_cells
    keep = inside & (jnp.cumsum(inside) <= n_cells - n_objs - 1)
    walls = jnp.zeros(n_cells_max, bool).at[candidates].set(keep)

    free = (jnp.arange(n_cells_max) < n_cells) & ~walls
    chosen = jax.lax.top_k(u_cells + free.astype(jnp.float32), max_n_objs + 1)[1].astype(jnp.int32)
    slots = jnp.arange(max_n_objs)
    used = slots < n_objs
    return GridWorldParams(
        max_steps_in_episode=steps,
        grid_size=side,
        walls=walls,
        start_pos=chosen[0],
        n_objs=n_objs,
        obj_ids=jnp.where(used, jnp.minimum(slots, n_types - 1), -1).astype(jnp.int32),
        static_obj_poss=jnp.where(used, chosen[1:], 0),
        obj_rewards=padded(rewards),
        obj_p_terminate=padded(p_term),
        obj_p_respawn=padded(p_resp),
    )


def place_sequentially(uniforms: jax.Array, free: jax.Array, place: jax.Array) -> jax.Array:
    """Distinct uniformly random free cells for the slots with ``place[i]`` (one uniform each).

    Slot i takes the ``floor(u_i * n_left)``-th free cell among those not taken by earlier
    slots. The rank is mapped past earlier ranks by the fixed point ``r = r0 + #{earlier <= r}``
    (at most i iterations), so only one prefix count over the grid is needed: cheaper per
    step than a random number per cell (and 2x cheaper on CPU than hashed priorities with
    a max per slot). Slots with ``place[i] = False`` get an arbitrary cell and take
    nothing; if no free cell is left the chosen cell is 0.
    """
    count = _prefix_count(free)
    n_free = count[-1]
    never = jnp.int32(free.shape[0])  # rank no cell reaches: a slot that takes nothing
    ranks: list[jax.Array] = []
    for i in range(uniforms.shape[0]):  # static, max_n_objs iterations
        n_left = jnp.maximum(n_free - jnp.sum(place[:i]), 0)
        r0 = jnp.floor(uniforms[i] * n_left).astype(jnp.int32)
        rank = r0
        if ranks:
            earlier = jnp.stack(ranks)
            for _ in range(i):
                rank = r0 + jnp.sum(earlier <= rank).astype(jnp.int32)
        ranks.append(jnp.where(place[i], rank, never))
    # count is non-decreasing: the first cell with count > rank is #{cells with count <= rank}
    chosen = jnp.sum(count[None, :] <= jnp.stack(ranks)[:, None], axis=1, dtype=jnp.int32)
    return jnp.where(chosen < free.shape[0], chosen, 0)


def _prefix_count(free: jax.Array) -> jax.Array:
    """``cumsum(free)`` for a square number of cells, computed on the ``side x side`` view.

    XLA on CPU lowers a cumsum to a windowed reduction that is quadratic in the length
    (~28k adds for 169 cells); two cumsums of length ``side`` cost ~2k.
    """
    n = free.shape[0]
    side = int(round(n**0.5))
    if side * side != n:
        return jnp.cumsum(free.astype(jnp.int32))
    grid = free.reshape(side, side).astype(jnp.int32)
    within = jnp.cumsum(grid, axis=1)
    before_row = jnp.cumsum(within[:, -1]) - within[:, -1]
    return (within + before_row[:, None]).reshape(n)
