"""``metarl-curriculum``: train PPO under a teacher and evaluate on held-out tasks.

    metarl-curriculum teacher=alp_gmm env=stumps agent.total_timesteps=200000
    metarl-curriculum teacher=robust_plr env=maze teacher.capacity=256

Teachers come from the Hydra group ``configs/teacher/``. After training, the
greedy policy plays one episode on each task of a fixed held-out set
(``envs.stumps.test_tasks`` for ``stumps``; ``eval.set=named``: the named
held-out mazes; otherwise 100 tasks drawn from the TaskSpace with seed 31,
TeachMyAgent's test-set seed) and the run reports the
share of tasks **mastered** (stumps: return > ``MASTERED_RETURN``; other envs:
``info["success"]``) and the mean return. Writes ``summary.json`` and
``metrics.npz`` (per-update training metrics) to the run directory.

The primary config is registered in code (``curriculum``), so only the
``teacher`` group lives in ``configs/``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import envs
from curricula.factory import _plain, make_teacher

TEST_SET_SEED = 31
DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "run_dir": None,
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


HELD_OUT_SETS = ("default", "named")


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
    """First-episode return and success of the greedy policy on each task (one env per task)."""
    from metarl.agents import networks
    from envs.wrappers import LogWrapper

    env = LogWrapper(agent.env)
    n = jax.tree.leaves(tasks)[0].shape[0]
    key_reset, key_steps = jax.random.split(key)
    obs, env_state = jax.vmap(env.reset)(jax.random.split(key_reset, n), tasks)

    def act(obs):
        x = agent._normalize(state.obs_rms, agent._flat_obs(obs))
        out, _ = networks.apply_mlp(state.params["actor"], x, agent.config.activation)
        return agent._env_action(out if agent.continuous else jnp.argmax(out, axis=-1))

    def body(carry, key):
        obs, env_state, done, ret, success = carry
        obs, env_state, _, _, _, info = jax.vmap(env.step)(jax.random.split(key, n), env_state, act(obs), tasks)
        first = info["returned_episode"] & ~done
        ret = jnp.where(first, info["returned_episode_return"], ret)
        success = jnp.where(first, info["returned_episode_success"].astype(jnp.float32), success)
        return (obs, env_state, done | info["returned_episode"], ret, success), None

    init = (obs, env_state, jnp.zeros(n, bool), jnp.zeros(n, jnp.float32), jnp.zeros(n, jnp.float32))
    (_, _, done, ret, success), _ = jax.lax.scan(body, init, jax.random.split(key_steps, max_steps))
    return {"return": ret, "success": success, "finished": done}


def mastered(env: Any, result: Mapping[str, jax.Array]) -> jax.Array:
    from envs.stumps import MASTERED_RETURN, StumpTrack

    if isinstance(env, StumpTrack):
        return result["finished"] & (result["return"] > MASTERED_RETURN)
    return result["finished"] & (result["success"] > 0.5)


def resolve_config(cfg: Any) -> dict[str, Any]:
    """``cfg`` (a mapping shaped like ``DEFAULTS`` plus ``teacher``) merged over ``DEFAULTS``."""
    cfg = _plain(cfg)
    merged = {**DEFAULTS, **{k: v for k, v in cfg.items() if k not in ("agent", "eval")}}
    merged["agent"] = {**DEFAULTS["agent"], **(cfg.get("agent") or {})}
    merged["eval"] = {**DEFAULTS["eval"], **(cfg.get("eval") or {})}
    if "teacher" not in merged:
        raise ValueError("config needs a teacher (e.g. teacher=domain_randomization)")
    return merged


def build(merged: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    """``(env, agent, ppo_config)`` for a resolved config (see :func:`resolve_config`)."""
    from metarl.agents.ppo import PPO, PPOConfig

    env, params = envs.make(merged["env"], **(merged["env_kwargs"] or {}))
    ppo_config = PPOConfig(**merged["agent"])
    teacher = make_teacher(merged["teacher"], env.task_space, num_envs=ppo_config.num_envs)
    return env, PPO(ppo_config, env, params, teacher=teacher), ppo_config


def run(cfg: Any, run_dir: str | Path | None = None) -> dict[str, Any]:
    """Train and evaluate; ``cfg`` is a mapping shaped like ``DEFAULTS`` plus ``teacher``."""
    merged = resolve_config(cfg)
    env, agent, ppo_config = build(merged)

    started = time.perf_counter()
    key_train, key_eval = jax.random.split(jax.random.PRNGKey(int(merged["seed"])))
    state = jax.jit(agent.init)(key_train)
    state, metrics = jax.jit(agent.run, static_argnums=1)(state, ppo_config.num_updates)
    jax.block_until_ready(state)
    train_seconds = time.perf_counter() - started

    tasks = held_out_tasks(env, int(merged["eval"]["num_tasks"]), merged["eval"]["set"])
    result = jax.jit(evaluate_greedy, static_argnums=(0, 3))(agent, state, tasks, int(merged["eval"]["max_steps"]), key_eval)
    summary = {
        "env": merged["env"],
        "teacher": merged["teacher"].get("name") if isinstance(merged["teacher"], Mapping) else str(merged["teacher"]),
        "updates": int(ppo_config.num_updates),
        "timesteps": int(ppo_config.num_updates * ppo_config.batch_size),
        "train_seconds": round(train_seconds, 2),
        "mastered": float(jnp.mean(mastered(env, result))),
        "test_return": float(jnp.mean(result["return"])),
        "test_success": float(jnp.mean(result["success"])),
        "final_train_return": float(np.nanmean(np.asarray(metrics["episode_return"])[-5:])),
    }
    if run_dir is not None:
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        np.savez(run_dir / "metrics.npz", **{k: np.asarray(v) for k, v in metrics.items()})
    return summary


def _register_config() -> None:
    from hydra.core.config_store import ConfigStore

    node = {"defaults": [{"teacher": "domain_randomization"}, "_self_"], **DEFAULTS}
    ConfigStore.instance().store(name="curriculum", node=node)


def main() -> None:
    import hydra
    from hydra.core.hydra_config import HydraConfig

    _register_config()
    config_dir = Path(__file__).resolve().parents[2] / "configs"

    @hydra.main(version_base=None, config_path=str(config_dir), config_name="curriculum")
    def _main(cfg) -> None:
        run_dir = Path(cfg.run_dir) if cfg.run_dir else Path(HydraConfig.get().runtime.output_dir)
        summary = run(cfg, run_dir)
        print(json.dumps(summary, indent=2))
        print(f"run directory: {run_dir}")

    _main()


if __name__ == "__main__":
    main()
