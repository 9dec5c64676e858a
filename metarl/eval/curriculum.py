"""PPO under a teacher, scored on a fixed held-out task set.

After training, the greedy policy plays one episode on each task of the
held-out set (``envs.stumps.test_tasks`` for ``stumps``; ``eval.set=named``:
the named held-out mazes; otherwise 100 tasks drawn from the TaskSpace with
seed 31, TeachMyAgent's test-set seed). A task is **mastered** when (stumps)
the return exceeds ``MASTERED_RETURN`` or (other envs) ``info["success"]``.

A config is a mapping shaped like :data:`DEFAULTS` plus ``teacher``; ``env``
is a registry name (with ``env_kwargs``) or the ``env`` config group's
``{name, overrides}``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import envs
from curricula.factory import META_TRAINING_TEACHERS, OPTION_BOUNDS, OPTION_CHOICES, make_teacher, teacher_options
from metarl.agents.policy import evaluate_policy
from metarl.config import check_choice, check_finite, check_keys, check_number, check_value, close_matches, plain
from metarl.io.outputs import ProgressBar

TEST_SET_SEED = 31
HELD_OUT_SETS = ("default", "named")
DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "env": "stumps",
    "env_kwargs": {},
    "agent": {  # metarl.agents.ppo.PPOConfig fields
        "total_timesteps": 100_000,
        "num_envs": 16,
        "num_steps": 64,
        "lr": 1e-3,
        "update_epochs": 4,
        "num_minibatches": 4,
        "ent_coef": 0.01,
        "task_resample": "rollout",
        "teacher_score": "pvl",
    },
    "eval": {"num_tasks": 100, "max_steps": 64, "set": "default"},
}


def held_out_tasks(env: Any, n: int, which: str = "default") -> Any:
    """The fixed evaluation set: ``"named"`` = the held-out named mazes (maze only, ``n`` ignored)."""
    from envs.maze import NAMED_MAZES, Maze, named_maze_params
    from envs.stumps import StumpTrack, test_tasks

    if which not in HELD_OUT_SETS:
        raise ValueError(f"eval.set must be one of {HELD_OUT_SETS}, got {which!r}")
    if which == "named":
        if not isinstance(env, Maze):
            raise ValueError("eval.set=named needs env=maze (the named held-out mazes)")
        levels = [named_maze_params(name, env.max_height, env.max_width) for name in NAMED_MAZES]
        return jax.tree.map(lambda *xs: jnp.stack(xs), *levels)
    if isinstance(env, StumpTrack):
        return test_tasks(env, n)
    return env.task_space.sample_batch(jax.random.PRNGKey(TEST_SET_SEED), n)


def evaluate_greedy(agent: Any, state: Any, tasks: Any, max_steps: int, key: jax.Array) -> dict[str, jax.Array]:
    """First-episode return, success and end of the greedy policy on each task (one episode per task)."""
    n = jax.tree.leaves(tasks)[0].shape[0]
    return evaluate_policy(agent.policy(greedy=True), agent.policy_params(state), agent.env, tasks, key, n,
                           max_steps=max_steps, batched_params=True)


def mastered(env: Any, result: Mapping[str, jax.Array]) -> jax.Array:
    from envs.stumps import MASTERED_RETURN, StumpTrack

    if isinstance(env, StumpTrack):
        return result["finished"] & (result["return"] > MASTERED_RETURN)
    return result["finished"] & (result["success"] > 0.5)


def resolve_config(cfg: Any) -> dict[str, Any]:
    """``cfg`` merged over :data:`DEFAULTS`; unknown keys are errors naming them."""
    cfg = check_keys(cfg, [*DEFAULTS, "teacher"], "curriculum")
    if isinstance(cfg.get("env"), Mapping):  # the env config group: {name, overrides}
        env = check_keys(cfg["env"], ("name", "overrides"), "env")
        cfg = {**cfg, "env": env.get("name"), "env_kwargs": env.get("overrides") or {}}
    merged = {**DEFAULTS, **{k: v for k, v in cfg.items() if k not in ("agent", "eval")}}
    merged["agent"] = {**DEFAULTS["agent"], **(cfg.get("agent") or {})}
    merged["eval"] = {**DEFAULTS["eval"], **check_keys(cfg.get("eval"), DEFAULTS["eval"], "eval")}
    if not merged.get("teacher"):
        raise ValueError("config needs a teacher (e.g. teacher=domain_randomization)")
    merged["seed"] = check_number(merged["seed"], "seed", integer=True)
    for key in ("num_tasks", "max_steps"):
        merged["eval"][key] = check_number(merged["eval"][key], f"eval.{key}", integer=True, ge=1)
    check_choice(merged["eval"]["set"], "eval.set", HELD_OUT_SETS)
    check_teacher(merged["teacher"])
    return merged


def check_teacher(teacher: Any) -> None:
    """The ``teacher`` section against the teacher's options: names, types and declared ranges (one line each)."""
    if not isinstance(teacher, Mapping):
        return  # make_teacher says what it needs
    name = teacher.get("name")
    if name in META_TRAINING_TEACHERS:
        return  # make_teacher explains where such a teacher belongs
    options = teacher_options(name)
    for key, value in teacher.items():
        if key in ("name", "label"):
            continue
        if key not in options:
            hint = close_matches(key, options, or_list=True)
            raise ValueError(f"teacher.{key} is not a setting of teacher {name}{hint}")
        check_value(value, options[key], f"teacher.{key}", **OPTION_BOUNDS.get(key, {}))
        if key in OPTION_CHOICES:
            check_choice(value, f"teacher.{key}", OPTION_CHOICES[key])


