"""``metarl-meta-rl teacher=...``: a ``configs/teacher/`` teacher picks the training tasks of each RL² trial.

One tiny PLR run on Dark Room (the ``ci`` scale: 2 chunks of 10 trials, 8 envs, two seeds) through the job,
then its programs again: the teacher sampled training goals only (its counts, its level buffer and fresh
draws from its final state), its state took the feedback in (scores in the buffer, replayed batches), and a
run resumed from the first chunk's checkpoint ends with the same bits as the whole run. The refusals and
adaptations of :mod:`metarl.in_context.teachers` are checked without compiling anything.
"""

from __future__ import annotations

import json
import shutil
from importlib.resources import files

import jax
import numpy as np
import pytest
from omegaconf import OmegaConf

from curricula.arms import TaskSetArms
from curricula.plr import REPLAY
from metarl.cli import meta_rl
from metarl.in_context import runner, teachers
from metarl.io.progress import read_log
from metarl.jobs import meta_rl as job

TINY = ("task=dark-room-v1", "scale=ci", "seeds=2", "progress=false", "teacher=plr", "eval.scratch_ppo=false")


def teacher_config(name: str, **changes) -> dict:
    """``configs/teacher/<name>.yaml`` as the job sees it, with ``changes``."""
    cfg = OmegaConf.to_container(OmegaConf.create(files("configs").joinpath(f"teacher/{name}.yaml").read_text()))
    return {**cfg, **changes}


def _goal_set(goals) -> set[tuple[int, int]]:
    return {tuple(int(v) for v in g) for g in np.asarray(goals).reshape(-1, 2)}


