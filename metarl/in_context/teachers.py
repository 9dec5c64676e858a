"""Teachers (the ``configs/teacher/`` group, built by :func:`curricula.factory.make_teacher`) over a benchmark's
training tasks.

    spec = resolve({"name": "plr", ...}, bench, env, train_tasks)  # one-line errors, nothing compiled: a dict
    teacher = build(spec, bench, env, train_tasks)                  # a MetaTeacher for rl2.make_train

What a teacher may see depends on the benchmark's training distribution (:func:`support`):

* ``"goals"`` (Dark Room's goal split, a Meta-World benchmark's training tasks): a finite set of training
  tasks (called goals below); the teacher sees only those. Its
  TaskSpace draws uniformly from them (PLR's new levels; ``domain_randomization`` is the default's
  :class:`~metarl.in_context.tasks.TaskSet`, so it trains on the same tasks), a bandit teacher's
  arms are the training goals (or the ``arms.tasks`` given, each a training goal), ``fixed``'s task must
  be a training goal and PLR's buffer holds at most the training goals (``capacity`` is capped at their
  number, as PLR on a fixed set of training levels). ``alp_gmm`` proposes any cell of the goal box,
  held-out goals included: refused.
* ``"box"`` (bandits with ``U[0, 1]`` arm means): the TaskSpace's box is the distribution; every teacher
  not refused everywhere (below) works (bandit arms are bins of the arm means, ALP-GMM fits the box).
* ``"structured"`` (the dependent bandit, means ``(p, 1 - p)``): the sampler's support is a curve in the
  box; teachers that write task vectors (``alp_gmm``, a bandit over bins) would train on tasks outside
  it: refused (``plr``, ``domain_randomization``, ``fixed``, a bandit over ``arms.tasks`` work).

Everywhere: ``robust_plr`` and ``accel`` train only on replayed levels (the robust-PLR train mask), which
RL² does not apply (it trains on every trial): refused. A progress signal on ``success`` works on the
manipulation benchmarks (``"meta-world"``: the share of a trial's episodes that succeeded) and is refused
elsewhere (it would read zeros).

:class:`MetaTeacher` wraps the factory's teacher: it hands it that TaskSpace (``metarl.agents.rl2`` would
give the env's) and counts what it samples (per training goal, held-out ones in a last bin that must stay
0; or a histogram of each task-vector entry), the counts part of the teacher state, so in the checkpoint.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from curricula.factory import META_TRAINING_TEACHERS, TEACHERS, make_teacher, unknown_teacher
from envs.task_space import TaskSpace, index_tasks
from metarl.in_context.benchmarks import InContextBenchmark
from metarl.in_context.tasks import TaskSet

SUPPORTS = ("goals", "box", "structured")
# sampled benchmarks whose sampler does not cover its TaskSpace's box (a benchmark not listed here and not a goal
# split trains on the whole box): id -> what the support is
STRUCTURED = {"bandit-k2-dependent-v1": "arm means (p, 1 - p)"}
HISTOGRAM_BINS = 10  # per task-vector entry, over the TaskSpace box (sampled benchmarks)
NO_TRAIN_MASK = ("robust_plr", "accel")


def support(bench: InContextBenchmark) -> str:
    if bench.held_out in ("goals", "meta-world"):  # a finite set of training tasks
        return "goals"
    return "structured" if bench.id in STRUCTURED else "box"


def _vectors(tasks: Any, space: TaskSpace) -> np.ndarray:
    """``[n, dim]`` free-field vectors of batched ``tasks`` (numpy, on the host)."""
    return np.concatenate([np.asarray(getattr(tasks, name), np.float64).reshape(
        np.asarray(getattr(tasks, name)).shape[0], -1) for name in space.names], axis=1)


def _goal_list(tasks: Any, space: TaskSpace) -> list[dict]:
    """Batched tasks as the factory's ``arms.tasks`` entries (``{field: value}`` each)."""
    n = np.asarray(getattr(tasks, space.names[0])).shape[0]
    return [{name: np.asarray(getattr(tasks, name))[i].tolist() for name in space.names} for i in range(n)]


def _held_out_ones(tasks: list[Mapping], space: TaskSpace, train: Any, what: str, bench_id: str) -> None:
    """``tasks`` (``{field: value}`` overrides of the TaskSpace default) are training tasks, or a one-line error."""
    allowed = {tuple(v) for v in _vectors(train, space)}
    for task in tasks:
        bad = [k for k in task if k not in space.names]
        if bad:
            raise ValueError(f"{what}: {bad[0]} is not a task field of {bench_id} (fields: {', '.join(space.names)})")
        merged = {name: np.asarray(task.get(name, np.asarray(getattr(space.default, name))), np.float64).ravel()
                  for name in space.names}
        if tuple(np.concatenate([merged[name] for name in space.names])) not in allowed:
            shown = ", ".join(f"{name}={merged[name].astype(np.asarray(getattr(space.default, name)).dtype).tolist()}"
                              for name in space.names)
            raise ValueError(f"{what}: {shown} is not a training task of {bench_id} (held out, or not a goal of its "
                             "split); a teacher samples the training goals only")


