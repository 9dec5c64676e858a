"""The ES population and PPO's seeds spread over 1 and over 2 CPU devices (metarl.parallel.BlockMap).

    python scripts/bench_devices.py [--quick]

The population is spread over devices as ``metarl-meta-train`` does it
(:class:`metarl.meta.devices.DeviceEvaluator`, ``cpu_devices=auto``). Both
figures come from one child process in which XLA shows the CPU as two devices
(``--xla_force_host_platform_device_count=2``, one worker thread per device):
the 1-device figure uses only the first. ``es_devices_speedup`` is their ratio
(goal >= 1.7 on a 2-core machine). PPO: 16 vmapped seeds of PureJaxRL's CartPole
configuration in blocks of 8 (``metarl-train seeds=16 seed_block=8``), env steps
per second on 1 and 2 devices and their ratio. ``--quick``: 2-update inner runs,
population 16, a 2-update PPO run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

POPULATION, QUICK_POPULATION = 64, 16
DEVICES = 2
PPO_SEEDS, PPO_BLOCK = 16, 8


def _ppo_steps_per_second(quick: bool) -> dict[int, float]:
    """Env steps/s of 16 PPO seeds in blocks of 8 on 1 and on 2 devices (best of 2 runs, compile excluded)."""
    import time

    import envs
    import jax
    from metarl.agents.ppo import PPOConfig, make_train
    from metarl.parallel import BlockMap

    config = PPOConfig()
    if quick:
        config = dataclasses.replace(config, total_timesteps=2 * config.batch_size)
    train = make_train(config, *envs.make("CartPole-v1"))
    run_block = jax.vmap(lambda key: train(key)[1]["episode_return"])
    steps = PPO_SEEDS * config.num_updates * config.batch_size
    rates = {}
    for devices in (1, DEVICES):
        spread = BlockMap(run_block, PPO_SEEDS, PPO_BLOCK, jax.devices()[:devices])
        spread(jax.random.split(jax.random.key(0), PPO_SEEDS))  # compiles
        best = 0.0
        for i in range(2):
            start = time.perf_counter()
            spread(jax.random.split(jax.random.key(i + 1), PPO_SEEDS))
            best = max(best, steps / (time.perf_counter() - start))
        rates[devices] = best
    return rates


def _child(quick: bool) -> list[tuple[str, float, str]]:
    import bench_meta

    setting = bench_meta.default_setting()
    if quick:
        setting = dataclasses.replace(setting, inner=dataclasses.replace(
            setting.inner, total_timesteps=2 * setting.inner.batch_size))
    size = QUICK_POPULATION if quick else POPULATION
    figures, seconds = [], {}
    for devices in (1, DEVICES):
        _, wall, _ = bench_meta.time_generations(setting, size, 1 if quick else 2, devices=devices)
        seconds[devices] = statistics.median(wall)
        figures.append((f"es_gen_pop{size}_{devices}dev", seconds[devices], "s"))
    figures.append((f"es_devices_speedup_pop{size}", seconds[1] / seconds[DEVICES], "x (1 device / 2 devices)"))
    rates = _ppo_steps_per_second(quick)
    for devices, rate in rates.items():
        figures.append((f"ppo_{PPO_SEEDS}seeds_{devices}dev", rate, "steps/s"))
    figures.append((f"ppo_{PPO_SEEDS}seeds_devices_speedup", rates[DEVICES] / rates[1], "x (2 devices / 1 device)"))
    return figures


def run(quick: bool = False) -> list[tuple[str, float, str]]:
    env = os.environ | {"XLA_FLAGS": f"--xla_force_host_platform_device_count={DEVICES} "
                                     "--xla_cpu_multi_thread_eigen=false", "PJRT_NPROC": str(DEVICES)}
    command = [sys.executable, str(Path(__file__).resolve()), "--child", *(["--quick"] if quick else [])]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"bench_devices child failed: {out.stderr[-2000:]}")
    return [tuple(f) for f in json.loads(out.stdout.strip().splitlines()[-1])]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        print(json.dumps(_child(args.quick)))
    else:
        for name, value, unit in run(quick=args.quick):
            print(f"{name}  {value:.4g}  {unit}", flush=True)
