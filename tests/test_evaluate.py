"""metarl-evaluate: objective resolution, IQM/bootstrap statistics, plots and the CLI."""

from __future__ import annotations

import csv
import json

import jax
import numpy as np
import pytest

from metarl.cli.evaluate import main
from metarl.eval.objectives import EvalResults, ObjectiveSpec, drift_grid, plot_drift_heatmaps, ppo_settings
from metarl.eval.objectives import resolve_objective
from metarl.eval.report import TABLE_COLUMNS, aggregate_rows, iqm_interval, markdown_table
from metarl.objectives.io import save_objective
from metarl.objectives import DPO, LPO, TALPO, PPOClip

# a PPO run small enough for a CLI round trip
TINY_AGENT = ("agent.total_timesteps=512", "agent.num_steps=32", "agent.update_epochs=2", "agent.num_minibatches=2")


def test_iqm_interval_by_hand():
    # IQM of 1..8 = mean of the middle half {3, 4, 5, 6} = 4.5; with an outlier the IQM ignores it.
    iqm, low, high = iqm_interval(np.arange(1.0, 9.0)[:, None], reps=500, seed=0)
    assert iqm == pytest.approx(4.5)
    assert 1.0 <= low < iqm < high <= 8.0
    assert iqm_interval(np.array([[1.0], [2.0], [3.0], [1000.0]]), reps=50)[0] == pytest.approx(2.5)
    assert iqm_interval(np.full((6, 2), 3.0), reps=50) == (3.0, 3.0, 3.0)
    assert np.isnan(iqm_interval(np.array([[1.0], [np.nan]]))).all()  # a seed without an episode: no interval


def test_aggregate_rows_and_markdown_table():
    final = {"A": np.arange(1.0, 9.0)[:, None], "B": np.full((8, 1), 2.0)}
    results = EvalResults(returns={}, final=final, env_names=["CartPole-v1"], timesteps=np.arange(3))
    rows = aggregate_rows(results, reps=300)
    assert [r["objective"] for r in rows] == ["A", "B"]
    assert rows[0]["iqm"] == pytest.approx(4.5) and rows[0]["ci_low"] < 4.5 < rows[0]["ci_high"]
    assert rows[1]["iqm"] == rows[1]["ci_low"] == rows[1]["ci_high"] == 2.0
    table = markdown_table(rows, TABLE_COLUMNS)
    assert "| CartPole-v1 | A | 4.5 |" in table and table.count("\n") == 3


def test_recorded_ppo_settings_are_kept_unless_the_user_sets_a_key():
    recorded = {"lr": 0.03, "num_envs": 4}
    given = {"lr": 0.001, "num_envs": 8, "ent_coef": 0.0}  # the agent section: defaults + the user's values
    settings, notes = ppo_settings(recorded, given, ["lr", "ent_coef"])
    assert settings == {"lr": 0.001, "num_envs": 4, "ent_coef": 0.0}
    assert notes == ["agent.lr=0.001 (recorded: 0.03)"]
    assert ppo_settings(None, given, ["lr"]) == (given, [])  # nothing recorded: the agent section as it is


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
    with pytest.raises(ValueError, match="no artifact"):
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


def _one_error_line(capsys, args) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("metarl-evaluate: error: "), err
    return err[0]


