"""Job ``train`` (``metarl-train``): PPO or SAC on one environment over several vmapped seeds.

    metarl-train env=gridworld/dense seeds=8 agent.total_timesteps=1e6
    metarl-train env=pendulum optimizer=sgd agent.anneal_lr=false
    metarl-train agent=sac env=pendulum agent.total_timesteps=2e4
    metarl-train agent=sac env=manipulation env.name=push-v3 seeds=5     # MT1: 50 train / 50 held-out goals
    metarl-train agent=sac env=mt10
    metarl-train resume=true run_dir=<a killed run's directory>

The agent is ``agent.name`` (``configs/agent/<name>.yaml``; absent: ``ppo``).
PPO reads every ``agent.*`` key as a :class:`PPOConfig` field and trains with
the ``optimizer`` group. SAC (:mod:`metarl.agents.sac`) has its own Adam
optimizers (``agent.lr``/``critic_lr``/``alpha_lr``), so ``optimizer=`` on
the command line is an error with it, and it reads the :class:`SACConfig`
fields of the ``agent`` section: the PPO-only keys that env files set as
per-env PPO tuning (``num_steps``, ``update_epochs``, ...) are dropped, keys
both agents declare (``lr``, ``num_envs``, ``total_timesteps``, ``gamma``)
apply to SAC as well, and any other unknown key is an error. ``env.tasks``
and ``env.eval_tasks`` (SAC only) name task sets resolved by
``envs.benchmark_tasks``: SAC draws each episode's task from ``env.tasks``
and evaluates its greedy policy every ``agent.eval_every`` updates on
``env.eval_tasks`` (default: the training tasks), inside the compiled chunk.

Training runs in chunks of ``checkpoint_every`` updates (null: one chunk),
all through one compiled program, so chunking changes no number: the result
is bit for bit the one of a single chunk. After each chunk its rows are
appended to ``metrics.jsonl`` and the whole runner state of every seed is
saved under ``checkpoints/<updates done>`` (orbax, verified on load);
``resume=true`` continues from the newest readable checkpoint and cuts
``metrics.jsonl`` back to it, so each row is there exactly once. A chunk
whose losses or parameters turn NaN/inf stops the run with a one-line error
before anything of it is written; the last good checkpoint stays.

Writes into the run directory: ``config.yaml`` (resolved, by the CLI),
``metrics.jsonl`` (one row per seed per update), ``learning_curve.png``
(mean and 95% bootstrap interval over seeds against env steps),
``checkpoint/`` (orbax: final network parameters of every seed; SAC: the
actor's) and ``policy_checkpoint.json`` (its artifact header: kind, agent
name, agent config and the resolved config of the run). The checkpoints
under ``checkpoints/`` hold the whole train state of every seed (SAC: its
replay buffer too), so a resumed run is the uninterrupted one bit for bit.
A bad configuration fails before anything compiles.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import envs
from metarl.agents.ppo import PPO, PPOConfig
from metarl.agents.progress import REPORTS, report_progress
from metarl.agents.sac import SAC, SACConfig, check_task_set
from metarl.config import as_int, build_dataclass, env_spec, override_keys, plain, positive_int, unknown_name
from metarl.config import user_overrides
from metarl.eval.report import plot_learning_curve
from metarl.io import tracking
from metarl.io.artifacts import save_header
from metarl.io.checkpoint import ESCheckpointer
from metarl.io.outputs import ProgressBar, metric_arrays, save_checkpoint, summarize_final, update_rows
from metarl.io.progress import append_records, read_log, truncate_log
from metarl.jobs.registry import Job, register
from metarl.parallel import BlockMap

PROGRAM = "metarl-train"
METRICS = "metrics.jsonl"
CHECKPOINTS = "checkpoints"
WATCHED_LOSSES = ("actor_loss", "value_loss", "critic_loss")  # a NaN here means the parameters are about to follow
AGENTS = {"ppo": PPOConfig, "sac": SACConfig}
TASK_KEYS = ("tasks", "eval_tasks")  # env.* entries naming task sets (envs.benchmark_tasks)


class TrainingDivergedError(ValueError):
    """Losses or parameters turned NaN/inf (a ``ValueError``: the CLI reports it in one line)."""


def build_optimizer(cfg: Any) -> tuple[Any, Any]:
    """``(optimizer or None, optimizer_params or None)`` from the ``optimizer`` group."""
    cfg = plain(cfg)
    if not cfg:
        return None, None
    from metarl.optimizers import build_optimizer as build, load_learned_optimizer

    if cfg.get("name") == "learned" and cfg.get("load"):
        optimizer, meta_params, _ = load_learned_optimizer(cfg["load"])
        return optimizer, meta_params
    return build(cfg), None


def agent_name(agent_cfg: Any) -> str:
    """``agent.name`` (absent: ``ppo``); an unknown name is one line with the valid ones."""
    name = (plain(agent_cfg) or {}).get("name", "ppo")
    if name not in AGENTS:
        raise unknown_name("agent", name, AGENTS)
    return name


def build_agent_config(agent_cfg: Any) -> tuple[str, Any]:
    """``(name, PPOConfig | SACConfig)`` from the ``agent`` section (see module docstring for SAC's keys)."""
    name = agent_name(agent_cfg)
    values = {k: v for k, v in (plain(agent_cfg) or {}).items() if k != "name"}
    if name == "sac":
        ppo_only = {f.name for f in dataclasses.fields(PPOConfig)} - {f.name for f in dataclasses.fields(SACConfig)}
        values = {k: v for k, v in values.items() if k not in ppo_only}
    return name, build_dataclass(AGENTS[name], values, "agent")


def check_optimizer_use(name: str, overrides: list[str] | None = None) -> None:
    """SAC has its own optimizers: an ``optimizer`` override on the command line would be dropped, so it is an error."""
    overrides = user_overrides() if overrides is None else overrides
    for override, key in zip(overrides, override_keys(overrides)):
        if name != "ppo" and key.lstrip("+~").split(".")[0] == "optimizer":
            raise ValueError(f"{override}: agent={name} uses its own Adam optimizers (agent.lr, agent.critic_lr, "
                             "agent.alpha_lr), not the optimizer group")


def resolve_tasks(spec: Any, key: str, env: Any) -> Any:
    """The batched params of ``env.<key>`` (e.g. ``"ML1:reach-v3:train"``) through ``envs.benchmark_tasks``."""
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"env.{key} must be a task-set name such as 'ML1:reach-v3:train', got {spec!r}")
    tasks = envs.benchmark_tasks(spec)
    check_task_set(env, tasks, f"env.{key}={spec!r}")
    return tasks


