"""``Manipulation``: a gymnax env over one or several manipulation tasks (Meta-World v3 interfaces).

The observation is Meta-World's 39-vector: frame = hand xyz, gripper opening,
object 1 pos + quat, object 2 pos + quat (18); the previous step's frame (18;
equal to the current one at reset); the goal (3; zeros unless
``goal_observable``). With ``one_hot=True`` the env's task index follows as a
one-hot (Meta-World's multi-task baselines). Actions are 4-D in [-1, 1].
Episodes are truncated at ``params.max_steps_in_episode`` (500) and never
terminate; ``info["success"]`` is the task's success flag at this step.

The task is ``ManipParams``: a task id (an index into ``TASK_NAMES``, stable
across versions), the object start and the goal. One env may serve several
tasks (MT10): the task-dependent part of the step is then a ``lax.switch``
over the env's tasks, so a ``vmap`` batch may mix them; a batch laid out by
class (equal blocks, one class each: ``benchmarks`` builds them so) runs one
task's code per block instead of every task's (``envs.grouped_switch``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.core import Environment, StaticIdentity, spaces
from envs.grouped_switch import grouped_switch
from envs.manipulation import world
from envs.manipulation.task_registry import TASK_NAMES, get_task
from envs.manipulation.task_space import ManipulationTaskSpace
from envs.manipulation.world import ManipState

OBS_DIM = 39
ACTION_DIM = 4
MAX_STEPS = 500
OBJECT_BOUND = 2.0  # |positions| stay far inside it; quaternions are unit


@struct.dataclass
class ManipParams:
    task_id: jax.Array  # int32 index into TASK_NAMES
    obj_init: jax.Array  # float32[3]
    goal: jax.Array  # float32[3]
    max_steps_in_episode: int = MAX_STEPS


class Manipulation(StaticIdentity, Environment):
    """Sawyer-style kinematic manipulation over ``tasks`` (names without ``-v3``)."""

    check_task_overrides = True  # envs.make refuses params outside the task space
    def __init__(self, tasks: tuple[str, ...] | str, goal_observable: bool = True, one_hot: bool = False,
                 max_steps: int = MAX_STEPS):
        super().__init__()
        tasks = (tasks,) if isinstance(tasks, str) else tuple(tasks)
        if not tasks:
            raise ValueError("Manipulation needs at least one task")
        self.tasks = tuple(get_task(name) for name in tasks)
        self.task_names = tuple(t.name for t in self.tasks)
        if len(set(self.task_names)) != len(self.task_names):
            raise ValueError(f"Manipulation: repeated tasks in {self.task_names}")
        if int(max_steps) < 1:
            raise ValueError(f"Manipulation: max_steps must be >= 1, got {max_steps}")
        self.goal_observable, self.one_hot, self.max_steps = bool(goal_observable), bool(one_hot), int(max_steps)
        local = np.full(len(TASK_NAMES), -1, np.int32)
        for i, name in enumerate(self.task_names):
            local[TASK_NAMES.index(name)] = i
        self._local_index = local

    def _static(self) -> tuple:
        return (self.task_names, self.goal_observable, self.one_hot, self.max_steps)

    def __repr__(self) -> str:
        return f"Manipulation({', '.join(self.task_names)}; goal_observable={self.goal_observable})"

    @property
    def name(self) -> str:
        return self.task_names[0] + "-v3" if len(self.tasks) == 1 else f"manipulation-{len(self.tasks)}"

    # --- spaces and params -------------------------------------------------
    @property
    def obs_dim(self) -> int:
        return OBS_DIM + (len(self.tasks) if self.one_hot else 0)

    def action_space(self, params=None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (ACTION_DIM,), jnp.float32)

    def observation_space(self, params=None) -> spaces.Box:
        low, high = self._obs_bounds()
        return spaces.Box(jnp.asarray(low), jnp.asarray(high), (self.obs_dim,), jnp.float32)

    def _obs_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Meta-World's hand box and gripper range; a generous finite box (``OBJECT_BOUND``) elsewhere."""
        low = np.full(self.obs_dim, -OBJECT_BOUND, np.float32)
        high = np.full(self.obs_dim, OBJECT_BOUND, np.float32)
        for start in (0, world.FRAME):
            low[start:start + 3], high[start:start + 3] = world.OBS_HAND_LOW, world.OBS_HAND_HIGH
            low[start + 3], high[start + 3] = -1.0, 1.0
        if self.one_hot:
            low[OBS_DIM:], high[OBS_DIM:] = 0.0, 1.0
        return low, high

    def params_for(self, task: str, obj_init=None, goal=None) -> ManipParams:
        """The params of ``task``, the middle of its ranges unless given (numpy: usable inside ``jit``)."""
        spec = get_task(task)
        obj = np.add(spec.obj_low, spec.obj_high) / 2 if obj_init is None else np.asarray(obj_init)
        goal_low, goal_high = spec.goal_bounds()
        goal = np.add(goal_low, goal_high) / 2 if goal is None else np.asarray(goal)
        if spec.goal_offset is not None:
            goal = obj + np.asarray(spec.goal_offset)
        return ManipParams(np.int32(TASK_NAMES.index(spec.name)), obj.astype(np.float32), goal.astype(np.float32),
                           self.max_steps)

    @property
    def default_params(self) -> ManipParams:
        return self.params_for(self.task_names[0])

    @property
    def task_space(self) -> ManipulationTaskSpace:
        return ManipulationTaskSpace(self, self.default_params)

    # --- dispatch over the env's tasks ---------------------------------------
    def local_index(self, params: ManipParams) -> jax.Array:
        return jnp.asarray(self._local_index)[params.task_id]

    def _dispatch(self, run, params: ManipParams, *args):
        """``run(task, *args, params)`` for the params' task: one switch per call, cheap on class-grouped batches."""
        if len(self.tasks) == 1:
            return run(self.tasks[0], *args, params)
        branches = [lambda a, p, t=t: run(t, *a, p) for t in self.tasks]
        return grouped_switch(self.local_index(params), branches, args, params)

    # --- gymnax hooks --------------------------------------------------------
    def _frame(self, state: ManipState, objects: jax.Array) -> jax.Array:
        opening = world.opening_of(state.closure)
        return jnp.concatenate([state.hand, opening[None], objects]).astype(jnp.float32)

    def _obs(self, task, frame: jax.Array, prev_frame: jax.Array, params: ManipParams) -> jax.Array:
        goal = task.target(params) if self.goal_observable else jnp.zeros(3, jnp.float32)
        parts = [frame, prev_frame, goal.astype(jnp.float32)]
        if self.one_hot:
            parts.append(jax.nn.one_hot(self.local_index(params), len(self.tasks), dtype=jnp.float32))
        low, high = self._obs_bounds()
        return jnp.clip(jnp.concatenate(parts), low, high)  # Meta-World clips the observation too

    def _reset_task(self, task, params: ManipParams):
        state = task.reset_state(params)
        frame = self._frame(state, task.observe_objects(state, params))
        state = state.replace(prev_frame=frame)
        return self._obs(task, frame, frame, params), state

    def _step_task(self, task, state: ManipState, action, params: ManipParams):
        moved = world.move_arm(state, action)
        new = task.move_objects(state, moved, action, params)
        frame = self._frame(new, task.observe_objects(new, params))
        obs = self._obs(task, frame, state.prev_frame, params)
        return obs, new.replace(prev_frame=frame), task.reward(new, action, params), task.success(new, params)

    def reset_env(self, key, params: ManipParams):
        return self._dispatch(self._reset_task, params)

    def step_env(self, key, state: ManipState, action, params: ManipParams):
        action = jnp.asarray(action, jnp.float32)
        if action.shape != (ACTION_DIM,):
            raise ValueError(f"{self.name}: action must have shape ({ACTION_DIM},), got {tuple(action.shape)}")
        obs, new, reward, success = self._dispatch(self._step_task, params, state, action)
        succeeded = state.succeeded | success
        new = new.replace(time=state.time + 1, succeeded=succeeded)
        info = {"success": success, "episode_success": succeeded}
        return obs, new, jnp.clip(reward, 0.0, 10.0).astype(jnp.float32), jnp.zeros((), bool), info

    def is_truncated(self, state: ManipState, params: ManipParams) -> jax.Array:
        return state.time >= params.max_steps_in_episode

    def scripted_action(self, obs: jax.Array, params: ManipParams) -> jax.Array:
        """The task's scripted expert (Meta-World ships one per v3 task)."""
        return self._dispatch(lambda task, obs, p: task.scripted_action(obs, p), params, obs)
