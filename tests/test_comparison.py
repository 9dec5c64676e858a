"""rliable's probability of improvement and performance profiles against hand-computed values, the min-max scale
of the profiles, and merging evaluations of training and held-out envs."""

from __future__ import annotations

import numpy as np
import pytest

from metarl.eval.comparison import improvement_rows, performance_profiles, verdict
from metarl.eval.objectives import EvalResults, merge_results
from metarl.eval.report import min_max_normalised, write_comparison


def test_probability_of_improvement_is_the_mann_whitney_fraction_averaged_over_tasks():
    # task 0: x = [3, 5, 6] vs y = [2, 4]: pairs with x > y: 1 + 2 + 2 of 6; task 1: x never above y
    x = np.array([[3.0, 0.0], [5.0, 0.0], [6.0, 0.0]])
    y = np.array([[2.0, 1.0], [4.0, 1.0]])
    (row,) = improvement_rows({"x": x, "y": y}, "x", ["y"], reps=200)
    assert row["p_improvement"] == pytest.approx((5 / 6 + 0.0) / 2)
    assert row["ci_low"] <= row["p_improvement"] <= row["ci_high"] and (row["runs"], row["tasks"]) == (3, 2)


def test_the_verdict_follows_the_interval_and_identical_runs_tie():
    better = np.arange(8.0)[:, None] + 100
    worse = np.arange(8.0)[:, None]
    rows = improvement_rows({"a": better, "b": worse, "c": better.copy()}, "a", ["b", "c"], reps=200)
    assert rows[0]["p_improvement"] == 1.0 and rows[0]["ci_low"] == 1.0 and verdict(rows[0]) == "wins"
    assert rows[1]["p_improvement"] == 0.5 and verdict(rows[1]) == "ties"
    assert verdict({"ci_low": 0.1, "ci_high": 0.4}) == "loses"
    again = improvement_rows({"a": better, "b": worse + 99.5}, "a", ["b"], reps=200)
    assert again == improvement_rows({"a": better, "b": worse + 99.5}, "a", ["b"], reps=200)  # seeded bootstrap


def test_performance_profiles_are_the_fraction_of_runs_above_tau():
    scores = {"m": np.array([[0.1, 0.9], [0.5, 0.3]])}
    taus = np.array([0.0, 0.2, 0.4, 0.6, 1.0])
    profiles, bands = performance_profiles(scores, taus, reps=100)
    np.testing.assert_allclose(profiles["m"], [1.0, 0.75, 0.5, 0.25, 0.0])
    assert bands["m"].shape == (2, 5) and (bands["m"][0] <= profiles["m"] + 1e-12).all()


def test_scores_are_refused_when_not_runs_by_tasks_or_not_finite():
    with pytest.raises(ValueError, match=r"x: scores must be \[runs, tasks\]"):
        improvement_rows({"x": np.ones(3), "y": np.ones((3, 1))}, "x", ["y"])
    with pytest.raises(ValueError, match="y: scores contain NaN"):
        improvement_rows({"x": np.ones((3, 1)), "y": np.array([[1.0], [np.nan]])}, "x", ["y"])
    with pytest.raises(ValueError, match="has 1 tasks, y has 2"):
        improvement_rows({"x": np.ones((3, 1)), "y": np.ones((3, 2))}, "x", ["y"])


def _results(envs: list[str], finals: dict[str, np.ndarray]) -> EvalResults:
    steps = np.arange(3)
    returns = {label: {e: np.tile(final[:, i : i + 1], (1, 3)) for i, e in enumerate(envs)} for label, final in finals.items()}
    return EvalResults(returns, finals, envs, steps)


def test_min_max_scale_and_merging_training_and_heldout_envs(tmp_path):
    train = _results(["A"], {"L": np.array([[10.0], [30.0]]), "P": np.array([[20.0], [20.0]])})
    held = _results(["B"], {"L": np.array([[-50.0], [-10.0]]), "P": np.array([[-30.0], [-90.0]])})
    merged = merge_results([train, held], {"A": "A (held-out tasks)"})
    assert merged.env_names == ["A (held-out tasks)", "B"]
    np.testing.assert_array_equal(merged.final["L"], [[10.0, -50.0], [30.0, -10.0]])
    assert merged.returns["P"]["B"].shape == (2, 3)
    scaled = min_max_normalised(merged)  # per env: 0 = worst run, 1 = best run of any method
    np.testing.assert_allclose(scaled["L"], [[0.0, 0.5], [1.0, 1.0]])
    np.testing.assert_allclose(scaled["P"], [[0.5, 0.75], [0.5, 0.0]])
    with pytest.raises(ValueError, match="env names repeat"):
        merge_results([train, train])
    out = write_comparison(merged, "L", ["P"], tmp_path, reps=100)
    assert out["rows"][0]["tasks"] == 2 and (tmp_path / "performance_profile.png").read_bytes()[:4] == b"\x89PNG"
    table = (tmp_path / "comparison.md").read_text()
    assert "| L vs P | all |" in table and "| L vs P | B |" in table and len(out["rows"]) == 3
    nan = _results(["A"], {"L": np.array([[np.nan], [1.0]]), "P": np.array([[1.0], [1.0]])})
    assert write_comparison(nan, "L", ["P"], tmp_path, reps=100)["rows"] == []
    assert "never finished an episode" in (tmp_path / "comparison.md").read_text()


def _pool_script():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("pool", Path(__file__).parents[1] / "scripts" / "pool_meta_train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_dir(path, finals):
    path.mkdir()
    lines = ["objective,env,seed,final_return,mean_return"]
    lines += [f"{m},{e},{i},{x},{x}" for (m, e), xs in finals.items() for i, x in enumerate(xs)]
    (path / "per_seed_returns.csv").write_text("\n".join(lines) + "\n")
    return path


def test_pooling_meta_training_seeds_counts_every_evaluation_run(tmp_path, capsys):
    pool = _pool_script()
    a = _run_dir(tmp_path / "a", {("LPO (learned)", "E"): [3.0, 5.0], ("PPO", "E"): [2.0, 4.0]})
    b = _run_dir(tmp_path / "b", {("LPO (learned)", "E"): [6.0, 0.0], ("PPO", "E"): [1.0, 7.0]})
    text = pool.report([a, b], tmp_path / "out", reps=50)
    # pooled: LPO [3, 5, 6, 0] vs PPO [2, 4, 1, 7]: pairs with LPO above: 2 + 3 + 3 + 0 of 16
    assert "| LPO (learned) vs PPO | all | 0.50 [" in text and "| LPO (learned) | 4.0 [" in text and "| 4 |" in text
    assert "| a | PPO | 0.75 [" in text and "| b | PPO | 0.25 [" in text  # each seed's own verdict
    assert (tmp_path / "out" / "pooled_performance_profile.png").stat().st_size > 0
    c = _run_dir(tmp_path / "c", {("LPO (learned)", "F"): [1.0], ("PPO", "F"): [1.0]})
    for runs, says in (([a, c], "the first run compares"), ([tmp_path / "none"], "per_seed_returns.csv does not exist")):
        with pytest.raises(SystemExit) as exit_info:
            pool.main([*map(str, runs), "--out", str(tmp_path / "o")])
        assert exit_info.value.code == 2 and says in capsys.readouterr().err
