"""`make bench`: throughput figures, one ``<name>: <value> <unit>`` line each, also written to bench.json.

Runs ``scripts/bench_envs.py`` (with the suite's envs against gymnax's originals), ``scripts/bench_export.py``
(the gymnasium export against gymnasium's CartPole), ``scripts/bench_manipulation.py``, ``scripts/bench_ppo.py``
(with a PureJaxRL-style reference PPO), ``scripts/bench_meta.py``
(seconds per ES generation at populations 16-128; about 8 minutes on 2 cores), ``scripts/bench_devices.py``
(population 64 with ``cpu_devices=1`` and ``2``, the speed-up as a ratio; about 16 minutes) and
``scripts/bench_continual_world.py`` (a whole CW10 stream with SAC), ``scripts/bench_rl2.py`` (RL² training
steps/s with 1 and 16 vmapped seeds on ``bandit-k5-n10-v1`` and ``dark-room-v1``; about 2 minutes) and
``scripts/bench_brax.py`` (build and compile time and steps/s of every brax env against brax's own). Each exposes
``run(quick: bool) -> list[(name, value, unit)]``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

import metarl.runtime

metarl.runtime.configure_cpu()  # the console scripts' CPU defaults, before JAX starts
import jax

SCRIPTS = Path(__file__).resolve().parent
SUITES = {"envs": "bench_envs", "export": "bench_export", "manipulation": "bench_manipulation", "ppo": "bench_ppo",
          "meta": "bench_meta", "devices": "bench_devices", "continual_world": "bench_continual_world",
          "rl2": "bench_rl2", "brax": "bench_brax"}


def device_description() -> str:
    dev = jax.devices()[0]
    return f"{dev.device_kind} ({jax.default_backend()}, {jax.device_count()} device(s))"


def machine_description() -> dict:
    """What the figures were measured on: CPU model, cores, memory, XLA flags, versions."""
    import os
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    try:
        memory = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": memory, "python": platform.python_version(),
            "jax": jax.__version__, "xla_flags": os.environ.get("XLA_FLAGS", ""),
            "pjrt_nproc": os.environ.get("PJRT_NPROC", "")}


def format_figure(name: str, value: float, unit: str) -> str:
    return f"{name}: {value:.6g} {unit}"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="metarl benchmarks")
    parser.add_argument("--quick", action="store_true", help="short runs (smoke test)")
    parser.add_argument("--only", choices=sorted(SUITES), help="run one suite")
    parser.add_argument("--out", default="bench.json", help="where to write the figures")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(SCRIPTS))
    device = device_description()
    print(f"device: {device}", flush=True)
    print(f"machine: {machine_description()}", flush=True)
    figures = []
    for suite, module_name in SUITES.items():
        if args.only not in (None, suite):
            continue
        if not (SCRIPTS / f"{module_name}.py").exists():
            print(f"# {module_name}.py not found, skipping {suite}", flush=True)
            continue
        module = importlib.import_module(module_name)
        for name, value, unit in module.run(quick=args.quick):
            print(format_figure(name, value, unit), flush=True)
            figures.append({"name": name, "value": float(value), "unit": unit})
    report = {"device": device, "machine": machine_description(), "quick": args.quick, "figures": figures}
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
