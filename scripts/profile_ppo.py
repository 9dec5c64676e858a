"""Where PPO's time goes on one CPU core: the suite's PPO against the benchmark's reference
(``scripts/ppo_reference.py``), PureJaxRL's CartPole setting, same process and XLA flags.

    python scripts/profile_ppo.py [--quick]

Prints markdown tables (recorded in ``docs/results/ppo.md`` §5):

1. Phase split: each program whole, and with its learning phase removed (the suite's ``learn`` replaced by
   the identity, the reference run with ``update_epochs=0``), for 1 seed and 16 vmapped seeds. The learning
   phase is the difference; per minibatch step and per env step are derived from it.
2. The matmul rate of one core on the minibatch's shapes (a dependent chain of 128 x 64 x 64 dots), and
   floors: the minibatch step's dots (forward, kernel and input gradients: 6.7 MFLOP per seed) at that rate;
   the suite's minibatch step alone on one fixed minibatch (no shuffle, no rollout); the actor forward and
   sampling without an env, and the CartPole step without a network, each in a ``lax.scan``.
3. Kernels: XLA:CPU thunks launched per env step, minibatch step, epoch and update, from a ``jax.profiler``
   trace of each program.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import glob
import sys
import tempfile
from collections import Counter
from pathlib import Path

import metarl.runtime

metarl.runtime.configure_cpu()  # the console scripts' CPU defaults, before JAX starts
import jax
import jax.numpy as jnp
import optax

import envs
from metarl.agents import networks
from metarl.agents.distributions import sample_with_noise
from metarl.agents import ppo as ppo_module
from metarl.agents.ppo import PPOConfig
from metarl.agents.ppo_learn import LOSS_METRICS
from metarl.agents.ppo_loss import Batch, ppo_loss
from metarl.objectives.ppo_clip import PPOClip

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ppo import batched, best_seconds, keys_of, program  # noqa: E402

CONFIG = PPOConfig()
SEEDS = (1, 16)


def _best_seconds(fn, seeds: int, repeats: int) -> float:
    return best_seconds(fn, seeds, repeats)[1]


@contextlib.contextmanager
def _suite_without_learning():
    """The suite's update with ``learn`` replaced by the identity (the rollout, GAE and bookkeeping remain)."""
    original = ppo_module.learn

    def no_learning(config, loss, tx, view, opt_state, batch, *rest):
        return view, opt_state, {k: jnp.float32(0.0) for k in LOSS_METRICS}

    ppo_module.learn = no_learning
    try:
        yield
    finally:
        ppo_module.learn = original


def phase_split(config: PPOConfig, repeats: int) -> list[dict]:
    rows, updates = [], config.num_updates
    for seeds in SEEDS:
        for name in ("suite", "reference"):
            seconds = {}
            for learning in (True, False):
                # The suite's learning phase is removed while its program is traced (inside the context).
                with (contextlib.nullcontext() if learning or name != "suite" else _suite_without_learning()):
                    seconds[learning] = _best_seconds(program(name, config, seeds, learning), seeds, repeats)
            total, rollout = seconds[True], seconds[False]
            learn = total - rollout
            rows.append({
                "program": name, "seeds": seeds,
                "steps_per_s": seeds * updates * config.batch_size / total,
                "update_ms": 1e3 * total / updates,
                "rollout_ms": 1e3 * rollout / updates,
                "learn_ms": 1e3 * learn / updates,
                "minibatch_us": 1e6 * learn / (updates * config.update_epochs * config.num_minibatches),
                "env_step_us": 1e6 * rollout / (updates * config.num_steps),
            })
    return rows


# --- floors -------------------------------------------------------------------------------------------

