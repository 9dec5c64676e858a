"""Simple teachers, the Stump Track env, the teacher factory and a short run through the CLI."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from curricula.factory import make_teacher
from curricula.simple import DomainRandomization, FixedSequence, FixedTask
from envs import stack_tasks
from envs.stumps import MASTERED_RETURN, StumpTrack, test_tasks


def stump(h, s):
    env, p = envs.make("stumps")
    return env, p.replace(stump_height=jnp.float32(h), stump_spacing=jnp.float32(s))


def play(env, params, policy, steps=40):
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    total = 0.0
    for t in range(steps):
        obs, state, r, term, trunc, info = env.step(jax.random.PRNGKey(t), state, policy(obs), params)
        total += float(r)
        if bool(term | trunc):
            return total, bool(info["success"])
    return total, False


def jump_when_tall(obs):
    return jnp.where(obs[0] > 0.3, 1, 0)


def test_stump_layout_and_feasibility():
    env, p = stump(1.0, 3.0)
    h = np.asarray(env.heights(p))
    np.testing.assert_array_equal(np.flatnonzero(h), [3, 6, 9, 12, 15, 18])
    _, p15 = stump(1.0, 1.5)  # ceil(1.5 k) = 2, 3, 5, 6, ...: adjacent tall stumps
    np.testing.assert_array_equal(np.flatnonzero(np.asarray(env.heights(p15)))[:4], [2, 3, 5, 6])
    assert not bool(env.is_feasible(p15))
    assert bool(env.is_feasible(stump(0.2, 1.0)[1]))  # low stumps are walked over
    assert not bool(env.is_feasible(stump(2.5, 4.0)[1]))  # taller than the maximal jump
    assert bool(env.is_feasible(stump(1.9, 2.0)[1]))


def test_stump_returns_success_and_mastery_threshold():
    env, p = stump(1.0, 3.0)
    ret, success = play(env, p, jump_when_tall)
    # 20 cells (1.0) + goal bonus (1.0) - 6 jumps * 0.02
    assert success and ret == pytest.approx(2.0 - 6 * 0.02, abs=1e-5) and ret > MASTERED_RETURN
    ret, success = play(*stump(2.5, 3.0), jump_when_tall)
    assert not success and ret < 1.0  # blocked before the first stump: never mastered
    ret, success = play(env, p, lambda obs: 0)  # walking only: stuck at cell 2
    assert not success and ret == pytest.approx(2 / 20, abs=1e-6)


def test_held_out_set_is_fixed_and_mixed():
    a, b = test_tasks(), test_tasks()
    np.testing.assert_array_equal(a.stump_height, b.stump_height)
    assert a.stump_height.shape == (100,)
    feasible = float(jnp.mean(jax.vmap(StumpTrack().is_feasible)(a)))
    assert 0.4 < feasible < 0.8  # learnable and unlearnable regions both present


def test_domain_randomization_fixed_task_and_sequence():
    env, _ = envs.make("stumps")
    space = env.task_space
    dr = DomainRandomization()
    s = dr.init(jax.random.PRNGKey(0), space)
    s, tasks = dr.sample(s, jax.random.PRNGKey(1), 64)
    assert bool(jnp.all(jax.vmap(space.contains)(tasks)))
    assert float(jnp.std(tasks.stump_height)) > 0.5
    fixed = FixedTask(space.default.replace(stump_height=jnp.float32(0.5)))
    s = fixed.init(jax.random.PRNGKey(0), space)
    _, tasks = fixed.sample(s, jax.random.PRNGKey(1), 3)
    np.testing.assert_allclose(tasks.stump_height, [0.5] * 3)
    seq = stack_tasks([space.default.replace(stump_height=jnp.float32(h)) for h in (0.0, 1.0, 2.0)])
    teacher = FixedSequence(seq, period=2)
    s = teacher.init(jax.random.PRNGKey(0), space)
    heights = []
    for _ in range(8):
        s, tasks = teacher.sample(s, jax.random.PRNGKey(0), 2)
        heights.append(float(tasks.stump_height[0]))
    assert heights == [0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0]
    cyc = FixedSequence(seq, period=1, cycle=True)
    assert [int(cyc.current_index(s.replace(step=jnp.array(i)))) for i in range(4)] == [0, 1, 2, 0]


def test_factory_builds_every_config_and_rejects_bad_names():
    from pathlib import Path

    import yaml

    env, _ = envs.make("stumps")
    for path in sorted((Path(__file__).parent.parent / "configs" / "teacher").glob("*.yaml")):
        cfg = yaml.safe_load(path.read_text())
        if cfg["name"] == "groove":  # LPG meta-training only (needs an antagonist agent)
            with pytest.raises(ValueError, match="objective=lpg teacher=groove"):
                make_teacher(cfg, env.task_space, num_envs=4)
            continue
        teacher = make_teacher(cfg, env.task_space, num_envs=4)
        state = teacher.init(jax.random.PRNGKey(0), env.task_space)
        if path.stem in ("domain_randomization", "fixed", "exp3_alp"):  # the others are sampled in their own tests
            _, tasks = jax.jit(teacher.sample, static_argnums=2)(state, jax.random.PRNGKey(1), 4)
            assert tasks.stump_height.shape == (4,), path.name
    with pytest.raises(ValueError, match="unknown teacher"):
        make_teacher({"name": "goalgan"}, env.task_space)
    with pytest.raises(ValueError, match="bandit algorithm"):
        make_teacher({"name": "bandit", "algorithm": {"name": "exp4"}}, env.task_space)
    with pytest.raises(ValueError, match="not free fields"):
        make_teacher({"name": "fixed", "task": {"gravity": 1.0}}, env.task_space)


@pytest.mark.slow
def test_short_curriculum_run_through_the_job(tmp_path):
    from hydra import compose, initialize_config_module

    from metarl.jobs.curriculum import run

    with initialize_config_module("configs", version_base=None):
        cfg = compose(
            config_name="curriculum",
            overrides=[
                "teacher=alp_gmm",
                "teacher.fit_rate=64",
                "teacher.ks=[2,3]",
                "teacher.em_iters=20",
                "teacher.history_size=256",
                "teacher.return_range=[-1,2]",
                "agent.total_timesteps=16384",
                f"run_dir={tmp_path}",
            ],
        )
    summary = run(cfg, tmp_path)
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert summary["updates"] == 16 and summary["teacher"] == "alp_gmm" and summary["env"] == "stumps"
    # 16 updates of PPO already master a good part of the feasible held-out tasks (60% feasible)
    assert summary["mastered"] >= 0.3, summary
    metrics = np.load(tmp_path / "metrics.npz")
    assert metrics["episode_return"].shape == (16,)
