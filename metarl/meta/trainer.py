"""Generic ES meta-training loop: any meta-parameter pytree, any batched fitness.

``fitness_fn(key, meta_params_batch) -> [population]`` (maximised) must treat
candidates independently given the shared key (common random numbers), so
evaluating the population whole, in chunks, or sharded gives the same values.

Per generation g (keys are ``fold_in(seed_key, g)``, so a resumed run replays
exactly the same randomness):  ask -> one jitted evaluation of the population
-> host check for failures -> tell -> JSONL/progress record -> checkpoint
every ``checkpoint_every`` generations and at the end.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from metarl.io.checkpoint import ESCheckpointer
from metarl.meta.es import EvolutionStrategy
from metarl.io.progress import GenerationLog, read_log

FitnessFn = Callable[[jax.Array, Any], jax.Array]

# Test-only: exit abruptly (no cleanup, like a kill) once this many generations
# are done and checkpointed.  Used by the kill-and-resume test.
ABORT_ENV_VAR = "METARL_ABORT_AFTER_GENERATION"
ABORT_EXIT_CODE = 75


class AllCandidatesFailedError(RuntimeError):
    """Every candidate of a generation returned NaN or infinite fitness."""


@dataclasses.dataclass(frozen=True)
class TrainerConfig:
    generations: int
    checkpoint_every: int = 1
    chunk_size: int | None = None  # evaluate the population in sequential chunks of this size
    shard: bool = True  # shard the population axis over local devices when there are several
    show_progress: bool = True
    max_checkpoints: int = 3

    def __post_init__(self) -> None:
        if self.generations < 1:
            raise ValueError(f"generations must be >= 1, got {self.generations}")
        if self.checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be >= 1, got {self.checkpoint_every}")
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1 or null, got {self.chunk_size}")


@dataclasses.dataclass
class MetaTrainResult:
    mean: Any  # final ES mean, as a meta-parameter pytree
    es_state: Any
    history: list[dict]  # the JSONL records, one per generation
    resumed_from: int  # generations restored from a checkpoint (0 for a fresh run)


def make_population_evaluator(
    fitness_fn: FitnessFn, population_size: int, chunk_size: int | None = None, shard: bool = True
) -> Callable[[jax.Array, Any], jax.Array]:
    """One jitted call ``evaluate(key, population) -> [population_size]``.

    ``chunk_size`` splits the population into sequential chunks (``lax.map``)
    to bound memory; with several local devices each call's population axis
    is sharded over them.
    """
    per_call = population_size if chunk_size is None else min(chunk_size, population_size)
    if population_size % per_call:
        raise ValueError(f"chunk_size {chunk_size} must divide population_size {population_size}")
    devices = jax.local_devices()
    mesh = Mesh(np.array(devices), ("population",)) if shard and len(devices) > 1 else None
    if mesh is not None and per_call % len(devices):
        raise ValueError(
            f"a population (chunk) of {per_call} cannot be sharded over {len(devices)} devices; "
            "pick a multiple or set shard=false"
        )

    def constrain(tree: Any) -> Any:
        if mesh is None:
            return tree
        sharding = NamedSharding(mesh, PartitionSpec("population"))
        return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, sharding), tree)

    def evaluate(key: jax.Array, population: Any) -> jax.Array:
        if per_call == population_size:
            return constrain(fitness_fn(key, constrain(population)))
        num_chunks = population_size // per_call
        chunks = jax.tree.map(lambda x: x.reshape(num_chunks, per_call, *x.shape[1:]), population)
        fitness = jax.lax.map(lambda chunk: constrain(fitness_fn(key, constrain(chunk))), chunks)
        return fitness.reshape(population_size)

    return jax.jit(evaluate)


def _generation_keys(seed_key: jax.Array, generation: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    ask_key, eval_key, tell_key = jax.random.split(jax.random.fold_in(seed_key, generation), 3)
    return ask_key, eval_key, tell_key


def run_meta_training(
    es: EvolutionStrategy,
    fitness_fn: FitnessFn,
    init_mean: Any,
    key: jax.Array,
    config: TrainerConfig,
    run_dir: str | os.PathLike,
    *,
    resume: bool = False,
    metadata: dict | None = None,
    description: str = "meta-train",
) -> MetaTrainResult:
    """Evolve ``init_mean`` for ``config.generations``; see module docstring.

    Writes ``run_dir/meta_log.jsonl`` and ``run_dir/checkpoints/<generations done>``.
    ``metadata`` (JSON) is stored with every checkpoint.
    """
    run_dir = Path(run_dir)
    init_key, seed_key = jax.random.split(key)
    state = es.init(init_key, init_mean)
    checkpointer = ESCheckpointer(run_dir / "checkpoints", max_to_keep=config.max_checkpoints)
    start = 0
    if resume and checkpointer.latest_generation() is not None:
        start, state, _ = checkpointer.restore(state)
        start = min(start, config.generations)

    evaluate = make_population_evaluator(fitness_fn, es.population_size, config.chunk_size, config.shard)
    ask = jax.jit(es.ask)
    tell = jax.jit(es.tell)
    abort_after = int(os.environ.get(ABORT_ENV_VAR, "0") or 0)
    log_path = run_dir / "meta_log.jsonl"

    with GenerationLog(log_path, config.generations, start, description, config.show_progress) as log:
        for generation in range(start, config.generations):
            started = time.perf_counter()
            ask_key, eval_key, tell_key = _generation_keys(seed_key, generation)
            population, state = ask(ask_key, state)
            fitness = np.asarray(evaluate(eval_key, population))
            if not np.isfinite(fitness).any():
                raise AllCandidatesFailedError(
                    f"generation {generation}: all {fitness.size} candidates returned NaN/inf fitness "
                    "(inner training diverged); lower meta.sigma or check the objective"
                )
            state, metrics = tell(tell_key, population, fitness, state)
            metrics = jax.device_get(metrics)
            log.record(generation, **metrics, seconds=time.perf_counter() - started)
            done = generation + 1
            if done % config.checkpoint_every == 0 or done == config.generations:
                checkpointer.save(done, state, {"generations_done": done, **(metadata or {})})
                if abort_after and done >= abort_after:
                    os._exit(ABORT_EXIT_CODE)
    checkpointer.close()
    return MetaTrainResult(es.mean(state), state, read_log(log_path), start)
