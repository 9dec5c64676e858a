"""Seconds per ES generation of the default meta-training job (``configs/meta_train.yaml``:
LPO drift, OpenES, inner PPO for 50k steps on the default env's training tasks, ``fitness.num_seeds``
runs per candidate) at population sizes 16, 32, 64 and 128.

    python scripts/bench_meta.py [--quick] [--populations 16 32]

A generation is what ``metarl.meta.trainer.run_meta_training`` does per step:
``ask`` -> the population's evaluation (:class:`metarl.meta.devices.DeviceEvaluator`,
blocks of 8 candidates on this process's devices) -> ``tell``.  The first
generation (compilation) is timed separately and excluded; the figure is the
median of the timed generations.

``run(quick) -> [(name, value, unit)]``; lines ``meta_gen_pop<N>`` (wall s per
generation), ``meta_gen_pop<N>_cpu`` (process CPU s per generation: on a
shared machine this tracks the idle wall time far better than wall time does,
since the XLA CPU program runs on ~one thread) and ``meta_compile_pop<N>``
(wall s of the first generation, compile included).
``--quick`` uses a 2-update inner run and populations 4 and 8 (a smoke test).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import metarl.runtime

metarl.runtime.configure_cpu()  # the console scripts' CPU defaults, before JAX starts
import jax
import numpy as np
from omegaconf import OmegaConf

from metarl.agents.ppo import PPOConfig
from metarl.meta.es import ESConfig, EvolutionStrategy
from metarl.meta import task_sets
from metarl.meta.fitness import FitnessConfig, as_env_list, make_inner_fitness
from metarl.meta.devices import DeviceEvaluator
from metarl.objectives import make_objective

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
POPULATIONS = (16, 32, 64, 128)
QUICK_POPULATIONS = (4, 8)
TIMED_GENERATIONS = 2


@dataclasses.dataclass(frozen=True)
class MetaSetting:
    """The pieces of the default ``metarl-meta-train`` config that set a generation's cost."""

    inner: PPOConfig
    fitness: FitnessConfig
    es: ESConfig
    objective: dict
    env_names: list[str]
    tasks: dict | None  # env.task_sets (train/heldout/seed), None: each env's one task


def default_setting() -> MetaSetting:
    """Read ``configs/meta_train.yaml`` and its default groups (no Hydra needed)."""
    root = OmegaConf.load(CONFIGS / "meta_train.yaml")
    meta = OmegaConf.to_container(OmegaConf.load(CONFIGS / "meta" / "openes.yaml"))
    objective = OmegaConf.to_container(OmegaConf.load(CONFIGS / "objective" / "lpo.yaml"))
    env_group = next(d["env"] for d in OmegaConf.to_container(root.defaults) if isinstance(d, dict) and "env" in d)
    env = OmegaConf.to_container(OmegaConf.load(CONFIGS / "env" / f"{env_group}.yaml"))["env"]  # @package _global_
    es_fields = set(ESConfig.__dataclass_fields__)
    return MetaSetting(
        inner=PPOConfig(**OmegaConf.to_container(root.inner)),
        fitness=FitnessConfig(**OmegaConf.to_container(root.fitness)),
        es=ESConfig(**{k: v for k, v in meta.items() if k in es_fields}),
        objective=objective,
        env_names=as_env_list(env),
        tasks=task_sets.parse(env.get("task_sets")),
    )


def time_generations(
    setting: MetaSetting, population_size: int, generations: int, seed: int = 0, devices: int | None = None
) -> tuple[float, list[float], list[float]]:
    """(first-generation wall s incl. compile, [wall s], [process CPU s] of each later generation).

    ``devices``: spread the population over the first N devices (default: all).
    """
    if generations < 1:
        raise ValueError(f"generations must be >= 1, got {generations}")
    objective_cfg = dict(setting.objective)
    objective = make_objective(objective_cfg.pop("name"), **objective_cfg)
    # Fitness is normalised by PPO's reference return; the value does not change the cost.
    references = {name: 1.0 for name in setting.env_names}
    tasks = task_sets.draw_all(setting.env_names, None, setting.tasks)
    fitness = make_inner_fitness(objective, setting.env_names, setting.inner, setting.fitness, references, tasks=tasks)
    key = jax.random.PRNGKey(seed)
    init_key, es_key = jax.random.split(key)
    mean = objective.init(init_key)
    es = EvolutionStrategy(dataclasses.replace(setting.es, population_size=population_size), mean)
    evaluate = DeviceEvaluator(fitness, population_size, devices=jax.devices()[:devices] if devices else None)
    ask, tell = jax.jit(es.ask), jax.jit(es.tell)
    state = es.init(es_key, mean)

    def generation(g: int):
        ask_key, eval_key, tell_key = jax.random.split(jax.random.fold_in(key, g), 3)
        population, new_state = ask(ask_key, state)
        values = np.asarray(evaluate(eval_key, population))  # the trainer's host check happens here too
        new_state, metrics = tell(tell_key, population, values, new_state)
        return jax.block_until_ready(new_state), metrics

    wall, cpu = [], []
    for g in range(generations + 1):
        start, start_cpu = time.perf_counter(), time.process_time()
        state, _ = generation(g)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall[0], wall[1:], cpu[1:]


def run(
    quick: bool = False, populations: Sequence[int] | None = None, generations: int = TIMED_GENERATIONS
) -> list[tuple[str, float, str]]:
    setting = default_setting()
    if quick:
        inner = dataclasses.replace(setting.inner, total_timesteps=2 * setting.inner.batch_size)
        setting = dataclasses.replace(setting, inner=inner)
    sizes = populations or (QUICK_POPULATIONS if quick else POPULATIONS)
    figures = []
    for size in sizes:
        compile_s, wall, cpu = time_generations(setting, size, 1 if quick else generations)
        figures.append((f"meta_gen_pop{size}", statistics.median(wall), "s"))
        figures.append((f"meta_gen_pop{size}_cpu", statistics.median(cpu), "s"))
        figures.append((f"meta_compile_pop{size}", compile_s, "s"))
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--populations", type=int, nargs="+", help=f"population sizes (default {POPULATIONS})")
    parser.add_argument("--generations", type=int, default=TIMED_GENERATIONS, help="timed generations per size")
    args = parser.parse_args()
    for name, value, unit in run(quick=args.quick, populations=args.populations, generations=args.generations):
        print(f"{name}  {value:.4g}  {unit}", flush=True)
