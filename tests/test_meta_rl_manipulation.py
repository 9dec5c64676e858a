"""RL² on Meta-World's ML1/ML10 task sets of the manipulation family: success recorded per episode of a trial,
the benchmarks' splits, and one ``ci``-scale run of ``ml1-reach-v1`` through the job with its success tables."""

from __future__ import annotations

import json
from importlib.resources import files

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from omegaconf import OmegaConf

from envs.manipulation import world
from envs.manipulation.benchmarks import ML10_TEST, ML10_TRAIN
from envs.manipulation.task_registry import TASK_NAMES
from metarl.agents import rl2
from metarl.agents.rl2_config import TrialLayout
from metarl.agents.rl2_network import init_network
from metarl.in_context import benchmarks
from metarl.in_context import tasks as task_sets
from metarl.jobs import meta_rl as job

def _params(env):
    spec = rl2.EnvSpec.of(env)
    return init_network(jax.random.PRNGKey(0), rl2.input_dim(spec), spec.action_dim, cell="gru", hidden=8,
                        encoder_widths=(), head_widths=(), continuous=spec.continuous)


def test_a_trial_records_which_of_its_episodes_succeeded():
    """Reach, 3-step episodes, 2 per trial: a goal at the TCP's start succeeds at the first step of every
    episode, one 30+ cm away never can (the hand moves at most 1 cm per axis and step)."""
    bench = benchmarks.get("ml1-reach-v1")
    env, _ = benchmarks.make_env(bench)
    start = np.asarray(world.tcp_of(jnp.asarray(env.tasks[0].hand_init, jnp.float32)))
    far = np.array([0.1, 0.9, 0.3], np.float32)
    assert np.linalg.norm(far - start) > 0.3
    reach = np.int32(TASK_NAMES.index("reach"))
    tasks = jax.tree.map(lambda *xs: jnp.stack(xs), *[
        env.params_for("reach").replace(task_id=reach, goal=goal) for goal in (start, far, start)])
    layout = TrialLayout(3, 2, 6)
    traj = rl2.run_trial(_params(env), env, rl2.with_horizon(tasks, 3), jax.random.PRNGKey(1), layout)
    np.testing.assert_array_equal(np.asarray(traj["episode_success"]), [[1, 1], [0, 0], [1, 1]])
    # reach's reward is 10 at the goal: an episode that succeeded throughout earned more than the far one
    returns = np.asarray(traj["episode_returns"])
    assert np.all(returns[0] > returns[1]) and np.all(returns[2] > returns[1])


def test_envs_without_a_success_flag_record_zeros():
    bench = benchmarks.get("bandit-k2-dependent-v1")
    env, env_params = benchmarks.make_env(bench)
    tasks = jax.tree.map(lambda x: jnp.stack([x, x]), env_params)
    traj = rl2.run_trial(_params(env), env, tasks, jax.random.PRNGKey(0), TrialLayout(10, 1, 10))
    np.testing.assert_array_equal(np.asarray(traj["episode_success"]), np.zeros((2, 1)))


def test_ml1_holds_out_other_goals_and_ml10_other_classes_on_one_env():
    ml1 = benchmarks.get("ml1-push-v1")
    env, params = benchmarks.make_env(ml1)
    assert env.task_names == ("push",) and not env.goal_observable and int(params.max_steps_in_episode) == 150
    train, test = task_sets.task_split(ml1, env, 0)
    assert np.asarray(train.goal).shape == (50, 3) and np.asarray(test.goal).shape == (50, 3)
    train_goals = {tuple(g) for g in np.asarray(train.goal).round(6).tolist()}
    assert not train_goals & {tuple(g) for g in np.asarray(test.goal).round(6).tolist()}
    assert bool(jnp.all(jax.vmap(env.task_space.contains)(test)))

    ml10 = benchmarks.get("ml10-v1")
    env, _ = benchmarks.make_env(ml10)
    assert env.task_names == ML10_TRAIN + ML10_TEST
    train, test = task_sets.task_split(ml10, env, 0)
    names = lambda tasks: {TASK_NAMES[i] for i in np.asarray(tasks.task_id)}  # noqa: E731
    assert names(train) == set(ML10_TRAIN) and names(test) == set(ML10_TEST)
    assert np.asarray(train.task_id).shape == (500,) and np.asarray(test.task_id).shape == (250,)
    thinned = task_sets.task_split(ml10, env, 5)[1]  # the ci scale: one goal per test class, classes in order
    assert [TASK_NAMES[i] for i in np.asarray(thinned.task_id)] == list(ML10_TEST)


