"""Settings of a reset-free run: the algorithm, the bootstrapping rule and the EARL protocol.

Every field is checked on construction (one-line errors). Protocol fields left
``None`` take the task's value (:mod:`metarl.reset_free.benchmarks`).
"""

from __future__ import annotations

import dataclasses

from metarl.config import check_fields, option
from metarl.reset_free.benchmarks import EARLTask
from metarl.reset_free.targets import BOOTSTRAP_MODES

# naive: the episodic agent run reset-free, forward goal only; fbrl: alternate forward and backward
# phases, each ending on success or timeout; risc: fbrl plus the success critic's early switches
ALGORITHMS = ("naive", "fbrl", "risc")


@dataclasses.dataclass(frozen=True)
class ResetFreeConfig:
    algorithm: str = option("risc", choices=ALGORITHMS)
    bootstrap: str = option("correct", choices=BOOTSTRAP_MODES)
    total_steps: int | None = option(None, gt=0)
    steps_per_intervention: int | None = option(None, gt=0)
    phase_step_limit: int | None = option(None, gt=0)
    eval_every: int | None = option(None, gt=0)
    eval_episodes: int | None = option(None, gt=0)
    goal_conditioned: bool = True  # the agent sees the goal; fbrl and risc need it
    eval_epsilon: float = option(0.0, ge=0, le=1)  # the deployed policy's exploration (0: greedy)
    conservative_factor: float | None = option(None, gt=0, lt=1)
    minimum_steps: int | None = option(None, ge=0)
    trajectory_proportion: float | None = option(None, gt=0, le=1)
    demos: int | None = option(None, ge=0)  # forward (and as many backward) demonstrations in the replay buffer
    critic_lr: float = option(3e-4, gt=0)  # the success critic's Adam step
    critic_tau: float = option(0.005, gt=0, le=1)
    seeds: int = option(1, gt=0)
    seed: int = 0

    def __post_init__(self) -> None:
        check_fields(self)
        if not self.goal_conditioned and self.algorithm != "naive":
            raise ValueError(f"algorithm={self.algorithm} switches between forward and backward goals, so it needs a "
                             "goal-conditioned agent (goal_conditioned=true); only algorithm=naive runs without one")

    def resolved(self, task: EARLTask, ci: bool = False) -> ResetFreeConfig:
        """Every ``None`` protocol field filled from ``task`` (its CI scale when ``ci``)."""
        fill = {
            "total_steps": task.ci_total_steps if ci and task.ci_total_steps else task.total_steps,
            "steps_per_intervention": task.steps_per_intervention,
            "phase_step_limit": task.phase_step_limit,
            "eval_every": task.ci_eval_every if ci and task.ci_eval_every else task.eval_every,
            "eval_episodes": task.eval_episodes,
            "conservative_factor": task.conservative_factor,
            "minimum_steps": task.minimum_steps,
            "trajectory_proportion": task.trajectory_proportion,
            "demos": task.demo_episodes,
        }
        cfg = dataclasses.replace(self, **{k: v for k, v in fill.items() if getattr(self, k) is None})
        if cfg.total_steps % cfg.eval_every:
            raise ValueError(f"total_steps={cfg.total_steps} is not a multiple of eval_every={cfg.eval_every}")
        return cfg