def test_evaluate_cli_bad_input_is_one_clear_line(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # Hydra's run directory goes below the working directory
    assert _one_error_line(capsys, ["objective=nothing.npz"]) == (
        "metarl-evaluate: error: objective must be ppo, dpo, an objective .npz or a run directory; "
        "'nothing.npz' is none of these"
    )
    assert "Could not override 'seedz'" in _one_error_line(capsys, ["seedz=3"])
    # an option of another evaluation (LPG rules) is not silently dropped
    assert "levels=[dense]: job evaluate_objective has no setting 'levels'" in _one_error_line(capsys, ["levels=[dense]"])
    assert "agent.lrr is not a setting" in _one_error_line(capsys, ["+agent.lrr=0.1"])


# --- the optimizer axis -------------------------------------------------------------
from metarl.eval.objectives import combine_runs  # noqa: E402
from metarl.eval.optimizers import OptimizerSpec, magnitude_rows, resolve_optimizer  # noqa: E402
from metarl.optimizers import LearnedOptimizer, save_learned_optimizer  # noqa: E402


def _learned_file(tmp_path, name="learned_optimizer.npz"):
    opt = LearnedOptimizer(hidden_size=4, gru_features=2)
    meta = opt.init_meta(jax.random.PRNGKey(0))
    meta["grad_scale"] = np.float32(20.0)  # SGD-like backbone (lr 0.02) so the tiny run moves
    return save_learned_optimizer(tmp_path / name, opt, meta), opt


def test_resolve_optimizer_names_files_and_errors(tmp_path):
    import optax

    adam = resolve_optimizer("adam", 3e-2)
    assert adam.label == "Adam(lr=0.03)" and not adam.learned and isinstance(adam.optimizer, optax.GradientTransformation)
    assert resolve_optimizer("Adam@1e-3", 3e-2).label == "Adam(lr=0.001)"
    assert resolve_optimizer("lion", 3e-2).label == "Lion(lr=5e-05)"  # the zoo file's lr, not agent.lr
    path, opt = _learned_file(tmp_path)
    from_file, from_dir = resolve_optimizer(str(path), 3e-2), resolve_optimizer(str(tmp_path), 3e-2)
    assert from_file.learned and from_file.label == from_dir.label == "learned OPEN"
    assert from_file.optimizer.options == opt.options and float(from_dir.meta_params["grad_scale"]) == 20.0
    with pytest.raises(ValueError, match=r"optimizer must be one of adam, adamw.*'nadam' is none of these"):
        resolve_optimizer("nadam", 3e-2)
    with pytest.raises(ValueError, match="bad learning rate"):
        resolve_optimizer("adam@fast", 3e-2)
    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="corrupt.npz is not a readable metarl artifact"):
        resolve_optimizer(str(tmp_path / "corrupt.npz"), 3e-2)
    lpo = LPO(hidden_size=4)
    save_objective(tmp_path / "objective.npz", lpo, lpo.init(jax.random.PRNGKey(0)))
    with pytest.raises(ValueError, match="holds a 'objective', not an optimizer"):
        resolve_optimizer(str(tmp_path / "objective.npz"), 3e-2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no artifact"):
        resolve_optimizer(str(tmp_path / "empty"), 3e-2)


def test_combine_runs_labels_name_the_varying_axes():
    ppo, dpo = ObjectiveSpec("PPO", PPOClip(), {}), ObjectiveSpec("DPO", DPO(), {})
    adam, lion = OptimizerSpec("Adam", None, {}), OptimizerSpec("Lion", None, {})
    assert [r.label for r in combine_runs([ppo, dpo], [adam])] == ["PPO", "DPO"]
    assert [r.label for r in combine_runs([ppo], [adam, lion])] == ["Adam", "Lion"]
    runs = combine_runs([ppo, dpo], [adam, lion])
    assert [r.label for r in runs] == ["PPO + Adam", "PPO + Lion", "DPO + Adam", "DPO + Lion"]
    assert runs[3].objective is dpo and runs[3].optimizer is lion


def test_magnitude_ratio_to_adam_by_hand():
    adam = {"CartPole-v1": {"actor": np.full((4, 3), 0.01), "critic": np.array([[1.0, 2.0, 4.0]] * 4)}}
    learned = {"CartPole-v1": {"actor": np.full((4, 3), 0.02), "critic": np.array([[0.5, 1.0, 1.0]] * 4)}}
    results = EvalResults(returns={}, final={}, env_names=["CartPole-v1"], timesteps=np.arange(3),
                          magnitudes={"learned OPEN": learned, "Adam(lr=0.03)": adam},
                          learned_optimizer_labels=["learned OPEN"])
    rows = [r for r in magnitude_rows(results, reps=100) if r["run"] == "learned OPEN"]
    actor = [r for r in rows if r["group"] == "actor"]
    assert [r["ratio_to_adam"] for r in actor] == pytest.approx([2.0, 2.0, 2.0])
    critic = [r for r in rows if r["group"] == "critic"]
    assert [r["ratio_to_adam"] for r in critic] == pytest.approx([0.5, 0.5, 0.25])
    assert [r["training_proportion"] for r in critic] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert critic[2]["ratio_ci_low"] == pytest.approx(0.25) == critic[2]["ratio_ci_high"]  # seeds agree


@pytest.mark.slow
def test_evaluate_cli_learned_optimizer_against_adam(tmp_path, monkeypatch):
    (tmp_path / "run").mkdir()
    _learned_file(tmp_path / "run")
    out_dir = tmp_path / "eval"
    args = [
        f"optimizer={tmp_path / 'run'}", "compare_optimizers=[adam]", "env=CartPole-v1", "seeds=2", f"out_dir={out_dir}",
        *TINY_AGENT,
        "agent.hidden_sizes=[8]",
    ]  # the file records no inner PPO: the agent section is used
    monkeypatch.chdir(tmp_path)
    main(args)  # in this process (the installed metarl-evaluate runs in tests/test_installed_wheel.py)
    with (out_dir / "per_seed_returns.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert sorted({r["objective"] for r in rows}) == ["Adam(lr=0.03)", "learned OPEN"] and len(rows) == 4
    with (out_dir / "update_magnitude.csv").open() as f:
        steps = list(csv.DictReader(f))
    updates = 512 // (4 * 32)
    assert len(steps) == 2 * 2 * updates  # 2 runs x (actor, critic) x updates
    learned = [r for r in steps if r["run"] == "learned OPEN"]
    assert all(float(r["mean_abs_update"]) > 0 and np.isfinite(float(r["ratio_to_adam"])) for r in learned)
    assert all(r["ratio_to_adam"] == "nan" for r in steps if r["run"] != "learned OPEN")
    assert (out_dir / "update_magnitude.png").stat().st_size > 10_000
    # the first method against the others: rliable's probability of improvement and performance profiles
    comparison = json.loads((out_dir / "comparison.json").read_text())
    assert [(r["method"], r["baseline"], r["envs"]) for r in comparison] == [("learned OPEN", "Adam(lr=0.03)", "all")]
    assert 0 <= comparison[0]["ci_low"] <= comparison[0]["p_improvement"] <= comparison[0]["ci_high"] <= 1
    assert (out_dir / "performance_profile.png").stat().st_size > 10_000


def test_evaluate_cli_bad_optimizer_is_one_clear_line(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _one_error_line(capsys, ["optimizer=nadam"]).startswith("metarl-evaluate: error: optimizer must be one of adam")
    (tmp_path / "bad.npz").write_bytes(b"\x00" * 64)
    assert "bad.npz is not a readable metarl artifact" in _one_error_line(capsys, [f"optimizer={tmp_path / 'bad.npz'}"])
    _one_error_line(capsys, [f"compare_optimizers=[{tmp_path / 'missing.npz'}]"])
