"""The one ES meta-training loop: any meta-parameter pytree, any batched fitness, optional extra state.

Two kinds of fitness:

* plain: ``fitness_fn(key, meta_params_batch) -> [population]`` (maximised).
  Candidates must be independent given the shared key (common random
  numbers), so the population is evaluated in blocks of ``chunk_size``
  candidates spread over every device of every process
  (:class:`metarl.meta.devices.DeviceEvaluator`), with the same bits on any
  number of devices. With several processes each computes the same ask and
  tell; only process 0 writes the log and the checkpoints.
* stateful (``extra_state`` given): ``fitness_fn(key, population, extra) ->
  (fitness, extra, metrics)``, run on one device inside the generation's
  program. ``extra`` is any pytree carried from one generation to the next
  (e.g. a level teacher's buffer); it is checkpointed with the ES state, so
  it survives a resume. ``metrics`` (scalars) join the generation's log
  record. A stateful fitness chunks its own population
  (:func:`make_population_evaluator` does it).

Per generation g (key ``fold_in(seed_key, g)``, so a resumed run replays
exactly the same randomness) ask -> evaluate -> tell run (one compiled
program for a stateful fitness; ask, the devices' blocks and tell for a
plain one); the host appends the JSONL and progress record, and checkpoints every
``checkpoint_every`` generations and at the end. The record is written
before the checkpoint and a resume cuts the log back to its checkpoint, so
every generation is in ``meta_log.jsonl`` exactly once, however the run was
killed; an unreadable newest checkpoint falls back to the previous one
(:class:`metarl.io.checkpoint.ESCheckpointer`).

Numerical faults. A candidate with NaN/inf fitness ranks worst (see
:meth:`EvolutionStrategy.tell`) and is counted (``num_nonfinite``). A
generation in which *every* candidate is NaN/inf is not applied: it is logged
as ``{"generation": g, "failed": true, "attempt": k, ...}``, the state before
it is checkpointed (step g), and g is retried with fresh keys
(``fold_in(fold_in(seed_key, g), k)``) up to ``max_failed_retries`` times
(``meta.max_failed_retries``, default 2). If every attempt fails the run
stops with :class:`AllCandidatesFailedError` (one line at the command line),
keeping that checkpoint; a resume redoes the attempts of g, so a resumed run
logs them exactly once too. A retried generation's record has ``"retries": k``.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from metarl import distributed
from metarl.io.checkpoint import ESCheckpointer
from metarl.io.progress import GenerationLog, read_log
from metarl.meta.devices import DeviceEvaluator
from metarl.meta.es import EvolutionStrategy

FitnessFn = Callable[[jax.Array, Any], jax.Array]
StatefulFitnessFn = Callable[[jax.Array, Any, Any], tuple[jax.Array, Any, dict]]

LOG = "meta_log.jsonl"


class AllCandidatesFailedError(ValueError):
    """Every attempt at a generation had only NaN/inf fitness (a ``ValueError``: the CLI reports it in one line)."""


@dataclasses.dataclass(frozen=True)
class TrainerConfig:
    generations: int
    checkpoint_every: int = 1
    chunk_size: int | None = None  # candidates per program call (vmap width); None: the largest divisor of P <= 8
    shard: bool = True  # spread the population over every device (of every process) when there are several
    devices: int | None = None  # how many of those devices (the first ones); None: all
    show_progress: bool = True
    max_checkpoints: int = 3
    max_failed_retries: int = 2  # fresh-key retries of a generation in which every candidate is NaN/inf

    def __post_init__(self) -> None:
        if self.generations < 1:
            raise ValueError(f"generations must be >= 1, got {self.generations}")
        if self.max_failed_retries < 0:
            raise ValueError(f"max_failed_retries must be >= 0, got {self.max_failed_retries}")
        if self.checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be >= 1, got {self.checkpoint_every}")
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1 or null, got {self.chunk_size}")
        if self.devices is not None and self.devices < 1:
            raise ValueError(f"devices must be >= 1 or null, got {self.devices}")

    def pick_devices(self) -> list:
        """The devices the population is spread over: the first ``devices`` of ``jax.devices()``."""
        available = jax.devices() if self.shard else jax.local_devices()[:1]
        if self.devices is None:
            return available
        if self.devices > len(available):
            raise ValueError(f"devices={self.devices} but this run has {len(available)} device(s) "
                             f"({jax.default_backend()}, {jax.process_count()} process(es))")
        return available[: self.devices]


@dataclasses.dataclass
class MetaTrainResult:
    mean: Any  # final ES mean, as a meta-parameter pytree
    es_state: Any
    history: list[dict]  # the JSONL records, one per generation (failed attempts left out)
    resumed_from: int  # generations restored from a checkpoint (0 for a fresh run)
    extra_state: Any = None  # a stateful fitness's final extra state


def make_population_evaluator(
    fitness_fn: FitnessFn, population_size: int, chunk_size: int | None = None, shard: bool = True
) -> Callable[[jax.Array, Any], jax.Array]:
    """One jitted call ``evaluate(key, population) -> [population_size]``.

    ``population`` is any pytree with leading axis ``population_size``.
    ``chunk_size`` splits it into sequential chunks (``lax.map``) to bound
    memory; with ``shard`` and several local devices each call's population
    axis is sharded over them by GSPMD. That changes float rounding inside
    the candidates, so the values agree with one device only to rounding (and
    inner training can amplify it): the trainer's plain fitness uses
    :class:`metarl.meta.devices.DeviceEvaluator` instead, which is exact.
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