def test_plr_samples_training_goals_only_uses_feedback_and_resumes_exactly(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    whole, part = tmp_path / "whole", tmp_path / "part"
    meta_rl.main([*TINY, f"run_dir={whole}"])
    summary = json.loads((whole / "summary.json").read_text())
    teacher = summary["teacher"]
    assert teacher["name"] == "plr" and teacher["chosen"] and teacher["adapted"] == {"capacity": 64}
    held_out = _goal_set(summary["held_out"]["goals"])
    sampled = teacher["sampled"]
    train = _goal_set(sampled["goals"])
    assert len(train) == 64 and len(held_out) == 16 and not train & held_out
    # (a) every task of every trial was a training goal: 2 seeds x 20 trials x 8 envs, none elsewhere
    assert sum(sampled["counts"]) == 2 * 20 * 8 and sampled["other_tasks"] == 0
    assert "held-out or other tasks sampled: 0." in (whole / "report.md").read_text()
    assert (whole / "task_distribution.png").stat().st_size > 0

    # the job's programs again (cached: nothing recompiles), for the final teacher state itself
    spec = job.build({"task": "dark-room-v1", "scale": "ci", "seeds": 2, "teacher": teacher_config("plr")})
    prog = runner.programs(spec.bench, spec.rl2, spec.chunk_trials, spec.greedy, spec.teacher)
    states = prog.init(np.int32(0), np.arange(2, dtype=np.int32))
    for _ in range(spec.chunks):
        states, _ = prog.chunk(states)
    plr = jax.device_get(states.teacher_state.teacher)
    assert np.array_equal(jax.device_get(states.teacher_state.counts)[:, :-1], np.asarray(sampled["per_seed"]))
    buffer = plr.buffer
    for seed in range(2):
        filled = np.asarray(buffer.filled[seed])
        assert _goal_set(buffer.levels.goal[seed][filled]) <= train  # (a) the level buffer
        # (b) the feedback went in: PVL scores of the levels, and replays (which need a filled buffer)
        scores = np.asarray(buffer.scores[seed])[filled]
        assert filled.sum() >= 32 and scores.max() > 0 and np.unique(scores).size > 1
        assert plr.branch_counts[seed][REPLAY] > 0
        assert filled.sum() <= 64  # capacity capped at the training goals
    assert 0 < teacher["batches"]["replay"] < 1
    # (a) fresh draws from the final state: 64 batches, new levels and replays alike
    one = jax.tree.map(lambda x: x[0], states.teacher_state)
    keys = jax.random.split(jax.random.PRNGKey(7), 64)
    draws = jax.jit(jax.vmap(lambda k: prog.teacher.sample(one, k, 8)[1].goal))(keys)
    assert _goal_set(draws) <= train

    # (c) stopped after chunk 1 (its checkpoint), resumed: the whole run's bits, the teacher's counts included
    shutil.copytree(whole, part)
    shutil.rmtree(part / "checkpoints" / "2")
    for name in ("summary.json", "report.md", "in_context_curve.png", "task_distribution.png"):
        (part / name).unlink()
    meta_rl.main([*TINY, "resume=true", f"run_dir={part}"])
    assert read_log(part / "metrics.jsonl") == read_log(whole / "metrics.jsonl")
    resumed = json.loads((part / "summary.json").read_text())
    assert resumed["teacher"] == teacher
    assert resumed["trial_return"]["per_seed"] == summary["trial_return"]["per_seed"]


def _build(task: str, teacher: dict) -> job.MetaRLRun:
    return job.build({"task": task, "scale": "ci", "seeds": 1, "teacher": teacher})


@pytest.mark.parametrize("task, teacher, message", [
    ("dark-room-v1", teacher_config("alp_gmm"), "holds its 16 held-out goals"),
    ("bandit-k2-dependent-v1", teacher_config("alp_gmm"), "wider than its arm means (p, 1 - p)"),
    ("bandit-k2-dependent-v1", teacher_config("tscl"), "redraws arm means independently"),
    ("bandit-k5-n10-v1", teacher_config("robust_plr"), "train mask"),
    ("dark-room-v1", teacher_config("accel"), "train mask"),
    ("bandit-k5-n10-v1", teacher_config("ucb_fast_slow"), "reads success"),
    ("dark-room-v1", teacher_config("fixed", task={"goal": [0, 5]}), "goal=[0, 5] is not a training task"),
    ("dark-room-v1", teacher_config("exp3_alp", arms={"tasks": [{"goal": [0, 0]}, {"goal": [1, 0]}]}),
     "goal=[1, 0] is not a training task"),
    ("dark-room-v1", {"name": "groove"}, "metarl-meta-train objective=lpg"),
    ("dark-room-v1", {"name": "plrr"}, "did you mean plr"),
    ("dark-room-v1", {"capacity": 3}, "teacher has no name"),
    ("dark-room-v1", teacher_config("plr", capacity=0), "teacher.capacity must be >= 1"),
])
def test_a_teacher_that_cannot_work_on_the_benchmark_is_one_line_before_compute(task, teacher, message):
    with pytest.raises(ValueError) as info:
        _build(task, teacher)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_what_each_benchmark_makes_of_a_teacher():
    bandit = _build("dark-room-v1", teacher_config("exp3_alp"))  # bins of the goal box -> the training goals
    arms = bandit.teacher["arms"]["tasks"]
    assert len(arms) == 64 and {(0, 0)} <= _goal_set([t["goal"] for t in arms])
    prog_teacher = teachers.build(bandit.teacher, bandit.bench, *_env_and_train(bandit.bench))
    assert isinstance(prog_teacher.teacher.arms, TaskSetArms) and prog_teacher.teacher.num_arms == 64
    assert _build("dark-room-v1", teacher_config("plr", capacity=16)).teacher["capacity"] == 16  # under 64: kept
    assert _build("dark-room-v1", teacher_config("fixed")).teacher["task"] == {}  # (0, 0) is a training goal
    assert _build("bandit-k5-n10-v1", teacher_config("alp_gmm")).teacher["name"] == "alp_gmm"
    assert _build("bandit-k5-n10-v1", teacher_config("exp3_alp")).teacher["arms"] == {"bins": 4, "dims": None}
    assert _build("bandit-k2-dependent-v1", teacher_config("plr")).teacher["capacity"] == 4000
    assert _build("bandit-k2-dependent-v1", teacher_config("ucb_fast_slow", signal={
        "name": "fast_slow", "metric": "return"}, arms={"tasks": [{"arm_means": [0.2, 0.8]}]})).teacher
    assert _build("dark-room-v1", {"name": "domain_randomization"}).teacher == {"name": "domain_randomization"}
    assert job.build({"task": "dark-room-v1", "scale": "ci"}).teacher is None  # the default: no teacher


def _env_and_train(bench):
    from metarl.in_context import benchmarks, tasks

    env, _ = benchmarks.make_env(bench)
    return env, tasks.task_split(bench, env, 0)[0]
