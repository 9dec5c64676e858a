"""Evaluation and reports.

* :mod:`metarl.eval.objectives` / :mod:`metarl.eval.optimizers` — objectives and optimizers plugged into PPO;
* :mod:`metarl.eval.report` — tables, intervals, learning curves and the files of an evaluation;
* :mod:`metarl.eval.lpg` — learned LPG rules against A2C, PPO and random;
* :mod:`metarl.eval.curriculum` — PPO under a teacher, scored on held-out tasks (and its benchmarks).
"""
