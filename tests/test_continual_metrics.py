"""Continual World metrics against hand-computed curves."""

import numpy as np
import pytest

from metarl.continual import metrics as M


def _revisit_run():
    """Stream A(0,100] B(100,200] A(200,300], evaluations every 10 steps.

    task 0 (A): 0.1..1.0 during its first visit, 0.5 while B trains, 0.9 after.
    task 1 (B): 0.0 during A, 0.2 x5 then 0.6 x5 while trained, 0.3 at the end.
    """
    steps = np.arange(10, 301, 10)
    perf = np.zeros((30, 2))
    perf[:10, 0] = np.arange(1, 11) / 10
    perf[10:20, 0] = 0.5
    perf[20:, 0] = 0.9
    perf[10:15, 1] = 0.2
    perf[15:20, 1] = 0.6
    perf[20:, 1] = 0.3
    segments = [(0, 100), (1, 100), (0, 100)]
    # reference single-task runs, 150 steps long; only (0, 100] counts
    ref_steps = np.arange(10, 151, 10)
    ref = np.zeros((15, 2))
    ref[:, 0] = 0.5
    ref[5:10, 1] = 0.5
    ref[10:, 1] = 1.0  # after the budget: must be ignored
    return steps, perf, segments, ref_steps, ref


def test_metrics_with_revisited_task():
    m = M.continual_metrics(*_revisit_run())
    # final segment is A's second visit: last 5 evals of each task there
    np.testing.assert_allclose(m["final_performance"], [0.9, 0.3])
    assert m["average_performance"] == pytest.approx(0.6)
    # A was trained last -> F_A = 0; B ended at 200 with last-5 mean 0.6 -> F_B = 0.6 - 0.3
    np.testing.assert_allclose(m["forgetting_per_task"], [0.0, 0.3], atol=1e-12)
    assert m["forgetting"] == pytest.approx(0.15)
    assert m["backward_transfer"] == pytest.approx(-0.3)
    # FT on first visits: AUC_A = mean(0.1..1.0) = 0.55 vs ref 0.5; AUC_B = 0.4 vs ref 0.25
    np.testing.assert_allclose(m["auc"], [0.55, 0.4])
    np.testing.assert_allclose(m["auc_reference"], [0.5, 0.25])
    np.testing.assert_allclose(m["forward_transfer_per_task"], [0.05 / 0.5, 0.15 / 0.75])
    np.testing.assert_allclose(m["forward_transfer_raw_per_task"], [0.05, 0.15])
    assert m["forward_transfer"] == pytest.approx(0.15)
    assert m["forward_transfer_raw"] == pytest.approx(0.1)


def test_metrics_sequential_cw_case_and_edge_cases():
    # two tasks, no revisit, eval every 25 steps, k=2 window
    steps = np.array([25, 50, 75, 100, 125, 150, 175, 200])
    perf = np.array(
        [[0.2, 0], [0.4, 0], [0.8, 0], [1.0, 0], [0.6, 0.1], [0.4, 0.5], [0.2, 0.7], [0.2, 0.9]], dtype=float
    )
    ref = np.ones((4, 2))  # AUC_ref = 1 -> normalised FT undefined, raw still reported
    m = M.continual_metrics(steps, perf, [(0, 100), (1, 100)], np.array([25, 50, 75, 100]), ref, k=2)
    # p_0(end of task 0) = mean(0.8, 1.0) = 0.9; p_0(end) = 0.2; task 1 is last -> 0
    np.testing.assert_allclose(m["forgetting_per_task"], [0.7, 0.0])
    assert m["forgetting"] == pytest.approx(0.35)
    assert m["average_performance"] == pytest.approx((0.2 + 0.8) / 2)
    assert np.all(np.isnan(m["forward_transfer_per_task"]))
    np.testing.assert_allclose(m["forward_transfer_raw_per_task"], [0.6 - 1, 0.55 - 1])
    # a never-trained task gives NaN and is excluded from the means
    m3 = M.continual_metrics(steps, np.concatenate([perf, perf[:, :1]], 1), [(0, 100), (1, 100)], k=2)
    assert np.isnan(m3["forgetting_per_task"][2]) and m3["forgetting"] == pytest.approx(0.35)
    assert np.isnan(m3["forward_transfer"])
    with pytest.raises(ValueError, match="increasing"):
        M.continual_metrics(steps[::-1], perf, [(0, 100), (1, 100)])
    with pytest.raises(ValueError, match="task >= 2"):
        M.continual_metrics(steps, perf, [(0, 100), (2, 100)])


def test_seed_summary_uses_95_percent_intervals():
    runs = [{"average_performance": v, "forgetting": v, "backward_transfer": np.nan, "forward_transfer": np.nan,
             "forward_transfer_raw": np.nan, "final_performance": np.array([v, v])} for v in np.arange(20.0)]
    summary = M.summarize_seeds(runs)
    assert set(summary) == {"average_performance", "forgetting", "final_performance_iqm"}  # all-NaN metrics skipped
    x = np.arange(20.0)
    half = 1.96 * x.std() / np.sqrt(20)  # normal approximation of the 95% interval (what the headline prints)
    m = summary["forgetting"]
    assert m["mean"] == pytest.approx(9.5) and m["n_seeds"] == 20
    assert m["ci_low"] == pytest.approx(9.5 - half, rel=0.05) and m["ci_high"] == pytest.approx(9.5 + half, rel=0.05)
    assert M.summarize_seeds(runs) == summary  # seeded


def test_iqm_and_seed_summary(tmp_path):
    runs = [M.continual_metrics(*_revisit_run()) for _ in range(3)]
    summary = M.summarize_seeds(runs)
    assert summary["forgetting"]["mean"] == pytest.approx(0.15)
    assert summary["forgetting"]["ci_low"] == pytest.approx(0.15)
    assert summary["final_performance_iqm"]["mean"] == pytest.approx(0.6)
    steps, perf, segments, _, _ = _revisit_run()
    out = tmp_path / "curves.png"
    M.plot_task_curves(steps, np.stack([perf, perf + 0.05]), segments, ["A", "B"], str(out))
    assert out.stat().st_size > 1000
