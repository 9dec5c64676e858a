"""Task streams: versioned data describing *which task is trained when*.

A :class:`TaskStream` is plain data — a name and version, a base environment,
a table of tasks (one ``params`` per task) and a list of segments
``(task index, env steps)``. Schedules (sequential, cyclic, random switching,
power-law recurrence) are functions that produce segment lists; named streams
(``CGW10-v1``, ``CCartPole5-v1``) are spec dictionaries in :data:`STREAMS`
that anyone can serialise, diff and version, not code paths.

``build_env(stream)`` returns a :class:`ContinualEnv` whose params are
:class:`StreamParams` ``(task, task_id)``: swapping tasks is swapping a pytree,
so one compiled program serves the whole stream. In task-incremental mode
(``observe_task_id=True``) a one-hot task id is appended to the (flattened)
observation; task-agnostic streams use the same env without it.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import spaces

import envs
from envs.core import Environment
from envs.task_space import Field, TaskSpace, index_tasks, stack_tasks
from metarl.config import check_number, positive_int, unknown_name

# ---------------------------------------------------------------------------
# segments and schedules
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Segment:
    task: int
    steps: int


def _merge(segments: Sequence[tuple[int, int]]) -> tuple[Segment, ...]:
    """Join consecutive segments of the same task: a visit is a maximal run."""
    out: list[Segment] = []
    for task, steps in segments:
        if out and out[-1].task == task:
            out[-1] = Segment(task, out[-1].steps + steps)
        else:
            out.append(Segment(int(task), int(steps)))
    return tuple(out)


def _check_positive(name: str, value: Any) -> int:
    return positive_int(value, name)


def sequential(n_tasks: int, steps_per_task: int, order: Sequence[int] | None = None) -> tuple[Segment, ...]:
    """Each task once, in ``order`` (default 0..n-1)."""
    n_tasks, steps = _check_positive("n_tasks", n_tasks), _check_positive("steps_per_task", steps_per_task)
    order = list(range(n_tasks)) if order is None else [int(i) for i in order]
    return _merge([(i, steps) for i in order])


def cyclic(n_tasks: int, steps_per_task: int, cycles: int, order: Sequence[int] | None = None) -> tuple[Segment, ...]:
    """The sequence repeated ``cycles`` times, so every task is revisited."""
    cycles = _check_positive("cycles", cycles)
    one = sequential(n_tasks, steps_per_task, order)
    return _merge([(s.task, s.steps) for s in one] * cycles)


def random_switching(n_tasks: int, steps_per_task: int, n_segments: int, seed: int) -> tuple[Segment, ...]:
    """Segments of fixed length; each switch goes to a uniformly drawn *other* task."""
    n_tasks, steps = _check_positive("n_tasks", n_tasks), _check_positive("steps_per_task", steps_per_task)
    n_segments = _check_positive("n_segments", n_segments)
    rng = np.random.default_rng(seed)
    task = int(rng.integers(n_tasks))
    tasks = [task]
    for _ in range(n_segments - 1):
        if n_tasks > 1:  # shift by 1..n-1 so the next task always differs
            task = (task + 1 + int(rng.integers(n_tasks - 1))) % n_tasks
        tasks.append(task)
    return _merge([(t, steps) for t in tasks])


def power_law(
    n_tasks: int, steps_per_task: int, n_segments: int, alpha: float, seed: int
) -> tuple[Segment, ...]:
    """Segment tasks drawn i.i.d. with P(task k) ∝ (k+1)^-alpha.

    Low-index tasks recur often, high-index ones rarely (heavy-tailed revisit
    gaps). Consecutive draws of the same task merge into one longer visit.
    """
    n_tasks, steps = _check_positive("n_tasks", n_tasks), _check_positive("steps_per_task", steps_per_task)
    n_segments = _check_positive("n_segments", n_segments)
    alpha = check_number(alpha, "power-law alpha", ge=0)
    weights = (np.arange(n_tasks) + 1.0) ** -float(alpha)
    draws = np.random.default_rng(seed).choice(n_tasks, size=n_segments, p=weights / weights.sum())
    return _merge([(int(t), steps) for t in draws])


SCHEDULES = {
    "sequential": sequential,
    "cyclic": cyclic,
    "random": random_switching,
    "power_law": power_law,
}


def make_schedule(n_tasks: int, spec: dict[str, Any]) -> tuple[Segment, ...]:
    """``{"kind": "cyclic", "steps_per_task": ..., "cycles": ...}`` -> segments."""
    spec = dict(spec)
    kind = spec.pop("kind", None)
    if kind not in SCHEDULES:
        raise ValueError(f"unknown schedule kind {kind!r}; expected one of {sorted(SCHEDULES)}")
    try:
        return SCHEDULES[kind](n_tasks, **spec)
    except TypeError as err:  # unknown / missing keyword -> one clear line
        raise ValueError(f"bad arguments for schedule {kind!r}: {err}") from None


# ---------------------------------------------------------------------------
# the stream
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TaskStream:
    """A versioned task stream.

    Attributes:
        name, version: identity; ``id`` is ``f"{name}-v{version}"``.
        env: registry name of the environment every task runs in.
        tasks: batched params (leading axis = task) of ``env``.
        task_names: a label per task.
        segments: the training schedule, in env steps.
        observe_task_id: task-incremental (True) or task-agnostic (False).
        env_kwargs: static constructor settings of ``env``.
        spec: the data the stream was built from (for the run record); its
            optional ``score`` maps returns to [0, 1] scores (see
            :func:`metarl.continual.runner.score_bounds`).
    """

    name: str
    version: int
    env: str
    tasks: Any
    task_names: tuple[str, ...]
    segments: tuple[Segment, ...]
    observe_task_id: bool = True
    env_kwargs: dict = dataclasses.field(default_factory=dict)
    spec: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        n = self.n_tasks
        if len(self.task_names) != n:
            raise ValueError(f"stream {self.id}: {len(self.task_names)} task names for {n} tasks")
        if not self.segments:
            raise ValueError(f"stream {self.id}: no segments")
        for seg in self.segments:
            if not 0 <= seg.task < n:
                raise ValueError(f"stream {self.id}: segment task {seg.task} outside 0..{n - 1}")
            _check_positive("segment steps", seg.steps)
        object.__setattr__(self, "segments", _merge([(s.task, s.steps) for s in self.segments]))

    @property
    def id(self) -> str:
        return f"{self.name}-v{self.version}"

    @property
    def n_tasks(self) -> int:
        return int(jax.tree.leaves(self.tasks)[0].shape[0])

    @property
    def total_steps(self) -> int:
        return sum(s.steps for s in self.segments)

    def boundaries(self) -> np.ndarray:
        """Segment ``[start, end)`` in env steps, shape ``[n_segments, 2]``."""
        ends = np.cumsum([s.steps for s in self.segments])
        return np.stack([ends - np.array([s.steps for s in self.segments]), ends], axis=1)

    def segment_tasks(self) -> np.ndarray:
        return np.array([s.task for s in self.segments], np.int32)

    def task(self, i: int) -> Any:
        return index_tasks(self.tasks, i)

    def with_segments(self, segments: Sequence[Segment], suffix: str) -> "TaskStream":
        """A derived stream (e.g. a smaller budget); its name says so."""
        return dataclasses.replace(self, name=f"{self.name}[{suffix}]", segments=tuple(segments))


# ---------------------------------------------------------------------------
# the environment the agent sees
# ---------------------------------------------------------------------------


@struct.dataclass
class StreamParams:
    """A task of a stream: the base env's params plus the task's index."""

    task: Any
    task_id: jax.Array


class ContinualEnv(Environment):
    """A base env whose params carry a task id; optionally observed (one-hot).

    Observations are flattened to float32 vectors so the one-hot can be
    appended. The table of the stream's tasks is kept for ``task_params`` and
    for ``task_space.sample`` (a uniformly drawn task of the stream).
    """

    def __init__(self, base: Any, tasks: Any, observe_task_id: bool):
        super().__init__()
        self.base = base
        self.tasks = tasks
        self.n_tasks = int(jax.tree.leaves(tasks)[0].shape[0])
        self.observe_task_id = bool(observe_task_id)
        self._base_default = index_tasks(tasks, 0)

    # identity hash (the task table is not hashable); gymnax jits on `self`
    __hash__ = object.__hash__

    def __eq__(self, other):
        return self is other

    @property
    def name(self) -> str:
        return f"Continual({getattr(self.base, 'name', type(self.base).__name__)})"

    def task_params(self, task_id: Any) -> StreamParams:
        """Params of task(s) ``task_id`` (a scalar or an int array)."""
        task_id = jnp.asarray(task_id, jnp.int32)
        return StreamParams(index_tasks(self.tasks, task_id), task_id)

    @property
    def default_params(self) -> StreamParams:
        return self.task_params(0)

    @property
    def task_space(self) -> TaskSpace:
        sampler = lambda key: self.task_params(jax.random.randint(key, (), 0, self.n_tasks))  # noqa: E731
        return TaskSpace(
            self.default_params, (Field("task_id", 0, self.n_tasks - 1, kind="int"),), sampler=sampler, name=self.name
        )

    def _observe(self, obs: Any, task_id: jax.Array) -> jax.Array:
        flat = jnp.ravel(obs).astype(jnp.float32)
        if not self.observe_task_id:
            return flat
        return jnp.concatenate([flat, jax.nn.one_hot(task_id, self.n_tasks, dtype=jnp.float32)])

    def step_env(self, key, state, action, params: StreamParams):
        obs, state, reward, terminated, info = self.base.step_env(key, state, action, params.task)
        return self._observe(obs, params.task_id), state, reward, terminated, info

    def reset_env(self, key, params: StreamParams):
        obs, state = self.base.reset_env(key, params.task)
        return self._observe(obs, params.task_id), state

    def is_truncated(self, state, params: StreamParams):
        return self.base.is_truncated(state, params.task)

    @property
    def num_actions(self) -> int:
        return self.base.num_actions

    def action_space(self, params: StreamParams | None = None):
        return self.base.action_space(self._base_default if params is None else params.task)

    def observation_space(self, params: StreamParams | None = None):
        space = self.base.observation_space(self._base_default if params is None else params.task)
        flat = lambda bound: np.ravel(np.broadcast_to(np.asarray(bound, np.float32), space.shape))  # noqa: E731
        low, high = flat(space.low), flat(space.high)
        if self.observe_task_id:
            low = np.concatenate([low, np.zeros(self.n_tasks, np.float32)])
            high = np.concatenate([high, np.ones(self.n_tasks, np.float32)])
        return spaces.Box(jnp.asarray(low), jnp.asarray(high), (low.shape[0],), jnp.float32)


def build_env(stream: TaskStream) -> tuple[ContinualEnv, StreamParams]:
    """``(env, all_tasks)``: the agent-facing env and the batched task table."""
    base, _ = envs.make(stream.env, **stream.env_kwargs)
    env = ContinualEnv(base, stream.tasks, stream.observe_task_id)
    return env, env.task_params(jnp.arange(stream.n_tasks))


# ---------------------------------------------------------------------------
# building streams from specs (the versioned data)
# ---------------------------------------------------------------------------


def _override_value(default: Any, value: Any, field: str) -> Any:
    """Full value, or a prefix of a 1-D field (the rest keeps the default).

    Prefixes let a spec name only the active object types of a padded
    gridworld without knowing the padding.
    """
    old = np.asarray(default)
    new = np.asarray(value, dtype=old.dtype)
    if old.ndim == 1 and new.ndim == 1 and new.shape[0] < old.shape[0]:
        new = np.concatenate([new, old[new.shape[0] :]])
    if new.shape != old.shape:
        raise ValueError(f"task override {field}: expected shape {old.shape}, got {new.shape}")
    return jnp.asarray(new)


def _tasks_from_spec(env_name: str, env_kwargs: dict, spec: dict) -> tuple[Any, list[str]]:
    if len(spec) != 1:
        raise ValueError(f"tasks spec must have exactly one of overrides/sample/envs/classes, got {sorted(spec)}")
    kind, value = next(iter(spec.items()))
    if kind == "envs":  # a list of named envs sharing one env class (same static shapes)
        made = [envs.make(name, **env_kwargs) for name in value]
        first = made[0][0]
        for name, (env, _) in zip(value, made):
            if env != first:
                raise ValueError(f"env {name!r} differs from {value[0]!r} (class or static settings); cannot stack")
        return stack_tasks([p for _, p in made]), [str(n) for n in value]
    env, default = envs.make(env_name, **env_kwargs)
    if kind == "classes":  # task classes of a multi-class env (its params_for builds each)
        if not hasattr(env, "params_for"):
            raise ValueError(f"tasks given as classes need an env with params_for; {env_name} has none")
        return stack_tasks([env.params_for(str(name)) for name in value]), [str(n) for n in value]
    if kind == "overrides":
        tasks = []
        names = {f.name for f in dataclasses.fields(default)}
        for i, over in enumerate(value):
            unknown = sorted(set(over) - names)
            if unknown:
                close = difflib.get_close_matches(unknown[0], sorted(names), n=3)
                raise ValueError(f"task {i}: {env_name} params have no field {unknown[0]!r} (close: {close})")
            params = default.replace(**{k: _override_value(getattr(default, k), v, k) for k, v in over.items()})
            derive = getattr(env.task_space, "_derive", None)
            params = derive(params) if derive is not None else params
            env.task_space.check(params)
            tasks.append(params)
        labels = [",".join(f"{k}={v}" for k, v in over.items()) or "default" for over in value]
        return stack_tasks(tasks), labels
    if kind == "sample":
        seed, n = int(value["seed"]), _check_positive("sample.n", value["n"])
        return env.task_space.sample_batch(jax.random.PRNGKey(seed), n), [f"sample{seed}/{i}" for i in range(n)]
    raise ValueError(f"unknown tasks kind {kind!r}; expected overrides, sample or envs")


def from_spec(spec: dict[str, Any]) -> TaskStream:
    """Build a stream from its data spec (see :data:`STREAMS` for examples)."""
    missing = [k for k in ("name", "version", "tasks", "schedule") if k not in spec]
    if missing:
        raise ValueError(f"stream spec is missing {missing}")
    tasks_spec = dict(spec["tasks"])
    env_kwargs = dict(spec.get("env_kwargs") or {})
    if "envs" in tasks_spec:
        env_name = str(tasks_spec["envs"][0])
    elif "env" in spec:
        env_name = str(spec["env"])
    else:
        raise ValueError("stream spec needs 'env' unless tasks are given as 'envs'")
    tasks, labels = _tasks_from_spec(env_name, env_kwargs, tasks_spec)
    n = int(jax.tree.leaves(tasks)[0].shape[0])
    return TaskStream(
        name=str(spec["name"]),
        version=int(spec["version"]),
        env=env_name,
        tasks=tasks,
        task_names=tuple(labels),
        segments=make_schedule(n, spec["schedule"]),
        observe_task_id=bool(spec.get("observe_task_id", True)),
        env_kwargs=env_kwargs,
        spec=copy.deepcopy(dict(spec)),
    )


# Reward maps for 3 object types of the padded gridworld: each map says which
# types pay and which hurt, so consecutive tasks conflict (what forgetting needs).
_CGW_REWARD_MAPS = [
    [1.0, -1.0, -1.0],
    [-1.0, 1.0, -1.0],
    [-1.0, -1.0, 1.0],
    [1.0, 1.0, -1.0],
    [-1.0, 1.0, 1.0],
    [1.0, -1.0, 1.0],
    [1.0, -0.5, 0.5],
    [0.5, 1.0, -0.5],
    [-0.5, 0.5, 1.0],
    [1.0, 0.0, -1.0],
]

# name -> spec. Changing any task or schedule means a new version number.
STREAMS: dict[str, dict[str, Any]] = {
    "CGW10-v1": {
        "name": "CGW10",
        "version": 1,
        "env": "gridworld-dense",
        "tasks": {"overrides": [{"obj_rewards": m} for m in _CGW_REWARD_MAPS]},
        "schedule": {"kind": "sequential", "steps_per_task": 500_000},
        "observe_task_id": True,
        "score": {"kind": "gridworld_dp"},
    },
    "CGW10x2-v1": {  # CGW10 twice: every task revisited (as CW20 repeats CW10)
        "name": "CGW10x2",
        "version": 1,
        "env": "gridworld-dense",
        "tasks": {"overrides": [{"obj_rewards": m} for m in _CGW_REWARD_MAPS]},
        "schedule": {"kind": "cyclic", "steps_per_task": 500_000, "cycles": 2},
        "observe_task_id": True,
        "score": {"kind": "gridworld_dp"},
    },
    "CGW5-v1": {  # a CPU-sized CGW: the first 5 reward maps, no padding beyond the dense level, 100-step episodes
        "name": "CGW5",
        "version": 1,
        "env": "gridworld-dense",
        "env_kwargs": {"max_grid_size": 11, "max_n_objs": 4, "max_n_obj_types": 3},
        "tasks": {"overrides": [{"obj_rewards": m, "max_steps_in_episode": 100} for m in _CGW_REWARD_MAPS[:5]]},
        "schedule": {"kind": "sequential", "steps_per_task": 100_000},
        "observe_task_id": True,
        "score": {"kind": "gridworld_dp"},
    },
    "CCartPole5-v1": {
        "name": "CCartPole5",
        "version": 1,
        "env": "CartPole-v1",
        "tasks": {
            "overrides": [
                {"gravity": 9.8, "length": 0.5, "masspole": 0.1, "force_mag": 10.0},
                {"gravity": 19.6, "length": 0.25, "masspole": 0.1, "force_mag": 10.0},
                {"gravity": 4.9, "length": 1.0, "masspole": 0.4, "force_mag": 10.0},
                {"gravity": 9.8, "length": 0.5, "masspole": 0.1, "force_mag": 5.0},
                {"gravity": 14.7, "length": 0.75, "masspole": 0.25, "force_mag": 20.0},
            ]
        },
        "schedule": {"kind": "sequential", "steps_per_task": 200_000},
        "observe_task_id": True,
        "score": {"kind": "range", "low": 0.0, "high": 500.0},
    },
    "CCartPole5Agnostic-v1": {
        "name": "CCartPole5Agnostic",
        "version": 1,
        "env": "CartPole-v1",
        "tasks": {"sample": {"seed": 5, "n": 5}},
        "schedule": {"kind": "random", "steps_per_task": 100_000, "n_segments": 20, "seed": 0},
        "observe_task_id": False,
        "score": {"kind": "range", "low": 0.0, "high": 500.0},
    },
}


# Continual World (Wolczyk et al. 2021) on the JAX manipulation family: the CW10 classes in CW's order,
# positions drawn at every reset, goal visible, 200-step episodes, 1 M steps per task, success as the score.
# CW20 is CW10 twice with 20 task indices (20 heads: a second visit is a new task, as in CW).
# The triplets are transfer sequences A -> B -> C "in which A -> C transfers more than B -> C", as listed
# (CW3_1, CW3_5, CW3_6, CW3_8) in a fork of Continual World's repository (continualworld/tasks.py); the
# paper's own repository lists only CW10/CW20. Their env compiles only their classes.
_CW10 = ["hammer", "push-wall", "faucet-close", "push-back", "stick-pull", "handle-press-side", "push", "shelf-place",
         "window-close", "peg-unplug-side"]
_CW_TRIPLETS = {
    "CW3-1": ["push", "window-close", "hammer"],
    "CW3-5": ["faucet-close", "shelf-place", "push-back"],
    "CW3-6": ["stick-pull", "peg-unplug-side", "stick-pull"],
    "CW3-8": ["faucet-close", "shelf-place", "peg-unplug-side"],
}


def _cw_spec(name: str, classes: list[str]) -> dict[str, Any]:
    used = list(dict.fromkeys(classes))
    return {
        "name": name,
        "version": 1,
        "env": "cw-v3",
        **({} if set(used) == set(_CW10) else {"env_kwargs": {"classes": used}}),
        "tasks": {"classes": list(classes)},
        "schedule": {"kind": "sequential", "steps_per_task": 1_000_000},
        "observe_task_id": True,
        "score": {"kind": "success"},
    }


STREAMS.update({
    "CW10-v1": _cw_spec("CW10", _CW10),
    "CW20-v1": _cw_spec("CW20", _CW10 * 2),
    **{f"{name}-v1": _cw_spec(name, classes) for name, classes in _CW_TRIPLETS.items()},
})


def registered_streams() -> list[str]:
    return sorted(STREAMS)


def get_stream(name: str, steps_per_task: int | None = None) -> TaskStream:
    """A named stream; ``steps_per_task`` rescales every segment (renamed)."""
    if name not in STREAMS:
        raise unknown_name("stream", name, registered_streams())
    stream = from_spec(STREAMS[name])
    if steps_per_task is None:
        return stream
    steps = _check_positive("steps_per_task", steps_per_task)
    base = int(STREAMS[name]["schedule"]["steps_per_task"])
    scaled = [Segment(s.task, max(1, s.steps * steps // base)) for s in stream.segments]
    return dataclasses.replace(stream, segments=tuple(scaled), name=f"{stream.name}[steps={steps}]")
