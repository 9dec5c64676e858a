"""Meta-World-style manipulation in pure JAX: a kinematic Sawyer arm, v3 interfaces, ML/MT benchmarks.

Each task registers as ``<task>-v3`` (goal in the observation; pass
``goal_observable=False`` to hide it as Meta-World's ML benchmarks do).
``mt10``/``mt50``-style multi-task envs and the benchmark task sets live in
:mod:`envs.manipulation.benchmarks`.
"""

from __future__ import annotations

import functools

from envs.manipulation.benchmarks import (
    CW10_CLASSES, CW_MAX_STEPS, ML1, ML10, ML10_TEST, ML10_TRAIN, MT1, MT10, MT10_CLASSES, Benchmark, benchmark_env,
    benchmark_tasks,
)
from envs.manipulation.env import ACTION_DIM, MAX_STEPS, OBS_DIM, Manipulation, ManipParams
from envs.manipulation.randomized import RandomizedGoals
from envs.manipulation.task_registry import TASK_NAMES, get_task, implemented
from envs.manipulation.world import ManipState
from envs.registry import register

__all__ = ["ACTION_DIM", "CW10_CLASSES", "MAX_STEPS", "ML1", "ML10", "MT1", "MT10", "OBS_DIM", "TASK_NAMES",
           "Benchmark", "Manipulation", "ManipParams", "ManipState", "RandomizedGoals", "benchmark_env",
           "benchmark_tasks", "get_task", "implemented"]


def _factory(task: str, goal_observable: bool = True, one_hot: bool = False, max_steps: int = MAX_STEPS):
    env = Manipulation((task,), goal_observable=goal_observable, one_hot=one_hot, max_steps=max_steps)
    return env, env.default_params


def _benchmark_factory(spec: str, max_steps: int = MAX_STEPS):
    base = benchmark_env(spec)
    env = Manipulation(base.task_names, base.goal_observable, base.one_hot, max_steps)
    return env, env.default_params


def _cw_factory(classes: tuple[str, ...] = CW10_CLASSES, max_steps: int = CW_MAX_STEPS):
    """Continual World's env: the CW10 classes (or a subset: fewer branches to compile), goal visible, positions
    drawn at every reset, 200-step episodes."""
    env = RandomizedGoals(Manipulation(tuple(classes), goal_observable=True, one_hot=False, max_steps=max_steps))
    return env, env.default_params


MULTI_TASK_ENVS = {"mt10": "MT10:train", "ml10-train": "ML10:train", "ml10-test": "ML10:test"}


def _register_all() -> None:
    for name in implemented():
        register(f"{name}-v3", functools.partial(_factory, name))
    needs = {"mt10": MT10_CLASSES, "ml10-train": ML10_TRAIN, "ml10-test": ML10_TEST}
    for env_name, spec in MULTI_TASK_ENVS.items():
        if set(needs[env_name]) <= set(implemented()):
            register(env_name, functools.partial(_benchmark_factory, spec))
    if set(CW10_CLASSES) <= set(implemented()):
        register("cw-v3", _cw_factory)


_register_all()