def _isolated_minibatch_step(seeds: int, steps: int, repeats: int) -> float:
    """Seconds per step of the suite's minibatch step on one fixed 128-row minibatch (no shuffle, no rollout):
    PPO's loss (``ppo_loss``) forward and backward, gradient-norm clipping and Adam."""
    mb, drift = CONFIG.minibatch_size, PPOClip(CONFIG.clip_eps)
    tx = optax.adam(CONFIG.lr, eps=1e-5)

    def one_seed(key):
        params = networks.init_actor_critic(jax.random.split(key), 4, 2, CONFIG.hidden_sizes, False)
        k = jax.random.split(key, 5)
        batch = Batch(obs=jax.random.normal(k[0], (mb, 4)), action=jax.random.bernoulli(k[1], 0.5, (mb,)).astype(jnp.int32),
                      old_logp=jnp.full((mb,), -0.69), old_value=jax.random.normal(k[2], (mb,)),
                      advantage=jax.random.normal(k[3], (mb,)), target=jax.random.normal(k[4], (mb,)))

        def step(carry, _):
            params, opt_state = carry
            grads = jax.grad(lambda p: ppo_loss(p, batch, {}, 0.5, config=CONFIG, drift=drift, continuous=False)[0])(params)
            scale = jnp.minimum(1.0, CONFIG.max_grad_norm / (optax.global_norm(grads) + 1e-12))
            updates, opt_state = tx.update(jax.tree.map(lambda g: g * scale, grads), opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        (params, _), _ = jax.lax.scan(step, (params, tx.init(params)), None, steps)
        return params["actor"]["head"]["bias"]

    return _best_seconds(batched(one_seed, seeds), seeds, repeats) / steps


def minibatch_dot_flops(obs_dim: int = 4, actions: int = 2) -> int:
    """FLOPs of the dots of one minibatch step: forward, kernel gradient, and input gradient below the first layer."""
    per_sample = 0
    for out in (actions, 1):  # actor, critic
        widths = [obs_dim, *CONFIG.hidden_sizes, out]
        layers = list(zip(widths[:-1], widths[1:]))
        per_sample += 2 * sum(a * b for a, b in layers) + sum(a * b for a, b in layers[1:])
    return 2 * per_sample * CONFIG.minibatch_size


def _actor_floor(seeds: int, steps: int, repeats: int) -> float:
    """Seconds per step of: the actor on 4 observations and a Gumbel-max action, no env."""
    n = CONFIG.num_envs

    def one_seed(key):
        actor = networks.init_actor_critic(jax.random.split(key), 4, 2, CONFIG.hidden_sizes, False)["actor"]
        noise = jax.random.gumbel(key, (steps, n, 2))

        def step(obs, g):
            logits, _ = networks.apply_mlp(actor, obs, "tanh")
            action, logp = sample_with_noise(logits, g, None)  # the suite's sampling
            return jnp.tanh(obs + 0.01 * (action[:, None] + logp[:, None])), None

        obs, _ = jax.lax.scan(step, jnp.zeros((n, 4)), noise)
        return obs

    return _best_seconds(batched(one_seed, seeds), seeds, repeats) / steps


def _env_floor(seeds: int, steps: int, repeats: int) -> float:
    """Seconds per step of: 4 gymnax-style CartPole steps with auto-reset, actions drawn beforehand."""
    env, params = envs.make("CartPole-v1")
    n = CONFIG.num_envs
    step_envs = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def one_seed(key):
        _, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, n), params)
        actions = jax.random.bernoulli(key, 0.5, (steps, n)).astype(jnp.int32)
        keys = jax.random.split(key, steps * n).reshape(steps, n)

        def step(state, xs):
            k, a = xs
            _, state, reward, _, _, _ = step_envs(k, state, a, params)
            return state, reward

        _, rewards = jax.lax.scan(step, state, (keys, actions))
        return rewards.sum()

    return _best_seconds(batched(one_seed, seeds), seeds, repeats) / steps


def _matmul_rate(batch_rows: int, seeds: int, steps: int, repeats: int) -> float:
    """FLOP/s of a dependent chain of [rows, 64] @ [64, 64] dots (vmapped over ``seeds``)."""

    def one_seed(key):
        w = jax.random.normal(key, (64, 64)) / 8.0
        x = jax.random.normal(key, (batch_rows, 64))

        def step(x, _):
            return jnp.tanh(x @ w), None

        return jax.lax.scan(step, x, None, steps)[0]

    seconds = _best_seconds(batched(one_seed, seeds), seeds, repeats)
    return seeds * steps * 2 * batch_rows * 64 * 64 / seconds


# --- kernels from a trace -----------------------------------------------------------------------------

TRACE_UPDATES = 8


