"""In-context meta-RL (RL²) as a job: benchmarks as versioned data, held-out tasks, chunked seeds-vmapped training.

* :mod:`benchmarks` — the benchmarks (env, trial shape ``k x H``, held-out tasks, RL² settings and a ``ci``
  scale), versioned: a changed protocol gets a new suffix, never an edited entry;
* :mod:`tasks` — the train/test task split and the teacher that samples a fixed task set;
* :mod:`teachers` — a ``configs/teacher/`` teacher over a benchmark's training tasks (which teachers fit which
  benchmark), counting what it samples;
* :mod:`runner` — the jitted programs of a run: seeds vmapped, trials in chunks (for checkpoints and a
  progress bar), evaluation on the held-out tasks (returns per episode and reward per step).

The agent itself is :mod:`metarl.agents.rl2`; the bandit baselines are :mod:`metarl.eval.bandit_baselines`.
"""
