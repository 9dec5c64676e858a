"""RL²'s settings and the trial layout they give on an env (one-line errors).

A **trial** is ``episodes_per_trial * H`` env steps, ``H`` the env's horizon
(``max_steps_in_episode`` of its params, fixed per env). The length is derived,
not a separate ``trial_steps`` option, because:

* the scan length must be static, and ``k * H`` steps always hold at least
  ``k`` complete episodes, so "return of episode j, j = 1..k" is defined for
  every env in every trial (exactly ``k`` episodes when episodes run to the
  time limit, as in bandits; envs whose episodes end early fit more episodes,
  which stay in context, as in xland-minigrid's step-based trials);
* training and :func:`metarl.agents.rl2.evaluate` then run the same trial.

Training length is ``num_trials`` (one PPO update per trial): the total is
``num_envs * trial_steps * num_trials`` env steps (:meth:`TrialLayout.total_timesteps`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from metarl.agents import networks
from metarl.agents.env_spec import env_name
from metarl.config import check_fields, option

CELLS = ("gru", "lstm", "transformer")
TRIAL_END_RULES = ("terminal", "bootstrap")


@dataclasses.dataclass(frozen=True)
class RL2Config:
    """Recurrent PPO across the episodes of a trial (Duan et al. 2016).

    Defaults: PureJaxRL ``ppo_rnn`` sizes (encoder 128, GRU 128, heads 128),
    xland-minigrid's optimiser (lr 1e-3 annealed to 0, grad-norm 0.5) and the
    usual PPO coefficients. ``trial_end="terminal"`` (Meta-World+): the trial
    is the meta-episode whose total reward RL² maximises, so its last step
    does not bootstrap; ``"bootstrap"`` is xland-minigrid's choice (its trial
    is a window of a longer stream). ``cell="transformer"`` swaps the GRU for
    sliding-window attention over the last ``context_window`` steps
    (:mod:`metarl.agents.rl2_transformer`), ``hidden_size`` wide.
    """

    num_envs: int = option(64, gt=0)  # trials run in parallel, one task each
    episodes_per_trial: int = option(10, gt=0)  # k
    num_trials: int = option(1000, gt=0)  # PPO updates; one trial per env each
    bptt_chunk: int | None = option(None, gt=0)  # TBPTT length; None = the whole trial; must divide trial_steps
    cell: str = option("gru", choices=CELLS)
    hidden_size: int = option(128, gt=0)  # also the transformer's model width
    # transformer only (metarl.agents.rl2_transformer): steps each layer attends back, blocks, attention heads
    context_window: int = option(32, gt=0)
    num_layers: int = option(2, gt=0)
    num_heads: int = option(4, gt=0)  # must divide hidden_size
    encoder_widths: tuple[int, ...] = option((128,), gt=0)  # () feeds the inputs straight to the cell
    head_widths: tuple[int, ...] = option((128,), gt=0)  # hidden layers of the actor and critic heads
    activation: str = option("tanh", choices=tuple(networks.ACTIVATIONS))
    lr: float = option(1e-3, gt=0)
    anneal_lr: bool = True  # linear to 0 over all minibatch steps
    gamma: float = option(0.99, ge=0, le=1)
    gae_lambda: float = option(0.95, ge=0, le=1)
    clip_eps: float = option(0.2, gt=0)
    ent_coef: float = option(0.01, ge=0)
    vf_coef: float = option(0.5, ge=0)
    max_grad_norm: float = option(0.5, ge=0)  # 0 disables global-norm clipping
    update_epochs: int = option(4, gt=0)
    num_minibatches: int = option(4, gt=0)  # over envs (whole trials)
    clip_value: bool = True
    normalize_advantages: bool = True  # per minibatch
    trial_end: str = option("terminal", choices=TRIAL_END_RULES)

    def __post_init__(self):
        check_fields(self)
        if self.cell == "transformer" and self.hidden_size % self.num_heads:
            raise ValueError(
                f"RL2Config.num_heads={self.num_heads} does not divide RL2Config.hidden_size={self.hidden_size} "
                "(each attention head gets hidden_size/num_heads dims)"
            )
        if self.num_envs % self.num_minibatches:
            raise ValueError(
                f"RL2Config.num_minibatches={self.num_minibatches} does not divide num_envs={self.num_envs} "
                "(minibatches are whole trials)"
            )


@dataclasses.dataclass(frozen=True)
class TrialLayout:
    """The static shape of a trial on one env."""

    horizon: int  # H, steps per episode at most
    episodes: int  # k
    chunk: int  # TBPTT chunk length

    @property
    def trial_steps(self) -> int:
        return self.episodes * self.horizon

    @property
    def num_chunks(self) -> int:
        return self.trial_steps // self.chunk

    def total_timesteps(self, config: RL2Config) -> int:
        return config.num_envs * self.trial_steps * config.num_trials


def env_horizon(env: Any, env_params: Any = None) -> int:
    """``max_steps_in_episode`` of ``env_params`` (default: the env's default params); one value."""
    params = env.default_params if env_params is None else env_params
    if not hasattr(params, "max_steps_in_episode"):
        raise ValueError(f"RL2 needs env params with max_steps_in_episode; {env_name(env)} has none")
    values = np.unique(np.asarray(params.max_steps_in_episode))
    if values.size != 1 or int(values[0]) < 1:
        raise ValueError(f"RL2 needs one positive max_steps_in_episode for {env_name(env)}, got {values.tolist()}")
    return int(values[0])


def trial_layout(config: RL2Config, env: Any, env_params: Any = None, episodes: int | None = None) -> TrialLayout:
    """The trial of ``config`` on ``env``; raises if ``bptt_chunk`` does not divide the trial."""
    horizon = env_horizon(env, env_params)
    k = config.episodes_per_trial if episodes is None else int(episodes)
    if k < 1:
        raise ValueError(f"RL2: episodes_per_trial must be positive, got {k}")
    steps = k * horizon
    chunk = steps if config.bptt_chunk is None else config.bptt_chunk
    if steps % chunk:
        raise ValueError(
            f"RL2Config.bptt_chunk={chunk} does not divide the trial length "
            f"episodes_per_trial*max_steps_in_episode={k}*{horizon}={steps}"
        )
    return TrialLayout(horizon=horizon, episodes=k, chunk=chunk)
