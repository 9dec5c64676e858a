"""Segmented multi-seed curriculum runs, their statistics and plots."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from curricula import gmm
from metarl.eval import curriculum_plots as plots
from curricula import Feedback
from metarl.eval.curriculum_bench import SegmentedRun, run_segmented
from curricula.plr import PLR, REPLAY
from metarl.eval.curriculum import build, held_out_tasks, resolve_config
from envs.maze import NAMED_MAZES


def _load_script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "curriculum_bench.py"
    spec = importlib.util.spec_from_file_location("curriculum_bench_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_summary_uses_the_shared_statistics():
    from metarl.stats import bootstrap_ci, iqm_ci

    script = _load_script()
    mastered = np.array([[0.0, 0.2], [0.0, 0.4], [0.1, 0.6], [0.0, 0.1], [0.2, 0.9]])
    run = SegmentedRun("dr", np.array([0, 8]), mastered, mastered, mastered, np.zeros((5, 4)))
    row = script.summarize(run)
    assert row["final_mastered"] == bootstrap_ci(mastered[:, -1])
    assert row["final_mastered_iqm"] == iqm_ci(mastered[:, -1])
    assert script.summarize(SegmentedRun("dr", run.timesteps, mastered[:4], mastered[:4], mastered[:4],
                                         np.zeros((4, 4))))["final_mastered_iqm"] is None  # fewer than 5 seeds
    assert "| dr | 5 |" in script.markdown_table([row], "mastered")


def test_unrolled_cholesky_and_solve_match_lapack():
    a = jax.random.normal(jax.random.PRNGKey(0), (5, 4, 4))
    a = a @ jnp.swapaxes(a, 1, 2) + 0.1 * jnp.eye(4)
    chol = gmm.cholesky_unrolled(a)
    np.testing.assert_allclose(chol, jnp.linalg.cholesky(a), atol=1e-4)
    b = jax.random.normal(jax.random.PRNGKey(1), (5, 4, 7))
    np.testing.assert_allclose(
        gmm.forward_solve_unrolled(chol, b), jax.scipy.linalg.solve_triangular(chol, b, lower=True), atol=1e-3
    )


def test_named_held_out_mazes():
    env, _ = envs.make("maze")
    levels = held_out_tasks(env, 100, "named")
    assert levels.wall_map.shape == (len(NAMED_MAZES), 13, 13)
    stumps, _ = envs.make("stumps")
    with pytest.raises(ValueError, match="env=maze"):
        held_out_tasks(stumps, 100, "named")
    with pytest.raises(ValueError, match="eval.set"):
        held_out_tasks(env, 100, "hard")


STUMPS_DR = {"env": "stumps", "teacher": {"name": "domain_randomization"}, "agent": {"total_timesteps": 16 * 64 * 16}}


@pytest.fixture(scope="module")
def dr_run():
    return run_segmented(STUMPS_DR, seeds=[0, 1], segments=2)


def test_segmented_dr_run_learns_and_records(dr_run):
    run = dr_run
    assert run.teacher == "domain_randomization"
    np.testing.assert_array_equal(run.timesteps, [0, 8 * 1024, 16 * 1024])
    assert run.mastered.shape == (2, 3) and run.train_return.shape == (2, 16)
    assert run.per_task_mastered.shape == (2, 100) and len(run.snapshots) == 3
    np.testing.assert_allclose(run.per_task_mastered.mean(axis=1), run.mastered[:, -1])
    # 16k steps of PPO on the default Stump Track (60% of the held-out set is
    # feasible): every seed improves and the mean reaches 30% mastered.
    assert (run.mastered[:, -1] > run.mastered[:, 0]).all() and run.mastered[:, -1].mean() > 0.3


def test_bad_segment_requests():
    with pytest.raises(ValueError, match="segments"):
        run_segmented(STUMPS_DR, seeds=[0], segments=0)
    with pytest.raises(ValueError, match="cannot be split"):
        run_segmented(STUMPS_DR, seeds=[0], segments=100)


def test_sampling_and_buffer_plots(tmp_path, dr_run):
    _, agent, _ = build(resolve_config(STUMPS_DR))
    plots.plot_task_samples(agent.teacher, agent.env, dr_run, tmp_path / "samples.png", stages=2, n=50)
    plots.plot_curves([dr_run], tmp_path / "curves.png", "dr")
    # a robust-PLR teacher driven directly (random scores) stands in for a training run
    teacher = PLR(capacity=32, min_fill_ratio=0.25, robust=True)
    state = teacher.init(jax.random.PRNGKey(0), agent.env.task_space)
    sample, update = jax.jit(teacher.sample, static_argnums=2), jax.jit(teacher.update)
    snapshots = []
    for i in range(12):
        key_sample, key_score = jax.random.split(jax.random.PRNGKey(i))
        state, tasks = sample(state, key_sample, 8)
        state = update(state, tasks, Feedback.from_returns(jnp.zeros(8), scores=jax.random.uniform(key_score, (8,))))
        if i % 4 == 3:
            snapshots.append(jax.tree.map(lambda x: np.asarray(x)[None], state))  # a batch of one seed
    assert int(snapshots[-1].branch_counts.sum()) == 12 and int(snapshots[-1].branch_counts[0, REPLAY]) > 0
    plr_run = SegmentedRun("rplr", np.arange(3) * 8, np.zeros((1, 3)), np.zeros((1, 3)), np.zeros((1, 4)),
                           np.zeros((1, 12)), snapshots)
    plots.plot_buffer(plr_run, tmp_path / "buffer.png", stages=2)
    for name in ("samples", "curves", "buffer"):
        assert (tmp_path / f"{name}.png").stat().st_size > 5_000
