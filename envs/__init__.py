"""Pure-functional JAX environments with the gymnax API; the task is ``params``."""

from envs.core import Environment, EnvParams, EnvState
from envs.registry import make, register, registered
from envs.task_space import Field, TaskSpace, index_tasks, stack_tasks

__all__ = [
    "Environment",
    "EnvParams",
    "EnvState",
    "Field",
    "TaskSpace",
    "index_tasks",
    "make",
    "register",
    "registered",
    "stack_tasks",
]

import envs.maze  # noqa: E402,F401  (registers maze, maze-<Name>)
import envs.bandit  # noqa: E402,F401  (registers bandit-bernoulli, bandit-gaussian)
import envs.stumps  # noqa: E402,F401  (registers stumps)
import envs.brax_adapter  # noqa: E402,F401  (registers brax-* only when brax is installed)
import envs.gridworld  # noqa: E402,F401  (registers gridworld-*)
