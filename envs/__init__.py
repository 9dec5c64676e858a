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
