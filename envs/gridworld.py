"""GridWorld: the LPG / GROOVE grid-world family, padded so one compiled program serves every level.

The agent walks on a ``G x G`` grid (5 actions: up, down, left, right, no-op; walls and
the edge block moves). Objects have a type; stepping onto an existing object gives the
type's reward, removes the object and ends the episode with the type's termination
probability. Each absent object reappears with its type's respawn probability per step
(an object collected in a step cannot reappear in that same step). Tabular variants
respawn objects at their fixed cells; the random variant (``tabular=False``) places
objects at random free cells at reset and on every respawn.

Step order (as in GROOVE): move, collect at the new cell, draw termination, draw
respawns, advance time. ``terminated`` is the stochastic early termination only; the
time limit ``time >= max_steps_in_episode`` is reported as truncation.

Observations (float32, last entry ``time * 0.001``):

* tabular: one-hot of ``cell + max_grid_size**2 * existence_bitmask`` (bit i = slot i)
  over ``max_grid_size**2 * 2**max_n_objs`` entries;
* random: one-hot agent cell, then one occupancy map per object type.

Levels and distributions live in :mod:`envs.gridworld_levels`; exact optimal returns
in :mod:`envs.gridworld_dp`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import spaces

from envs.core import Environment, StaticIdentity
from envs.gridworld_levels import (
    DISTRIBUTIONS,
    LEVELS,
    MAX_GRID_SIZE,
    MAX_N_OBJ_TYPES,
    MAX_N_OBJS,
    Distribution,
    GridWorldParams,
    Level,
    ObjType,
    canonicalize,
    level_params,
    params_from_level,
    place_sequentially,
    sample_distribution,
    task_fields,
)
from envs.registry import register
from envs.task_space import TaskSpace

NUM_ACTIONS = 5
# (row, col) change per action: up, down, left, right, no-op
_ACTION_DELTAS = jnp.array([[-1, 0], [1, 0], [0, -1], [0, 1], [0, 0]], jnp.int32)


@struct.dataclass
class GridWorldState:
    time: jax.Array  # int32
    pos: jax.Array  # int32 agent cell
    obj_poss: jax.Array  # int32 (max_n_objs,) current object cells
    obj_exists: jax.Array  # bool (max_n_objs,)


def next_cell(pos: jax.Array, action: jax.Array, params: GridWorldParams) -> jax.Array:
    """Cell after ``action``: the grid edge and walls block the move."""
    side = params.grid_size
    delta = _ACTION_DELTAS[jnp.clip(action, 0, NUM_ACTIONS - 1)]
    row = jnp.clip(pos // side + delta[0], 0, side - 1)
    col = jnp.clip(pos % side + delta[1], 0, side - 1)
    target = row * side + col
    return jnp.where(params.walls[target], pos, target).astype(jnp.int32)


def active_objects(params: GridWorldParams) -> jax.Array:
    """Bool per slot: the slot holds an object of this level."""
    slots = jnp.arange(params.obj_ids.shape[0])
    return (slots < params.n_objs) & (params.obj_ids >= 0)


def per_object(values: jax.Array, params: GridWorldParams) -> jax.Array:
    """Per-type values gathered per slot (0 for unused slots)."""
    return jnp.where(active_objects(params), values[jnp.maximum(params.obj_ids, 0)], 0.0)


class GridWorld(StaticIdentity, Environment):
    """LPG grid-world. Static (hashable) settings fix all shapes; the level is ``params``.

    Args:
        max_grid_size, max_n_objs, max_n_obj_types: padded maxima.
        tabular: fixed object cells and one-hot (cell x existence) observations; else
            random respawn and occupancy-map observations.
        level: named level (see :data:`LEVELS`) or distribution (see
            :data:`DISTRIBUTIONS`) giving ``default_params`` and ``task_space``.
            It is not part of the static identity: envs differing only in ``level``
            compare equal and share compiled code (always pass ``params``).
    """

    def __init__(
        self,
        max_grid_size: int = MAX_GRID_SIZE,
        max_n_objs: int = MAX_N_OBJS,
        max_n_obj_types: int = MAX_N_OBJ_TYPES,
        tabular: bool = True,
        level: str = "dense",
    ):
        super().__init__()
        for arg, value in (("max_grid_size", max_grid_size), ("max_n_objs", max_n_objs),
                           ("max_n_obj_types", max_n_obj_types)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"GridWorld: {arg} must be a positive int, got {value!r}")
        if tabular and max_n_objs > 10:
            raise ValueError(f"GridWorld: tabular observations need max_n_objs <= 10, got {max_n_objs}")
        if level not in LEVELS and level not in DISTRIBUTIONS:
            raise ValueError(f"GridWorld: unknown level {level!r}; known: {', '.join([*LEVELS, *DISTRIBUTIONS])}")
        self.max_grid_size = max_grid_size
        self.max_n_objs = max_n_objs
        self.max_n_obj_types = max_n_obj_types
        self.tabular = bool(tabular)
        self.level = level
        self._default = self._make_default()  # validates sizes against the level now

    # --- identity: only the static shape settings --------------------------
    def _static(self) -> tuple:
        return (self.max_grid_size, self.max_n_objs, self.max_n_obj_types, self.tabular)



    def __repr__(self) -> str:
        return (f"GridWorld(max_grid_size={self.max_grid_size}, max_n_objs={self.max_n_objs}, "
                f"max_n_obj_types={self.max_n_obj_types}, tabular={self.tabular}, level={self.level!r})")

    # --- gymnax API ----------------------------------------------------------
    @property
    def name(self) -> str:
        return f"gridworld-{self.level}"

    @property
    def num_actions(self) -> int:
        return NUM_ACTIONS

    @property
    def num_cells(self) -> int:
        return self.max_grid_size**2

    @property
    def obs_size(self) -> int:
        if self.tabular:
            return self.num_cells * 2**self.max_n_objs + 1
        return self.num_cells * (self.max_n_obj_types + 1) + 1

    @property
    def default_params(self) -> GridWorldParams:
        return self._default

    def step(self, key, state, action, params=None):
        # Resolve the default outside gymnax's jit: equal envs of different levels share its cache.
        return super().step(key, state, action, self._default if params is None else params)

    def reset(self, key, params=None):
        return super().reset(key, self._default if params is None else params)

    def action_space(self, params=None) -> spaces.Discrete:
        return spaces.Discrete(NUM_ACTIONS)

    def observation_space(self, params: GridWorldParams | None = None) -> spaces.Box:
        params = self._default if params is None else params
        # the time entry reaches max_steps * 0.001 (in final observations); max() admits a task batch
        high = jnp.ones(self.obs_size, jnp.float32).at[-1].set(jnp.max(params.max_steps_in_episode) * 0.001)
        return spaces.Box(0.0, high, (self.obs_size,), jnp.float32)

    @functools.cached_property
    def task_space(self) -> TaskSpace:
        dist = DISTRIBUTIONS.get(self.level)
        sampler = None
        if dist is not None:
            sampler = self._sampler(dist)
        fields = task_fields(self.max_grid_size, self.max_n_objs, self.max_n_obj_types, dist)
        return TaskSpace(self._default, fields, sampler=sampler, derive=canonicalize, name=self.name)

    def reset_env(self, key: jax.Array, params: GridWorldParams):
        active = active_objects(params)
        if self.tabular:
            obj_poss = params.static_obj_poss
        else:
            cells = jnp.arange(self.num_cells)
            free = self._open_cells(params) & (cells != params.start_pos)
            uniforms = jax.random.uniform(key, (self.max_n_objs,))
            obj_poss = place_sequentially(uniforms, free, jnp.ones(self.max_n_objs, bool))
        state = GridWorldState(
            time=jnp.int32(0),
            pos=params.start_pos.astype(jnp.int32),
            obj_poss=obj_poss.astype(jnp.int32),
            obj_exists=active,
        )
        return self.get_obs(state, params), state

    def step_env(self, key: jax.Array, state: GridWorldState, action: jax.Array, params: GridWorldParams):
        # one draw for everything: [termination, respawn per slot, respawn cell per slot]
        n = self.max_n_objs
        uniforms = jax.random.uniform(key, (1 + n + (0 if self.tabular else n),))
        pos = next_cell(state.pos, action, params)
        collected = state.obj_exists & (state.obj_poss == pos)
        reward = jnp.sum(jnp.where(collected, per_object(params.obj_rewards, params), 0.0))
        p_term = jnp.clip(jnp.sum(jnp.where(collected, per_object(params.obj_p_terminate, params), 0.0)), 0.0, 1.0)
        terminated = uniforms[0] < p_term

        # only objects absent before this step may reappear
        respawn = ~state.obj_exists & (uniforms[1 : 1 + n] < per_object(params.obj_p_respawn, params))
        kept = state.obj_exists & ~collected
        obj_poss = state.obj_poss
        if not self.tabular:
            cells = jnp.arange(self.num_cells)
            # compares instead of scatters: scatters are slow serial loops on CPU
            occupied = jnp.any((cells[:, None] == state.obj_poss) & kept, axis=1)
            free = self._open_cells(params) & (cells != pos) & ~occupied
            obj_poss = jnp.where(respawn, place_sequentially(uniforms[1 + n :], free, respawn), obj_poss)
        new_state = GridWorldState(
            time=state.time + 1,
            pos=pos,
            obj_poss=obj_poss,
            obj_exists=(kept | respawn) & active_objects(params),
        )
        return self.get_obs(new_state, params), new_state, reward.astype(jnp.float32), terminated, {}

    def get_obs(self, state: GridWorldState, params: GridWorldParams | None = None, key=None) -> jax.Array:
        time_feature = (state.time * 0.001).astype(jnp.float32)[None]
        if self.tabular:
            bitmask = jnp.sum(jnp.where(state.obj_exists, 2 ** jnp.arange(self.max_n_objs), 0))
            index = state.pos + self.num_cells * bitmask
            one_hot = (jnp.arange(self.obs_size - 1) == index).astype(jnp.float32)
            return jnp.concatenate([one_hot, time_feature])
        agent = (jnp.arange(self.num_cells) == state.pos).astype(jnp.float32)
        # one occupancy map per type: flat index type * cells + cell
        types = jnp.clip(params.obj_ids, 0, self.max_n_obj_types - 1)
        flat = jnp.where(state.obj_exists, types * self.num_cells + state.obj_poss, -1)
        maps = jnp.any(jnp.arange(self.max_n_obj_types * self.num_cells)[:, None] == flat, axis=1)
        maps = maps.astype(jnp.float32)
        return jnp.concatenate([agent, maps, time_feature])

    def _open_cells(self, params: GridWorldParams) -> jax.Array:
        cells = jnp.arange(self.num_cells)
        return (cells < params.grid_size * params.grid_size) & ~params.walls

    def _make_default(self) -> GridWorldParams:
        sizes = (self.max_grid_size, self.max_n_objs, self.max_n_obj_types)
        if self.level in LEVELS:
            return level_params(self.level, *sizes)
        # a procedural name's default is one fixed sample of its distribution
        return self._sampler(DISTRIBUTIONS[self.level])(jax.random.key(0))

    def _sampler(self, dist: Distribution):
        return _jitted_sampler(dist, self.max_grid_size, self.max_n_objs, self.max_n_obj_types)


@functools.lru_cache(maxsize=None)
def _jitted_sampler(dist: Distribution, max_grid_size: int, max_n_objs: int, max_n_obj_types: int):
    # jitted (and shared between envs) so that eager sampling is not dispatched op by op
    return jax.jit(functools.partial(
        sample_distribution, dist=dist, max_grid_size=max_grid_size, max_n_objs=max_n_objs,
        max_n_obj_types=max_n_obj_types,
    ))


def level_tabular(name: str) -> bool:
    """Whether the named level or distribution uses the tabular variant."""
    spec: object = LEVELS.get(name) or DISTRIBUTIONS.get(name)
    if spec is None:
        raise ValueError(f"unknown gridworld level {name!r}")
    return spec.tabular  # type: ignore[attr-defined]


def make_gridworld(
    level: str,
    *,
    max_grid_size: int = MAX_GRID_SIZE,
    max_n_objs: int = MAX_N_OBJS,
    max_n_obj_types: int = MAX_N_OBJ_TYPES,
    tabular: bool | None = None,
) -> tuple[GridWorld, GridWorldParams]:
    """``(env, params)`` for a named level or distribution; ``tabular`` defaults to the level's variant."""
    tabular = level_tabular(level) if tabular is None else tabular
    env = GridWorld(max_grid_size, max_n_objs, max_n_obj_types, tabular, level=level)
    return env, env.default_params


def _register_all() -> None:
    for level in (*LEVELS, *DISTRIBUTIONS):
        # a partial keeps the keyword-only signature that envs.make inspects
        register(f"gridworld-{level}", functools.partial(make_gridworld, level))


_register_all()

__all__ = [
    "DISTRIBUTIONS",
    "Distribution",
    "GridWorld",
    "GridWorldParams",
    "GridWorldState",
    "LEVELS",
    "Level",
    "NUM_ACTIONS",
    "ObjType",
    "level_params",
    "params_from_level",
    "make_gridworld",
    "next_cell",
]
