"""SAC's settings: a frozen dataclass whose fields declare what they accept (one-line errors).

One SAC *update* collects ``steps_per_update`` steps in each of ``num_envs``
envs (``num_envs * steps_per_update`` transitions into the replay buffer),
then takes ``gradient_steps`` gradient steps on minibatches of ``batch_size``
transitions drawn uniformly from the buffer. The update-to-data ratio (UTD:
gradient steps per env step) is therefore

    utd = gradient_steps / (num_envs * steps_per_update)

(the paper's setting is 1: one gradient step per env step). Before
``learning_starts`` env steps the actions are uniform over the action box and
no gradient step is taken.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from metarl.agents import networks
from metarl.agents.env_spec import batched_params, env_name, is_continuous
from metarl.config import check_fields, option


@dataclasses.dataclass(frozen=True)
class SACConfig:
    """Haarnoja et al. (2018) SAC: twin critics, learned temperature, tanh-Gaussian actor.

    Defaults follow the paper (Adam 3e-4, batch 256, 256x256 ReLU nets,
    tau 0.005, gamma 0.99, target entropy -|A|, UTD 1) with 4 envs x 64 steps
    per update. Each field is checked on construction; :meth:`validate` adds
    the checks that involve several fields or the environment.
    """

    lr: float = option(3e-4, gt=0)  # actor (and critic/alpha unless set below)
    critic_lr: float | None = option(None, gt=0)  # null: lr
    alpha_lr: float | None = option(None, gt=0)  # null: lr
    num_envs: int = option(4, gt=0)
    total_timesteps: int = option(1_000_000, gt=0)  # env steps over all envs
    buffer_size: int = option(1_000_000, gt=0)  # transitions kept (ring buffer)
    batch_size: int = option(256, gt=0)  # transitions per gradient step
    learning_starts: int = option(5_000, ge=0)  # env steps of uniform-random actions before learning
    steps_per_update: int = option(64, gt=0)  # env steps per env per update
    gradient_steps: int = option(256, gt=0)  # gradient steps per update (UTD: see module docstring)
    gamma: float = option(0.99, ge=0, le=1)
    tau: float = option(0.005, gt=0, le=1)  # Polyak rate of the target critics
    init_alpha: float = option(1.0, gt=0)  # initial temperature
    target_entropy: float | None = None  # null: -|A| (the paper's heuristic)
    hidden_sizes: tuple[int, ...] = option((256, 256), gt=0)
    activation: str = option("relu", choices=tuple(networks.ACTIVATIONS))
    layer_norm: bool = False  # LayerNorm after each hidden layer (actor and critics)
    reward_scale: float = option(1.0, gt=0)  # rewards are multiplied by this in the critic target
    max_grad_norm: float = 0.0  # <= 0 disables global-norm clipping (the paper clips nothing)
    # H > 0: the observation ends with an H-way one-hot task id that picks the actor's and critics' output
    # head and is not a network input (Continual World's multi-head SAC); 0: one head
    task_heads: int = option(0, ge=0)
    # U > 0: after every U-th update (once learning has started) the whole learner starts afresh — actor, critics,
    # target critics, temperature and their optimizers — while the replay buffer and the envs carry on (Nikishin et
    # al. 2022, "The Primacy Bias in Deep RL", which re-creates the SAC agent); 0: never
    reset_every: int = option(0, ge=0)
    # acting noise: the policy's N(0, 1) draws while it collects data come from sequences with power spectrum
    # 1/f^noise_exponent (metarl.agents.colored_noise): 0 i.i.d. (the paper's SAC), 1 pink (Eberhard et al. 2023),
    # 2 red; one sequence per env and action entry, drawn afresh when the env's episode ends or after noise_horizon
    # steps. Learning and greedy evaluation are unchanged.
    noise_exponent: float = option(0.0, ge=0)
    noise_horizon: int | None = option(None, ge=2)  # null: the env's max_steps_in_episode (1000 if it has none)
    eval_every: int = option(0, ge=0)  # updates between greedy evaluations; 0 disables
    eval_episodes: int = option(10, gt=0)  # greedy episodes per evaluation task

    def __post_init__(self):
        check_fields(self)
        if not self.hidden_sizes:
            raise ValueError("SACConfig.hidden_sizes must list at least one layer size")

    @property
    def steps_per_iteration(self) -> int:
        """Env steps of one update over all envs."""
        return self.num_envs * self.steps_per_update

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.steps_per_iteration

    @property
    def update_to_data(self) -> float:
        """Gradient steps per env step."""
        return self.gradient_steps / self.steps_per_iteration

    @property
    def learning_starts_update(self) -> int:
        """Index of the first update that takes gradient steps (its data brings the count to ``learning_starts``)."""
        return max(0, math.ceil(self.learning_starts / self.steps_per_iteration) - 1)

    @property
    def colored_noise(self) -> bool:
        """Whether acting draws temporally correlated noise (``noise_exponent > 0``)."""
        return self.noise_exponent > 0

    def resolved_noise_horizon(self, env_params: Any = None) -> int:
        """Length of one acting-noise sequence: ``noise_horizon``, else the env's episode length, else 1000."""
        if self.noise_horizon is not None:
            return self.noise_horizon
        steps = getattr(env_params, "max_steps_in_episode", None)
        return max(2, int(np.max(np.asarray(steps)))) if steps is not None else 1000

    def resolved(self, lr_of: str) -> float:
        """The learning rate of ``"actor"``, ``"critic"`` or ``"alpha"``."""
        own = {"actor": None, "critic": self.critic_lr, "alpha": self.alpha_lr}[lr_of]
        return self.lr if own is None else own

    def validate(self, env: Any = None, env_params: Any = None, prefix: str = "agent") -> None:
        """Raise ``ValueError`` naming ``<prefix>.<field>`` for settings that do not fit together or the env."""
        if env is not None and not is_continuous(env):
            raise ValueError(f"{prefix}.name=sac needs a continuous (Box) action space; {env_name(env)} is discrete "
                             "(use agent=ppo)")
        if self.batch_size > self.buffer_size:
            raise ValueError(f"{prefix}.batch_size={self.batch_size} is larger than {prefix}.buffer_size="
                             f"{self.buffer_size}")
        if self.steps_per_iteration > self.buffer_size:
            raise ValueError(f"{prefix}.buffer_size={self.buffer_size} is smaller than one update's data "
                             f"(num_envs*steps_per_update={self.steps_per_iteration})")
        if self.total_timesteps < self.steps_per_iteration:
            raise ValueError(f"{prefix}.total_timesteps={self.total_timesteps} is less than one update "
                             f"(num_envs*steps_per_update={self.steps_per_iteration})")
        if self.learning_starts > self.num_updates * self.steps_per_iteration:
            raise ValueError(f"{prefix}.learning_starts={self.learning_starts} is more than the "
                             f"{self.num_updates * self.steps_per_iteration} env steps of the run: "
                             "SAC would never learn")
        if env is not None and self.task_heads:
            obs_dim = int(np.prod(env.observation_space(env_params if env_params is not None
                                                        else env.default_params).shape))
            if obs_dim <= self.task_heads:
                raise ValueError(f"{prefix}.task_heads={self.task_heads} needs an observation longer than the "
                                 f"one-hot; {env_name(env)}'s has {obs_dim} entries")
        if env is not None and env_params is not None:
            batched_params(env, env_params, self.num_envs)