def build_env(env_cfg: Any, name: str) -> tuple[str, Any, Any, dict]:
    """``(env name, env, env_params, {"tasks", "eval_tasks"})`` from the ``env`` section (task sets: SAC only)."""
    section = dict(plain(env_cfg) or {})
    specs = {key: section.pop(key) for key in TASK_KEYS if key in section}
    env_name, env_overrides = env_spec(section)
    env, env_params = envs.make(env_name, **env_overrides)
    if specs and name != "sac":
        raise ValueError(f"env.{next(iter(specs))} (a task set) needs agent=sac; agent={name} trains on env.name's task")
    tasks = {key: resolve_tasks(spec, key, env) for key, spec in specs.items() if spec is not None}
    return env_name, env, env_params, tasks


def make_agent(name: str, config: Any, env: Any, env_params: Any, tasks: dict, optimizer: Any,
               progress_callback: Callable | None) -> PPO | SAC:
    if name == "sac":
        return SAC(config, env, env_params, task_set=tasks.get("tasks"), eval_tasks=tasks.get("eval_tasks"),
                   progress_callback=progress_callback)
    return PPO(config, env, env_params, optimizer=optimizer, progress_callback=progress_callback)


def make_chunk(agent: PPO | SAC, size: int, total: int) -> Callable:
    """``chunk(states, start, n) -> (states, metrics [seeds, size])``: ``n <= size`` updates of every seed, jitted."""
    return jax.jit(seeds_chunk(agent, size, total))


def spread_chunk(agent: PPO | SAC, size: int, total: int, seeds: int, block: int) -> Callable:
    """:func:`make_chunk` with the seeds in blocks of ``block`` over every device (:class:`metarl.parallel.BlockMap`).

    The result depends on ``block``, never on the device count.
    """
    spread = BlockMap(seeds_chunk(agent, size, total), seeds, block)
    return lambda states, start, n: spread(states, jnp.int32(start), jnp.int32(n))


