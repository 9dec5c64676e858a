"""DQN's settings: a frozen dataclass whose fields declare what they accept (one-line errors).

One DQN *iteration* (of :func:`metarl.agents.dqn.make_train`) takes
``train_every`` steps of each of the ``num_envs`` vmapped envs
(``num_envs * train_every`` transitions into the replay buffer), then
``gradient_steps`` gradient steps on minibatches of ``batch_size``
transitions drawn uniformly from the buffer. The update-to-data ratio is

    utd = gradient_steps / (num_envs * train_every)

(the defaults give 1, one gradient step per env step, which suits small
tasks; Mnih et al.'s Atari setting is ``train_every=4``). Every count of
env steps (``total_timesteps``, ``learning_starts``, ``epsilon_decay_steps``,
``log_interval``) counts the transitions of all envs together.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from metarl.agents.env_spec import batched_params, env_name, is_continuous
from metarl.config import check_fields, option


@dataclasses.dataclass(frozen=True)
class DQNConfig:
    """Mnih et al. (2015) DQN with van Hasselt et al.'s (2016) double-Q target, for small discrete tasks.

    Defaults: Adam 3e-4 (the suite's SAC rate: a middle ground between the
    1e-4 of Atari-scale DQNs and the 1e-3 that tiny nets tolerate; the tests
    use 1e-3 with a 32-unit net to learn in seconds), batch 64, Huber loss
    (delta 1), global-norm clipping at 10, a hard target copy every 1000
    gradient steps (a tenth of the exploration schedule at the default UTD
    of 1), epsilon 1 -> 0.1 over 10^4 env steps (RISC's four-rooms
    schedule), gamma 0.99 (RISC's four-rooms uses 0.95: set it), a 5*10^4
    transition buffer (it stores ``2 * obs_dim`` float32 per transition:
    ~0.8 GB for a tabular GridWorld's 1937-entry observations). Each field
    is checked on construction; :meth:`validate` adds the checks that
    involve several fields or the environment.
    """

    lr: float = option(3e-4, gt=0)  # Adam's learning rate
    gamma: float = option(0.99, ge=0, le=1)
    batch_size: int = option(64, gt=0)  # transitions per gradient step
    buffer_size: int = option(50_000, gt=0)  # transitions kept (ring buffer)
    learning_starts: int = option(1_000, ge=0)  # env steps collected before the first gradient step
    num_envs: int = option(1, gt=0)
    total_timesteps: int = option(100_000, gt=0)  # env steps over all envs
    train_every: int = option(1, gt=0)  # steps of each env between training phases
    gradient_steps: int = option(1, gt=0)  # gradient steps per training phase (UTD: module docstring)
    target_update_every: int = option(1_000, gt=0)  # gradient steps between target updates
    tau: float = option(1.0, gt=0, le=1)  # target <- tau * online + (1 - tau) * target; 1: a hard copy
    epsilon_start: float = option(1.0, ge=0, le=1)
    epsilon_end: float = option(0.1, ge=0, le=1)
    epsilon_decay_steps: int = option(10_000, ge=0)  # env steps of the linear decay; 0: epsilon_end throughout
    hidden_sizes: tuple[int, ...] = option((256, 256), gt=0)  # ReLU layers; () makes Q linear in the observation
    layer_norm: bool = False  # LayerNorm after each hidden layer
    double_dqn: bool = True  # the online net picks the next action, the target net values it
    huber_delta: float = option(1.0, gt=0)  # the loss is quadratic for |TD error| <= delta, linear beyond
    max_grad_norm: float = option(10.0, ge=0)  # global-norm clipping; 0 disables it
    log_interval: int = option(1_000, gt=0)  # env steps per metrics row of make_train's train
    eval_episodes: int = option(0, ge=0)  # episodes per task of an evaluation at each metrics row; 0: none
    eval_epsilon: float = option(0.0, ge=0, le=1)  # epsilon of those evaluation episodes

    def __post_init__(self):
        check_fields(self)

    @property
    def steps_per_iteration(self) -> int:
        """Env steps of one iteration over all envs."""
        return self.num_envs * self.train_every

    @property
    def iterations_per_log(self) -> int:
        return self.log_interval // self.steps_per_iteration

    @property
    def num_logs(self) -> int:
        """Metrics rows of a run (``total_timesteps`` rounded down to whole rows)."""
        return self.total_timesteps // self.log_interval

    @property
    def update_to_data(self) -> float:
        """Gradient steps per env step."""
        return self.gradient_steps / self.steps_per_iteration

    def validate(self, env: Any = None, env_params: Any = None, prefix: str = "agent") -> None:
        """Raise ``ValueError`` naming ``<prefix>.<field>`` for settings that do not fit together or the env."""
        if env is not None and is_continuous(env):
            raise ValueError(f"{prefix}.name=dqn needs a discrete action space; {env_name(env)} is continuous "
                             "(use agent=sac)")
        if self.batch_size > self.buffer_size:
            raise ValueError(f"{prefix}.batch_size={self.batch_size} is larger than {prefix}.buffer_size="
                             f"{self.buffer_size}")
        if self.steps_per_iteration > self.buffer_size:
            raise ValueError(f"{prefix}.buffer_size={self.buffer_size} is smaller than one iteration's data "
                             f"(num_envs*train_every={self.steps_per_iteration})")
        if self.log_interval % self.steps_per_iteration:
            raise ValueError(f"{prefix}.log_interval={self.log_interval} is not a multiple of one iteration's "
                             f"env steps (num_envs*train_every={self.steps_per_iteration})")
        if self.total_timesteps < self.log_interval:
            raise ValueError(f"{prefix}.total_timesteps={self.total_timesteps} is less than one metrics row "
                             f"({prefix}.log_interval={self.log_interval})")
        if self.learning_starts > self.num_logs * self.log_interval:
            raise ValueError(f"{prefix}.learning_starts={self.learning_starts} is more than the "
                             f"{self.num_logs * self.log_interval} env steps of the run: DQN would never learn")
        if env is not None and env_params is not None:
            batched_params(env, env_params, self.num_envs)