def kernel_counts(name: str, seeds: int) -> dict[str, int]:
    """XLA:CPU kernels (thunks) launched per env step, per minibatch step, per epoch and per update.

    From a ``jax.profiler`` trace of ``TRACE_UPDATES`` updates: a kernel that runs 128 times per update belongs
    to a 128-step loop (the rollout, and GAE's reverse scan where XLA keeps it a loop), 16 times to a minibatch
    step, 4 times to an epoch, once to the update itself. The trace's durations are inflated by the profiler, so
    only counts are reported.
    """
    config = dataclasses.replace(CONFIG, total_timesteps=CONFIG.batch_size * TRACE_UPDATES)
    keys = keys_of(seeds)
    compiled = program(name, config, seeds).lower(keys(0)).compile()
    jax.block_until_ready(compiled(keys(0)))
    with tempfile.TemporaryDirectory() as folder:
        jax.profiler.start_trace(folder)
        jax.block_until_ready(compiled(keys(1)))
        jax.profiler.stop_trace()
        data = jax.profiler.ProfileData.from_file(sorted(glob.glob(f"{folder}/**/*.xplane.pb", recursive=True))[-1])
    calls = Counter()
    for plane in data.planes:
        for line in plane.lines:
            for event in line.events:
                # Kernel events only: not their end markers, thread-pool records or Python/executor spans.
                if not event.name.startswith(("end:", "Threadpool", "$", "ThunkExecutor", "PjitFunction")):
                    calls[event.name] += 1
    per_update = Counter()
    for kernel, n in calls.items():
        per_update[n / TRACE_UPDATES] += 1
    phases = {"env step": config.num_steps, "minibatch step": config.update_epochs * config.num_minibatches,
              "epoch": config.update_epochs, "update": 1}
    return {phase: per_update.get(float(times), 0) for phase, times in phases.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (smoke test)")
    args = parser.parse_args()
    config = dataclasses.replace(CONFIG, total_timesteps=CONFIG.batch_size * 10) if args.quick else CONFIG
    repeats = 1 if args.quick else 3
    steps = 200 if args.quick else 4000

    print("| program | seeds | steps/s | ms / update | rollout ms | learn ms | us / minibatch step | us / env step (rollout) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in phase_split(config, repeats):
        print(f"| {r['program']} | {r['seeds']} | {r['steps_per_s']:,.0f} | {r['update_ms']:.2f} | {r['rollout_ms']:.2f} | "
              f"{r['learn_ms']:.2f} | {r['minibatch_us']:.1f} | {r['env_step_us']:.2f} |", flush=True)

    rates = {seeds: _matmul_rate(128, seeds, steps, repeats) for seeds in SEEDS}
    for rows, seeds in ((128, 1), (128, 16), (2048, 1)):
        rate = rates[seeds] if rows == 128 else _matmul_rate(rows, seeds, steps, repeats)
        print(f"matmul [{rows}x64]@[64x64] chain, {seeds} seed(s): {rate / 1e9:.1f} GFLOP/s", flush=True)
    flops = minibatch_dot_flops()
    print(f"\none minibatch step's dots: {flops / 1e6:.2f} MFLOP per seed")
    print("\n| floor | seeds | us / step |\n|---|---:|---:|")
    for seeds in SEEDS:
        print(f"| the minibatch step's dots at the 128-row matmul rate | {seeds} | {1e6 * seeds * flops / rates[seeds]:.1f} |")
        print(f"| the suite's minibatch step alone (PPO loss, clipping, Adam; one fixed minibatch) | {seeds} | "
              f"{1e6 * _isolated_minibatch_step(seeds, steps // 4, repeats):.1f} |")
        print(f"| actor on 4 observations + Gumbel-max action (no env) | {seeds} | {1e6 * _actor_floor(seeds, steps, repeats):.2f} |")
        print(f"| 4 CartPole steps with auto-reset (no network) | {seeds} | {1e6 * _env_floor(seeds, steps, repeats):.2f} |",
              flush=True)
    print()
    print("| program | seeds | kernels per env step | per minibatch step | per epoch | per update |")
    print("|---|---:|---:|---:|---:|---:|")
    for seeds in SEEDS:
        for name in ("suite", "reference"):
            k = kernel_counts(name, seeds)
            print(f"| {name} | {seeds} | {k['env step']} | {k['minibatch step']} | {k['epoch']} | {k['update']} |", flush=True)


if __name__ == "__main__":
    main()
