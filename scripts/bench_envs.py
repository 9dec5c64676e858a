"""Random-policy environment throughput: steps/s with N parallel envs, compile time apart.

For each native env family (one representative) and gymnax CartPole-v1 as a
reference, one ``jit`` of a ``lax.scan`` over steps of ``vmap``-ed envs (a task
per env, random actions, gymnax auto-reset) is compiled, warmed up and timed
with ``block_until_ready``. Run through ``scripts/bench.py`` or directly.
"""

from __future__ import annotations

import time

import metarl.runtime

metarl.runtime.configure_cpu()  # the console scripts' CPU defaults, before JAX starts
import gymnax
import jax

import envs

NUM_ENVS = (1, 64, 4096)
# scan length per N: enough work to dwarf dispatch overhead, small enough for a 2-core CPU
STEPS = {1: 2000, 64: 500, 4096: 50}
QUICK_STEPS = {1: 200, 64: 50, 4096: 5}
REFERENCE = "CartPole-v1"


def bench_env_names() -> list[str]:
    """One registered name per native family (prefix before '-'), then the gymnax reference."""
    seen: dict[str, str] = {}
    for name in envs.registered():
        if name in gymnax.registered_envs or name.startswith(("brax-", "dmc-")) or is_manipulation(name):
            continue
        seen.setdefault(name.split("-")[0], name)
    return list(seen.values()) + [REFERENCE]


def is_manipulation(name: str) -> bool:
    """Manipulation tasks have their own suite (scripts/bench_manipulation.py)."""
    from envs.manipulation import MULTI_TASK_ENVS

    return name.endswith("-v3") or name in MULTI_TASK_ENVS


def make_rollout(env, num_steps: int):
    """Jitted ``(key, batched states, batched tasks) -> (states, summed reward)``.

    Returning the summed reward keeps XLA from pruning the rollout."""

    def run(key, state, tasks):
        def body(carry, k):
            state, total = carry
            keys = jax.random.split(k, 2 * state_batch(state))
            act_keys, step_keys = keys[::2], keys[1::2]
            actions = jax.vmap(lambda kk, p: env.action_space(p).sample(kk))(act_keys, tasks)
            _, state, reward, _, _, _ = jax.vmap(env.step)(step_keys, state, actions, tasks)
            return (state, total + reward.sum()), None

        (state, total), _ = jax.lax.scan(body, (state, jax.numpy.zeros(())), jax.random.split(key, num_steps))
        return state, total

    return jax.jit(run)


def state_batch(state) -> int:
    return jax.tree.leaves(state)[0].shape[0]


def measure(name: str, num_envs: int, num_steps: int, repeats: int = 3, grouped: bool = False) -> tuple[float, float]:
    """Returns (steps per second, compile seconds) for one env name and batch size.

    ``grouped``: tasks laid out by class (``sample_grouped``, multi-task manipulation envs) rather than
    drawn independently per env."""
    env, _ = envs.make(name)
    key_task = jax.random.key(0)
    sample = env.task_space.sample_grouped if grouped else env.task_space.sample_batch
    tasks = jax.jit(lambda k: sample(k, num_envs))(key_task)
    return measure_env(env, tasks, num_envs, num_steps, repeats)


def measure_env(env, tasks, num_envs: int, num_steps: int, repeats: int = 3) -> tuple[float, float]:
    """(steps per second, compile seconds) of ``make_rollout`` for an env object and batched tasks."""
    key_reset, key_run = jax.random.split(jax.random.key(1))
    _, state = jax.jit(jax.vmap(env.reset))(jax.random.split(key_reset, num_envs), tasks)
    rollout = make_rollout(env, num_steps)

    start = time.perf_counter()
    compiled = rollout.lower(key_run, state, tasks).compile()
    compile_s = time.perf_counter() - start

    jax.block_until_ready(compiled(key_run, state, tasks))  # warm-up
    best = float("inf")
    for i in range(repeats):
        key = jax.random.fold_in(key_run, i)
        start = time.perf_counter()
        jax.block_until_ready(compiled(key, state, tasks))
        best = min(best, time.perf_counter() - start)
    return num_envs * num_steps / best, compile_s


def point_task_vs_gymnax(name: str, num_envs: int, num_steps: int, repeats: int) -> tuple[float, float]:
    """(suite env on its default task, gymnax's original env) steps/s under the same rollout program.

    The suite's env is ``envs.make(name)`` with its one default task in every copy (a point of
    its task space); the original is ``gymnax.make(name)`` with its default params."""
    env, params = envs.make(name)
    original, original_params = gymnax.make(name)

    def batch(p):
        return jax.tree.map(lambda x: jax.numpy.broadcast_to(x, (num_envs, *jax.numpy.shape(x))), p)

    ours, _ = measure_env(env, batch(params), num_envs, num_steps, repeats)
    theirs, _ = measure_env(original, batch(original_params), num_envs, num_steps, repeats)
    return ours, theirs


def run(quick: bool = False) -> list[tuple[str, float, str]]:
    """Figures ``(name, value, unit)``: steps/s and compile time per env and N, and the suite's
    gymnax-based envs on a point task against gymnax's originals."""
    steps = QUICK_STEPS if quick else STEPS
    figures = []
    for n in NUM_ENVS:
        ours, theirs = point_task_vs_gymnax(REFERENCE, n, steps[n], 1 if quick else 5)
        figures.append((f"env_steps_per_s/gymnax-original/{REFERENCE}/N={n}", theirs, "steps/s"))
        figures.append((f"env_cost_ratio_vs_gymnax/{REFERENCE}/N={n}", theirs / ours,
                        "x (suite time per step / gymnax's; goal <= 1.1)"))
    for name in bench_env_names():
        for n in NUM_ENVS:
            sps, compile_s = measure(name, n, steps[n], repeats=1 if quick else 3)
            figures.append((f"env_steps_per_s/{name}/N={n}", sps, "steps/s"))
            figures.append((f"env_compile_time/{name}/N={n}", compile_s, "s"))
    return figures


def main(run, description: str) -> None:
    """``--quick`` command line of a figure script: prints the device, then ``name: value unit`` lines."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()})")
    for fig_name, value, unit in run(quick=args.quick):
        print(f"{fig_name}: {value:.6g} {unit}", flush=True)


if __name__ == "__main__":
    main(run, __doc__.splitlines()[0])