def strong_types(tree: Any) -> Any:
    """Drop weak types (evosax's initial ``best_fitness``) so generation 1 reuses generation 0's program."""
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.asarray(x).dtype), tree)


def make_generation(es: EvolutionStrategy, fitness_fn: StatefulFitnessFn) -> Callable:
    """The one compiled program of a generation: ``(key, es_state, extra) -> (es_state, extra, fitness, metrics)``."""

    def generation(key: jax.Array, es_state: Any, extra: Any):
        ask_key, eval_key, tell_key = jax.random.split(key, 3)
        population, es_state = es.ask(ask_key, es_state)
        fitness, extra, fitness_metrics = fitness_fn(eval_key, population, extra)
        es_state, metrics = es.tell(tell_key, population, fitness, es_state)
        return strong_types(es_state), strong_types(extra), fitness, {**metrics, **fitness_metrics}

    return jax.jit(generation)


def make_device_generation(es: EvolutionStrategy, evaluator: DeviceEvaluator) -> Callable:
    """A generation of a plain fitness: ask (jit), the population over the devices, tell (jit).

    Same signature and keys as :func:`make_generation`; ask and tell are
    computed identically in every process, the evaluation is shared.
    """

    @jax.jit
    def ask(key: jax.Array, es_state: Any):
        ask_key, eval_key, tell_key = jax.random.split(key, 3)
        population, es_state = es.ask(ask_key, es_state)
        return population, es_state, eval_key, tell_key

    @jax.jit
    def tell(tell_key: jax.Array, population: Any, fitness: jax.Array, es_state: Any):
        es_state, metrics = es.tell(tell_key, population, fitness, es_state)
        return strong_types(es_state), metrics

    def generation(key: jax.Array, es_state: Any, extra: Any):
        population, es_state, eval_key, tell_key = ask(key, es_state)
        fitness = evaluator(eval_key, population)
        es_state, metrics = tell(tell_key, population, fitness, es_state)
        return es_state, extra, fitness, metrics

    return generation


def _pack(es_state: Any, extra: Any, stateful: bool) -> Any:
    # a plain run's checkpoint is the ES state alone (as before extra state existed)
    return {"es": es_state, "extra": extra} if stateful else es_state


def _unpack(state: Any, stateful: bool) -> tuple[Any, Any]:
    return (state["es"], state["extra"]) if stateful else (state, None)


def history_summary(history: list[dict]) -> dict:
    """First/last population-mean fitness, the best candidate seen and the count of failed candidates."""
    return {
        "first_fitness_mean": history[0]["fitness_mean"],
        "last_fitness_mean": history[-1]["fitness_mean"],
        "best_fitness": max(r["fitness_max"] for r in history),
        "nonfinite": sum(r["num_nonfinite"] for r in history),
    }


