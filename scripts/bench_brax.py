"""Brax and Playground envs: compile time and steps/s of the suite's adapters against the originals, same run.

For each ``brax-*`` env (brax's ``generalized`` pipeline) and two ``dmc-*`` tasks (MJX's pure-JAX pipeline)
(``--quick``: the brax pendulum and hopper):

* ``brax_build_time``: building the env object (brax loads and converts the MJCF model);
* ``brax_compile_time``: compiling one ``jit`` of a ``lax.scan`` over ``vmap``-ed steps with random actions
  (no resets: both sides step on from the first state), for the adapter, each env with its own task drawn from
  the task space (physics rebuilt inside the step), and for the original env with its fixed model;
* ``brax_steps_per_s`` of both and ``brax_cost_ratio_vs_original`` (the adapter's time per step / the
  original's): what per-task physics costs.

A repeat compile of the same program in a new process is what XLA's persistent cache
(``metarl.runtime.persist_compilation_cache``) skips.
"""

from __future__ import annotations

import time

import metarl.runtime

metarl.runtime.configure_cpu()  # the console scripts' CPU defaults, before JAX starts
import jax

import envs
from envs.brax_adapter import BRAX_NAMES

NUM_ENVS = 16
STEPS, QUICK_STEPS = 200, 50
QUICK = ("brax-inverted_pendulum", "brax-hopper")
PLAYGROUND = ("dmc-CartpoleBalance", "dmc-CheetahRun")  # two of the DM Control Suite tasks (envs/playground_adapter.py)


def _timed(compiled, *args, repeats: int) -> float:
    jax.block_until_ready(compiled(*args))  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        best = min(best, time.perf_counter() - start)
    return best


def _compile(fn, *args) -> tuple[object, float]:
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - start


def _state_sum(state) -> jax.Array:
    """Every float of the final state, summed: keeps XLA from pruning physics whose reward is constant (the
    pendulum's) or unused."""
    return sum(x.sum() for x in jax.tree.leaves(state) if jax.numpy.issubdtype(x.dtype, jax.numpy.floating))


def adapter_rollout(env, num_steps: int):
    def run(key, tasks):
        keys = jax.random.split(key, NUM_ENVS)
        _, state = jax.vmap(env.reset_env)(keys, tasks)

        def body(state, k):
            actions = jax.random.uniform(k, (NUM_ENVS, env.num_actions), minval=-1, maxval=1)
            _, state, reward, _, _ = jax.vmap(env.step_env)(keys, state, actions, tasks)
            return state, reward.sum()

        state, rewards = jax.lax.scan(body, state, jax.random.split(key, num_steps))
        return rewards.sum() + _state_sum(state)

    return run


def original_rollout(brax_env, action_size: int, num_steps: int):
    """brax's env (or Playground's: the same ``reset(key)`` / ``step(state, action)`` interface) with its own model."""

    def run(key):
        state = jax.vmap(brax_env.reset)(jax.random.split(key, NUM_ENVS))

        def body(state, k):
            actions = jax.random.uniform(k, (NUM_ENVS, action_size), minval=-1, maxval=1)
            state = jax.vmap(brax_env.step)(state, actions)
            return state, state.reward.sum()

        state, rewards = jax.lax.scan(body, state, jax.random.split(key, num_steps))
        return rewards.sum() + _state_sum(state)

    return run


def run(quick: bool = False) -> list[tuple[str, float, str]]:
    steps, repeats = (QUICK_STEPS, 1) if quick else (STEPS, 3)
    figures = []
    for name in QUICK if quick else [*sorted(BRAX_NAMES), *PLAYGROUND]:
        start = time.perf_counter()
        env, _ = envs.make(name)
        build_s = time.perf_counter() - start
        key = jax.random.key(0)
        tasks = env.task_space.sample_batch(jax.random.key(1), NUM_ENVS)
        ours, ours_compile = _compile(adapter_rollout(env, steps), key, tasks)
        ours_s = _timed(ours, key, tasks, repeats=repeats)
        original = env._env if name.startswith("dmc-") else env._brax  # the env each adapter wraps
        theirs, theirs_compile = _compile(original_rollout(original, env.num_actions, steps), key)
        theirs_s = _timed(theirs, key, repeats=repeats)
        figures += [
            (f"brax_build_time/{name}", build_s, "s"),
            (f"brax_compile_time/{name}/N={NUM_ENVS}", ours_compile, "s"),
            (f"brax_compile_time/original/{name}/N={NUM_ENVS}", theirs_compile, "s"),
            (f"brax_steps_per_s/{name}/N={NUM_ENVS}", NUM_ENVS * steps / ours_s, "steps/s"),
            (f"brax_steps_per_s/original/{name}/N={NUM_ENVS}", NUM_ENVS * steps / theirs_s, "steps/s"),
            (f"brax_cost_ratio_vs_original/{name}/N={NUM_ENVS}", ours_s / theirs_s,
             "x (adapter time per step with a task per env / the original's with its one model)"),
        ]
    return figures


if __name__ == "__main__":
    from bench_envs import main

    main(run, __doc__.splitlines()[0])
