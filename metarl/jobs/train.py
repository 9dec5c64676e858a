"""Job ``train`` (``metarl-train``): PPO on one environment over several vmapped seeds.

    metarl-train env=gridworld/dense seeds=8 agent.total_timesteps=1e6
    metarl-train env=pendulum optimizer=sgd agent.anneal_lr=false
    metarl-train resume=true run_dir=<a killed run's directory>

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
``checkpoint/`` (orbax: final network parameters of every seed) and
``policy_checkpoint.json`` (its artifact header: kind, PPO config and the
resolved config of the run). A bad configuration fails before anything compiles.
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
from metarl.config import as_int, build_dataclass, env_spec, plain, positive_int
from metarl.eval.report import plot_learning_curve
from metarl.io.artifacts import save_header
from metarl.io.checkpoint import ESCheckpointer
from metarl.io.outputs import ProgressBar, metric_arrays, save_checkpoint, summarize_final, update_rows
from metarl.io.progress import append_records, read_log, truncate_log
from metarl.jobs.registry import Job, register

PROGRAM = "metarl-train"
METRICS = "metrics.jsonl"
CHECKPOINTS = "checkpoints"
WATCHED_LOSSES = ("actor_loss", "value_loss")  # a NaN here means the parameters are about to follow


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


def make_chunk(agent: PPO, size: int, total: int) -> Callable:
    """``chunk(states, start, n) -> (states, metrics [seeds, size])``: ``n <= size`` updates of every seed.

    ``start`` and ``n`` are traced, so one compiled program serves every chunk,
    the shorter last one included (rows past ``n`` of the metrics are unused).
    """
    callback, period = agent.progress_callback, max(1, total // 20)

    def chunk(state: Any, start: jax.Array, n: jax.Array) -> tuple[Any, dict]:
        _, shapes = jax.eval_shape(agent.update, state)
        buffer = jax.tree.map(lambda s: jnp.zeros((size, *s.shape), s.dtype), shapes)

        def body(i: jax.Array, carry: tuple) -> tuple:
            state, buffer = carry
            state, metrics = agent.update(state)
            buffer = jax.tree.map(lambda b, m: b.at[i].set(m), buffer, metrics)
            if callback is not None:
                done = start + i + 1
                report = jnp.logical_or(done % period == 0, done == total)
                jax.lax.cond(report, lambda: jax.debug.callback(callback, done), lambda: None)
            return state, buffer

        return jax.lax.fori_loop(0, n, body, (state, buffer))

    return jax.jit(jax.vmap(chunk, in_axes=(0, None, None)))


def check_finite(params: Any, metrics: dict, first_update: int, checkpoints: Path) -> None:
    """Refuse a chunk whose watched losses or final parameters are NaN/inf (see module docstring)."""
    last = first_update + next(iter(metrics.values())).shape[1] - 1
    where = None
    for name in (n for n in WATCHED_LOSSES if n in metrics):
        seed_index, update_index = np.nonzero(~np.isfinite(metrics[name]))
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
    seed = as_int(cfg.get("seed", 0), "seed")
    env_name, env_overrides = env_spec(cfg.env)
    env, env_params = envs.make(env_name, **env_overrides)
    config = build_dataclass(PPOConfig, cfg.agent, "agent")
    config.validate(env, env_params)
    optimizer, optimizer_params = build_optimizer(cfg.get("optimizer"))
    every = cfg.get("checkpoint_every")
    chunk_size = config.num_updates if every is None else min(positive_int(every, "checkpoint_every"), config.num_updates)
    resume = bool(cfg.get("resume", False))
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)

    keys = jax.random.split(jax.random.key(seed), seeds)
    bar = ProgressBar(config.num_updates, description=f"{env_name} x{seeds}") if cfg.get("progress", True) else None
    agent = PPO(config, env, env_params, optimizer=optimizer, progress_callback=bar.callback if bar else None)
    state = jax.jit(jax.vmap(lambda key: agent.init(key, None, optimizer_params)))(keys)
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
        chunk = make_chunk(agent, chunk_size, config.num_updates)
        while done < config.num_updates:
            n = min(chunk_size, config.num_updates - done)
            new_state, metrics = chunk(state, done, n)
            metrics = {k: np.asarray(v)[:, :n] for k, v in jax.device_get(metrics).items()}
            check_finite(new_state.params, metrics, done, checkpointer.directory)
            append_records(metrics_path, update_rows(metrics, done))  # rows first, then the checkpoint
            state, done = new_state, done + n
            checkpointer.save(done, state, {"updates_done": done, "seeds": seeds})
    finally:
        checkpointer.close()
        if bar:
            bar.close()
    seconds = time.perf_counter() - start

    metrics = metric_arrays(read_log(metrics_path), ["episode_return", "timesteps"])
    steps = metrics["timesteps"][0]
    plot_learning_curve(
        run_dir / "learning_curve.png",
        steps,
        {"PPO": metrics["episode_return"]},
        title=f"{env_name}: {seeds} seed{'s' if seeds > 1 else ''}",
    )
    checkpoint = save_checkpoint(run_dir / "checkpoint", {"params": state.params, "obs_rms": state.obs_rms})
    save_header(run_dir / "policy_checkpoint.json", kind="policy_checkpoint", name="ppo",
                config=plain(dataclasses.asdict(config)),
                extra={"checkpoint": checkpoint.name, "seeds": seeds, "resolved_config": plain(cfg)})
    final = summarize_final(metrics)
    total_steps = int(steps[-1]) * seeds
    print(
        f"{PROGRAM}: {env_name}: final return {final['mean']:.2f} (seeds {final['min']:.2f}..{final['max']:.2f}); "
        f"{total_steps:,} steps in {seconds:.1f}s incl. compile; wrote {run_dir}"
    )
    return {"final_return": final, "seconds": seconds, "run_dir": str(run_dir)}


JOB = register(Job("train", run, "train", "PPO on one environment over several vmapped seeds",
                   writes=("policy_checkpoint",),
                   sections=("agent", "optimizer", "env", "seeds", "seed", "progress", "checkpoint_every", "resume",
                             "allow_changes", "run_dir")))
