"""The jitted programs of an in-context run: seeds vmapped, trials in chunks, evaluation on held-out tasks.

    prog = programs(bench, config, chunk_trials=100, greedy=False)
    index = np.arange(seeds)
    states = prog.init(seed, index)               # RL2State with a leading seed axis
    states, metrics = prog.chunk(states)          # chunk_trials more trials per seed; metrics [seeds, chunk, ...]
    out = prog.evaluate(states.params, test_tasks, seed, index)

Seed ``i`` of a run with base ``seed`` trains from ``fold_in(fold_in(PRNGKey(seed), 0), i)`` and is evaluated
with ``fold_in(fold_in(PRNGKey(seed), 1), i)`` (keys made inside the programs: no eager PRNG compiles).

Scanning ``update`` over chunks gives the trials of :func:`metarl.agents.rl2.make_train`'s ``train``
(the same ``init`` and ``update``), so a run stopped after a chunk and resumed from its checkpoint
continues the same sequence. Programs are cached per benchmark and settings, so a second run in the
same process reuses the compiled code.

``teacher`` (a config resolved by :func:`metarl.in_context.teachers.resolve`) picks the training tasks;
without one, training draws uniformly from the training tasks (a goal split's, a Meta-World benchmark's), else
from the env's sampler
(domain randomisation), as :func:`metarl.agents.rl2.make_train` does by default.

Evaluation plays one trial per held-out task (repeated ``repeats`` times, tasks ``[a, a, b, b, ...]``)
from a zero carry, the whole trial one chunk (:func:`metarl.agents.rl2.run_trial`), and returns per
seed ``episode_returns [tasks, k]``, ``episode_success [tasks, k]`` (zeros for envs without a success
flag) and ``step_rewards [T]`` (the reward of trial step t, mean over
tasks: the per-pull curve of a one-episode bandit trial).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from metarl.agents import rl2
from metarl.agents.rl2_config import RL2Config, TrialLayout
from metarl.in_context import benchmarks, teachers
from metarl.in_context import tasks as task_sets

TRAIN_STREAM, EVAL_STREAM = 0, 1  # key streams folded into PRNGKey(seed)


@dataclasses.dataclass(frozen=True)
class Programs:
    env: Any
    env_params: Any
    layout: TrialLayout  # the training trial
    train_tasks: Any  # batched params, or None (the env's sampler)
    init: Callable[[Any, Any], Any]  # (seed, seed index [S]) -> RL2State [S]
    chunk: Callable[[Any], tuple[Any, dict]]  # RL2State [S] -> (RL2State [S], metrics [S, chunk, ...])
    evaluate: Callable[[Any, Any, Any, Any], dict]  # (params [S], tasks [N], seed, seed index [S]) -> {...}
    teacher: teachers.MetaTeacher | None = None  # the chosen teacher (None: the default task distribution)


def programs(bench: benchmarks.InContextBenchmark, config: RL2Config, chunk_trials: int,
             greedy: bool = False, teacher: dict | None = None) -> Programs:
    """The (cached) programs of ``bench`` under ``config``, ``chunk_trials`` trials per chunk, ``teacher``'s tasks."""
    return _programs(bench.id, config, int(chunk_trials), bool(greedy), teachers.spec_key(teacher))


@functools.lru_cache(maxsize=8)
def _programs(bench_id: str, config: RL2Config, chunk_trials: int, greedy: bool,
              teacher_key: str | None = None) -> Programs:
    bench = benchmarks.get(bench_id)
    env, env_params = benchmarks.make_env(bench)
    train_tasks = task_sets.training_tasks(bench, env)
    if teacher_key is not None:
        teacher = teachers.build(json.loads(teacher_key), bench, env, train_tasks)
    else:
        teacher = None if train_tasks is None else task_sets.TaskSet(rl2.with_horizon(train_tasks, bench.horizon))
    train = rl2.make_train(env, config, teacher, env_params=env_params)
    layout = train.layout
    eval_layout = TrialLayout(layout.horizon, layout.episodes, layout.trial_steps)  # one chunk: nothing replayed

    def seed_keys(seed, index, stream):
        base = jax.random.fold_in(jax.random.PRNGKey(seed), stream)
        return jax.vmap(lambda i: jax.random.fold_in(base, i))(index)

    def init(seed, index):
        return jax.vmap(train.init)(seed_keys(seed, index, TRAIN_STREAM))

    def run_chunk(state):
        return jax.lax.scan(train.update, state, None, length=chunk_trials)

    def evaluate_one(params, tasks, key):
        traj = rl2.run_trial(params, env, rl2.with_horizon(tasks, layout.horizon), key, eval_layout,
                             config.activation, greedy)
        return {"episode_returns": traj["episode_returns"], "episode_success": traj["episode_success"],
                "step_rewards": jnp.mean(traj["reward"], axis=1)}

    def evaluate(params, tasks, seed, index):
        return jax.vmap(evaluate_one, in_axes=(0, None, 0))(params, tasks, seed_keys(seed, index, EVAL_STREAM))

    return Programs(
        env=env,
        env_params=env_params,
        layout=layout,
        train_tasks=train_tasks,
        init=jax.jit(init),
        chunk=jax.jit(jax.vmap(run_chunk)),
        evaluate=jax.jit(evaluate),
        teacher=teacher if teacher_key is not None else None,
    )


def held_out_tasks(bench: benchmarks.InContextBenchmark, env: Any, ci: bool = False, tasks: int | None = None,
                   repeats: int | None = None) -> tuple[Any, Any]:
    """``(held-out tasks, the same each repeated)``: the benchmark's (its ci scale's) unless ``tasks``/``repeats``."""
    count = bench.num_test_tasks(ci) if tasks is None else int(tasks)
    _, test = task_sets.task_split(bench, env, count)
    return test, task_sets.repeat_tasks(test, bench.repeats(ci) if repeats is None else int(repeats))

