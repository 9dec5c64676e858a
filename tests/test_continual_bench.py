"""The continual benchmark script (scripts/continual_bench.py) and the CGW5-v1 stream."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from metarl.continual.runner import evaluate_results, score_bounds
from metarl.continual.streams import STREAMS, build_env, get_stream

ROOT = Path(__file__).resolve().parents[1]


def _load_bench():
    spec = importlib.util.spec_from_file_location("continual_bench", ROOT / "scripts" / "continual_bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load_bench()


def test_cgw5_is_the_first_five_cgw10_maps_on_an_unpadded_grid():
    stream = get_stream("CGW5-v1")
    cgw10 = get_stream("CGW10-v1")
    assert stream.n_tasks == 5 and stream.total_steps == 5 * 100_000
    np.testing.assert_array_equal(np.asarray(stream.tasks.obj_rewards)[:, :3], np.asarray(cgw10.tasks.obj_rewards)[:5, :3])
    np.testing.assert_array_equal(np.asarray(stream.tasks.max_steps_in_episode), 100)
    env, _ = build_env(stream)
    # tabular obs: 11*11 cells x 2^4 object masks + time, then the 5-way task one-hot
    assert env.observation_space().shape == (11 * 11 * 16 + 1 + 5,)
    low, high = score_bounds(stream)
    assert np.all(high > low + 0.5)  # DP optimum clearly above the random policy on every map
    assert STREAMS["CGW5-v1"]["version"] == 1


def _synthetic_results():
    """2 tasks x 100 steps, evals every 10: task 0 learned then forgotten, task 1 learned."""
    steps = np.arange(10, 201, 10)
    in_first = steps <= 100
    perf = np.stack([np.where(in_first, 1.0, 0.0), np.where(in_first, 0.0, 1.0)], axis=1)  # [E, 2]
    perf = np.stack([perf, perf])  # 2 identical seeds
    diag = {
        "actor/hidden_0/dormant_0.1": np.full((2, 20), 0.2),
        "actor/hidden_1/dormant_0.1": np.full((2, 20), 0.4),
        "critic/hidden_0/dormant_0.1": np.zeros((2, 20)),
        "critic/hidden_1/dormant_0.1": np.ones((2, 20)),
        "actor/hidden_0/dormant_0.025": np.zeros((2, 20)),
    }
    results = {"eval_steps": steps, "perf": perf, "segments": [(0, 100), (1, 100)], "diagnostics": diag,
               "wall_time_s": 1.0, "compile_counts": {}}
    ref = (np.arange(10, 101, 10), np.full((2, 10, 2), 0.5))
    return results, ref


def test_summary_matches_hand_computed_metrics():
    results, ref = _synthetic_results()
    row = bench.summarize(results, evaluate_results(results, ref), tau=0.1)
    # final: task 0 scores 0, task 1 scores 1 -> AP 0.5; task 0 forgets 1, task 1 nothing -> F 0.5
    assert row["average_performance"]["mean"] == pytest.approx(0.5)
    assert row["forgetting"]["mean"] == pytest.approx(0.5)
    # AUC 1 on both first visits vs reference 0.5: raw FT 0.5, normalised 0.5 / (1 - 0.5) = 1
    assert row["forward_transfer_raw"]["mean"] == pytest.approx(0.5)
    assert row["forward_transfer"]["mean"] == pytest.approx(1.0)
    assert row["forward_transfer_raw_per_task"] == pytest.approx([0.5, 0.5])
    # identical seeds: the bootstrap interval collapses on the mean
    assert row["forgetting"]["ci_low"] == pytest.approx(0.5) and row["forgetting"]["ci_high"] == pytest.approx(0.5)
    # IQM of final per-task scores {0, 1, 0, 1}: the middle half is {0, 1} -> 0.5
    assert row["average_performance_iqm"]["mean"] == pytest.approx(0.5)
    # dormant fraction = mean over hidden layers of each net
    assert row["dormant_actor_final"]["mean"] == pytest.approx(0.3)
    assert row["dormant_critic_final"]["mean"] == pytest.approx(0.5)
    table = bench.markdown_table("toy-v1", {"finetune": row}, 0.1, 2)
    assert "| finetune | 0.500 [0.500, 0.500]" in table and "+0.500 | +0.500" in table


def test_dormant_curves_reject_an_unlogged_tau_and_bad_overrides():
    results, _ = _synthetic_results()
    with pytest.raises(ValueError, match="no dormant_0.5 diagnostics"):
        bench.dormant_curves(results["diagnostics"], 0.5)
    with pytest.raises(ValueError, match="section.key=value"):
        bench.parse_set(["lr=1"])
    assert bench.parse_set(["agent.hidden_sizes=[16,16]", "method_ewc.ewc_coef=1e4"]) == {
        "agent": {"hidden_sizes": [16, 16]}, "method_ewc": {"ewc_coef": 1e4}}


def test_bad_method_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--benchmark", "ccartpole5", "--methods", "magic", "--out", "unused"])
    assert exc.value.code == 2
    assert "unknown method 'magic'" in capsys.readouterr().err


def test_bench_end_to_end_shares_the_reference(tmp_path):
    bench.main([
        "--benchmark", "ccartpole5", "--steps-per-task", "128", "--eval-every", "64", "--seeds", "2",
        "--eval-episodes", "2", "--methods", "finetune", "reset", "--out", str(tmp_path),
        "--set", "agent.num_envs=4", "agent.num_steps=16", "agent.update_epochs=1", "agent.num_minibatches=1",
        "agent.hidden_sizes=[16,16]", "eval.max_steps=40",
    ])
    record = json.loads((tmp_path / "table.json").read_text())
    assert set(record["methods"]) == {"finetune", "reset"} and record["seeds"] == 2
    # the references ran on the fine-tuning runner: its programs compiled once for refs + stream
    assert record["methods"]["finetune"]["compile_counts"] == {"init": 1, "chunk": 1, "switch": 1, "evaluate": 1}
    for row in record["methods"].values():
        for name in ("average_performance", "forgetting", "forward_transfer_raw", "average_performance_iqm"):
            assert row[name]["ci_low"] <= row[name]["mean"] <= row[name]["ci_high"]
        assert len(row["forward_transfer_raw_per_task"]) == 5
    ref = np.load(tmp_path / "reference.npz")
    assert ref["ref_perf"].shape == (2, 2, 5) and np.all(np.isfinite(ref["ref_perf"]))
    for name in ("task_curves.png", "dormant.png", "table.md", "finetune.npz", "reset.npz"):
        assert (tmp_path / name).stat().st_size > 500