def check_name(cfg: Any) -> None:
    """The ``teacher`` section names a teacher RL² can use (before its options are checked)."""
    if not isinstance(cfg, Mapping):
        raise ValueError(f"teacher must be a teacher config (teacher=plr, teacher=exp3_alp, ...), got {cfg!r}")
    name = cfg.get("name")
    if name is None:
        raise ValueError("teacher has no name: pick one from configs/teacher/ (teacher=plr, teacher=exp3_alp, ...)")
    if name in META_TRAINING_TEACHERS:
        raise ValueError(f"teacher={name} scores levels by algorithmic regret against a learned update rule; it is "
                         "for metarl-meta-train objective=lpg, not RL²")
    if name not in TEACHERS:
        raise unknown_teacher(name)
    if name in NO_TRAIN_MASK:
        raise ValueError(f"teacher={name} trains only on replayed levels (the robust-PLR train mask), which RL² "
                         "does not apply (it trains on every trial); use teacher=plr")


def resolve(cfg: Any, bench: InContextBenchmark, env: Any, train_tasks: Any = None) -> dict:
    """The ``teacher`` section, checked against ``bench``, as the plain config :func:`build` takes.

    ``train_tasks``: the training goals of a goal split (batched params); ignored otherwise.
    One-line ``ValueError`` for a teacher that cannot work on the benchmark; nothing is compiled.
    """
    check_name(cfg)
    cfg = copy.deepcopy(dict(cfg))
    name = cfg["name"]
    kind = support(bench)
    if name == "alp_gmm" and kind != "box":
        raise ValueError(f"teacher=alp_gmm proposes tasks anywhere in {bench.id}'s TaskSpace box, which "
                         + (f"holds its {bench.test_tasks} held-out goals; use domain_randomization, fixed, plr or a "
                            "bandit teacher (arms = the training goals)" if kind == "goals" else
                            f"is wider than its {STRUCTURED[bench.id]}; use domain_randomization, plr or fixed"))
    space = env.task_space
    if name == "bandit":
        arms = dict(cfg.get("arms") or {})
        if "tasks" in arms:
            if not isinstance(arms["tasks"], (list, tuple)) or not arms["tasks"] or \
                    not all(isinstance(t, Mapping) for t in arms["tasks"]):
                raise ValueError("teacher.arms.tasks must be a non-empty list of tasks ({field: value} each)")
            if kind == "goals":
                _held_out_ones(arms["tasks"], space, train_tasks, "teacher.arms.tasks", bench.id)
        elif kind == "goals":
            cfg["arms"] = {"tasks": _goal_list(train_tasks, space)}  # one arm per training goal
        elif kind == "structured":
            raise ValueError(f"a bandit teacher over bins of the task vector redraws arm means independently, leaving "
                             f"{bench.id}'s {STRUCTURED[bench.id]}; give the arms as teacher.arms.tasks, or use "
                             "domain_randomization, plr or fixed")
    if name == "fixed" and kind == "goals":
        task = cfg.get("task") or {}
        if not isinstance(task, Mapping):
            raise ValueError(f"teacher.task must be a mapping of task fields, got {task!r}")
        _held_out_ones([task], space, train_tasks, "teacher=fixed", bench.id)
    if name == "plr" and kind == "goals":
        size = int(np.asarray(getattr(train_tasks, space.names[0])).shape[0])
        cfg["capacity"] = min(int(cfg.get("capacity", 4000)), size)  # the buffer holds the training goals at most
    teacher = build(cfg, bench, env, train_tasks)  # the factory's own checks, constructors only
    signal = getattr(teacher.teacher, "signal", None)
    if getattr(signal, "metric", None) == "success" and bench.baselines != "success":
        signal_name = (cfg.get("signal") or {}).get("name")
        raise ValueError(f"teacher.signal.name={signal_name} reads success, which {bench.id} does not report (only "
                         "the manipulation benchmarks do); set teacher.signal.metric=return")
    return cfg


def spec_key(cfg: Mapping | None) -> str | None:
    """A resolved config as a hashable, canonical key (the runner caches programs by it)."""
    return None if cfg is None else json.dumps(cfg, sort_keys=True)


def training_tasks(train_tasks: Any, horizon: int) -> Any:
    """``train_tasks`` (batched params) as device arrays with the benchmark's horizon (as RL² plays them)."""
    tasks = jax.tree.map(jnp.asarray, train_tasks)
    steps = jnp.asarray(tasks.max_steps_in_episode)
    return tasks.replace(max_steps_in_episode=jnp.full(steps.shape, horizon, steps.dtype))


