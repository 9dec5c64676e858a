"""In-context (RL²) benchmarks as versioned data: env, trial shape, held-out tasks, RL² settings, a CI scale.

A **trial** is ``episodes_per_trial`` (k) episodes of ``horizon`` (H) steps on one task, the
recurrent state kept across them (:mod:`metarl.agents.rl2`). Held-out tasks are either

* ``"sampled"``: ``test_tasks`` tasks drawn from the env's own task sampler with the fixed key
  ``eval_seed`` (bandits: arm means are continuous, so a test task is never a training task), or
* ``"goals"``: a fixed split of the env's finite goal set (``env.all_goals()``) by ``split_seed``;
  ``test_tasks`` goals are held out and training samples only the others (Dark Room: 64 / 16 of
  the 80 non-centre goals).
* ``"meta-world"``: the train and test task sets of a Meta-World benchmark of the manipulation family
  (``meta_world``: ``"ML1:<task>-v3"`` or ``"ML10"``; :mod:`envs.manipulation.benchmarks`): 50 goal
  variations per class, ML1's test goals drawn with another seed, ML10's test tasks five other classes;
  the goal is hidden. One env runs every class of the benchmark (train and test), so a policy trained on
  the training classes plays the test classes unchanged.

Each held-out task is played ``eval_repeats`` times (actions are sampled). Every benchmark has a
``ci`` scale (``ci_*`` fields) small enough for the test suite. A changed protocol gets a new
version suffix, never an edited entry, so a result names exactly what it ran.

The bandits follow Duan et al. (2016)'s table: Bernoulli arms with ``U[0, 1]`` means, a trial is
one episode of ``n`` pulls (k = 1, H = n) and the score is the total reward; the bandit env's
observation carries the last pull, its reward and the elapsed fraction ``t / n``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from metarl.config import close_matches

HELD_OUT = ("sampled", "goals", "meta-world")
# bandit: UCB1/Thompson/Gittins/random/oracle; optimal: the env's optimal return; success: no baseline, success
# rates of each episode (meta-train and meta-test, Meta-World's metric) next to the returns
BASELINES = ("bandit", "optimal", "success")


@dataclasses.dataclass(frozen=True)
class InContextBenchmark:
    id: str
    env: str  # registered env name ("meta-world": the family, for messages; make_env builds the env)
    env_settings: dict[str, Any]  # envs.make overrides (constructor args, params fields), the horizon apart
    horizon: int  # H: steps per episode (the env params' max_steps_in_episode)
    episodes_per_trial: int  # k
    held_out: str  # "sampled" | "goals" | "meta-world" (module docstring)
    test_tasks: int  # held-out tasks: drawn with eval_seed, goals held out of the split, or Meta-World test tasks
    eval_repeats: int  # evaluation trials per held-out task
    baselines: str  # "bandit" | "optimal"
    step_name: str  # what one step is called in curves ("pull" for bandits)
    rl2: dict[str, Any]  # RL2Config settings (num_trials, sizes, ...); episodes_per_trial comes from the field above
    chunk_trials: int  # trials per jitted chunk (a checkpoint and a progress step each)
    ci_rl2: dict[str, Any] = dataclasses.field(default_factory=dict)  # over rl2 at the ci scale
    ci_chunk_trials: int = 0
    ci_test_tasks: int = 0  # held-out tasks at the ci scale (0: test_tasks); a goal split never changes
    ci_eval_repeats: int = 0
    split_seed: int = 0
    eval_seed: int = 20_16
    source: str = ""
    meta_world: str = ""  # "meta-world" held-out tasks: "ML1:<task>-v3" or "ML10"

    def rl2_settings(self, ci: bool = False) -> dict[str, Any]:
        """RL2Config settings of this scale (before the user's ``agent.*`` overrides)."""
        return {"episodes_per_trial": self.episodes_per_trial, **self.rl2, **(self.ci_rl2 if ci else {})}

    def chunk(self, ci: bool = False) -> int:
        return self.ci_chunk_trials if ci and self.ci_chunk_trials else self.chunk_trials

    def num_test_tasks(self, ci: bool = False) -> int:
        if ci and self.ci_test_tasks and self.held_out != "goals":
            return self.ci_test_tasks
        return self.test_tasks

    def repeats(self, ci: bool = False) -> int:
        return self.ci_eval_repeats if ci and self.ci_eval_repeats else self.eval_repeats


BENCHMARKS: dict[str, InContextBenchmark] = {}


def _register(bench: InContextBenchmark) -> None:
    if bench.held_out not in HELD_OUT or bench.baselines not in BASELINES:
        raise ValueError(f"benchmark {bench.id}: held_out {bench.held_out!r}, baselines {bench.baselines!r}")
    if (bench.held_out == "meta-world") != bool(bench.meta_world):
        raise ValueError(f"benchmark {bench.id}: meta_world names the task sets of a 'meta-world' benchmark only")
    BENCHMARKS[bench.id] = bench


# RL² sizes as PureJaxRL's ppo_rnn and xland-minigrid (GRU 128, encoder and heads 128), lr 1e-3 annealed, grad-norm
# 0.5, 4 epochs x 4 minibatches of whole trials; 128 trials in parallel per update
_RL2 = {"num_envs": 128, "hidden_size": 128, "encoder_widths": (128,), "head_widths": (128,), "lr": 1e-3,
        "update_epochs": 4, "num_minibatches": 4}
# the ci scale: a few hundred env steps per seed, one tiny GRU
_CI_RL2 = {"num_envs": 8, "num_trials": 20, "hidden_size": 16, "encoder_widths": (), "head_widths": (),
           "update_epochs": 1, "num_minibatches": 1, "lr": 3e-3}
_DUAN = "Duan et al. (2016), RL^2, Table 1: Bernoulli bandits, U[0, 1] means, n pulls, total reward"

# Duan et al.'s grid: k in {5, 10, 50} arms x n in {10, 100, 500} pulls, 2 000 updates each (n = 100 and 500 cost
# 10x and 50x the steps of n = 10: results/in_context.md says which budgets were run)
for _arms, _pulls in ((k, n) for n in (10, 100, 500) for k in (5, 10, 50)):
    _register(InContextBenchmark(
        id=f"bandit-k{_arms}-n{_pulls}-v1", env="bandit-bernoulli",
        env_settings={"num_arms": _arms, "arm_distribution": "uniform"},
        horizon=_pulls, episodes_per_trial=1, held_out="sampled", test_tasks=1_000, eval_repeats=1,
        baselines="bandit", step_name="pull",
        rl2={**_RL2, "num_trials": 2_000}, chunk_trials=100,
        ci_rl2=_CI_RL2, ci_chunk_trials=10, ci_test_tasks=100,
        source=_DUAN,
    ))

# Wang et al.'s dependent two-armed bandit (means p and 1 - p, p ~ U[0, 1]), 10 pulls: the fast one (CI)
_register(InContextBenchmark(
    id="bandit-k2-dependent-v1", env="bandit-bernoulli",
    env_settings={"num_arms": 2, "arm_distribution": "dependent"},
    horizon=10, episodes_per_trial=1, held_out="sampled", test_tasks=1_000, eval_repeats=1,
    baselines="bandit", step_name="pull",
    rl2={"num_envs": 64, "num_trials": 500, "hidden_size": 32, "encoder_widths": (32,), "head_widths": (),
         "lr": 3e-3, "update_epochs": 4, "num_minibatches": 4},
    chunk_trials=50,
    ci_rl2={**_CI_RL2, "num_trials": 40, "num_envs": 16, "num_minibatches": 2}, ci_chunk_trials=10, ci_test_tasks=64,
    source="Wang et al. (2016), Learning to reinforcement learn: dependent (p, 1 - p) Bernoulli bandit; 10 pulls",
))

# Dark Room 9x9 (Algorithm Distillation; envs/dark_room.py): 20-step episodes from the centre, goal hidden, k = 4
# episodes per trial; 16 of the 80 non-centre goals held out (split_seed 0), the other 64 trained on
_register(InContextBenchmark(
    id="dark-room-v1", env="dark-room", env_settings={},
    horizon=20, episodes_per_trial=4, held_out="goals", test_tasks=16, eval_repeats=32,
    baselines="optimal", step_name="step",
    rl2={**_RL2, "num_trials": 3_000}, chunk_trials=100,
    ci_rl2=_CI_RL2, ci_chunk_trials=10, ci_eval_repeats=2,
    source="Laskin et al. (2022), Algorithm Distillation: Dark Room (toy-meta-gym DarkRoom), held-out goals",
))


# Meta-World's ML1 and ML10 on the JAX manipulation family (envs/manipulation): goal hidden, 50 training and 50 test
# goal variations per class. Meta-World+'s RL² plays trials of 10 episodes x 500 steps with 10 PPO epochs, 2M steps
# per training class. Sized for the 2-core CPU class instead: a trial is 4 episodes x 150 steps (the hand moves
# <= 1 cm per axis and step, so every goal is reachable in 150), the GRU 128 of the other benchmarks, 4 epochs
# (10 took 2.5x as long per trial: the BPTT replay dominates), Meta-World+'s lr 5e-4 and entropy 5e-3. ML1 gets
# Meta-World+'s 2M steps (100 updates x 32 trials x 600 steps; 46 min for 5 vmapped seeds on one core); ML10 gets 4.8M,
# a quarter of its 20M.
_MW_RL2 = {"num_envs": 32, "hidden_size": 128, "encoder_widths": (128,), "head_widths": (128,), "lr": 5e-4,
           "update_epochs": 4, "num_minibatches": 4, "ent_coef": 5e-3, "bptt_chunk": 150}
_MW_CI_RL2 = {**_CI_RL2, "num_trials": 4, "num_envs": 4, "bptt_chunk": 150}
_MW = "Meta-World (Yu et al. 2019) {}; RL² as Meta-World+ (arXiv 2505.11289) trains it, shorter trials (above)"
for _task in ("reach", "push"):
    _register(InContextBenchmark(
        id=f"ml1-{_task}-v1", env=f"{_task}-v3", env_settings={}, meta_world=f"ML1:{_task}-v3",
        horizon=150, episodes_per_trial=4, held_out="meta-world", test_tasks=50, eval_repeats=4,
        baselines="success", step_name="step",
        rl2={**_MW_RL2, "num_trials": 100}, chunk_trials=10,
        ci_rl2=_MW_CI_RL2, ci_chunk_trials=2, ci_test_tasks=4, ci_eval_repeats=1,
        source=_MW.format(f"ML1 {_task}: 50 train / 50 test goals"),
    ))
_register(InContextBenchmark(
    id="ml10-v1", env="manipulation", env_settings={}, meta_world="ML10",
    horizon=150, episodes_per_trial=4, held_out="meta-world", test_tasks=250, eval_repeats=2,
    baselines="success", step_name="step",
    rl2={**_MW_RL2, "num_envs": 40, "num_trials": 200}, chunk_trials=10,
    ci_rl2=_MW_CI_RL2, ci_chunk_trials=2, ci_test_tasks=5, ci_eval_repeats=1,
    source=_MW.format("ML10: 10 train classes, 5 test classes, 50 goals each"),
))


def names() -> list[str]:
    return sorted(BENCHMARKS)


def get(name: Any) -> InContextBenchmark:
    if not isinstance(name, str):
        raise ValueError(f"task must be the name of an in-context benchmark, got {name!r}; tasks: {', '.join(names())}")
    if name not in BENCHMARKS:
        raise ValueError(f"unknown in-context task {name!r}{close_matches(name, names())}; tasks: {', '.join(names())}")
    return BENCHMARKS[name]


def make_env(bench: InContextBenchmark) -> tuple[Any, Any]:
    """``(env, env_params)`` with the benchmark's horizon in the params (``max_steps_in_episode``)."""
    import envs

    if bench.held_out == "meta-world":
        from envs.manipulation.env import Manipulation

        mw = meta_world(bench)
        env = Manipulation(mw.train_classes + mw.test_classes, goal_observable=False, max_steps=bench.horizon)
        return env, env.default_params
    return envs.make(bench.env, **bench.env_settings, max_steps_in_episode=bench.horizon)


def meta_world(bench: InContextBenchmark) -> Any:
    """The :class:`envs.manipulation.benchmarks.Benchmark` of a ``"meta-world"`` benchmark."""
    from envs.manipulation import benchmarks as mw

    kind, *task = bench.meta_world.split(":")
    return mw.BENCHMARKS[kind](*task)