def test_a_ci_run_reports_meta_train_and_meta_test_success_per_episode(tmp_path):
    cfg = {"task": "ml1-reach-v1", "scale": "ci", "seeds": 2, "progress": False, "agent": {"hidden_size": 8}}
    summary = job.run(cfg, tmp_path)
    k = summary["trial"]["episodes"]
    assert summary["trial"] == {"episodes": 4, "horizon": 150, "steps": 600}
    assert summary["timesteps"] == 4 * 4 * 600  # ci: 4 trials of 4 envs
    assert summary["steps_per_second"] > 0  # of the chunks this run trained
    for split in ("meta_train", "meta_test"):
        entry = summary["success"][split]
        assert len(entry["per_episode"]["mean"]) == k and len(entry["last_episode"]["per_seed"]) == 2
        assert all(0.0 <= v <= 1.0 for v in entry["per_episode"]["mean"])
        assert list(entry["per_class"]) == ["reach"]  # ML1: one class, its rate the last episode's
        assert entry["per_class"]["reach"]["mean"] == pytest.approx(entry["last_episode"]["mean"])
    assert summary["held_out"]["benchmark"] == "ML1:reach-v3" and summary["held_out"]["tasks"] == 4
    assert summary["baselines"] == {}
    assert [row["method"] for row in summary["table"]] == ["RL2 (gru)", "PPO from scratch (4 x 150 steps per task)"]
    scratch = summary["scratch_ppo"]  # PPO from scratch on each held-out task with one trial's 600 steps
    assert scratch["n"] == 4 and scratch["steps_per_task"] == 600 and len(scratch["episode_returns"]["mean"]) == k
    assert len(summary["success"]["scratch_ppo"]["per_episode"]["mean"]) == k
    report = (tmp_path / "report.md").read_text()
    assert "| episode | meta-train | meta-test | PPO from scratch |" in report
    assert report.count("\n| 4 |") == 2 and "PPO from scratch on the same held-out tasks (600 steps each" in report
    assert "per task class" not in report  # one class: no per-class table
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 2 and all(len(row["episode_success"]) == k for row in rows)


def test_plr_on_ml1_keeps_to_the_training_goals():
    plr = OmegaConf.to_container(OmegaConf.create(files("configs").joinpath("teacher/plr.yaml").read_text()))
    spec = job.build({"task": "ml1-reach-v1", "teacher": plr})
    assert spec.teacher["capacity"] == 50  # PLR's buffer capped at ML1's 50 training goals


@pytest.mark.parametrize(("name", "classes"), [("ml1-reach-v1", 1), ("ml1-push-v1", 1), ("ml10-v1", 5)])
def test_the_benchmarks_hold_out_every_test_task(name, classes):
    bench = benchmarks.get(name)
    assert bench.held_out == "meta-world" and bench.baselines == "success"
    assert bench.test_tasks == 50 * classes  # Meta-World's 50 goal variations per test class
    assert bench.num_test_tasks(ci=True) < bench.test_tasks


def test_success_per_class_is_the_last_episode_of_each_class_runs():
    # 2 seeds x 4 runs x 2 episodes; runs 0, 2 are push, 1, 3 reach; only the last episode counts
    flags = np.zeros((2, 4, 2))
    flags[0, :, 1] = [1, 0, 1, 1]
    flags[1, :, 1] = [0, 0, 1, 0]
    flags[:, :, 0] = 1  # the first episode never counts
    classes = np.array(["push", "reach", "push", "reach"])
    entry = job._success_entry(flags, classes)
    assert list(entry["per_class"]) == ["push", "reach"]
    assert entry["per_class"]["push"]["mean"] == pytest.approx((1.0 + 0.5) / 2)  # seeds: 2/2, 1/2
    assert entry["per_class"]["reach"]["mean"] == pytest.approx((0.5 + 0.0) / 2)
    assert entry["last_episode"]["per_seed"] == [0.75, 0.25]
    rows = job._class_rows({"meta_train": entry, "meta_test": job._success_entry(flags[:, :2], classes[:2])})
    assert "| meta-train | push | 0.750 |" in "\n".join(rows) and len([r for r in rows if r.startswith("| meta")]) == 4