def training_space(env: Any, train_tasks: Any, horizon: int) -> TaskSpace:
    """The env's TaskSpace whose sampler draws uniformly from ``train_tasks`` (batched params)."""
    space = env.task_space
    tasks = training_tasks(train_tasks, horizon)
    size = int(jax.tree.leaves(tasks)[0].shape[0])

    def sample(key):
        return index_tasks(tasks, jax.random.randint(key, (), 0, size))

    return TaskSpace(space.default, space.fields, sampler=sample, name=f"{space.name} training goals")


def build(cfg: Mapping, bench: InContextBenchmark, env: Any, train_tasks: Any = None) -> MetaTeacher:
    """The teacher of a resolved config (:func:`resolve`), wrapped in a :class:`MetaTeacher`."""
    kind = support(bench)
    space = training_space(env, train_tasks, bench.horizon) if kind == "goals" else env.task_space
    if kind == "goals" and cfg["name"] == "domain_randomization":  # the default's own draws (the same tasks)
        teacher = TaskSet(training_tasks(train_tasks, bench.horizon))
    else:
        teacher = make_teacher(dict(cfg), space)
    return MetaTeacher(teacher, space, train_tasks if kind == "goals" else None)


@struct.dataclass
class MetaTeacherState:
    teacher: Any  # the wrapped teacher's state
    counts: jax.Array  # int32: sampled tasks per training goal (+ a last bin: any other task), or [dim, bins]


class MetaTeacher:
    """A factory teacher on a benchmark's TaskSpace (``init`` ignores the env's), counting what it samples."""

    def __init__(self, teacher: Any, task_space: TaskSpace, train_tasks: Any = None):
        self.teacher, self.task_space = teacher, task_space
        self.goals = None if train_tasks is None else jnp.asarray(_vectors(train_tasks, task_space), jnp.float32)

    @property
    def count_shape(self) -> tuple[int, ...]:
        if self.goals is not None:
            return (self.goals.shape[0] + 1,)
        return (self.task_space.dim, HISTOGRAM_BINS)

    def init(self, key: jax.Array, task_space: Any = None) -> MetaTeacherState:
        return MetaTeacherState(self.teacher.init(key, self.task_space), jnp.zeros(self.count_shape, jnp.int32))

    def sample(self, state: MetaTeacherState, key: jax.Array, n: int) -> tuple[MetaTeacherState, Any]:
        inner, tasks = self.teacher.sample(state.teacher, key, n)
        return MetaTeacherState(inner, state.counts + self.count(tasks)), tasks

    def update(self, state: MetaTeacherState, tasks: Any, feedback: Any) -> MetaTeacherState:
        return state.replace(teacher=self.teacher.update(state.teacher, tasks, feedback))

    def count(self, tasks: Any) -> jax.Array:
        """What a batch of tasks adds to the counts."""
        space = self.task_space
        vectors = jax.vmap(space.to_vector)(tasks)
        if self.goals is not None:
            match = jnp.all(vectors[:, None, :] == self.goals[None], axis=-1)  # [n, goals]
            index = jnp.where(jnp.any(match, axis=1), jnp.argmax(match, axis=1), self.goals.shape[0])
            return jnp.zeros(self.count_shape, jnp.int32).at[index].add(1)
        cells = jnp.clip(jnp.floor(space.normalize(vectors) * HISTOGRAM_BINS), 0, HISTOGRAM_BINS - 1).astype(jnp.int32)
        return jnp.sum(jax.nn.one_hot(cells, HISTOGRAM_BINS, dtype=jnp.int32), axis=0)  # [dim, bins]


def sampled(teacher: MetaTeacher, counts: np.ndarray) -> dict:
    """The summary entry of the counts (seed axis first): what the teacher sampled over training."""
    counts = np.asarray(counts, np.int64)
    space = teacher.task_space
    if teacher.goals is not None:
        goals = np.asarray(teacher.goals, np.float64)
        goals = np.rint(goals).astype(np.int64) if np.array_equal(goals, np.rint(goals)) else np.round(goals, 4)
        return {"kind": "goals", "goals": goals.tolist(),
                "fields": list(space.vector_names()), "counts": counts[:, :-1].sum(axis=0).tolist(),
                "per_seed": counts[:, :-1].tolist(), "other_tasks": int(counts[:, -1].sum())}
    return {"kind": "histogram", "entries": list(space.vector_names()), "bins": HISTOGRAM_BINS,
            "low": np.asarray(space.low).tolist(), "high": np.asarray(space.high).tolist(),
            "counts": counts.sum(axis=0).tolist()}


def branch_shares(state: Any) -> dict | None:
    """A level-replay teacher's share of new and replayed batches (seed axis first), else ``None``."""
    counts = getattr(state, "branch_counts", None)
    if counts is None:
        return None
    total = np.maximum(np.asarray(counts).sum(axis=-1, keepdims=True), 1)
    share = (np.asarray(counts) / total).mean(axis=0)
    return {"new": float(share[0]), "replay": float(share[1])}
