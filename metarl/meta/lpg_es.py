"""ES meta-training of an LPG rule with antithetic task sampling and a level teacher (GROOVE / DR).

One generation (all inside one jitted call; keys are ``fold_in(seed_key, g)``
so a resumed run replays the same randomness):

1. ask the ES for ``P`` candidates ``[mean + s*z_1..z_{P/2}, mean - s*z_1..z_{P/2}]``
   (``metarl.meta.es`` / evosax OpenES order: pair ``i`` = ``(i, i + P/2)``);
2. the teacher gives ``P/2`` levels, one per antithetic pair; each pair also
   shares one agent-initialisation key and one lifetime (fixed, or
   log-uniform for TA-LPG), so the pair differs only in the rule
   (antithetic task sampling, LPG / GROOVE);
3. every candidate trains an agent with its rule (vmapped population);
4. fitness: the pairwise rank ``+1 / -1 / 0`` (better / worse / tie member
   of each pair; GROOVE's 1/0 up to a constant, which ES gradients ignore)
   fed to OpenES without further shaping, or the raw final return;
5. the teacher is told the pair-mean return per level (GROOVE scores the
   level by algorithmic regret against its cached A2C return);
6. ES ``tell``; JSONL/progress record; orbax checkpoint of the ES *and*
   teacher state (so the level buffer survives a resume).

``run(cfg, run_dir)`` is ``metarl-meta-train objective=lpg|ta_lpg teacher=...``;
it writes ``meta_log.jsonl``, ``checkpoints/``, ``learned_rule.npz`` (a
:mod:`metarl.io.artifacts` file: load with :func:`load_rule`) and, with
``evaluate.enabled``, the held-out evaluation (:mod:`metarl.eval.lpg`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from curricula.base import Feedback
from curricula.groove import GROOVE
from curricula.simple import DomainRandomization, FixedTask
from metarl.io.artifacts import load_artifact, save_artifact
from metarl.config import build_dataclass, make_env, plain
from metarl.io.checkpoint import ESCheckpointer
from metarl.meta.es import ESConfig, EvolutionStrategy
from metarl.io.progress import GenerationLog, read_log
from metarl.meta.trainer import AllCandidatesFailedError

ARTIFACT = "learned_rule.npz"
ARTIFACT_KIND = "lpg_rule"
FITNESSES = ("pairwise_rank", "return")
TEACHERS = ("groove", "domain_randomization", "fixed")
RULE_OBJECTIVES = ("lpg", "ta_lpg")


# --- antithetic pairing ----------------------------------------------------------------
def antithetic_pair_ranks(returns: jax.Array) -> jax.Array:
    """Pairwise rank of mirrored candidates: ``+1`` better, ``-1`` worse, ``0`` tie.

    ``returns[i]`` and ``returns[i + P/2]`` are the two members of pair ``i``
    (``theta + eps_i`` and ``theta - eps_i``). A non-finite return loses to a
    finite one; two non-finite returns tie.
    """
    returns = jnp.asarray(returns, jnp.float32)
    if returns.ndim != 1 or returns.shape[0] % 2:
        raise ValueError(f"antithetic ranking needs an even 1-D population, got shape {returns.shape}")
    half = returns.shape[0] // 2
    safe = jnp.where(jnp.isfinite(returns), returns, -jnp.inf)
    plus, minus = safe[:half], safe[half:]
    sign = (plus > minus).astype(jnp.float32) - (plus < minus).astype(jnp.float32)
    return jnp.concatenate([sign, -sign])


def mirror(tree: Any) -> Any:
    """Per-pair values ``[P/2, ...]`` -> per-candidate ``[P, ...]`` in the ES order (both halves equal)."""
    return jax.tree.map(lambda x: jnp.concatenate([x, x], axis=0), tree)


def sample_lifetimes(key: jax.Array, n: int, lifetime: int, lifetime_min: int | None) -> jax.Array:
    """``n`` lifetimes: all ``lifetime``, or log-uniform integers in ``[lifetime_min, lifetime]`` (TA-LPG)."""
    if lifetime_min is None or lifetime_min >= lifetime:
        return jnp.full((n,), lifetime, jnp.int32)
    u = jax.random.uniform(key, (n,), minval=math.log(lifetime_min), maxval=math.log(lifetime + 1))
    return jnp.clip(jnp.floor(jnp.exp(u)), lifetime_min, lifetime).astype(jnp.int32)


# --- configuration -------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class LPGMetaConfig:
    """The ``objective`` section of ``objective=lpg|ta_lpg`` (besides ``rule`` and ``agent``)."""

    name: str = "lpg"
    lifetime: int = 50  # agent updates (the max lifetime; antagonist A2C trains this long)
    lifetime_min: int | None = None  # set: log-uniform lifetimes in [lifetime_min, lifetime] (TA-LPG)
    fitness: str = "pairwise_rank"  # "pairwise_rank" | "return"
    rule: dict = dataclasses.field(default_factory=dict)  # LPGConfig fields
    agent: dict = dataclasses.field(default_factory=dict)  # AgentConfig fields
    eval: dict = dataclasses.field(default_factory=dict)  # metarl.eval.lpg settings after training

    def __post_init__(self) -> None:
        if self.name not in RULE_OBJECTIVES:
            raise ValueError(f"objective.name must be one of {RULE_OBJECTIVES}, got {self.name!r}")
        if self.fitness not in FITNESSES:
            raise ValueError(f"objective.fitness must be one of {FITNESSES}, got {self.fitness!r}")
        if not isinstance(self.lifetime, int) or self.lifetime < 1:
            raise ValueError(f"objective.lifetime must be a positive int, got {self.lifetime!r}")
        if self.lifetime_min is not None and not 1 <= self.lifetime_min <= self.lifetime:
            raise ValueError(f"objective.lifetime_min must lie in [1, lifetime={self.lifetime}], got {self.lifetime_min}")


def build_rule(rule_cfg: dict, time_aware: bool) -> Any:
    from metarl.lpg import LPGConfig, LPGRule

    cfg = dict(rule_cfg)
    cfg["time_aware"] = bool(cfg.get("time_aware", time_aware))
    return LPGRule(build_dataclass(LPGConfig, cfg, "objective.rule"))


def build_agent_config(agent_cfg: dict) -> Any:
    from metarl.lpg import AgentConfig

    return build_dataclass(AgentConfig, agent_cfg, "objective.agent")


def build_teacher(teacher_cfg: dict | None, task_space: Any, antagonist_fn: Callable, batch_size: int) -> Any:
    """A level sampler for meta-training (``teacher/`` group): groove | domain_randomization | fixed."""
    cfg = dict(teacher_cfg or {"name": "groove"})
    name = cfg.pop("name", None)
    if name not in TEACHERS:
        raise ValueError(f"unknown teacher {name!r} for LPG meta-training; choose one of {list(TEACHERS)}")
    if name == "domain_randomization":
        return DomainRandomization(task_space)
    if name == "fixed":
        return FixedTask(task_space=task_space)
    known = {"capacity", "replay_prob", "staleness_coef", "temperature", "min_fill_ratio", "duplicate_check"}
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise ValueError(f"unknown teacher.{unknown[0]} for groove (valid: {', '.join(sorted(known))})")
    return GROOVE(antagonist_fn, batch_size=batch_size, task_space=task_space, **cfg)


def es_config_for(meta_cfg: dict, fitness: str) -> tuple[ESConfig, dict]:
    """ES settings; pairwise ranks are already shaped, so they go to OpenES unchanged (identity)."""
    from metarl.jobs.meta_train import split_meta_config

    es_config, trainer = split_meta_config(meta_cfg)
    if fitness == "pairwise_rank":
        if not es_config.antithetic:
            raise ValueError("objective.fitness=pairwise_rank needs meta.antithetic=true")
        if es_config.evosax_name.lower().replace("_", "") not in ("openes", "pgpe", "ars"):
            raise ValueError(f"pairwise_rank fitness needs a gradient ES (OpenES); got meta.strategy={es_config.strategy}")
        if es_config.fitness_shaping == "auto":
            es_config = dataclasses.replace(es_config, fitness_shaping="identity")
    return es_config, trainer


# --- the generation step --------------------------------------------------------------
@dataclasses.dataclass(eq=False)  # hashable by identity: its bound method is jitted
class LPGMetaTrainer:
    """Holds the pieces and builds the jitted ``generation(key, es_state, teacher_state)``."""

    es: EvolutionStrategy
    teacher: Any
    train: Callable  # train(key, meta_params, level, num_updates, lifetime) -> LifetimeResult
    config: LPGMetaConfig

    @property
    def pairs(self) -> int:
        return self.es.population_size // 2

    def generation(self, key: jax.Array, es_state: Any, teacher_state: Any) -> tuple[Any, Any, dict]:
        ask_key, level_key, agent_key, life_key, tell_key = jax.random.split(key, 5)
        population, es_state = self.es.ask(ask_key, es_state)
        teacher_state, levels = self.teacher.sample(teacher_state, level_key, self.pairs)
        lifetimes = sample_lifetimes(life_key, self.pairs, self.config.lifetime, self.config.lifetime_min)
        agent_keys = jax.random.split(agent_key, self.pairs)
        train = lambda k, mp, lvl, n: self.train(k, mp, lvl, num_updates=self.config.lifetime, lifetime=n)  # noqa: E731
        result = jax.vmap(train)(mirror(agent_keys), population, mirror(levels), mirror(lifetimes))
        returns = result.final_return
        fitness = antithetic_pair_ranks(returns) if self.config.fitness == "pairwise_rank" else returns
        pair_return = 0.5 * (returns[: self.pairs] + returns[self.pairs :])
        teacher_state = self.teacher.update(teacher_state, levels, Feedback.from_returns(pair_return))
        es_state, metrics = self.es.tell(tell_key, population, fitness, es_state)
        metrics = {
            **metrics,
            "return_mean": jnp.nanmean(returns),
            "return_max": jnp.nanmax(returns),
            "returns_nonfinite": jnp.sum(~jnp.isfinite(returns)),
            "lifetime_mean": jnp.mean(lifetimes.astype(jnp.float32)),
        }
        if isinstance(self.teacher, GROOVE):
            metrics |= {
                "regret_mean": jnp.mean(self.teacher.regret(teacher_state, pair_return)),
                "antagonist_return_mean": jnp.mean(teacher_state.antagonist),
                "replay": teacher_state.last_was_replay.astype(jnp.int32),
                "buffer_size": teacher_state.buffer.size,
                "antagonist_evaluations": teacher_state.antagonist_evaluations,
            }
        # strong dtypes in = strong dtypes out: one compiled program for every generation
        return strong_types(es_state), strong_types(teacher_state), metrics


def strong_types(tree: Any) -> Any:
    """Drop weak types (evosax's initial ``best_fitness``) so generation 1 reuses generation 0's program."""
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.asarray(x).dtype), tree)


def run_lpg_meta_training(
    trainer: LPGMetaTrainer,
    init_mean: Any,
    key: jax.Array,
    generations: int,
    run_dir: Path,
    *,
    checkpoint_every: int = 1,
    resume: bool = False,
    show_progress: bool = True,
    metadata: dict | None = None,
    task_space: Any = None,
) -> tuple[Any, list[dict], int]:
    """The ES loop with a stateful teacher; returns (final mean, log records, generations resumed)."""
    if generations < 1 or checkpoint_every < 1:
        raise ValueError(f"generations and checkpoint_every must be >= 1, got {generations}, {checkpoint_every}")
    init_key, teacher_key, seed_key = jax.random.split(key, 3)
    state = {"es": trainer.es.init(init_key, init_mean), "teacher": trainer.teacher.init(teacher_key, task_space)}
    state = strong_types(state)
    checkpointer = ESCheckpointer(run_dir / "checkpoints")
    start = 0
    if resume and checkpointer.latest_generation() is not None:
        start, state, _ = checkpointer.restore(state)
        start = min(start, generations)
    step = jax.jit(trainer.generation)
    log_path = run_dir / "meta_log.jsonl"
    with GenerationLog(log_path, generations, start, f"ES LPG ({type(trainer.teacher).__name__})",
                       show_progress) as log:
        for generation in range(start, generations):
            started = time.perf_counter()
            es_state, teacher_state, metrics = step(jax.random.fold_in(seed_key, generation), state["es"],
                                                    state["teacher"])
            metrics = jax.device_get(metrics)
            if int(metrics["returns_nonfinite"]) == 2 * trainer.pairs:
                raise AllCandidatesFailedError(f"generation {generation}: every LPG agent returned NaN/inf")
            state = {"es": es_state, "teacher": teacher_state}
            log.record(generation, **metrics, seconds=time.perf_counter() - started)
            done = generation + 1
            if done % checkpoint_every == 0 or done == generations:
                checkpointer.save(done, state, {"generations_done": done, **(metadata or {})})
    checkpointer.close()
    return trainer.es.mean(state["es"]), read_log(log_path), start


# --- artifact ----------------------------------------------------------------------------
def save_rule(path: Path, rule: Any, agent_config: Any, meta_params: Any, extra: dict | None = None) -> Path:
    config = {"rule": dataclasses.asdict(rule.config), "agent": dataclasses.asdict(agent_config)}
    meta_params = jax.tree.map(np.asarray, meta_params)
    return save_artifact(path, meta_params, kind=ARTIFACT_KIND, name="lpg", config=config, extra=extra)


def load_rule(path: str | Path) -> tuple[Any, Any, Any, dict]:
    """``(rule, agent_config, meta_params, header)`` from a ``learned_rule.npz`` (or its run directory)."""
    path = Path(path)
    if path.is_dir():
        path = path / ARTIFACT
    meta_params, header = load_artifact(path)
    if header["kind"] != ARTIFACT_KIND:
        raise ValueError(f"{path} holds a {header['kind']!r}, not an LPG rule")
    rule = build_rule(header["config"]["rule"], header["config"]["rule"].get("time_aware", False))
    agent_config = build_agent_config(header["config"]["agent"])
    template = rule.init(jax.random.PRNGKey(0))
    if jax.tree.structure(template) != jax.tree.structure(meta_params):
        raise ValueError(f"{path}: the stored parameters do not match the rule config in its header")
    meta_params = jax.tree.map(lambda t, x: jnp.asarray(x, t.dtype), template, meta_params)
    return rule, agent_config, meta_params, header


# --- the CLI job -------------------------------------------------------------------------
def run(cfg: Any, run_dir: Path) -> dict:
    """``metarl-meta-train objective=lpg|ta_lpg teacher=groove|domain_randomization env=gridworld/all``."""
    from metarl.lpg import make_a2c_lifetime, make_lpg_lifetime

    started = time.perf_counter()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    objective = build_dataclass(LPGMetaConfig, _objective_section(cfg), "objective")
    es_config, trainer_kwargs = es_config_for(plain(cfg.meta), objective.fitness)
    generations = int(trainer_kwargs.get("generations", 1))
    checkpoint_every = int(trainer_kwargs.get("checkpoint_every", 1))
    rule = build_rule(objective.rule, objective.name == "ta_lpg")
    agent_config = build_agent_config(objective.agent)
    env_cfg = plain(cfg.env)
    env, _ = make_env(env_cfg)
    task_space = env.task_space
    seed, resume = int(cfg.seed), bool(cfg.resume)

    a2c = make_a2c_lifetime(agent_config, env)
    antagonist = lambda k, level: a2c(k, level, objective.lifetime).final_return  # noqa: E731
    teacher = build_teacher(plain(cfg.get("teacher")), task_space, antagonist, es_config.population_size // 2)
    init_key, es_key = jax.random.split(jax.random.PRNGKey(seed))
    init_mean = rule.init(init_key)
    es = EvolutionStrategy(es_config, init_mean)
    trainer = LPGMetaTrainer(es, teacher, make_lpg_lifetime(agent_config, env, rule), objective)
    teacher_name = (plain(cfg.get("teacher")) or {}).get("name", "groove")
    metadata = {"objective": objective.name, "teacher": teacher_name, "env": env_cfg.get("name"), "seed": seed}
    mean, history, _ = run_lpg_meta_training(
        trainer, init_mean, es_key, generations, run_dir, checkpoint_every=checkpoint_every, resume=resume,
        show_progress=bool(cfg.get("progress_bar", True)), metadata=metadata, task_space=task_space,
    )
    extra = {"generations": generations, "env": env_cfg.get("name"), "teacher": teacher_name, "seed": seed,
             "lifetime": objective.lifetime, "lifetime_min": objective.lifetime_min,
             "population_size": es_config.population_size, "objective": objective.name}
    artifact = save_rule(run_dir / ARTIFACT, rule, agent_config, mean, extra)
    summary = {
        "run_dir": str(run_dir),
        "artifact": str(artifact),
        "objective": objective.name,
        "teacher": teacher_name,
        "generations": generations,
        "population_size": es_config.population_size,
        "first_return_mean": history[0]["return_mean"],
        "last_return_mean": history[-1]["return_mean"],
        "train_seconds": time.perf_counter() - started,
    }
    evaluate_cfg = cfg.get("evaluate")
    if evaluate_cfg is not None and evaluate_cfg.get("enabled", False) and objective.eval.get("enabled", True):
        from metarl.eval.lpg import evaluate_and_write

        eval_settings = {k: v for k, v in objective.eval.items() if k != "enabled"}
        paths = evaluate_and_write(artifact, out_dir=run_dir / "evaluation", seed=seed, **eval_settings)
        summary["report"] = str(paths["table"])
    return summary


def _objective_section(cfg: Any) -> dict:
    section = plain(cfg.objective)
    if not isinstance(section, dict):
        raise ValueError(f"objective must be a mapping, got {section!r}")
    return section
