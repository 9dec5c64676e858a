"""RL² training throughput (issue #20) on the ``bandit-k5-n10-v1`` and ``dark-room-v1`` benchmarks:
env steps per second of training with 1 seed and with 16 vmapped seeds, compile time separately.

    python scripts/bench_rl2.py [--quick]      (or `make bench`)

The program timed is the one ``metarl-meta-rl`` runs (:func:`metarl.in_context.runner.programs`: seeds
vmapped, a chunk of trials per call, each trial a rollout of ``num_envs`` trials of ``k * H`` steps plus
its PPO update), with the benchmark's RL² settings (``bench.rl2_settings()``, the job's ``scale=full``
without ``agent.*`` overrides). A step is one env step of one seed, so the figures include the PPO
updates: ``seeds * num_envs * k * H * trials`` steps per chunk.

``run(quick) -> [(name, value, unit)]``; per benchmark (``bandit_k5_n10``, ``dark_room``) lines
``rl2_<bench>_1seed`` and ``rl2_<bench>_16seeds`` (steps/s, compile excluded, best of the timed
chunks), ``rl2_<bench>_scaling`` (16-seed over 1-seed throughput: 16 means vmapping seeds is free,
1 means no gain over running them one after another) and ``rl2_<bench>_compile`` /
``rl2_<bench>_compile_16seeds`` (s, the chunk program's ``lower().compile()``).
About 2 minutes on 2 cores. ``--quick`` times the benchmarks' ci scale (``scale=ci``: 8 envs, a 16-unit
GRU), one trial per chunk, one timed chunk (a smoke test; about a minute, mostly compiling).
"""

from __future__ import annotations

import argparse
import time

import metarl.runtime

metarl.runtime.configure_cpu()  # the console scripts' CPU defaults, before JAX starts
import jax
import numpy as np

from metarl.agents.rl2_config import RL2Config
from metarl.in_context import benchmarks, runner

BENCHMARKS = {"bandit-k5-n10-v1": "bandit_k5_n10", "dark-room-v1": "dark_room"}
SEEDS = (1, 16)
# trials per timed chunk (full scale): a 1-seed chunk of about half a second or more on one core
CHUNK_TRIALS = {"bandit-k5-n10-v1": 10, "dark-room-v1": 2}
REPEATS = {1: 3, 16: 2}  # timed chunks per seed count (full scale)


def rl2_config(bench_id: str, quick: bool = False) -> RL2Config:
    """The RL² settings ``metarl-meta-rl task=<bench_id>`` trains with (``scale=ci`` when ``quick``)."""
    return RL2Config(**benchmarks.get(bench_id).rl2_settings(ci=quick))


def measure(bench_id: str, config: RL2Config, seeds: int, chunk_trials: int, repeats: int) -> tuple[float, float]:
    """(compile seconds, best env steps/s over ``repeats`` chunks) of ``seeds`` vmapped seeds."""
    prog = runner.programs(benchmarks.get(bench_id), config, chunk_trials)
    states = jax.block_until_ready(prog.init(0, np.arange(seeds)))
    start = time.perf_counter()
    chunk = prog.chunk.lower(states).compile()
    compile_s = time.perf_counter() - start
    steps = seeds * config.num_envs * prog.layout.trial_steps * chunk_trials
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        states, _ = jax.block_until_ready(chunk(states))  # the chunks continue one run
        best = max(best, steps / (time.perf_counter() - start))
    return compile_s, best


def run(quick: bool = False) -> list[tuple[str, float, str]]:
    figures = []
    for bench_id, name in BENCHMARKS.items():
        config = rl2_config(bench_id, quick)
        chunk_trials = 1 if quick else CHUNK_TRIALS[bench_id]
        compile_s, throughput = {}, {}
        for seeds in SEEDS:
            compile_s[seeds], throughput[seeds] = measure(bench_id, config, seeds, chunk_trials,
                                                          1 if quick else REPEATS[seeds])
        figures += [
            (f"rl2_{name}_1seed", throughput[1], "steps/s"),
            (f"rl2_{name}_16seeds", throughput[16], "steps/s"),
            (f"rl2_{name}_scaling", throughput[16] / throughput[1], "x (16-seed / 1-seed steps/s)"),
            (f"rl2_{name}_compile", compile_s[1], "s"),
            (f"rl2_{name}_compile_16seeds", compile_s[16], "s"),
        ]
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    for name, value, unit in run(quick=args.quick):
        print(f"{name}: {value:.6g} {unit}", flush=True)
