"""Continual World throughput: env steps/s of a whole CW10 stream (one jitted program), against plain SAC.

Figures (``name: value unit``):

* ``cw10_steps_per_s/seeds=<n>``: env steps per second of the whole CW10
  stream (all ten tasks, their switches and every evaluation of all tasks)
  for one seed and for ``SEEDS`` seeds vmapped in the same program; compile
  time apart (``cw10_compile_time/seeds=<n>``).
* ``cw10_seed_scaling``: steps/s with ``SEEDS`` seeds over steps/s with one.
* ``cw10_vs_plain_sac``: the one-seed stream's steps/s over plain SAC's
  (:class:`metarl.agents.sac.SAC` ``run``, same agent, same env steps, one
  task, no switches or evaluations), measured in this run: the cost of the
  continual machinery.

The agent is the one every run of ``docs/results/continual_world.md`` used
(``CPU_RUNS_AGENT`` on top of ``configs/benchmark/cw10.yaml``: 2x128 without
LayerNorm, batch 256, update-to-data ratio 0.25), with ``STEPS_PER_TASK`` steps
per task, so the figures take about ten minutes on one CPU core.
Continual World's own agent (4x256 with LayerNorm, batch 128, ratio 1) does
about 19x the multiply-adds per env step: this bench with it would take hours
there. Gradient steps dominate: multiply by 1e6 / ``STEPS_PER_TASK`` for the
full protocol's time. ``--quick`` shrinks CW's agent to 32x32 instead.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import metarl.runtime

metarl.runtime.configure_cpu()  # the console scripts' CPU defaults, before JAX starts
import jax  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from metarl.agents.sac import SAC, SACConfig  # noqa: E402
from metarl.config import build_dataclass  # noqa: E402
from metarl.continual.methods import MethodConfig  # noqa: E402
from metarl.continual.runner import RunConfig  # noqa: E402
from metarl.continual.sac_runner import SACContinualRunner, SwitchConfig  # noqa: E402
from metarl.continual.streams import get_stream  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_envs import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SEEDS = 4
STEPS_PER_TASK, QUICK_STEPS_PER_TASK = 10_000, 500
# The benchmark.agent.* overrides of docs/results/continual_world.md's runs (tests check the two agree).
CPU_RUNS_AGENT = dict(hidden_sizes=[128, 128], layer_norm=False, lr=3e-4, batch_size=256, num_envs=16,
                      steps_per_update=16, gradient_steps=64, buffer_size=200_000)


def _cw_agent(quick: bool) -> SACConfig:
    agent = dict(OmegaConf.to_container(OmegaConf.load(ROOT / "configs" / "benchmark" / "cw10.yaml").agent))
    if quick:
        agent.update(hidden_sizes=[32, 32], gradient_steps=5, learning_starts=100)
    else:
        agent.update(CPU_RUNS_AGENT, learning_starts=1_000)  # learn inside the short tasks
    return build_dataclass(SACConfig, agent, "agent")


def _plain_sac_steps_per_s(runner: SACContinualRunner) -> float:
    agent = SAC(runner.agent_cfg, runner.env, runner.env.task_params(0))
    updates = runner.stream.total_steps // runner.agent_cfg.steps_per_iteration
    run = jax.jit(lambda s: agent.run(s, updates)).lower(agent.init(jax.random.key(0))).compile()
    state = agent.init(jax.random.key(0))
    t0 = time.time()
    jax.block_until_ready(run(state))
    return updates * runner.agent_cfg.steps_per_iteration / (time.time() - t0)


def run(quick: bool = False) -> list[tuple[str, float, str]]:
    steps = QUICK_STEPS_PER_TASK if quick else STEPS_PER_TASK
    stream = get_stream("CW10-v1", steps_per_task=steps)
    agent = _cw_agent(quick)
    figures, speed = [], {}
    for seeds in (1, SEEDS):
        run_cfg = RunConfig(eval_every_steps=steps, eval_episodes=10, eval_max_steps=200, seeds=seeds)
        runner = SACContinualRunner(stream, agent, MethodConfig("finetune"), run_cfg, SwitchConfig())
        out = runner.run()
        speed[seeds] = out["env_steps_per_s"]
        figures.append((f"cw10_steps_per_s/seeds={seeds}", speed[seeds], "steps/s"))
        figures.append((f"cw10_compile_time/seeds={seeds}", out["compile_time_s"], "s"))
        if seeds == 1:
            plain = _plain_sac_steps_per_s(runner)
    figures.append(("cw10_seed_scaling", speed[SEEDS] / speed[1], "x"))
    figures.append(("cw10_vs_plain_sac", speed[1] / plain, "x"))
    return figures


if __name__ == "__main__":
    main(run, __doc__.splitlines()[0])