def _attempt_key(seed_key: jax.Array, generation: int, attempt: int) -> jax.Array:
    key = jax.random.fold_in(seed_key, generation)
    return key if attempt == 0 else jax.random.fold_in(key, attempt)  # attempt 0: the key runs always had


def run_meta_training(
    es: EvolutionStrategy,
    fitness_fn: FitnessFn | StatefulFitnessFn,
    init_mean: Any,
    key: jax.Array,
    config: TrainerConfig,
    run_dir: str | os.PathLike,
    *,
    resume: bool = False,
    metadata: dict | None = None,
    description: str = "meta-train",
    extra_state: Any = None,
) -> MetaTrainResult:
    """Evolve ``init_mean`` for ``config.generations``; see module docstring.

    Writes ``run_dir/meta_log.jsonl`` and ``run_dir/checkpoints/<generations done>``
    (the ES state, or ``{"es", "extra"}`` with an extra state). ``metadata``
    (JSON) is stored with every checkpoint.
    """
    run_dir = Path(run_dir)
    stateful = extra_state is not None
    primary = distributed.is_primary()  # process 0 (or the only process) writes the log, checkpoints and notes
    if stateful:
        generation_fn = make_generation(es, fitness_fn)
    else:
        evaluator = DeviceEvaluator(fitness_fn, es.population_size, config.chunk_size, config.pick_devices())
        if evaluator.padding and primary:
            print(f"note: {evaluator.num_blocks} blocks of {evaluator.width} candidates over {len(evaluator.devices)} "
                  f"devices: {evaluator.padding:.0%} of each generation's device time is padding (meta.chunk_size or "
                  "meta.devices can avoid it)", file=sys.stderr, flush=True)
        generation_fn = make_device_generation(es, evaluator)
    init_key, seed_key = jax.random.split(key)
    state = strong_types(_pack(es.init(init_key, init_mean), extra_state, stateful))
    checkpointer = ESCheckpointer(distributed.primary_run_dir(run_dir) / "checkpoints",
                                  max_to_keep=config.max_checkpoints, writer=primary)
    start = 0
    if resume and checkpointer.latest_generation() is not None:
        start, state, _ = checkpointer.restore(state)
        start = min(start, config.generations)
    es_state, extra = _unpack(state, stateful)

    log_path = run_dir / LOG

    def save(done: int) -> None:
        if primary:
            checkpointer.save(done, _pack(es_state, extra, stateful), {"generations_done": done, **(metadata or {})})

    with GenerationLog(log_path, config.generations, start, description, config.show_progress and primary) as log:
        for generation in range(start, config.generations):
            for attempt in range(config.max_failed_retries + 1):
                started = time.perf_counter()
                next_es, next_extra, fitness, metrics = generation_fn(
                    _attempt_key(seed_key, generation, attempt), es_state, extra)
                fitness = np.asarray(fitness)
                if np.isfinite(fitness).any():
                    break
                log.record_failure(generation, attempt=attempt, num_nonfinite=int(fitness.size),
                                   seconds=time.perf_counter() - started)
                save(generation)  # the last good state, whatever checkpoint_every says
            else:
                checkpointer.close()
                tries = config.max_failed_retries + 1
                raise AllCandidatesFailedError(
                    f"generation {generation}: all {fitness.size} candidates returned NaN/inf fitness in {tries} "
                    f"attempt{'s' if tries > 1 else ''} (meta.max_failed_retries={config.max_failed_retries}); "
                    f"stopped; checkpoint {generation} in {checkpointer.directory} keeps the last good state; "
                    "inner training diverged: lower meta.sigma or check the objective"
                )
            es_state, extra = next_es, next_extra
            retried = {"retries": attempt} if attempt else {}
            log.record(generation, **jax.device_get(metrics), **retried, seconds=time.perf_counter() - started)
            done = generation + 1
            if done % config.checkpoint_every == 0 or done == config.generations:
                save(done)
    checkpointer.close()
    history = [r for r in read_log(log_path) if not r.get("failed")]
    return MetaTrainResult(es.mean(es_state), es_state, history, start, extra)
