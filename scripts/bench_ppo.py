"""PPO throughput on PureJaxRL's CartPole setting (4 envs x 128 steps, 4 epochs,
4 minibatches, 5e5 steps, 64-unit tanh MLPs): env steps per second for 1 seed
and for 16 vmapped seeds, compile time separately.

    python scripts/bench_ppo.py [--quick]      (or `make bench`)

``run(quick) -> [(name, value, unit)]``; lines ``ppo_cartpole_1seed``,
``ppo_cartpole_16seeds`` (steps/s, compile excluded) and ``ppo_cartpole_compile`` (s), then the
same for ``scripts/ppo_reference.py`` (a plain single-file PPO in PureJaxRL's style, same
setting, same process and XLA flags) and the ratios suite / reference.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import metarl.runtime

metarl.runtime.configure_cpu()  # the console scripts' CPU defaults, before JAX starts
import jax

import envs
from metarl.agents.ppo import PPOConfig, make_train

CONFIG = PPOConfig()  # the defaults are the PureJaxRL CartPole-v1 configuration


def _measure(config: PPOConfig, seeds: int, repeats: int) -> tuple[float, float]:
    """(compile seconds, best steps/s over ``repeats`` runs)."""
    env, params = envs.make("CartPole-v1")
    train = make_train(config, env, params)
    # One seed is one run; several seeds are vmapped (as the CLI and tests do).
    batched = train if seeds == 1 else jax.jit(jax.vmap(train))
    keys_of = (lambda i: jax.random.key(i)) if seeds == 1 else (lambda i: jax.random.split(jax.random.key(i), seeds))
    start = time.perf_counter()
    compiled = batched.lower(keys_of(0)).compile()
    compile_s = time.perf_counter() - start
    steps = seeds * config.num_updates * config.batch_size
    best = 0.0
    for i in range(repeats):
        keys = keys_of(i)
        start = time.perf_counter()
        jax.block_until_ready(compiled(keys))
        best = max(best, steps / (time.perf_counter() - start))
    return compile_s, best


def _measure_reference(total_timesteps: int, seeds: int, repeats: int) -> tuple[float, float]:
    """(compile seconds, best steps/s) of the reference PPO, seeds vmapped as for the suite."""
    import ppo_reference

    config = ppo_reference.Config(total_timesteps=total_timesteps)
    train = ppo_reference.make_train(config)
    batched = jax.jit(train) if seeds == 1 else jax.jit(jax.vmap(train))
    keys_of = (lambda i: jax.random.key(i)) if seeds == 1 else (lambda i: jax.random.split(jax.random.key(i), seeds))
    start = time.perf_counter()
    compiled = batched.lower(keys_of(0)).compile()
    compile_s = time.perf_counter() - start
    steps = seeds * config.num_updates * config.num_envs * config.num_steps
    best = 0.0
    for i in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(keys_of(i)))
        best = max(best, steps / (time.perf_counter() - start))
    return compile_s, best


def run(quick: bool = False) -> list[tuple[str, float, str]]:
    config = dataclasses.replace(CONFIG, total_timesteps=CONFIG.batch_size * 20) if quick else CONFIG
    repeats = 1 if quick else 3
    compile_1, one = _measure(config, 1, repeats)
    _, sixteen = _measure(config, 16, 1 if quick else 2)
    ref_compile, ref_one = _measure_reference(config.total_timesteps, 1, repeats)
    _, ref_sixteen = _measure_reference(config.total_timesteps, 16, 1 if quick else 2)
    return [
        ("ppo_cartpole_1seed", one, "steps/s"),
        ("ppo_cartpole_16seeds", sixteen, "steps/s"),
        ("ppo_cartpole_compile", compile_1, "s"),
        ("ppo_reference_1seed", ref_one, "steps/s"),
        ("ppo_reference_16seeds", ref_sixteen, "steps/s"),
        ("ppo_reference_compile", ref_compile, "s"),
        ("ppo_speed_ratio_vs_reference/1seed", one / ref_one, "x (goal >= 1.5)"),
        ("ppo_speed_ratio_vs_reference/16seeds", sixteen / ref_sixteen, "x (goal >= 1.5)"),
    ]


if __name__ == "__main__":
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    for name, value, unit in run(quick=args.quick):
        print(f"{name}: {value:.6g} {unit}", flush=True)
