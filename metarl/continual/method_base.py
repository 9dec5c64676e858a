"""What a continual-learning method is: an object with hooks, registered by name.

The runner (:mod:`metarl.continual.runner`) calls every method the same way;
a method overrides only the hooks it needs (the defaults do nothing, which is
plain fine-tuning):

* ``transforms(ctx) -> [optax transforms]`` — chained after the gradient-norm
  probe and before Adam (gradient-side regularisers: L2, EWC, replay cloning);
* ``init(ctx, state) -> (state, method_state)`` — once per run, after PPO's init;
* ``loss_extra(ctx, params, batch, method_state) -> scalar | None`` — added to
  every PPO minibatch loss (clipped together with PPO's gradient);
* ``after_update(ctx, state, method_state, step) -> (state, method_state, log)``
  — after every PPO update; ``log`` is ``{"fired", "units"}`` (float32 scalars);
* ``on_task_switch(ctx, state, method_state, switch) -> (state, method_state, fired)``
  — at every switch, before the envs move to the next task.

All hooks are traced inside the runner's jitted programs (vmapped over seeds),
so conditions on traced values use ``lax.cond`` / ``jnp.where``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import struct

from metarl.agents import networks
from metarl.agents.env_spec import EnvSpec
from metarl.agents.ppo_config import PPOConfig
from metarl.agents.ppo_policy import observe

NETS = ("actor", "critic")


@dataclasses.dataclass(frozen=True, eq=False)
class MethodContext:
    """The agent facts methods need: network shapes and how the networks see observations."""

    agent_cfg: PPOConfig
    spec: EnvSpec
    replay_per_task: int  # states offered to a replay buffer at each task end

    def fresh(self, key: jax.Array) -> Any:
        """A new draw of the whole actor-critic from its initialiser."""
        cfg = self.agent_cfg
        # networks takes an (actor, critic) key pair
        return networks.init_actor_critic(
            jax.random.split(key), self.spec.obs_dim, self.spec.action_dim, cfg.hidden_sizes, self.spec.continuous
        )

    def observe(self, state: Any, obs: jax.Array) -> jax.Array:
        """Raw flat observations as the networks see them (the run's normalisation)."""
        return observe(state.obs_rms, obs, self.agent_cfg.normalize_obs)

    def hiddens(self, params: Any, obs: jax.Array) -> dict[str, list[jax.Array]]:
        """Hidden activations of actor and critic on ``obs`` (any leading shape)."""
        obs = obs.reshape(-1, self.spec.obs_dim)
        return {net: networks.apply_mlp(params[net], obs, self.agent_cfg.activation)[1] for net in NETS}


@struct.dataclass
class UpdateStep:
    """Passed to ``after_update``."""

    index: jax.Array  # () int32, updates done so far (this one included)
    key: jax.Array
    recent_obs: jax.Array  # [rollouts * num_envs, obs_dim] recent observations, as the networks see them


@struct.dataclass
class TaskSwitch:
    """Passed to ``on_task_switch``."""

    key: jax.Array
    happened: jax.Array  # () bool: a task ended (False at the start of the stream)
    finished_task: jax.Array  # () int32, the task trained until now
    recent_obs: jax.Array  # [rollouts * num_envs, obs_dim] its recent observations, as the networks see them


def quiet_log() -> dict[str, jax.Array]:
    return {"fired": jnp.zeros((), jnp.float32), "units": jnp.zeros((), jnp.float32)}


class Method:
    """Plain fine-tuning: every hook does nothing. Subclass and override.

    ``cfg`` is the run's :class:`metarl.continual.methods.MethodConfig`.
    """

    name: ClassVar[str] = ""

    def __init__(self, cfg: Any):
        self.cfg = cfg

    @classmethod
    def validate(cls, cfg: Any) -> None:
        """Checks of this method's settings beyond :meth:`MethodConfig.validate`."""

    def check_agent(self, agent_cfg: PPOConfig) -> None:
        """Raise ``ValueError`` if the method cannot work with this agent."""

    def transforms(self, ctx: MethodContext) -> list:
        return []

    def init(self, ctx: MethodContext, state: Any) -> tuple[Any, Any]:
        return state, None

    def loss_extra(self, ctx: MethodContext, params: Any, batch: Any, method_state: Any) -> jax.Array | None:
        return None

    def after_update(self, ctx: MethodContext, state: Any, method_state: Any, step: UpdateStep):
        return state, method_state, quiet_log()

    def on_task_switch(self, ctx: MethodContext, state: Any, method_state: Any, switch: TaskSwitch):
        return state, method_state, jnp.zeros((), jnp.float32)


_REGISTRY: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: make ``cls`` available as ``method=<cls.name>``."""
    if not cls.name or cls.name in _REGISTRY:
        raise ValueError(f"method class {cls.__name__} needs a new, non-empty name (got {cls.name!r})")
    _REGISTRY[cls.name] = cls
    return cls


def registered() -> dict[str, type[Method]]:
    """``{name: class}`` of every registered method, in registration order."""
    return dict(_REGISTRY)


@register
class Finetune(Method):
    """Keep training the same network on every task (the baseline)."""

    name = "finetune"


@register
class PackNet(Method):
    """PackNet runs in the SAC runner (:mod:`metarl.continual.sac_runner`, Continual World's streams); this entry
    names it for ``method=packnet`` and refuses PPO."""

    name = "packnet"

    def check_agent(self, agent_cfg: PPOConfig) -> None:
        raise ValueError("method=packnet runs with SAC benchmarks (benchmark=cw10, cw20); not with PPO")
