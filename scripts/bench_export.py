"""The gymnasium export against gymnasium's own CartPole, measured in one run.

* single env: microseconds per ``step`` (resets included when episodes end) of
  ``to_gymnasium('CartPole-v1')`` and of ``gymnasium.make('CartPole-v1')`` (the
  same action sequence, with gymnasium's default wrappers), and their ratio;
* 64 copies: microseconds per ``step`` of ``to_gymnasium_vector('CartPole-v1', 64)``
  (both autoreset modes) and of gymnasium's ``SyncVectorEnv`` of 64 CartPoles,
  and the speed-up;
* for comparison, one jitted ``vmap`` of gymnax's own
  CartPole step for 64 envs called from Python (16 array leaves in and out,
  where the export passes two packed vectors).

Each figure is the best of several timed loops (this VM's microsecond timings
wander by ±20 %). Run through ``scripts/bench.py`` or directly.
"""

from __future__ import annotations

import time

import metarl.runtime

metarl.runtime.configure_cpu()  # the console scripts' CPU defaults, before JAX starts
import gymnasium
import gymnax
import jax
import numpy as np

from envs.gymnasium_export import to_gymnasium, to_gymnasium_vector

NUM_ENVS = 64


def _best_us_per_step(loop, steps: int, repeats: int) -> float:
    loop(min(steps, 200))  # warm-up (compiles)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        loop(steps)
        best = min(best, time.perf_counter() - start)
    return best / steps * 1e6


def _single_loop(env):
    actions = np.random.default_rng(0).integers(2, size=100_000)
    env.reset(seed=0)

    def loop(steps: int) -> None:
        for t in range(steps):
            _, _, term, trunc, _ = env.step(int(actions[t]))
            if term or trunc:
                env.reset()

    return loop


def _vector_loop(venv):
    actions = np.random.default_rng(0).integers(2, size=(1000, venv.num_envs))
    venv.reset(seed=0)

    def loop(steps: int) -> None:
        for t in range(steps):
            venv.step(actions[t % 1000])

    return loop


def _gymnax_floor_loop():
    env, params = gymnax.make("CartPole-v1")
    keys = jax.random.split(jax.random.key(0), NUM_ENVS)
    _, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    actions = jax.numpy.zeros(NUM_ENVS, jax.numpy.int32)

    def loop(steps: int) -> None:
        nonlocal state
        for _ in range(steps):
            _, state, *_ = step(keys, state, actions, params)
        jax.block_until_ready(state)

    return loop


def run(quick: bool = False) -> list[tuple[str, float, str]]:
    single_steps, vec_steps, repeats = (500, 50, 1) if quick else (5000, 500, 5)
    ours = _best_us_per_step(_single_loop(to_gymnasium("CartPole-v1")), single_steps, repeats)
    theirs = _best_us_per_step(_single_loop(gymnasium.make("CartPole-v1")), single_steps, repeats)
    figures = [
        ("export_step_us/CartPole-v1", ours, "us"),
        ("gymnasium_step_us/CartPole-v1", theirs, "us"),
        ("export_step_ratio_vs_gymnasium/CartPole-v1", ours / theirs, "x (lower is better; goal <= 3)"),
    ]
    sync = gymnasium.make_vec("CartPole-v1", NUM_ENVS, vectorization_mode="sync")
    sync_us = _best_us_per_step(_vector_loop(sync), vec_steps, repeats)
    figures.append((f"gymnasium_sync_vector_step_us/CartPole-v1/N={NUM_ENVS}", sync_us, "us"))
    for mode in ("next_step", "same_step"):
        venv = to_gymnasium_vector("CartPole-v1", NUM_ENVS, autoreset_mode=mode)
        us = _best_us_per_step(_vector_loop(venv), vec_steps, repeats)
        figures.append((f"export_vector_step_us/CartPole-v1/N={NUM_ENVS}/{mode}", us, "us"))
        figures.append((f"export_vector_speedup_vs_sync/CartPole-v1/N={NUM_ENVS}/{mode}", sync_us / us,
                        "x (higher is better; goal >= 5)"))
    floor = _best_us_per_step(_gymnax_floor_loop(), vec_steps, repeats)
    figures.append((f"gymnax_jit_vmap_step_us/CartPole-v1/N={NUM_ENVS}", floor,
                    "us (a plain jitted vmap of gymnax's step called from Python, for comparison)"))
    return figures


if __name__ == "__main__":
    from bench_envs import main

    main(run, __doc__.splitlines()[0])
