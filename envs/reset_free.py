"""Reset-free (autonomous) RL: goal-conditioned envs and EARL's intervention protocol.

:class:`GoalEnv` is the base of a reset-free task. Its state carries the goal it is
pursuing (field ``goal``; forward and backward goals have one shape), so one agent can be
conditioned on either direction (RISC's forward / backward phases).

It is an ordinary gymnax env: ``step_env`` returns gymnax's **five** values
``obs, state, reward, terminated, info`` with ``terminated = is_success(next state)`` and
``info["success"]``; the episode horizon ``params.max_steps_in_episode`` (EARL's
evaluation horizon H_E) is reported by gymnax's ``is_truncated`` (``state.time >= H_E``),
and gymnax's own ``step`` returns the six values ``obs, state, reward, terminated,
truncated, info`` with auto-reset. So ``env.step``/``env.reset`` are the *episodic*
deployed-evaluation env (episodes from rho_0, ended by success, as RISC's
``early_terminal: true``, or by H_E). EARL's own envs never end an episode on success
(``done`` is always False there); call ``step_env`` directly for that behaviour.

:class:`ResetFree` is the training env: EARL's ``PersistentStateWrapper`` in pure JAX.
The inner env is never reset at its own episode end (neither success nor its horizon
resets it); an intervention (``reset_env``: a state from rho_0 with a fresh forward goal)
happens only every ``steps_per_intervention`` steps (EARL's H_T) or when the next state is
``irreversible``.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.core import Environment, StaticIdentity

# what ResetFree needs from its env
GOAL_ENV_METHODS = (
    "reset_env", "step_env", "get_obs", "forward_goal", "start_goal", "with_goal", "is_success", "irreversible",
    "transition",
)
_INT32_MAX = 2**31 - 1


class GoalEnv(Environment):
    """Base class of reset-free tasks: a gymnax env whose state has a ``goal`` field.

    Subclasses implement ``reset_env(key, params)`` (a state from rho_0 with a forward goal),
    ``transition(key, state, action, params)`` (the next state: ``time`` + 1, ``goal`` kept),
    ``forward_goal(key, params)`` (a goal from the task's goal distribution),
    ``start_goal(state, params)`` (the goal "return to ``state``": the backward goal after an
    intervention), ``is_success(state, params)``, ``get_obs`` (a float32 vector that includes
    the goal), ``observation_space``, ``action_space`` and ``default_params``; their state
    dataclass extends gymnax's ``EnvState`` (field ``time``) with ``goal``. The base class has
    no stand-ins for them: :class:`ResetFree` refuses an env that lacks one, naming it. The
    reward defaults to the sparse ``float(is_success(next state))``.
    """

    # the observation ends with this many entries that describe the goal (an agent that is not
    # goal-conditioned sees them zeroed); subclasses set it
    goal_obs_size: int | None = None

    # --- goals ----------------------------------------------------------------------
    def with_goal(self, state: Any, goal: jax.Array, params: Any) -> Any:
        """The same physical state pursuing ``goal``."""
        goal = jnp.asarray(goal)
        if goal.shape != state.goal.shape:
            raise ValueError(f"{self.name}: goal must have shape {state.goal.shape}, got {goal.shape}")
        return state.replace(goal=goal.astype(state.goal.dtype))

    def irreversible(self, state: Any, params: Any) -> jax.Array:
        """Whether ``state`` is one the agent cannot leave (then ResetFree intervenes)."""
        return jnp.asarray(False)

    # --- dynamics ---------------------------------------------------------------------
    def reward(self, state: Any, action: Any, next_state: Any, params: Any) -> jax.Array:
        """Sparse reward: 1.0 when ``next_state`` reaches its goal, else 0.0."""
        return self.is_success(next_state, params).astype(jnp.float32)

    def step_env(self, key: jax.Array, state: Any, action: Any, params: Any):
        """gymnax hook: ``obs, state, reward, terminated, info`` with terminated = success."""
        next_state = self.transition(key, state, action, params)
        success = jnp.asarray(self.is_success(next_state, params), jnp.bool_)
        reward = jnp.asarray(self.reward(state, action, next_state, params), jnp.float32)
        return self.get_obs(next_state, params), next_state, reward, success, {"success": success}


@struct.dataclass
class ResetFreeState:
    env: Any  # the inner env's state
    start: jax.Array  # start_goal of the state at the last intervention (the backward goal)
    since_intervention: jax.Array  # int32 steps since the last intervention
    interventions: jax.Array  # int32 interventions counted so far (rule: see ResetFree)
    steps: jax.Array  # int32 steps taken in total


def _select(pred, on_true, on_false):
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


class ResetFree(StaticIdentity):
    """EARL's persistent-state protocol: an intervention every ``steps_per_intervention`` steps.

    ``step(key, state, action, params) -> obs, state, reward, terminated, truncated, info``
    steps the inner env with ``step_env`` and never resets it at its own episode end.
    ``terminated`` is the success of the next state (before any intervention); the env
    keeps going from there. An intervention happens when ``since_intervention`` reaches
    ``steps_per_intervention`` or when the next state is ``irreversible``: the returned obs
    and state are then a fresh ``reset_env`` (a state from rho_0 with a new forward goal,
    as in gymnax's auto-reset) and ``truncated`` is True; truncated is never a terminal.

    ``info``: ``success`` (= terminated), ``intervened`` (= truncated), ``terminated``,
    ``truncated``, ``interventions`` (the count after this step), ``final_obs`` and its
    alias ``final_observation`` (the observation reached by this step, before any
    intervention: bootstrap from it), plus the inner env's info.

    Counting rule: EARL counts every reset, the first included. Here an intervention is
    counted when the first step is taken from its freshly reset state (``reset`` reports 0,
    the first ``step`` makes it 1). So T steps with interval H and no irreversible states
    cost exactly ceil(T/H) interventions: a run that stops at T = kH reports k (the reset
    made at step kH is counted only if a step is taken from it). The key of ``step`` is
    split like gymnax's: one half steps the env, the other draws the intervention's state.
    """

    def __init__(self, env: Any, steps_per_intervention: int):
        name = getattr(env, "name", type(env).__name__)
        missing = [m for m in GOAL_ENV_METHODS if not callable(getattr(env, m, None))]
        if missing:
            raise ValueError(
                f"ResetFree: {name} has no initial-state distribution or goal "
                f"(needs a GoalEnv; missing {', '.join(missing)})"
            )
        h = steps_per_intervention
        if isinstance(h, bool) or not isinstance(h, (int, np.integer)) or not 0 < h <= _INT32_MAX:
            raise ValueError(f"ResetFree: steps_per_intervention must be a positive int, got {h!r}")
        self.env = env
        self.steps_per_intervention = int(h)

    def _static(self) -> tuple:
        return (self.env, self.steps_per_intervention)

    def __repr__(self) -> str:
        return f"ResetFree({self.env!r}, steps_per_intervention={self.steps_per_intervention})"

    # --- delegation -------------------------------------------------------------------
    @property
    def name(self) -> str:
        return f"{self.env.name}-reset-free"

    @property
    def default_params(self) -> Any:
        return self.env.default_params

    @property
    def num_actions(self) -> int:
        return self.env.num_actions

    def action_space(self, params: Any = None):
        return self.env.action_space(params)

    def observation_space(self, params: Any = None):
        return self.env.observation_space(params)

    @property
    def unwrapped(self) -> Any:
        return getattr(self.env, "unwrapped", self.env)

    # --- API ---------------------------------------------------------------------------
    def reset(self, key: jax.Array, params: Any = None) -> tuple[jax.Array, ResetFreeState]:
        """The first intervention's state (counted when the first step is taken)."""
        return self._reset(key, self.default_params if params is None else params)

    def step(self, key: jax.Array, state: ResetFreeState, action: Any, params: Any = None):
        """``obs, state, reward, terminated, truncated, info``; see the class docstring."""
        return self._step(key, state, action, self.default_params if params is None else params)

    def set_goal(self, state: ResetFreeState, goal: jax.Array, params: Any = None):
        """``obs, state`` with the inner state pursuing ``goal`` (forward/backward switches)."""
        return self._set_goal(state, goal, self.default_params if params is None else params)

    @functools.partial(jax.jit, static_argnames=("self",))
    def _reset(self, key, params):
        obs, env_state = self.env.reset_env(key, params)
        zero = jnp.zeros((), jnp.int32)
        return obs, ResetFreeState(env_state, self.env.start_goal(env_state, params), zero, zero, zero)

    @functools.partial(jax.jit, static_argnames=("self",))
    def _step(self, key, state: ResetFreeState, action, params):
        key_step, key_reset = jax.random.split(key)
        obs_st, env_st, reward, terminated, info = self.env.step_env(key_step, state.env, action, params)
        terminated = jnp.asarray(terminated, jnp.bool_)
        interventions = state.interventions + (state.since_intervention == 0).astype(jnp.int32)
        since = state.since_intervention + 1
        intervened = (since >= self.steps_per_intervention) | jnp.asarray(self.env.irreversible(env_st, params))
        obs_re, env_re = self.env.reset_env(key_reset, params)
        new_state = ResetFreeState(
            env=_select(intervened, env_re, env_st),
            start=jnp.where(intervened, self.env.start_goal(env_re, params), state.start),
            since_intervention=jnp.where(intervened, 0, since).astype(jnp.int32),
            interventions=interventions,
            steps=state.steps + 1,
        )
        info = {
            **info,
            "success": terminated,
            "intervened": intervened,
            "terminated": terminated,
            "truncated": intervened,
            "interventions": interventions,
            "final_obs": obs_st,
            "final_observation": obs_st,
        }
        return _select(intervened, obs_re, obs_st), new_state, reward, terminated, intervened, info

    @functools.partial(jax.jit, static_argnames=("self",))
    def _set_goal(self, state: ResetFreeState, goal, params):
        env_state = self.env.with_goal(state.env, goal, params)
        return self.env.get_obs(env_state, params), state.replace(env=env_state)


__all__ = ["GOAL_ENV_METHODS", "GoalEnv", "ResetFree", "ResetFreeState"]
