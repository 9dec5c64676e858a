"""Cross-check the JAX manipulation tasks against real Meta-World v3, side by side.

    METAWORLD_PYTHON=/path/to/venv-with-metaworld/bin/python \
        .venv/bin/python scripts/metaworld_crosscheck.py [--episodes 20] [--out table.md]

``metaworld`` pins its own ``mujoco``, so it lives in a separate virtual
environment (``make metaworld-venv`` creates ``.venv-metaworld``). This
script runs itself there with ``--metaworld-side`` (numpy and metaworld only,
no JAX) to measure, per task: the hand start, the random-reset ranges, the
observation at reset (gripper reading, quaternion convention, object-2 slots),
the hand's response to a_x = +1 after 1, 5, 10 steps, the episode length, and
the scripted expert's success over ``--episodes`` tasks (Meta-World's own
``metaworld.policies``) with its speed. The same quantities are measured on
the JAX tasks and printed as one markdown table; differences are listed, not
hidden.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def metaworld_side(tasks: list[str], episodes: int) -> dict:
    """Runs under the metaworld venv: every quantity of the table for each task."""
    import gymnasium as gym
    import metaworld  # noqa: F401  (registers the Meta-World/* envs)
    import numpy as np
    from metaworld.policies import ENV_POLICY_MAP

    out = {}
    for task in tasks:
        env = gym.make("Meta-World/MT1", env_name=f"{task}-v3", seed=0)
        unwrapped = env.unwrapped
        obs, _ = env.reset(seed=0)
        response = []
        for _ in range(10):
            moved, *_ = env.step(np.array([1.0, 0.0, 0.0, 0.0], np.float32))
            response.append(float(moved[0] - obs[0]))
        policy = ENV_POLICY_MAP[f"{task}-v3"]()
        solved, firsts, steps, start = 0, [], 0, time.perf_counter()
        for episode in range(episodes):
            obs, _ = env.reset(seed=episode)
            for t in range(unwrapped.max_path_length):
                obs, _, _, truncated, info = env.step(policy.get_action(obs))
                steps += 1
                if info["success"]:
                    solved += 1
                    firsts.append(t + 1)
                    break
                if truncated:
                    break
        seconds = time.perf_counter() - start
        first_obs, _ = env.reset(seed=0)
        out[task] = {
            "hand_init": np.asarray(unwrapped.hand_init_pos, float).round(4).tolist(),
            "reset_low": np.asarray(unwrapped._random_reset_space.low, float).round(4).tolist(),
            "reset_high": np.asarray(unwrapped._random_reset_space.high, float).round(4).tolist(),
            "gripper_at_reset": round(float(first_obs[3]), 3),
            "quat_at_reset": np.asarray(first_obs[7:11], float).round(3).tolist(),
            "obj2_used": bool(np.any(first_obs[11:18] != 0)),
            "response_1_5_10": [round(response[i], 4) for i in (0, 4, 9)],
            "max_steps": int(unwrapped.max_path_length),
            "scripted_success": solved / episodes,
            "median_first_success": float(np.median(firsts)) if firsts else None,
            "steps_per_s": steps / seconds,
        }
    return out


def jax_side(tasks: list[str], episodes: int) -> dict:
    import metarl.runtime

    metarl.runtime.configure_cpu()
    import jax
    import jax.numpy as jnp
    import numpy as np

    from envs.manipulation import Manipulation, get_task

    out = {}
    for task in tasks:
        spec, env = get_task(task), Manipulation(task)
        params = env.default_params
        obs, state = env.reset(jax.random.key(0), params)
        step = jax.jit(env.step_env)
        moved, response = state, []
        for _ in range(10):
            new_obs, moved, *_ = step(jax.random.key(0), moved, jnp.array([1.0, 0, 0, 0]), params)
            response.append(float(new_obs[0] - obs[0]))
        tasks_batch = env.task_space.sample_batch(jax.random.key(0), episodes)

        def episode(p):
            o, s = env.reset_env(jax.random.key(0), p)

            def body(c, _):
                o, s = c
                o, s, _, _, info = env.step_env(jax.random.key(0), s, env.scripted_action(o, p), p)
                return (o, s), info["success"]

            return jax.lax.scan(body, (o, s), None, env.max_steps)[1]

        success = np.asarray(jax.jit(jax.vmap(episode))(tasks_batch))
        solved = success.any(1)
        goal_low, goal_high = spec.goal_bounds()
        out[task] = {
            "hand_init": np.asarray(spec.hand_init, float).round(4).tolist(),
            "reset_low": np.asarray(spec.obj_low + tuple(goal_low), float).round(4).tolist(),
            "reset_high": np.asarray(spec.obj_high + tuple(goal_high), float).round(4).tolist(),
            "gripper_at_reset": round(float(obs[3]), 3),
            "quat_at_reset": np.asarray(obs[7:11], float).round(3).tolist(),
            "obj2_used": bool(np.any(np.asarray(obs[11:18]) != 0)),
            "response_1_5_10": [round(response[i], 4) for i in (0, 4, 9)],
            "max_steps": env.max_steps,
            "scripted_success": float(solved.mean()),
            "median_first_success": float(np.median(success.argmax(1)[solved] + 1)) if solved.any() else None,
        }
    return out


def compare(ours: dict, theirs: dict) -> list[str]:
    """One markdown row per task; mismatches are written as ``ours / Meta-World``."""

    def cell(key, fmt=str):
        a, b = ours.get(key), theirs.get(key)
        return fmt(a) if a == b else f"**{fmt(a)} / {fmt(b)}**"

    n = len(theirs["reset_low"])  # 3 where Meta-World derives the goal from the object (ours: goal_offset)
    low, high = ours["reset_low"][:n], ours["reset_high"][:n]
    ranges = "same" if (low == theirs["reset_low"] and high == theirs["reset_high"]) \
        else f"**{low}..{high} / {theirs['reset_low']}..{theirs['reset_high']}**"
    if n == 3 and ranges == "same":
        ranges = "same (goal derived)"
    return [cell("hand_init"), ranges, cell("gripper_at_reset"), cell("quat_at_reset"), cell("obj2_used"),
            f"{ours['response_1_5_10']} / {theirs['response_1_5_10']}", cell("max_steps"),
            f"{ours['scripted_success']:.2f} / {theirs['scripted_success']:.2f}",
            f"{ours['median_first_success']} / {theirs['median_first_success']}", f"{theirs['steps_per_s']:.0f}"]


def metaworld_json(script: str, *args: str):
    """The JSON that ``script --metaworld-side *args`` prints under ``METAWORLD_PYTHON`` (exit 2 if it is unset)."""
    python = os.environ.get("METAWORLD_PYTHON")
    if not python:
        print(f"{os.path.basename(script).removesuffix('.py')}: error: set METAWORLD_PYTHON to a Python with "
              "metaworld installed (make metaworld-venv creates .venv-metaworld)", file=sys.stderr)
        sys.exit(2)
    real = subprocess.run([python, script, "--metaworld-side", *args], capture_output=True, text=True, check=True)
    return json.loads(real.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="*", help="task names without -v3 (default: every implemented task)")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--metaworld-side", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args(argv)
    if args.metaworld_side:
        print(json.dumps(metaworld_side(args.tasks, args.episodes)))
        return
    from envs.manipulation import implemented

    tasks = args.tasks or list(implemented())
    theirs = metaworld_json(__file__, "--episodes", str(args.episodes), "--tasks", *tasks)
    ours = jax_side(tasks, args.episodes)
    header = ("| task | hand init | reset ranges (obj ⊕ goal) | gripper at reset | quat at reset | object 2 | "
              "hand x after 1/5/10 steps of a_x=+1 (ours / MW) | episode | scripted success (ours / MW) | "
              "median first success (ours / MW) | MW steps/s |")
    lines = [header, "|" + "---|" * 11]
    for task in tasks:
        lines.append("| " + " | ".join([f"{task}-v3", *compare(ours[task], theirs[task])]) + " |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
