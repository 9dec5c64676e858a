"""EARL-style reset-free tasks as versioned data: env, budget, intervention interval, phases, evaluation.

Each task records the protocol of its source (EARL's intervention interval
``H_T`` and evaluation horizon ``H_E``; RISC's phase limit and switching
constants from its per-environment configs) and a ``ci`` scale, a budget small
enough for the test suite. A changed protocol gets a new version suffix, never
an edited entry, so a result names exactly what it ran.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any


@dataclasses.dataclass(frozen=True)
class EARLTask:
    id: str
    env: str  # registered name of a goal-conditioned env (envs.reset_free.GoalEnv)
    agent: str  # dqn (discrete) | sac (continuous)
    total_steps: int  # environment steps of the reset-free stream
    steps_per_intervention: int  # H_T: an extrinsic reset every this many steps
    phase_step_limit: int  # forward/backward phases time out after this many steps (a truncation)
    eval_every: int  # deployed-policy evaluation period, env steps
    eval_episodes: int
    eval_horizon: int  # H_E
    conservative_factor: float  # RISC's c
    minimum_steps: int  # RISC: no switch before this many steps of a phase
    trajectory_proportion: float
    agent_settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    ci_total_steps: int = 0  # the small scale the test suite runs
    ci_eval_every: int = 0
    ci_agent_settings: dict[str, Any] = dataclasses.field(default_factory=dict)  # over agent_settings at that scale
    # RISC's use_demo: this many forward and as many backward demonstrations start in the replay buffer
    # (EARL ships recorded demos for tabletop, door and peg; here the env's scripted demonstrator makes them)
    demo_episodes: int = 0
    source: str = ""


TASKS: dict[str, EARLTask] = {}


def _register(task: EARLTask) -> None:
    TASKS[task.id] = task


def _earl_sac(action_dim: int, total_steps: int) -> dict[str, Any]:
    """EARL's SAC in SACConfig's names (see the tabletop entry); target entropy -0.5 * |A|."""
    return {"hidden_sizes": (256, 256), "lr": 3e-4, "batch_size": 256, "gamma": 0.99, "tau": 0.005,
            "reward_scale": 10.0, "init_alpha": 0.1, "target_entropy": -0.5 * action_dim, "learning_starts": 10_000,
            "buffer_size": 10_000_000, "num_envs": 1, "steps_per_update": 1, "gradient_steps": 1,
            "total_timesteps": total_steps}


_CI_SAC = {"hidden_sizes": (32, 32), "batch_size": 32, "learning_starts": 200}


# RISC's MiniGrid four-rooms (risc/configs: 100k steps, phase limit and eval horizon 100, c 0.95,
# no minimum phase length, DQN gamma 0.95, epsilon 1 -> 0.1 over 1e4 steps). RISC's gridworld runs are
# fully reset-free: one intervention (H_T = the whole budget).
_register(EARLTask(
    id="four-rooms-v1", env="earl-four-rooms", agent="dqn",
    total_steps=100_000, steps_per_intervention=100_000, phase_step_limit=100,
    eval_every=2_000, eval_episodes=10, eval_horizon=100,
    conservative_factor=0.95, minimum_steps=0, trajectory_proportion=1.0,
    # RISC's gamma and exploration; a 64x64 Q-network keeps 5 seeds x 100k steps to minutes on a CPU
    agent_settings={"gamma": 0.95, "epsilon_start": 1.0, "epsilon_end": 0.1, "epsilon_decay_steps": 10_000,
                    "hidden_sizes": (64, 64)},
    ci_total_steps=4_000, ci_eval_every=1_000,
    source="RISC (Patil et al. 2024) MiniGrid four-rooms; EARL protocol",
))

# EARL's tabletop_manipulation (kinematic, exact port: envs/tabletop.py) under RISC's Tabletop config: 3M steps,
# an intervention every 2e5 steps (EARL's H_T), phase limit and eval horizon 200, c 0.9, minimum phase 100.
# Agent: EARL's SAC in SACConfig's names — 256x256 ReLU, lr 3e-4 (actor, critic, alpha), batch 256, gamma 0.99,
# tau 0.005, reward_scale 10, target_entropy -0.5*|A| = -1.5, learning_starts 1e4, replay 1e7 (the runner keeps
# min(buffer_size, total_steps)). One gradient step per env step (the reset-free SAC agent's train_every = 1);
# num_envs/steps_per_update/gradient_steps/total_timesteps only satisfy SACConfig.validate. Not ported: EARL's
# Linear-50 + LayerNorm + tanh trunk.
# init_alpha 0.1 is pytorch_sac's initial temperature, which EARL's SAC builds on (unverified); with SACConfig's
# 1.0 the entropy bonus outweighs the success reward in a stream that only ends at the goal, and SAC learns to
# avoid the goal (measured on a point-mass goal task: 0 successes at 1.0, learned at 0.1).
_register(EARLTask(
    id="tabletop-v1", env="earl-tabletop", agent="sac",
    total_steps=3_000_000, steps_per_intervention=200_000, phase_step_limit=200,
    eval_every=10_000, eval_episodes=10, eval_horizon=200,
    conservative_factor=0.9, minimum_steps=100, trajectory_proportion=1.0,
    agent_settings=_earl_sac(3, 3_000_000),
    ci_total_steps=2_000, ci_eval_every=1_000,
    ci_agent_settings=_CI_SAC,
    demo_episodes=10,
    source="RISC (Patil et al. 2024) Tabletop config; EARL (Sharma et al. 2022) tabletop_manipulation and SAC",
))

# EARL's sawyer_door (door *closing*) on the suite's kinematic Sawyer (envs/earl_door.py, approximate: `-kin`) under
# RISC's Door config: 5M steps, an intervention every 2e5 steps, phase limit and eval horizon 300, c 0.9, minimum
# phase 225. Agent: EARL's SAC as for tabletop.
_register(EARLTask(
    id="door-kin-v1", env="earl-door-kin", agent="sac",
    total_steps=5_000_000, steps_per_intervention=200_000, phase_step_limit=300,
    eval_every=10_000, eval_episodes=10, eval_horizon=300,
    conservative_factor=0.9, minimum_steps=225, trajectory_proportion=1.0,
    agent_settings=_earl_sac(4, 5_000_000),
    ci_total_steps=2_000, ci_eval_every=1_000,
    ci_agent_settings=_CI_SAC,
    demo_episodes=10,
    source="RISC (Patil et al. 2024) Door config; EARL (Sharma et al. 2022) sawyer_door, kinematic approximation",
))

# EARL's sawyer_peg (insert the peg into the box's side hole) on the suite's kinematic Sawyer (envs/earl_peg.py,
# approximate: `-kin`; rho_0 = EARL's 15 saved starts) under RISC's Peg config: 8M steps (RISC's plots stop at 7M),
# an intervention every 1e5 steps (EARL's H_T), phase limit and eval horizon 200, c 0.9, minimum phase 100,
# trajectory_proportion 0.5. Agent: EARL's SAC as for tabletop (target_entropy -0.5*|A| = -2.0).
_register(EARLTask(
    id="peg-kin-v1", env="earl-peg-kin", agent="sac",
    total_steps=8_000_000, steps_per_intervention=100_000, phase_step_limit=200,
    eval_every=10_000, eval_episodes=10, eval_horizon=200,
    conservative_factor=0.9, minimum_steps=100, trajectory_proportion=0.5,
    agent_settings=_earl_sac(4, 8_000_000),
    ci_total_steps=2_000, ci_eval_every=1_000,
    ci_agent_settings=_CI_SAC,
    source="RISC (Patil et al. 2024) Peg config; EARL (Sharma et al. 2022) sawyer_peg, kinematic approximation",
))


def names() -> list[str]:
    return sorted(TASKS)


def get(name: str) -> EARLTask:
    if name not in TASKS:
        near = difflib.get_close_matches(name, names(), n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(near)}?)" if near else ""
        raise ValueError(f"unknown reset-free task {name!r}{hint}; tasks: {', '.join(names())}")
    return TASKS[name]
