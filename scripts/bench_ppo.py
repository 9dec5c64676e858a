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


def keys_of(seeds: int):
    """``i -> key`` (1 seed) or ``i -> [seeds] keys`` (seeds vmapped, as the CLI and tests do)."""
    return (lambda i: jax.random.key(i)) if seeds == 1 else (lambda i: jax.random.split(jax.random.key(i), seeds))


def batched(one_seed, seeds: int):
    """``one_seed`` jitted, vmapped over a batch of keys when ``seeds`` > 1."""
    return jax.jit(one_seed) if seeds == 1 else jax.jit(jax.vmap(one_seed))


def program(name: str, config: PPOConfig, seeds: int, learning: bool = True):
    """The jitted run of ``suite`` (``make_train``) or ``reference`` (``scripts/ppo_reference.py``), seeds
    vmapped; ``learning=False`` gives the reference with ``update_epochs=0`` (the suite's own is made by
    ``scripts/profile_ppo.py``)."""
    if name == "suite":
        train = make_train(config, *envs.make("CartPole-v1"))
    else:
        import ppo_reference

        ref = ppo_reference.Config(total_timesteps=config.total_timesteps)
        train = ppo_reference.make_train(ref if learning else dataclasses.replace(ref, update_epochs=0))
    return batched(train, seeds)


def best_seconds(fn, seeds: int, repeats: int) -> tuple[float, float]:
    """(compile seconds, best wall seconds over ``repeats`` runs with fresh keys)."""
    keys = keys_of(seeds)
    start = time.perf_counter()
    compiled = fn.lower(keys(0)).compile()
    compile_s = time.perf_counter() - start
    best = float("inf")
    for i in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(keys(i + 1)))
        best = min(best, time.perf_counter() - start)
    return compile_s, best


def _measure(name: str, config: PPOConfig, seeds: int, repeats: int) -> tuple[float, float]:
    """(compile seconds, best steps/s over ``repeats`` runs)."""
    compile_s, seconds = best_seconds(program(name, config, seeds), seeds, repeats)
    return compile_s, seeds * config.num_updates * config.batch_size / seconds


def run(quick: bool = False) -> list[tuple[str, float, str]]:
    config = dataclasses.replace(CONFIG, total_timesteps=CONFIG.batch_size * 20) if quick else CONFIG
    repeats = 1 if quick else 3
    compile_1, one = _measure("suite", config, 1, repeats)
    _, sixteen = _measure("suite", config, 16, 1 if quick else 2)
    ref_compile, ref_one = _measure("reference", config, 1, repeats)
    _, ref_sixteen = _measure("reference", config, 16, 1 if quick else 2)
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
