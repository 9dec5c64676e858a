"""Where does a trained SAC actor go? Greedy rollouts of chosen seeds of a manipulation run, printed.

    python scripts/manipulation_sac_probe.py <run dir> --seeds 0 3 [--tasks 2] [--steps 0 20 50 100 300 499]

For each seed and each of the first ``--tasks`` tasks of the run's
``env.eval_tasks``: whether the episode succeeded, its return, and at the
chosen steps the action, the reward, the hand (observation 0:3), the TCP
(hand + ``world.TCP_OFFSET``), how far the mocap has run ahead of the hand
(``mocap - hand``: the actions move the mocap, clipped to the hand bounds as
Meta-World's ``set_xyz_action`` clips it, and a hand held by a wall lets it
wind up; the policy does not observe it), the gripper opening and the first
object's position. This is how docs/results/manipulation.md tells a seed that
has not learned yet from one parked in a pose that earns shaped reward without
success.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import metarl.runtime

metarl.runtime.configure_cpu()
import jax
import jax.numpy as jnp
import numpy as np
from omegaconf import OmegaConf

import envs
from envs.manipulation import world
from metarl.agents.sac_networks import actor_mean_log_std
from metarl.io.outputs import load_checkpoint

EPISODE_STEPS = 500


def greedy_rollouts(run: Path, seed: int, tasks: int) -> dict[str, np.ndarray]:
    """``{"action", "reward", "success", "obs", "mocap"}``, each ``[tasks, 500, ...]``, of seed ``seed``'s final
    actor (``mocap`` after each step, ``obs`` before it)."""
    cfg = OmegaConf.load(run / "config.yaml")
    env, _ = envs.make(cfg.env.name, **OmegaConf.to_container(cfg.env.overrides))
    params = jax.tree.map(lambda x: x[:tasks], envs.benchmark_tasks(cfg.env.eval_tasks))
    actor = jax.tree.map(lambda x: jnp.asarray(x[seed]), load_checkpoint(run / "checkpoint")["actor"])

    def rollout(p, key):
        obs, state = env.reset_env(key, p)

        def step(carry, k):
            obs, state = carry
            action = jnp.tanh(actor_mean_log_std(actor, obs, cfg.agent.activation)[0])
            record = {"obs": obs, "action": action}
            obs, state, reward, _, info = env.step_env(k, state, action, p)
            return (obs, state), record | {"reward": reward, "success": info["success"], "mocap": state.mocap}

        return jax.lax.scan(step, (obs, state), jax.random.split(key, EPISODE_STEPS))[1]

    out = jax.jit(jax.vmap(rollout))(params, jax.random.split(jax.random.key(0), tasks))
    return {k: np.asarray(v) for k, v in out.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--tasks", type=int, default=2)
    parser.add_argument("--steps", type=int, nargs="+", default=[0, 20, 50, 100, 300, 499])
    args = parser.parse_args(argv)
    with np.printoptions(precision=3, suppress=True):
        print_rollouts(args)


def print_rollouts(args) -> None:
    for seed in args.seeds:
        out = greedy_rollouts(args.run, seed, args.tasks)
        for i in range(args.tasks):
            print(f"seed {seed}, task {i}: success {bool(out['success'][i].any())}, "
                  f"return {out['reward'][i].sum():.0f}, goal {out['obs'][i, 0, -3:]}")
            for t in args.steps:
                obs = out["obs"][i, t]
                tcp = world.tcp_of(jnp.asarray(obs[:3]))
                ahead = out["mocap"][i, t - 1] - obs[:3] if t else np.zeros(3)  # the mocap this obs was seen with
                print(f"  t={t:3d} action {out['action'][i, t]} reward {out['reward'][i, t]:.2f} hand {obs[:3]} "
                      f"tcp {np.asarray(tcp)} mocap-hand {ahead} gripper {obs[3]:.2f} object {obs[4:7]}")


if __name__ == "__main__":
    main()
