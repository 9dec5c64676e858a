"""Train PPO under a teacher for several seeds at once and evaluate during training.

Training is split into ``segments`` calls of ``PPO.run`` (one compiled
program, reused); after each segment the greedy policy of every seed is
scored on the held-out set (first episode per task, through
:func:`metarl.agents.policy.evaluate_policy`) and the teacher state is
snapshotted (to host) so its sampling distribution / level buffer can be
plotted afterwards. Statistics over seeds: :mod:`metarl.stats`.

Seeds run under ``vmap`` (every teacher's state is a pytree). ``vmap`` turns
data-dependent branches into selects, so a teacher with an expensive
occasional step (ALP-GMM's EM refit) pays it on every update; for those,
``vmap_seeds=False`` runs the seeds one after another through the same
compiled program instead.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from metarl.agents.policy import evaluate_policy
from metarl.eval.curriculum import build, held_out_tasks, mastered, resolve_config


@dataclass
class SegmentedRun:
    """What :func:`run_segmented` measured (host arrays; leading axis = seed)."""

    teacher: str
    timesteps: np.ndarray  # [segments + 1] env steps at each evaluation (0 = before training)
    mastered: np.ndarray  # [seeds, segments + 1] share of held-out tasks mastered
    test_return: np.ndarray  # [seeds, segments + 1] mean first-episode return on the held-out set
    per_task_mastered: np.ndarray  # [seeds, tasks] at the end of training
    train_return: np.ndarray  # [seeds, updates] training episode return per update
    snapshots: list = field(default_factory=list)  # teacher states (batched over seeds), one per evaluation
    train_seconds: float = 0.0
    eval_seconds: float = 0.0


def _evaluator(env: Any, agent: Any, tasks: Any, max_steps: int):
    greedy, n = agent.policy(greedy=True), jax.tree.leaves(tasks)[0].shape[0]

    def score(state: Any, key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        result = evaluate_policy(greedy, agent.policy_params(state), env, tasks, key, n, max_steps=max_steps,
                                 batched_params=True)
        won = mastered(env, result).astype(jnp.float32)
        return jnp.mean(won), jnp.mean(result["return"]), won

    return jax.jit(jax.vmap(score))


def run_segmented(
    cfg: Mapping[str, Any],
    seeds: Sequence[int],
    segments: int,
    vmap_seeds: bool = True,
    snapshot: bool = True,
) -> SegmentedRun:
    """Train ``cfg`` (shaped like ``metarl.eval.curriculum.DEFAULTS`` plus ``teacher``) for every seed.

    Evaluates before training and after each of ``segments`` equal parts of
    ``agent.total_timesteps`` (rounded down to whole updates per segment).
    """
    if segments < 1:
        raise ValueError(f"segments must be >= 1, got {segments}")
    if not seeds:
        raise ValueError("need at least one seed")
    merged = resolve_config(cfg)
    env, agent, ppo_config = build(merged)
    per_segment = ppo_config.num_updates // segments
    if per_segment < 1:
        raise ValueError(
            f"{ppo_config.num_updates} updates cannot be split into {segments} segments; raise total_timesteps"
        )
    tasks = held_out_tasks(env, int(merged["eval"]["num_tasks"]), merged["eval"]["set"])
    evaluate = _evaluator(env, agent, tasks, int(merged["eval"]["max_steps"]))

    keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds, jnp.uint32))
    train_keys, eval_keys = jnp.swapaxes(jax.vmap(jax.random.split)(keys), 0, 1)
    init = jax.jit(jax.vmap(agent.init))
    if vmap_seeds:
        run_part = jax.jit(jax.vmap(lambda s: agent.run(s, per_segment)))
    else:
        one = jax.jit(lambda s: agent.run(s, per_segment))

        def run_part(states):
            outs = [one(jax.tree.map(lambda x, i=i: x[i], states)) for i in range(len(seeds))]
            return jax.tree.map(lambda *xs: jnp.stack(xs), *outs)

    started = time.perf_counter()
    states = init(train_keys)
    jax.block_until_ready(states)
    train_seconds = time.perf_counter() - started
    eval_seconds = 0.0
    won_curve, return_curve, train_returns, snaps = [], [], [], []
    won = None
    for part in range(segments + 1):
        if part > 0:
            started = time.perf_counter()
            states, metrics = run_part(states)
            jax.block_until_ready(states)
            train_seconds += time.perf_counter() - started
            train_returns.append(np.asarray(metrics["episode_return"]))
        started = time.perf_counter()
        share, ret, won = evaluate(states, jax.vmap(jax.random.fold_in, (0, None))(eval_keys, part))
        won_curve.append(np.asarray(share))
        return_curve.append(np.asarray(ret))
        eval_seconds += time.perf_counter() - started
        if snapshot:
            snaps.append(jax.device_get(states.teacher_state))

    name = merged["teacher"].get("label") or merged["teacher"].get("name")
    return SegmentedRun(
        teacher=str(name),
        timesteps=np.arange(segments + 1) * per_segment * ppo_config.batch_size,
        mastered=np.stack(won_curve, axis=1),
        test_return=np.stack(return_curve, axis=1),
        per_task_mastered=np.asarray(won),
        train_return=np.concatenate(train_returns, axis=1),
        snapshots=snaps,
        train_seconds=train_seconds,
        eval_seconds=eval_seconds,
    )
