"""Meta-World's benchmarks as data: ML1, ML10, MT10 (ML45/MT50 once all their classes exist).

A :class:`Benchmark` names its train and test task classes and how tasks are
drawn, and builds the env and the task sets (batched ``ManipParams``) that
agents, teachers and the continual and in-context code use:

    bench = ML1("reach")                   # or ML10(), MT10()
    env = bench.train_env()                # Manipulation over the train classes
    train = bench.train_tasks()            # ManipParams[50 * classes], class-major
    test = bench.test_tasks()              # held-out goals (ML1) or classes (ML10)

**Sampling rule** (Meta-World's ``_make_tasks``): ``GOALS_PER_CLASS`` = 50
goal variations per class from the class's ranges with its redraw rule, from a
fixed seed; ML1's test goals come from ``seed + 1``. The draws use
``jax.random`` (key = ``fold_in(seed, task id)``), so the *values* differ from
Meta-World's numpy draws while the distribution and counts are the same. ML
benchmarks hide the goal from the observation, MT benchmarks show it and
append a one-hot of the class (Meta-World's MT baselines).

``VERSION`` changes whenever the task sets a benchmark produces change.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from envs.manipulation.env import Manipulation
from envs.manipulation.task_registry import TASK_NAMES, get_task

VERSION = "1"
GOALS_PER_CLASS = 50

MT10_CLASSES = TASK_NAMES[:10]
ML10_TRAIN = ("reach", "push", "pick-place", "door-open", "drawer-close", "button-press-topdown",
              "peg-insert-side", "window-open", "sweep", "basketball")
ML10_TEST = ("drawer-open", "door-close", "shelf-place", "sweep-into", "lever-pull")
# Continual World's CW10 order (CW20 is CW10 twice); its episodes last 200 steps, not 500
CW10_CLASSES = ("hammer", "push-wall", "faucet-close", "push-back", "stick-pull", "handle-press-side", "push",
                "shelf-place", "window-close", "peg-unplug-side")
CW_MAX_STEPS = 200


@dataclasses.dataclass(frozen=True)
class Benchmark:
    name: str
    train_classes: tuple[str, ...]
    test_classes: tuple[str, ...] = ()
    goal_observable: bool = False
    one_hot: bool = False
    seed: int = 0
    test_seed: int | None = None  # ML1: seed + 1 (same class, other goals)
    goals_per_class: int = GOALS_PER_CLASS
    version: str = VERSION

    def __post_init__(self):
        for name in self.train_classes + self.test_classes:
            get_task(name)  # unknown or unimplemented class: one clear error now
        if self.goals_per_class < 1:
            raise ValueError(f"{self.name}: goals_per_class must be >= 1, got {self.goals_per_class}")

    def train_env(self) -> Manipulation:
        return Manipulation(self.train_classes, goal_observable=self.goal_observable, one_hot=self.one_hot)

    def test_env(self) -> Manipulation:
        if not self.test_classes:
            raise ValueError(f"{self.name} has no test classes (its test tasks are its train tasks)")
        return Manipulation(self.test_classes, goal_observable=self.goal_observable, one_hot=self.one_hot)

    def train_tasks(self):
        return _class_major(self.train_env(), self.train_classes, self.seed, self.goals_per_class)

    def test_tasks(self):
        if self.test_seed is not None:
            return _class_major(self.train_env(), self.train_classes, self.test_seed, self.goals_per_class)
        return _class_major(self.test_env(), self.test_classes, self.seed, self.goals_per_class)

    def describe(self) -> dict:
        return {**dataclasses.asdict(self), "train_tasks": len(self.train_classes) * self.goals_per_class}


def _class_major(env: Manipulation, classes: tuple[str, ...], seed: int, n: int):
    space = env.task_space
    root = jax.random.PRNGKey(seed)
    parts = [space.sample_class(jax.random.fold_in(root, TASK_NAMES.index(c)), c, n) for c in classes]
    tasks = jax.tree.map(lambda *xs: np.concatenate([np.asarray(x) for x in xs]), *parts)
    vectors = np.concatenate([tasks.obj_init, tasks.goal], axis=1)
    if len(np.unique(vectors, axis=0)) != len(vectors):
        raise RuntimeError(f"task sampling produced duplicate goal variations for {classes}")
    return jax.tree.map(jax.numpy.asarray, tasks)


def ML1(task: str, seed: int = 0) -> Benchmark:  # noqa: N802  (Meta-World's name)
    name = get_task(task).name
    return Benchmark(f"ML1-{name}", (name,), seed=seed, test_seed=seed + 1)


def ML10(seed: int = 0) -> Benchmark:  # noqa: N802
    return Benchmark("ML10", ML10_TRAIN, ML10_TEST, seed=seed)


def MT10(seed: int = 0) -> Benchmark:  # noqa: N802
    return Benchmark("MT10", MT10_CLASSES, goal_observable=True, one_hot=True, seed=seed)


def MT1(task: str, seed: int = 0) -> Benchmark:  # noqa: N802
    """One class, goal visible, 50 train goals and 50 held-out goals (what single-task SAC is tested on)."""
    name = get_task(task).name
    return Benchmark(f"MT1-{name}", (name,), goal_observable=True, seed=seed, test_seed=seed + 1)


BENCHMARKS = {"ML1": ML1, "MT1": MT1, "ML10": ML10, "MT10": MT10}


def parse(spec: str) -> tuple[Benchmark, str]:
    """``"ML1:reach-v3:train"``, ``"MT10:train"``, ``"ML10:test"`` -> (benchmark, split)."""
    parts = str(spec).split(":")
    kind = parts[0]
    if kind not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {kind!r} in {spec!r} (known: {', '.join(BENCHMARKS)})")
    per_class = kind in ("ML1", "MT1")
    expected = 3 if per_class else 2
    if len(parts) != expected or parts[-1] not in ("train", "test"):
        form = f"{kind}:<task>-v3:train|test" if per_class else f"{kind}:train|test"
        raise ValueError(f"benchmark task set {spec!r} must look like {form}")
    bench = BENCHMARKS[kind](parts[1]) if per_class else BENCHMARKS[kind]()
    return bench, parts[-1]


def benchmark_tasks(spec: str):
    """The batched ``ManipParams`` of a benchmark split, e.g. ``benchmark_tasks("ML1:reach-v3:test")``."""
    bench, split = parse(spec)
    return bench.train_tasks() if split == "train" else bench.test_tasks()


def benchmark_env(spec: str) -> Manipulation:
    """The env that runs a benchmark split's tasks (goal visibility and one-hot as the benchmark says)."""
    bench, split = parse(spec)
    return bench.test_env() if split == "test" and bench.test_classes else bench.train_env()
