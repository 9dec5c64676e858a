"""MuJoCo Playground's DM Control Suite tasks as gymnax-style envs whose task is ``params``.

Registers ``dmc-<Name>`` for every task of ``mujoco_playground``'s DM Control Suite (``dmc-CartpoleBalance``,
``dmc-CheetahRun``, ``dmc-WalkerWalk``, ...) where ``playground`` is installed (a default dependency). These
tasks ship their MJCF files inside the package, so nothing is fetched over the network (Playground's robot
locomotion and manipulation tasks download MuJoCo Menagerie assets and are not registered).

Playground computes the physics (MJX, with its pure-JAX ``impl="jax"`` pipeline so that ``jit`` and ``vmap`` work on
any backend), the reward and the observation; reset and the task are ours:

* physics vary per task under ``vmap``: the MJX model is rebuilt from the task's ``mass_scale`` (body masses and
  inertias), ``friction_scale``, ``gravity_scale`` and ``actuator_scale`` (actuator gears) inside the jitted step
  (Playground's own domain randomisation swaps the model the same way);
* episodes last ``max_steps_in_episode`` steps (the suite's 1000 by default) and end early only when MJX reports
  a non-finite state (Playground's ``done``).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from envs.brax_adapter import PHYSICS
from envs.continuous_control import ContinuousControlEnv
from envs.quiet import silenced
from envs.registry import register
from envs.task_space import Field, TaskSpace

# mujoco_playground.dm_control_suite.ALL_ENVS (playground 0.2), listed so that registering needs no import
DM_CONTROL_TASKS = (
    "AcrobotSwingup", "AcrobotSwingupSparse", "BallInCup", "CartpoleBalance", "CartpoleBalanceSparse",
    "CartpoleSwingup", "CartpoleSwingupSparse", "CheetahRun", "FingerSpin", "FingerTurnEasy", "FingerTurnHard",
    "FishSwim", "HopperHop", "HopperStand", "HumanoidRun", "HumanoidStand", "HumanoidWalk", "PendulumSwingup",
    "PointMass", "ReacherEasy", "ReacherHard", "SwimmerSwimmer6", "WalkerRun", "WalkerStand", "WalkerWalk",
)


@struct.dataclass
class PlaygroundParams:
    max_steps_in_episode: int = 1000
    mass_scale: float = 1.0
    friction_scale: float = 1.0
    gravity_scale: float = 1.0
    actuator_scale: float = 1.0


@struct.dataclass
class PlaygroundState:
    inner: Any  # Playground's State: MJX data, observation, reward, done, metrics, info
    time: int


def _load(task: str) -> Any:
    """Playground's env with the pure-JAX MJX pipeline (``impl="jax"``), loaded quietly."""
    with silenced():
        from mujoco_playground import registry

        return registry.dm_control_suite.load(task, config_overrides={"impl": "jax"})


class PlaygroundEnv(ContinuousControlEnv):
    """One DM Control Suite task of MuJoCo Playground as a metarl ``Environment`` (see module docstring)."""

    check_task_overrides = True  # envs.make refuses physics outside the task space

    def __init__(self, task: str):
        super().__init__()
        if task not in DM_CONTROL_TASKS:
            raise ValueError(f"unknown DM Control Suite task {task!r}")
        self.task = task
        self._env = _load(task)
        self._model = self._env.mjx_model
        self._set_sizes(self._env.action_size)

    @property
    def name(self) -> str:
        return f"dmc-{self.task}"

    @property
    def default_params(self) -> PlaygroundParams:
        return PlaygroundParams(max_steps_in_episode=int(self._env._config.episode_length))

    @property
    def task_space(self) -> TaskSpace:
        return TaskSpace(self.default_params, [Field(name, low, high) for name, low, high in PHYSICS], name=self.name)

    def model(self, params: PlaygroundParams) -> Any:
        """The MJX model of one task: masses/inertias, friction, gravity and actuator gears scaled."""
        m = self._model
        return m.replace(
            body_mass=m.body_mass * params.mass_scale,
            body_inertia=m.body_inertia * params.mass_scale,
            geom_friction=m.geom_friction * params.friction_scale,
            opt=m.opt.replace(gravity=m.opt.gravity * params.gravity_scale),
            actuator_gear=m.actuator_gear * params.actuator_scale,
        )

    @contextlib.contextmanager
    def _physics_of(self, params: PlaygroundParams):
        # Playground's envs read ``self._mjx_model`` while they are traced: the task's model for this trace only
        self._env._mjx_model = self.model(params)
        try:
            yield self._env
        finally:
            self._env._mjx_model = self._model

    def reset_env(self, key: jax.Array, params: PlaygroundParams):
        with self._physics_of(params) as env:
            inner = env.reset(key)
        return inner.obs.astype(jnp.float32), PlaygroundState(inner=inner, time=jnp.int32(0))

    def step_env(self, key: jax.Array, state: PlaygroundState, action: jax.Array, params: PlaygroundParams):
        action = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
        with self._physics_of(params) as env:
            inner = env.step(state.inner, action)
        terminated = inner.done > 0
        new_state = PlaygroundState(inner=inner, time=state.time + 1)
        return inner.obs.astype(jnp.float32), new_state, inner.reward.astype(jnp.float32), terminated, {}


@functools.lru_cache(maxsize=None)
def _cached_env(task: str) -> PlaygroundEnv:
    return PlaygroundEnv(task)  # one object per task and process: jitted functions of it compile once


def _factory(task: str):
    env = _cached_env(task)
    return env, env.default_params


def register_playground() -> bool:
    """Register the DM Control Suite tasks if ``mujoco_playground`` is installed; returns whether it did."""
    if importlib.util.find_spec("mujoco_playground") is None:
        return False
    for task in DM_CONTROL_TASKS:
        register(f"dmc-{task}", functools.partial(_factory, task), overwrite=True)
    return True


register_playground()
