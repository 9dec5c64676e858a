"""metarl-evaluate: objective resolution, IQM/bootstrap statistics, plots and the CLI."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from metarl.artifacts import save_objective
from metarl.evaluate import (
    EvalResults,
    ObjectiveSpec,
    aggregate_rows,
    drift_grid,
    main,
    markdown_table,
    plot_drift_heatmaps,
    resolve_objective,
    stratified_bootstrap_iqm,
)
from metarl.objectives import DPO, LPO, TALPO, PPOClip


def test_iqm_and_stratified_bootstrap_by_hand():
    # IQM of 1..8 = mean of the middle half {3, 4, 5, 6} = 4.5; with an outlier the IQM ignores it.
    iqm, low, high = stratified_bootstrap_iqm(np.arange(1.0, 9.0)[:, None], reps=500, seed=0)
    assert iqm == pytest.approx(4.5)
    assert 1.0 <= low < iqm < high <= 8.0
    iqm_outlier, _, _ = stratified_bootstrap_iqm(np.array([[1.0], [2.0], [3.0], [1000.0]]), reps=50)
    assert iqm_outlier == pytest.approx(2.5)
    # Constant scores: the interval collapses; the seed makes it reproducible.
    assert stratified_bootstrap_iqm(np.full((6, 2), 3.0), reps=50) == (3.0, 3.0, 3.0)
    assert stratified_bootstrap_iqm(np.arange(8.0)[:, None], 300, 1) == stratified_bootstrap_iqm(np.arange(8.0)[:, None], 300, 1)


def test_aggregate_rows_and_markdown_table():
    final = {"A": np.arange(1.0, 9.0)[:, None], "B": np.full((8, 1), 2.0)}
    results = EvalResults(returns={}, final=final, env_names=["CartPole-v1"], timesteps=np.arange(3))
    rows = aggregate_rows(results, reps=300)
    assert [r["objective"] for r in rows] == ["A", "B"]
    assert rows[0]["iqm"] == pytest.approx(4.5) and rows[0]["ci_low"] < 4.5 < rows[0]["ci_high"]
    assert rows[1]["iqm"] == rows[1]["ci_low"] == rows[1]["ci_high"] == 2.0
    table = markdown_table(rows)
    assert "| CartPole-v1 | A | 4.5 |" in table and table.count("\n") == 3


def test_resolve_objective_specs(tmp_path):
    assert isinstance(resolve_objective("ppo", clip_eps=0.3).objective, PPOClip)
    assert resolve_objective("ppo", clip_eps=0.3).objective.clip_eps == 0.3
    assert isinstance(resolve_objective("DPO").objective, DPO)
    lpo = LPO(hidden_size=4)
    save_objective(tmp_path / "learned_objective.npz", lpo, lpo.init(jax.random.PRNGKey(0)))
    from_file = resolve_objective(str(tmp_path / "learned_objective.npz"))
    from_dir = resolve_objective(str(tmp_path))
    assert from_file.objective == lpo == from_dir.objective and from_file.label == "learned LPO"
    with pytest.raises(ValueError, match="is none of these"):
        resolve_objective(str(tmp_path / "nope.npz"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no learned_objective.npz"):
        resolve_objective(str(tmp_path / "empty"))


def test_drift_grid_and_heatmaps(tmp_path):
    ppo = ObjectiveSpec("PPO", PPOClip(), {})
    ratios, advantages, drift = drift_grid(ppo, 0.0, size=5)  # r in {0.5, .75, 1, 1.25, 1.5}, A in {-2..2}
    # Row A = 2 (last): relu((r - clip(r)) * 2) = [0, 0, 0, 0.1, 0.6]
    np.testing.assert_allclose(drift[-1], [0.0, 0.0, 0.0, 0.1, 0.6], atol=1e-6)
    np.testing.assert_allclose(drift[:, 2], 0.0)  # r = 1 column
    ta = TALPO(hidden_size=8, ppo_init=False)
    weights = {"w1": jax.random.normal(jax.random.PRNGKey(0), (16, 8)), "w2": jax.random.normal(jax.random.PRNGKey(1), (8, 1))}
    spec = ObjectiveSpec("TA-LPO", ta, weights)
    assert not np.allclose(drift_grid(spec, 0.0)[2], drift_grid(spec, 1.0)[2])
    path = plot_drift_heatmaps([ppo, spec], tmp_path / "heat.png")
    assert path.stat().st_size > 10_000  # 1 + 5 progress panels


def _cache_dir(tmp_path_factory) -> Path:
    # Shared with tests/test_meta_train.py's CLI runs in the same session (same programs).
    return tmp_path_factory.getbasetemp() / "metarl_jax_cache"


def test_evaluate_cli_writes_all_outputs(tmp_path, tmp_path_factory):
    lpo = LPO(hidden_size=8)
    weights = lpo.init(jax.random.PRNGKey(0))
    weights["w2"] = 0.5 * jax.random.normal(jax.random.PRNGKey(1), (8, 1))
    artifact = save_objective(tmp_path / "obj.npz", lpo, weights)
    out_dir = tmp_path / "eval"
    env = os.environ | {
        "JAX_PLATFORMS": "cpu",
        "JAX_COMPILATION_CACHE_DIR": str(_cache_dir(tmp_path_factory)),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    }
    args = [
        f"objective={artifact}", "compare=[ppo,dpo]", "env=CartPole-v1", "seeds=2", f"out_dir={out_dir}",
        "agent.total_timesteps=512", "agent.num_steps=32", "agent.update_epochs=2", "agent.num_minibatches=2",
        "+agent.hidden_sizes=[16]",
    ]
    out = subprocess.run(
        [sys.executable, "-c", "from metarl.evaluate import main; main()", *args],
        env=env, capture_output=True, text=True, timeout=400, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"evaluation written to {out_dir}" in out.stdout
    with (out_dir / "per_seed_returns.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and {r["objective"] for r in rows} == {"learned LPO", "PPO", "DPO"}
    assert all(np.isfinite(float(r["final_return"])) and float(r["final_return"]) > 0 for r in rows)
    aggregate = json.loads((out_dir / "aggregate.json").read_text())
    assert [r["objective"] for r in aggregate] == ["learned LPO", "PPO", "DPO"]
    for name in ("learning_curves.png", "drift_heatmap.png", "aggregate.md"):
        assert (out_dir / name).stat().st_size > 0


def test_evaluate_cli_bad_input_is_one_clear_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["objective=nothing.npz"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "metarl-evaluate: error: objective must be ppo, dpo, an objective .npz or a run directory; "
        "'nothing.npz' is none of these"
    )
    with pytest.raises(SystemExit):
        main(["seedz=3"])
    assert "unknown option 'seedz'" in capsys.readouterr().err
