"""PPO's settings: a frozen dataclass whose fields declare what they accept (one-line errors)."""

from __future__ import annotations

import dataclasses
from typing import Any

from metarl.agents import networks
from metarl.agents.env_spec import batched_params, env_name, is_continuous
from metarl.config import check_fields, option

ACTION_DISTS = ("auto", "categorical", "gaussian")
TASK_RESAMPLE = ("rollout", "episode")
TEACHER_SCORES = ("pvl", "gae_abs")


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """PureJaxRL-style settings; defaults are its CartPole-v1 configuration.

    Each field is checked on construction (:func:`metarl.config.check_fields`):
    its type, finiteness and declared range or choices. :meth:`validate` adds
    the checks that involve several fields or the environment.
    """

    lr: float = option(2.5e-4, gt=0)
    num_envs: int = option(4, gt=0)
    num_steps: int = option(128, gt=0)
    total_timesteps: int = option(500_000, gt=0)  # YAML gives 1e6 as a float; integral floats are accepted
    update_epochs: int = option(4, gt=0)
    num_minibatches: int = option(4, gt=0)
    gamma: float = option(0.99, ge=0, le=1)
    gae_lambda: float = option(0.95, ge=0, le=1)
    clip_eps: float = option(0.2, gt=0)
    ent_coef: float = option(0.01, ge=0)
    vf_coef: float = option(0.5, ge=0)
    max_grad_norm: float = 0.5  # <= 0 disables global-norm clipping
    activation: str = option("tanh", choices=tuple(networks.ACTIVATIONS))
    hidden_sizes: tuple[int, ...] = option((64, 64), gt=0)
    anneal_lr: bool = True
    normalize_obs: bool = False
    reward_scale: float = option(1.0, gt=0)  # rewards x this in the value targets and advantages (brax's reward_scaling)
    clip_value: bool = True  # PPO value clipping with clip_eps
    action_dist: str = option("auto", choices=ACTION_DISTS)  # "auto" picks from the env's action space
    task_resample: str = option("rollout", choices=TASK_RESAMPLE)  # with a teacher: "rollout" or "episode"
    teacher_score: str = option("pvl", choices=TEACHER_SCORES)  # "pvl" (positive value loss) or "gae_abs" (mean |GAE|)

    def __post_init__(self):
        check_fields(self)
        if not self.hidden_sizes:
            raise ValueError("PPOConfig.hidden_sizes must list at least one layer size")

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.batch_size

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    def validate(self, env: Any = None, env_params: Any = None, prefix: str = "agent") -> None:
        """Raise ``ValueError`` naming ``<prefix>.<field>`` for settings that do not fit together or the env."""
        if self.batch_size % self.num_minibatches:
            raise ValueError(
                f"{prefix}.num_minibatches={self.num_minibatches} does not divide the batch "
                f"num_envs*num_steps={self.batch_size}"
            )
        if self.total_timesteps < self.batch_size:
            raise ValueError(
                f"{prefix}.total_timesteps={self.total_timesteps} is less than one rollout "
                f"(num_envs*num_steps={self.batch_size})"
            )
        if env is not None:
            continuous = is_continuous(env)
            if self.action_dist == "gaussian" and not continuous:
                raise ValueError(f"{prefix}.action_dist='gaussian' needs a continuous action space; "
                                 f"{env_name(env)} is discrete")
            if self.action_dist == "categorical" and continuous:
                raise ValueError(f"{prefix}.action_dist='categorical' needs a discrete action space; "
                                 f"{env_name(env)} is continuous")
            if env_params is not None:
                batched_params(env, env_params, self.num_envs)
