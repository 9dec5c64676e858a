"""Brax locomotion, reaching and balancing as gymnax-style envs whose task is ``params``.

Registers ``brax-ant``, ``brax-halfcheetah``, ``brax-hopper``, ``brax-walker2d``,
``brax-reacher`` and ``brax-inverted_pendulum`` (brax is a default dependency;
the registration is skipped where it is not installed). Their configs are
``configs/env/brax/*.yaml``.

Brax itself is used only for the physical system (``sys``), its physics
pipeline and the observation function. Reset and step are ours, so that

* every ``reset`` builds the state from the params it is given: brax's own
  ``AutoResetWrapper`` restores a state cached at the first reset, which would
  keep the old task after a teacher switches it;
* physics vary per task under ``vmap``: the system is rebuilt from the task's
  ``mass_scale`` (link masses and inertias), ``friction_scale`` (geom
  friction), ``gravity_scale`` and ``actuator_scale`` (every actuator's gear,
  i.e. its strength) inside the jitted step, so a batch of envs can all differ;
* one env object per (kind, backend, goal) and process: ``envs.make`` returns
  the same object, so jitted functions of it are traced and compiled once.

Task fields:
    locomotion (ant, halfcheetah, hopper, walker2d), ``goal="direction"`` (default):
        ``direction`` - ant: heading angle in radians, reward for velocity along
        it (0 = brax's +x task); planar runners: signed weight of the forward
        velocity (1 = brax's task, -1 = run backwards as in HalfCheetah-Dir).
    locomotion, ``goal="velocity"`` (a constructor keyword):
        ``target_velocity`` in [0, 3] m/s; the velocity term becomes
        ``-|v - target_velocity|`` (HalfCheetah-Vel).
    reacher: ``target`` (x, y) of the goal, inside a disc of radius 0.2.
    inverted_pendulum: physics only (+1 per step while the pole is within 0.2 rad).
    all: ``mass_scale``, ``friction_scale`` in [0.5, 2]; ``gravity_scale``,
    ``actuator_scale`` in [0.5, 1.5].
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.util
import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from envs.continuous_control import ContinuousControlEnv
from envs.quiet import silenced
from envs.registry import register
from envs.task_space import Field, TaskSpace

BRAX_NAMES = {
    "brax-ant": "ant",
    "brax-halfcheetah": "halfcheetah",
    "brax-hopper": "hopper",
    "brax-walker2d": "walker2d",
    "brax-reacher": "reacher",
    "brax-inverted_pendulum": "inverted_pendulum",
}
PLANAR = ("halfcheetah", "hopper", "walker2d")
GOALS = ("direction", "velocity")
BACKENDS = ("generalized", "positional", "spring")
REACHER_RADIUS = 0.2
PHYSICS = (("mass_scale", 0.5, 2.0), ("friction_scale", 0.5, 2.0), ("gravity_scale", 0.5, 1.5),
           ("actuator_scale", 0.5, 1.5))
POLE_LIMIT = 0.2  # rad: brax's inverted pendulum ends its episode beyond this angle


@struct.dataclass
class BraxParams:
    max_steps_in_episode: int = 1000
    mass_scale: float = 1.0
    friction_scale: float = 1.0
    gravity_scale: float = 1.0
    actuator_scale: float = 1.0
    direction: float = 0.0
    target_velocity: float = 1.0
    target: jax.Array = dataclasses.field(default_factory=lambda: jnp.array([0.1, 0.0], jnp.float32))


@struct.dataclass
class BraxState:
    pipeline_state: Any
    time: int


@dataclasses.dataclass(frozen=True)
class RewardSpec:
    """Reward and termination constants, read from the brax env of the same name."""

    forward_weight: float = 1.0
    ctrl_weight: float = 0.0
    healthy_reward: float = 0.0
    terminate_when_unhealthy: bool = False
    healthy_z: tuple[float, float] | None = None
    healthy_angle: tuple[float, float] | None = None
    healthy_state: tuple[float, float] | None = None
    reset_noise: float = 0.1
    normal_qd_noise: bool = True  # ant and halfcheetah draw qd from N(0, noise); others U(-noise, noise)
    scale_action: bool = False  # map [-1, 1] onto the actuators' control range (the pendulum's is [-3, 3])


def _spec_from(brax_env: Any, kind: str) -> RewardSpec:
    get = functools.partial(getattr, brax_env)
    if kind == "reacher":
        return RewardSpec(ctrl_weight=1.0)
    if kind == "inverted_pendulum":
        return RewardSpec(healthy_reward=1.0, terminate_when_unhealthy=True, reset_noise=0.01,
                          normal_qd_noise=False, scale_action=True)
    return RewardSpec(
        forward_weight=float(get("_forward_reward_weight", 1.0)),
        ctrl_weight=float(get("_ctrl_cost_weight")),
        healthy_reward=float(get("_healthy_reward", 0.0)),
        terminate_when_unhealthy=bool(get("_terminate_when_unhealthy", False)),
        healthy_z=tuple(get("_healthy_z_range", ())) or None,
        healthy_angle=tuple(get("_healthy_angle_range", ())) or None,
        healthy_state=tuple(get("_healthy_state_range", ())) or None,
        reset_noise=float(get("_reset_noise_scale")),
        normal_qd_noise=kind in ("ant", "halfcheetah"),
    )


def velocity_reward(velocity_xy: jax.Array, params: BraxParams, kind: str, goal: str) -> jax.Array:
    """The task-dependent velocity term (before ``forward_weight``)."""
    if kind in PLANAR:
        along = velocity_xy[0]
        if goal == "direction":
            return params.direction * along
    else:
        heading = jnp.stack([jnp.cos(params.direction), jnp.sin(params.direction)])
        along = jnp.dot(velocity_xy, heading)
        if goal == "direction":
            return along
    return -jnp.abs(along - params.target_velocity)


def is_healthy(spec: RewardSpec, pipeline_state: Any, kind: str) -> jax.Array:
    ok = jnp.array(True)
    z = pipeline_state.x.pos[0, 2]
    if spec.healthy_z is not None:
        ok &= (z > spec.healthy_z[0]) & (z < spec.healthy_z[1])
    if spec.healthy_angle is not None:
        angle = pipeline_state.q[2]
        ok &= (angle > spec.healthy_angle[0]) & (angle < spec.healthy_angle[1])
    if spec.healthy_state is not None:
        state_vec = jnp.concatenate([pipeline_state.q[2:], pipeline_state.qd])
        ok &= jnp.all((state_vec > spec.healthy_state[0]) & (state_vec < spec.healthy_state[1]))
    return ok


class BraxEnv(ContinuousControlEnv):
    """One brax system as a metarl ``Environment`` (see module docstring).

    Args:
        kind: ``ant``, ``halfcheetah``, ``hopper``, ``walker2d``, ``reacher`` or ``inverted_pendulum``.
        backend: brax physics pipeline (``generalized``, ``positional``, ``spring``).
        goal: ``direction`` or ``velocity`` (locomotion only).
    """

    check_task_overrides = True  # envs.make refuses physics or goals outside the task space

    def __init__(self, kind: str, backend: str = "generalized", goal: str = "direction"):
        super().__init__()
        if goal not in GOALS:
            raise ValueError(f"goal must be one of {GOALS}, got {goal!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.kind, self.backend, self.goal = kind, backend, goal
        self._brax = _load_brax_env(kind, backend)
        self._pipeline = importlib.import_module(f"brax.{backend}.pipeline")
        self._sys = self._brax.sys
        self._n_frames = int(self._brax._n_frames)
        self._dt = float(self._sys.opt.timestep) * self._n_frames
        self.spec = _spec_from(self._brax, kind)
        self._set_sizes(self._brax.action_size)

    # --- description -------------------------------------------------------
    @property
    def name(self) -> str:
        return f"brax-{self.kind}"

    @property
    def default_params(self) -> BraxParams:
        if self.kind in PLANAR and self.goal == "direction":
            return BraxParams(direction=1.0)  # brax's run-forward task
        return BraxParams()

    @property
    def task_space(self) -> TaskSpace:
        fields = [Field(name, low, high) for name, low, high in PHYSICS] + self._goal_fields()
        sampler = self._sample_reacher_task if self.kind == "reacher" else None
        return TaskSpace(self.default_params, fields, sampler=sampler, name=self.name)

    def _goal_fields(self) -> list[Field]:
        if self.kind == "reacher":
            return [Field("target", -REACHER_RADIUS, REACHER_RADIUS, shape=(2,))]
        if self.kind == "inverted_pendulum":
            return []  # a balancing task: physics only
        if self.goal == "velocity":
            return [Field("target_velocity", 0.0, 3.0)]
        if self.kind in PLANAR:
            return [Field("direction", -1.0, 1.0)]
        return [Field("direction", -math.pi, math.pi)]

    def _sample_reacher_task(self, key: jax.Array) -> BraxParams:
        k_physics, k_dist, k_ang = jax.random.split(key, 3)
        physics = {name: jax.random.uniform(k, minval=low, maxval=high)
                   for (name, low, high), k in zip(PHYSICS, jax.random.split(k_physics, len(PHYSICS)))}
        # uniform over the disc (sqrt of a uniform radius)
        radius = REACHER_RADIUS * jnp.sqrt(jax.random.uniform(k_dist))
        angle = 2 * jnp.pi * jax.random.uniform(k_ang)
        return self.default_params.replace(
            **physics, target=jnp.stack([radius * jnp.cos(angle), radius * jnp.sin(angle)]).astype(jnp.float32)
        )

    # --- physics -------------------------------------------------------------
    def system(self, params: BraxParams):
        """The brax system of one task: masses/inertias, friction, gravity and actuator gears scaled."""
        sys = self._sys
        inertia = sys.link.inertia
        inertia = inertia.replace(mass=inertia.mass * params.mass_scale, i=inertia.i * params.mass_scale)
        return sys.replace(
            link=sys.link.replace(inertia=inertia),
            body_mass=sys.body_mass * params.mass_scale,
            body_inertia=sys.body_inertia * params.mass_scale,
            geom_friction=sys.geom_friction * params.friction_scale,
            gravity=sys.gravity * params.gravity_scale,
            actuator=sys.actuator.replace(gear=sys.actuator.gear * params.actuator_scale),
        )

    def reset_env(self, key: jax.Array, params: BraxParams):
        sys = self.system(params)
        k_q, k_qd = jax.random.split(key)
        noise = self.spec.reset_noise
        q = sys.init_q + jax.random.uniform(k_q, (sys.q_size(),), minval=-noise, maxval=noise)
        if self.spec.normal_qd_noise:
            qd = noise * jax.random.normal(k_qd, (sys.qd_size(),))
        else:
            qd = jax.random.uniform(k_qd, (sys.qd_size(),), minval=-noise, maxval=noise)
        if self.kind == "reacher":
            # the last two q are the target's slide joints: the task's goal, at rest
            qd = jax.random.uniform(k_qd, (sys.qd_size(),), minval=-0.005, maxval=0.005)
            q = q.at[2:].set(params.target)
            qd = qd.at[2:].set(0.0)
        pipeline_state = self._pipeline.init(sys, q, qd)
        state = BraxState(pipeline_state=pipeline_state, time=jnp.int32(0))
        return self._obs(pipeline_state), state

    def step_env(self, key: jax.Array, state: BraxState, action: jax.Array, params: BraxParams):
        sys = self.system(params)
        action = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
        if self.spec.scale_action:
            low, high = sys.actuator.ctrl_range[:, 0], sys.actuator.ctrl_range[:, 1]
            action = (action + 1) * (high - low) * 0.5 + low
        before = state.pipeline_state

        def frame(ps, _):
            return self._pipeline.step(sys, ps, action), None

        after, _ = jax.lax.scan(frame, before, (), self._n_frames)
        ctrl_cost = self.spec.ctrl_weight * jnp.sum(jnp.square(action))
        obs = self._obs(after)
        if self.kind == "reacher":
            reward = -jnp.linalg.norm(obs[-3:]) - ctrl_cost
            terminated = jnp.array(False)
        elif self.kind == "inverted_pendulum":
            reward = jnp.float32(self.spec.healthy_reward)
            terminated = jnp.abs(after.q[1]) > POLE_LIMIT
        else:
            velocity = (after.x.pos[0, :2] - before.x.pos[0, :2]) / self._dt
            healthy = is_healthy(self.spec, after, self.kind)
            reward = (
                self.spec.forward_weight * velocity_reward(velocity, params, self.kind, self.goal)
                + self.spec.healthy_reward
                - ctrl_cost
            )
            terminated = jnp.logical_and(self.spec.terminate_when_unhealthy, ~healthy)
        new_state = BraxState(pipeline_state=after, time=state.time + 1)
        info = {"x_position": after.x.pos[0, 0]}
        return obs, new_state, reward.astype(jnp.float32), terminated, info

    def _obs(self, pipeline_state) -> jax.Array:
        # brax's observation functions read only the pipeline state
        return self._brax._get_obs(pipeline_state).astype(jnp.float32)


def _load_brax_env(kind: str, backend: str) -> Any:
    """brax's env, quietly (:func:`envs.quiet.silenced`; brax also warns on every system it loads that it is in
    maintenance mode)."""
    with silenced("Brax System, piplines and environments are not actively"):
        from brax import envs as brax_envs

        return brax_envs.get_environment(kind, backend=backend)


@functools.lru_cache(maxsize=None)
def _cached_env(kind: str, backend: str, goal: str) -> BraxEnv:
    return BraxEnv(kind, backend=backend, goal=goal)


def _factory(kind: str, backend: str = "generalized", goal: str = "direction"):
    env = _cached_env(kind, backend, goal)
    return env, env.default_params


def register_brax() -> bool:
    """Register the brax envs if brax imports; returns whether it did."""
    # find_spec rather than import: importing brax takes seconds; BraxEnv imports it on use
    if importlib.util.find_spec("brax") is None:
        return False
    for name, kind in BRAX_NAMES.items():
        register(name, functools.partial(_factory, kind), overwrite=True)
    return True


register_brax()
