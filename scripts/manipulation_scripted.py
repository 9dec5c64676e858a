"""Scripted experts on every manipulation task: success table and one trajectory figure per task family.

    python scripts/manipulation_scripted.py [--tasks 100] [--out docs/results/figures]

For each implemented task, ``--tasks`` tasks are sampled from its TaskSpace
(seed 0) and the scripted expert and a no-op policy each run one 500-step
episode per task (one jitted, vmapped scan). Prints a markdown table: success
at any step (Meta-World's metric) with a 95% Wilson interval, the no-op
success, the median first-success step and the mean return. Figures
``manipulation_scripted_<family>.png`` show, per task, four sampled episodes
from above (x-y) and from the side (y-z): TCP path, object path, target.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import metarl.runtime

metarl.runtime.configure_cpu()
import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from envs.manipulation import Manipulation, world
from envs.manipulation.tasks import FAMILIES

KEY = jax.random.key(0)


def rollout(env: Manipulation, tasks, policy: str):
    """Vmapped episodes: TCP, object 1 and target per step, rewards, per-step success."""

    def one(params):
        obs, state = env.reset_env(KEY, params)

        def body(carry, _):
            obs, state = carry
            act = env.scripted_action(obs, params) if policy == "scripted" else jnp.zeros(4)
            obs, state, reward, _, info = env.step_env(KEY, state, act, params)
            return (obs, state), (world.tcp_of(state.hand), obs[4:7], reward, info["success"])

        _, out = jax.lax.scan(body, (obs, state), None, env.max_steps)
        return out

    return jax.jit(jax.vmap(one))(tasks)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--out", default="docs/results/figures")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    print("| task | scripted success [95% CI] | no-op success | median first success step | mean return |")
    print("|---|---|---|---|---|")
    for family in FAMILIES:
        if not family.TASKS:
            continue
        fig, axes = plt.subplots(2, len(family.TASKS), figsize=(max(3.2 * len(family.TASKS), 7), 6), squeeze=False)
        for col, task in enumerate(family.TASKS):
            env = Manipulation(task.name)
            tasks = env.task_space.sample_batch(jax.random.key(0), args.tasks)
            tcp, obj, reward, success = (np.asarray(x) for x in rollout(env, tasks, "scripted"))
            noop = np.asarray(rollout(env, tasks, "noop")[3])
            solved = success.any(1)
            first = np.where(solved, success.argmax(1) + 1, -1)
            lo, hi = wilson(int(solved.sum()), len(solved))
            row = dict(task=task.name, success=solved.mean(), ci=(lo, hi), noop=noop.any(1).mean(),
                       first=float(np.median(first[solved])) if solved.any() else float("nan"),
                       ret=float(reward.sum(1).mean()))
            rows.append(row)
            print(f"| {task.name}-v3 | {row['success']:.2f} [{lo:.2f}, {hi:.2f}] | {row['noop']:.2f} | "
                  f"{row['first']:.0f} | {row['ret']:.0f} |", flush=True)
            targets = np.asarray(jax.vmap(env.tasks[0].target)(tasks))
            for i in range(4):
                for ax, (a, b) in zip(axes[:, col], ((0, 1), (1, 2))):
                    ax.plot(tcp[i, :, a], tcp[i, :, b], color=f"C{i}", lw=1)
                    ax.plot(obj[i, :, a], obj[i, :, b], color=f"C{i}", lw=1, ls="--")
                    ax.plot(*targets[i, [a, b]], marker="*", color=f"C{i}", ms=10)
                    ax.plot(*obj[i, 0, [a, b]], marker="o", color=f"C{i}", ms=4)
            axes[0, col].set_title(f"{task.name}-v3 ({row['success']:.0%})", fontsize=9)
            axes[0, col].set_xlabel("x"), axes[0, col].set_ylabel("y")
            axes[1, col].set_xlabel("y"), axes[1, col].set_ylabel("z")
        fig.suptitle(f"scripted experts, {family.__name__.rsplit('.', 1)[-1]}: TCP (solid), "
                     "object 1 (dashed, o = start), target (*)", fontsize=10)
        fig.tight_layout()
        fig.savefig(out / f"manipulation_scripted_{family.__name__.rsplit('.', 1)[-1]}.png", dpi=90)
        plt.close(fig)
    return rows


if __name__ == "__main__":
    main()
