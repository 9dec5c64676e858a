"""Throughput of LPG / A2C lifetimes: ``python scripts/bench_lpg.py --level dense --agents 1 16``.

Times a jitted lifetime (compile excluded, evaluation included) for 1 agent and
for ``n`` agents vmapped over keys and meta-parameters, and prints one JSON line.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time

import metarl.runtime

metarl.runtime.configure_cpu()  # the console scripts' CPU defaults, before JAX starts
import jax
import jax.numpy as jnp

import envs
from metarl.lpg.a2c import make_a2c_lifetime
from metarl.lpg.agents import AgentConfig
from metarl.lpg.lifetime import make_lpg_lifetime
from metarl.lpg.rule import LPGConfig, LPGRule


def _timed(fn, *args) -> tuple[float, float, object]:
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))  # compile + first run
    compiled = time.perf_counter() - start
    start = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    return compiled, time.perf_counter() - start, out


def bench(level: str, updates: int, agents: list[int], hidden: int, algo: str) -> list[dict]:
    env, params = envs.make(f"gridworld-{level}")
    config = AgentConfig()
    rule = LPGRule(LPGConfig(hidden=hidden))
    rows = []
    for n in agents:
        keys = jax.random.split(jax.random.key(0), n)
        if algo == "lpg":
            train = make_lpg_lifetime(config, env, rule)
            metas = jax.vmap(rule.init)(jax.random.split(jax.random.key(1), n))
            fn = jax.jit(jax.vmap(functools.partial(train, num_updates=updates), in_axes=(0, 0, None)))
            args = (keys, metas, params)
        else:
            train = make_a2c_lifetime(config, env)
            fn = jax.jit(jax.vmap(functools.partial(train, num_updates=updates), in_axes=(0, None)))
            args = (keys, params)
        compile_s, run_s, out = _timed(fn, *args)
        steps = n * updates * config.num_envs * config.num_steps
        rows.append({"algo": algo, "level": level, "agents": n, "updates": updates, "hidden": hidden,
                     "compile_plus_first_run_s": round(compile_s, 2), "run_s": round(run_s, 3),
                     "env_steps": steps, "steps_per_s": round(steps / run_s, 1),
                     "mean_final_return": float(jnp.mean(out.final_return))})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--level", default="dense")
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--agents", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--algo", choices=("lpg", "a2c"), default="lpg")
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    if args.updates < 1 or any(n < 1 for n in args.agents):
        parser.error("--updates and --agents must be positive")
    try:
        rows = bench(args.level, args.updates, args.agents, args.hidden, args.algo)
    except ValueError as err:  # e.g. an unknown level: one line, exit status 2
        parser.exit(2, f"bench_lpg: error: {err}\n")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
