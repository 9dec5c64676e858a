"""Manipulation throughput: random-action steps/s of the JAX tasks, against references in the same run.

Figures (``name: value unit``):

* ``manipulation_steps_per_s/<env>/N=<n>`` for one task family per batch
  (each of ``FAMILY_TASKS``) and mixed MT10 batches at N = 1 and 4096 envs;
  compile time apart. ``mt10`` lays the envs out by class, as Meta-World's MT
  baselines and ``benchmarks`` do (``sample_grouped``: each block of envs steps
  one class's code); ``mt10-shuffled`` draws a class per env independently
  (every env pays for all ten classes' code, ``envs.grouped_switch``).
* ``manipulation_vs_cartpole/<env>/N=<n>``: the ratio to gymnax CartPole-v1
  measured in this run with the same harness (a machine-independent figure).
* ``manipulation_vs_metaworld/<task>``: the ratio to real Meta-World (MuJoCo,
  one env stepped from Python) when ``METAWORLD_PYTHON`` names a Python with
  ``metaworld`` installed (it pins its own mujoco, so it lives in its own
  virtual environment); absent otherwise.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import metarl.runtime

metarl.runtime.configure_cpu()  # the console scripts' CPU defaults, before JAX starts
import envs  # noqa: E402
from envs.manipulation import MULTI_TASK_ENVS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_envs import main, measure  # noqa: E402

FAMILY_TASKS = ("reach-v3", "push-v3", "drawer-open-v3", "button-press-topdown-v3", "window-open-v3")
NUM_ENVS = (1, 4096)
STEPS = {1: 2000, 4096: 50}
QUICK_STEPS = {1: 200, 4096: 5}
REFERENCE = "CartPole-v1"
METAWORLD_STEPS = 2000


def metaworld_steps_per_s(task: str, python: str) -> float | None:
    """Steps/s of real Meta-World's ``task`` (one env, random actions), run in ``python``."""
    code = (
        "import time, numpy as np, gymnasium as gym, metaworld\n"
        f"env = gym.make('Meta-World/MT1', env_name={task!r}, seed=0)\n"
        "env.reset(seed=0); t = time.perf_counter()\n"
        f"for i in range({METAWORLD_STEPS}):\n"
        "    _, _, term, trunc, _ = env.step(env.action_space.sample())\n"
        "    if term or trunc: env.reset()\n"
        f"print({METAWORLD_STEPS} / (time.perf_counter() - t))\n"
    )
    result = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=600)
    if result.returncode:
        print(f"# real Meta-World {task}: {result.stderr.strip().splitlines()[-1:]}", flush=True)
        return None
    return float(result.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> list[tuple[str, float, str]]:
    steps = QUICK_STEPS if quick else STEPS
    repeats = 1 if quick else 3
    names = [n for n in FAMILY_TASKS if n in envs.registered()]
    mixed = "mt10" in MULTI_TASK_ENVS and "mt10" in envs.registered()
    figures = []
    reference = {n: measure(REFERENCE, n, steps[n], repeats)[0] for n in NUM_ENVS}
    single = {}
    runs = [(name, name, False) for name in names]
    runs += [("mt10", "mt10", True), ("mt10-shuffled", "mt10", False)] if mixed else []
    for label, name, grouped in runs:
        for n in NUM_ENVS:
            sps, compile_s = measure(name, n, steps[n], repeats, grouped=grouped)
            single[(label, n)] = sps
            figures.append((f"manipulation_steps_per_s/{label}/N={n}", sps, "steps/s"))
            figures.append((f"manipulation_vs_cartpole/{label}/N={n}", sps / reference[n], "x"))
            figures.append((f"manipulation_compile_time/{label}/N={n}", compile_s, "s"))
    python = os.environ.get("METAWORLD_PYTHON")
    if python and not quick:
        for name in names:
            real = metaworld_steps_per_s(name, python)
            if real:
                figures.append((f"metaworld_steps_per_s/{name}/N=1", real, "steps/s"))
                figures.append((f"manipulation_vs_metaworld/{name}/N=4096", single[(name, 4096)] / real, "x"))
    return figures


if __name__ == "__main__":
    main(run, __doc__.splitlines()[0])
