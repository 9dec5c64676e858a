"""PPO's settings: a frozen dataclass with one-line validation errors."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from metarl.agents import networks
from metarl.agents.env_spec import batched_params, env_name, is_continuous

ACTION_DISTS = ("auto", "categorical", "gaussian")
TASK_RESAMPLE = ("rollout", "episode")
TEACHER_SCORES = ("pvl", "gae_abs")
_INT_FIELDS = ("num_envs", "num_steps", "total_timesteps", "update_epochs", "num_minibatches")


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """PureJaxRL-style settings; defaults are its CartPole-v1 configuration."""

    lr: float = 2.5e-4
    num_envs: int = 4
    num_steps: int = 128
    total_timesteps: int = 500_000
    update_epochs: int = 4
    num_minibatches: int = 4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5  # <= 0 disables global-norm clipping
    activation: str = "tanh"
    hidden_sizes: tuple[int, ...] = (64, 64)
    anneal_lr: bool = True
    normalize_obs: bool = False
    clip_value: bool = True  # PPO value clipping with clip_eps
    action_dist: str = "auto"  # "auto" picks from the env's action space
    task_resample: str = "rollout"  # with a teacher: "rollout" or "episode"
    teacher_score: str = "pvl"  # "pvl" (positive value loss) or "gae_abs" (mean |GAE|)

    def __post_init__(self):
        # YAML gives 1e6 as a float; accept integral floats for step counts.
        for name in _INT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, float) and value.is_integer():
                object.__setattr__(self, name, int(value))
        if isinstance(self.hidden_sizes, (list, tuple)):
            object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.batch_size

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    def validate(self, env: Any = None, env_params: Any = None) -> None:
        """Raise ``ValueError`` with one line naming the first problem found."""
        for name in _INT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"agent.{name} must be an integer, got {value!r}")
            if value <= 0:
                raise ValueError(f"agent.{name} must be positive, got {value}")
        if self.batch_size % self.num_minibatches:
            raise ValueError(
                f"agent.num_minibatches={self.num_minibatches} does not divide the batch "
                f"num_envs*num_steps={self.batch_size}"
            )
        if self.total_timesteps < self.batch_size:
            raise ValueError(
                f"agent.total_timesteps={self.total_timesteps} is less than one rollout "
                f"(num_envs*num_steps={self.batch_size})"
            )
        for name, low, high in (("gamma", 0.0, 1.0), ("gae_lambda", 0.0, 1.0)):
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"agent.{name} must be in [{low}, {high}], got {value}")
        for name in ("lr", "clip_eps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"agent.{name} must be positive, got {getattr(self, name)}")
        for name in ("ent_coef", "vf_coef"):
            if getattr(self, name) < 0:
                raise ValueError(f"agent.{name} must be non-negative, got {getattr(self, name)}")
        if self.activation not in networks.ACTIVATIONS:
            raise ValueError(f"agent.activation must be one of {sorted(networks.ACTIVATIONS)}, got {self.activation!r}")
        if not self.hidden_sizes or any(
            isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h <= 0 for h in self.hidden_sizes
        ):
            raise ValueError(f"agent.hidden_sizes must be positive integers, got {self.hidden_sizes!r}")
        for name, choices in (
            ("action_dist", ACTION_DISTS),
            ("task_resample", TASK_RESAMPLE),
            ("teacher_score", TEACHER_SCORES),
        ):
            if getattr(self, name) not in choices:
                raise ValueError(f"agent.{name} must be one of {choices}, got {getattr(self, name)!r}")
        if env is not None:
            continuous = is_continuous(env)
            if self.action_dist == "gaussian" and not continuous:
                raise ValueError(f"agent.action_dist='gaussian' needs a continuous action space; {env_name(env)} is discrete")
            if self.action_dist == "categorical" and continuous:
                raise ValueError(f"agent.action_dist='categorical' needs a discrete action space; {env_name(env)} is continuous")
            if env_params is not None:
                batched_params(env, env_params, self.num_envs)

