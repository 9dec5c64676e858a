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
    "benchmark_tasks",
    "index_tasks",
    "make",
    "register",
    "registered",
    "stack_tasks",
]

# Native families register their names on import.
import envs.bandit  # noqa: E402,F401  (bandit-bernoulli, bandit-gaussian)
import envs.brax_adapter  # noqa: E402,F401  (brax-*, only when brax is installed)
import envs.playground_adapter  # noqa: E402,F401  (dmc-*: MuJoCo Playground's DM Control Suite)
import envs.gridworld  # noqa: E402,F401  (gridworld-*)
import envs.dark_room  # noqa: E402,F401  (dark-room, dark-room-hard)
import envs.four_rooms, envs.tabletop  # noqa: E401,E402,F401  (earl-four-rooms, earl-tabletop: reset-free)
import envs.earl_door  # noqa: E402,F401  (earl-door-kin: reset-free, kinematic Sawyer)
import envs.earl_peg  # noqa: E402,F401  (earl-peg-kin: reset-free, kinematic Sawyer)
import envs.manipulation  # noqa: E402,F401  (<task>-v3: Meta-World-style manipulation)
from envs.manipulation.benchmarks import benchmark_tasks  # noqa: E402
import envs.maze  # noqa: E402,F401  (maze, maze-<Name>)
import envs.stumps  # noqa: E402,F401  (stumps)
