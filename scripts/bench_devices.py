"""The ES population and PPO's seeds spread over 1 and over 2 CPU devices (metarl.parallel.BlockMap).

    python scripts/bench_devices.py [--quick]

The population is spread over devices as ``metarl-meta-train`` does it
(:class:`metarl.meta.devices.DeviceEvaluator`). Each device count runs in its own
child process configured as ``cpu_devices=N`` configures the CLI
(``--xla_force_host_platform_device_count=N``, N XLA worker threads), so the
1-device figure is ``cpu_devices=1`` (one device, one worker thread: one core)
and the 2-device figure ``cpu_devices=2``. ``es_devices_speedup`` is their ratio
(goal >= 1.7 on a 2-core machine). The 2-device child also times the population
on its first device only (``_1of2dev``): one device whose program gets two worker
threads, which XLA uses for independent kernels, so that figure already uses part
of the second core. PPO: 16 vmapped seeds of PureJaxRL's CartPole configuration
in blocks of 8 (``metarl-train seeds=16 seed_block=8``), env steps per second on
1 and 2 devices and their ratio. ``--quick``: 2-update inner runs, population 16,
a 2-update PPO run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

POPULATION, QUICK_POPULATION = 64, 16
DEVICES = 2
PPO_SEEDS, PPO_BLOCK = 16, 8


def _ppo_steps_per_second(quick: bool, devices: int) -> float:
    """Env steps/s of 16 PPO seeds in blocks of 8 on ``devices`` devices (best of 2 runs, compile excluded)."""
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
    spread = BlockMap(run_block, PPO_SEEDS, PPO_BLOCK, jax.devices()[:devices])
    spread(jax.random.split(jax.random.key(0), PPO_SEEDS))  # compiles
    best = 0.0
    for i in range(2):
        start = time.perf_counter()
        spread(jax.random.split(jax.random.key(i + 1), PPO_SEEDS))
        best = max(best, steps / (time.perf_counter() - start))
    return best


def _child(quick: bool, devices: int) -> dict[str, float]:
    """Seconds per ES generation and PPO steps/s on all ``devices``; with 2, also the ES on the first alone."""
    import bench_meta

    setting = bench_meta.default_setting()
    if quick:
        setting = dataclasses.replace(setting, inner=dataclasses.replace(
            setting.inner, total_timesteps=2 * setting.inner.batch_size))
    size = QUICK_POPULATION if quick else POPULATION
    timed = 1 if quick else 2
    out = {"es": statistics.median(bench_meta.time_generations(setting, size, timed, devices=devices)[1])}
    if devices > 1:
        out["es_first_device"] = statistics.median(bench_meta.time_generations(setting, size, timed, devices=1)[1])
    out["ppo"] = _ppo_steps_per_second(quick, devices)
    return out


def _run_child(quick: bool, devices: int) -> dict[str, float]:
    """A child process that sets itself up as the CLI does for ``cpu_devices=devices`` (see ``__main__``)."""
    # Leave the device count and worker pool to the child's own metarl.runtime calls.
    env = {k: v for k, v in os.environ.items() if k not in ("PJRT_NPROC", "NPROC")}
    env["XLA_FLAGS"] = re.sub(r"--xla_force_host_platform_device_count=\d+", "", env.get("XLA_FLAGS", "")).strip()
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(devices), *(["--quick"] if quick else [])]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"bench_devices child failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> list[tuple[str, float, str]]:
    size = QUICK_POPULATION if quick else POPULATION
    one, two = _run_child(quick, 1), _run_child(quick, DEVICES)
    return [
        (f"es_gen_pop{size}_1dev", one["es"], "s"),
        (f"es_gen_pop{size}_{DEVICES}dev", two["es"], "s"),
        (f"es_devices_speedup_pop{size}", one["es"] / two["es"], "x (1 device / 2 devices, goal >= 1.7)"),
        (f"es_gen_pop{size}_1of{DEVICES}dev", two["es_first_device"], "s (first device of 2, two worker threads)"),
        (f"ppo_{PPO_SEEDS}seeds_1dev", one["ppo"], "steps/s"),
        (f"ppo_{PPO_SEEDS}seeds_{DEVICES}dev", two["ppo"], "steps/s"),
        (f"ppo_{PPO_SEEDS}seeds_devices_speedup", two["ppo"] / one["ppo"], "x (2 devices / 1 device)"),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)  # the child's device count
    args = parser.parse_args()
    if args.child:
        import metarl.runtime

        metarl.runtime.configure_cpu()  # what every console script does first ...
        metarl.runtime.configure_cpu_devices(args.child)  # ... and metarl-meta-train's cpu_devices=N
        import jax

        if jax.device_count() != args.child:
            raise RuntimeError(f"bench_devices child: asked for {args.child} CPU devices, got {jax.device_count()}")
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        print(json.dumps(_child(args.quick, args.child)))
    else:
        for name, value, unit in run(quick=args.quick):
            print(f"{name}  {value:.4g}  {unit}", flush=True)