def build(merged: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    """``(env, agent, ppo_config)`` for a resolved config (see :func:`resolve_config`)."""
    from metarl.agents.ppo import PPO, PPOConfig
    from metarl.config import build_dataclass

    check_finite(merged["env_kwargs"] or {}, "env.overrides")
    env, params = envs.make(merged["env"], **(merged["env_kwargs"] or {}))
    ppo_config = build_dataclass(PPOConfig, merged["agent"], "agent")
    ppo_config.validate(env, params)
    teacher = make_teacher(plain(merged["teacher"]), env.task_space, num_envs=ppo_config.num_envs)
    return env, PPO(ppo_config, env, params, teacher=teacher), ppo_config


def prepare(cfg: Any) -> tuple[dict[str, Any], Any, Any, Any, Any]:
    """``(config, env, agent, ppo_config, held-out tasks)``: every setting checked, nothing compiled yet."""
    merged = resolve_config(cfg)
    env, agent, ppo_config = build(merged)
    return merged, env, agent, ppo_config, held_out_tasks(env, merged["eval"]["num_tasks"], merged["eval"]["set"])


def train_and_evaluate(cfg: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Train and score on the held-out set: ``(summary, per-update training metrics)``."""
    merged, env, agent, ppo_config, tasks = prepare(cfg)

    started = time.perf_counter()
    key_train, key_eval = jax.random.split(jax.random.PRNGKey(int(merged["seed"])))
    state = jax.jit(agent.init)(key_train)
    with ProgressBar(ppo_config.num_updates, description=f"{merged['env']} curriculum") as bar:
        agent.progress_callback = bar.callback  # PPO reads it when run() is traced, just below
        state, metrics = jax.jit(agent.run, static_argnums=1)(state, ppo_config.num_updates)
        jax.block_until_ready(state)
    train_seconds = time.perf_counter() - started

    result = jax.jit(evaluate_greedy, static_argnums=(0, 3))(agent, state, tasks, int(merged["eval"]["max_steps"]), key_eval)
    teacher = merged["teacher"]
    summary = {
        "env": merged["env"],
        "teacher": teacher.get("name") if isinstance(teacher, Mapping) else str(teacher),
        "updates": int(ppo_config.num_updates),
        "timesteps": int(ppo_config.num_updates * ppo_config.batch_size),
        "train_seconds": round(train_seconds, 2),
        "mastered": float(jnp.mean(mastered(env, result))),
        "test_return": float(jnp.mean(result["return"])),
        "test_success": float(jnp.mean(result["success"])),
        "final_train_return": float(np.nanmean(np.asarray(metrics["episode_return"])[-5:])),
    }
    return summary, {k: np.asarray(v) for k, v in metrics.items()}