def seed_block(value: Any, seeds: int) -> int | None:
    """``seed_block`` (null: all seeds in one program on one device), which must divide ``seeds``."""
    if value is None:
        return None
    block = positive_int(value, "seed_block")
    if seeds % block:
        raise ValueError(f"seed_block={block} must divide seeds={seeds}")
    return block


def seeds_chunk(agent: PPO | SAC, size: int, total: int) -> Callable:
    """``chunk(states, start, n) -> (states, metrics [seeds, size])``: ``n <= size`` updates of every seed.

    ``start`` and ``n`` are traced, so one compiled program serves every chunk,
    the shorter last one included (rows past ``n`` of the metrics are unused).
    An agent with ``update_and_evaluate(state, updates_done)`` (SAC) evaluates
    after each update that is due; the update count is the same for every
    seed (not vmapped), so its ``lax.cond`` skips the other updates.
    """
    callback, period = agent.progress_callback, max(1, total // REPORTS)
    update_and_evaluate = getattr(agent, "update_and_evaluate", None)

    def step(state: Any, done: jax.Array) -> tuple[Any, dict]:
        return agent.update(state) if update_and_evaluate is None else update_and_evaluate(state, done)

    def chunk(state: Any, start: jax.Array, n: jax.Array) -> tuple[Any, dict]:
        _, shapes = jax.eval_shape(step, state, start)
        buffer = jax.tree.map(lambda s: jnp.zeros((size, *s.shape), s.dtype), shapes)

        def body(i: jax.Array, carry: tuple) -> tuple:
            state, buffer = carry
            state, metrics = step(state, start + i + 1)
            buffer = jax.tree.map(lambda b, m: b.at[i].set(m), buffer, metrics)
            report_progress(callback, start + i + 1, period, total)
            return state, buffer

        return jax.lax.fori_loop(0, n, body, (state, buffer))

    return jax.vmap(chunk, in_axes=(0, None, None))


def check_finite(params: Any, metrics: dict, first_update: int, checkpoints: Path) -> None:
    """Refuse a chunk whose watched losses or final parameters are NaN/inf (see module docstring)."""
    last = first_update + next(iter(metrics.values())).shape[1] - 1
    learned = np.asarray(metrics["gradient_steps"]) > 0 if "gradient_steps" in metrics else True  # SAC: NaN before
    where = None
    for name in (n for n in WATCHED_LOSSES if n in metrics):
        seed_index, update_index = np.nonzero(~np.isfinite(metrics[name]) & learned)
        if update_index.size:
            first = np.argmin(update_index)
            where = f"{name} turned NaN/inf at update {first_update + update_index[first]} (seed {seed_index[first]})"
            break
    if where is None:
        finite = [np.isfinite(np.asarray(x)).reshape(x.shape[0], -1).all(axis=1) for x in jax.tree.leaves(params)]
        bad_seeds = np.flatnonzero(~np.logical_and.reduce(finite))
        if not bad_seeds.size:
            return
        where = f"parameters turned NaN/inf in updates {first_update}..{last} (seed {bad_seeds[0]})"
    kept = (f"the last good checkpoint (update {first_update}) is in {checkpoints}" if first_update
            else "no update was good, nothing was checkpointed")
    raise TrainingDivergedError(f"training diverged: {where}; stopped, {kept}; lower agent.lr or "
                                "agent.max_grad_norm (resume=true allow_changes=[agent.lr] continues the run)")


def run(cfg: Any, run_dir: Path) -> dict:
    """Validate everything, train chunk by chunk (or resume), write outputs; returns a small summary."""
    seeds = positive_int(cfg.get("seeds", 1), "seeds")
    block = seed_block(cfg.get("seed_block"), seeds)
    seed = as_int(cfg.get("seed", 0), "seed")
    name = agent_name(cfg.get("agent"))
    env_name, env, env_params, tasks = build_env(cfg.env, name)
    name, config = build_agent_config(cfg.get("agent"))
    config.validate(env, env_params)
    check_optimizer_use(name)
    optimizer, optimizer_params = build_optimizer(cfg.get("optimizer")) if name == "ppo" else (None, None)
    every = cfg.get("checkpoint_every")
    chunk_size = config.num_updates if every is None else min(positive_int(every, "checkpoint_every"), config.num_updates)
    resume = bool(cfg.get("resume", False))
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)

    keys = jax.random.split(jax.random.key(seed), seeds)
    bar = ProgressBar(config.num_updates, description=f"{env_name} x{seeds}") if cfg.get("progress", True) else None
    agent = make_agent(name, config, env, env_params, tasks, optimizer, bar.callback if bar else None)
    if name == "ppo":
        state = jax.jit(jax.vmap(lambda key: agent.init(key, None, optimizer_params)))(keys)
    else:
        state = jax.jit(jax.vmap(agent.init))(keys)
    checkpointer = ESCheckpointer(run_dir / CHECKPOINTS, max_to_keep=2)
    metrics_path = run_dir / METRICS
    done = 0
    start = time.perf_counter()
    try:
        if resume and checkpointer.latest_generation() is not None:
            done, state, _ = checkpointer.restore(state)
            if bar:
                bar.callback(done)
        truncate_log(metrics_path, done, key="update")  # rows past the checkpoint are redone
        tracking.restart_at(done)
        chunk = make_chunk(agent, chunk_size, config.num_updates) if block is None else \
            spread_chunk(agent, chunk_size, config.num_updates, seeds, block)
        while done < config.num_updates:
            n = min(chunk_size, config.num_updates - done)
            new_state, metrics = chunk(state, done, n)
            metrics = {k: np.asarray(v)[:, :n] for k, v in jax.device_get(metrics).items()}
            check_finite(new_state.params, metrics, done, checkpointer.directory)
            rows = update_rows(metrics, done)
            append_records(metrics_path, rows)  # rows first, then the checkpoint
            tracking.log_rows("train", rows, step_key="update")  # the mean over seeds per update
            state, done = new_state, done + n
            checkpointer.save(done, state, {"updates_done": done, "seeds": seeds})
    finally:
        checkpointer.close()
        if bar:
            bar.close()
    seconds = time.perf_counter() - start

    metrics = metric_arrays(read_log(metrics_path), ["episode_return", "timesteps", "eval_return", "eval_success"])
    steps = metrics["timesteps"][0]
    plot_learning_curve(
        run_dir / "learning_curve.png",
        steps,
        {name.upper(): metrics["episode_return"]},
        title=f"{env_name}: {seeds} seed{'s' if seeds > 1 else ''}",
    )
    checkpoint = save_checkpoint(run_dir / "checkpoint", agent.policy_params(state))
    save_header(run_dir / "policy_checkpoint.json", kind="policy_checkpoint", name=name,
                config=plain(dataclasses.asdict(config)),
                extra={"checkpoint": checkpoint.name, "seeds": seeds, "resolved_config": plain(cfg)})
    final = summarize_final(metrics)
    total_steps = int(steps[-1]) * seeds
    print(
        f"{PROGRAM}: {env_name}: final return {final['mean']:.2f} (seeds {final['min']:.2f}..{final['max']:.2f}); "
        f"{total_steps:,} steps in {seconds:.1f}s incl. compile{last_evaluation(metrics)}; wrote {run_dir}"
    )
    return {"final_return": final, "seconds": seconds, "run_dir": str(run_dir)}


def last_evaluation(metrics: dict) -> str:
    """``; greedy eval at update u: return r, success s%`` for the newest evaluation (mean over seeds), or ``""``."""
    returns = metrics["eval_return"]
    evaluated = np.flatnonzero(np.isfinite(returns).any(axis=0))
    if not evaluated.size:
        return ""
    u = evaluated[-1]
    return (f"; greedy eval at update {u}: return {np.nanmean(returns[:, u]):.2f}, "
            f"success {100 * np.nanmean(metrics['eval_success'][:, u]):.0f}%")


JOB = register(Job("train", run, "train", "PPO or SAC on one environment over several vmapped seeds",
                   writes=("policy_checkpoint",),
                   sections=("agent", "optimizer", "env", "seeds", "seed_block", "cpu_devices", "seed", "progress",
                             "checkpoint_every", "resume", "allow_changes", "run_dir"),
                   headline="final_return.mean"))
