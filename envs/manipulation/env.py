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
over the env's tasks, so a ``vmap`` batch may mix them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.core import Environment, StaticIdentity, spaces
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

    def _dispatch(self, method: str, params: ManipParams, *args):
        if len(self.tasks) == 1:
            return getattr(self.tasks[0], method)(*args, params)
        branches = [getattr(task, method) for task in self.tasks]
        index = jnp.clip(self.local_index(params), 0, len(self.tasks) - 1)
        return jax.lax.switch(index, [lambda a, p, f=f: f(*a, p) for f in branches], args, params)

    def _task_step(self, prev, state, action, params):
        task = self.tasks[0] if len(self.tasks) == 1 else None

        def one(t, prev, state, action, params):
            state = t.move_objects(prev, state, action, params)
            return state, t.observe_objects(state, params), t.reward(state, action, params), t.success(state, params)

        if task is not None:
            return one(task, prev, state, action, params)
        index = jnp.clip(self.local_index(params), 0, len(self.tasks) - 1)
        branches = [lambda p, s, a, q, t=t: one(t, p, s, a, q) for t in self.tasks]
        return jax.lax.switch(index, branches, prev, state, action, params)

    # --- gymnax hooks --------------------------------------------------------
    def _frame(self, state: ManipState, objects: jax.Array) -> jax.Array:
        opening = world.opening_of(state.closure)
        return jnp.concatenate([state.hand, opening[None], objects]).astype(jnp.float32)

    def _obs(self, frame: jax.Array, prev_frame: jax.Array, params: ManipParams) -> jax.Array:
        goal = self._dispatch("target", params) if self.goal_observable else jnp.zeros(3, jnp.float32)
        parts = [frame, prev_frame, goal.astype(jnp.float32)]
        if self.one_hot:
            parts.append(jax.nn.one_hot(self.local_index(params), len(self.tasks), dtype=jnp.float32))
        low, high = self._obs_bounds()
        return jnp.clip(jnp.concatenate(parts), low, high)  # Meta-World clips the observation too

    def reset_env(self, key, params: ManipParams):
        state = self._dispatch("reset_state", params)
        frame = self._frame(state, self._dispatch("observe_objects", params, state))
        state = state.replace(prev_frame=frame)
        return self._obs(frame, frame, params), state

    def step_env(self, key, state: ManipState, action, params: ManipParams):
        action = jnp.asarray(action, jnp.float32)
        if action.shape != (ACTION_DIM,):
            raise ValueError(f"{self.name}: action must have shape ({ACTION_DIM},), got {tuple(action.shape)}")
        moved = world.move_arm(state, action)
        new, objects, reward, success = self._task_step(state, moved, action, params)
        frame = self._frame(new, objects)
        obs = self._obs(frame, state.prev_frame, params)
        succeeded = state.succeeded | success
        new = new.replace(time=state.time + 1, prev_frame=frame, succeeded=succeeded)
        info = {"success": success, "episode_success": succeeded}
        return obs, new, jnp.clip(reward, 0.0, 10.0).astype(jnp.float32), jnp.zeros((), bool), info

    def is_truncated(self, state: ManipState, params: ManipParams) -> jax.Array:
        return state.time >= params.max_steps_in_episode

    def scripted_action(self, obs: jax.Array, params: ManipParams) -> jax.Array:
        """The task's scripted expert (Meta-World ships one per v3 task)."""
        return self._dispatch("scripted_action", params, obs)
