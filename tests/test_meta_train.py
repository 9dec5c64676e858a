"""Inner-loop fitness and the metarl-meta-train CLI (tiny PPO budgets, real runs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl.agents.ppo import PPOConfig
import metarl.jobs  # noqa: F401 (registers every job)
from metarl.io.artifacts import load_artifact
from metarl.io.progress import read_log
from metarl.jobs.meta_train import build_objective
from metarl.jobs.registry import get
from metarl.meta.fitness import (
    FitnessConfig,
    as_env_list,
    env_overrides,
    make_inner_fitness,
    measure_reference_returns,
    score_returns,
)
from metarl.meta.settings import section, split_meta_config
from metarl.objectives import LPO
from metarl.objectives.io import load_objective

# Two epochs x two minibatches: with a single gradient step per update r = 1 throughout,
# where every drift has zero value and gradient, so objectives could not differ.
TINY_PPO = dict(total_timesteps=512, num_envs=4, num_steps=32, update_epochs=2, num_minibatches=2, hidden_sizes=(16,))
TINY_CLI = [
    "meta.population_size=4",
    "meta.checkpoint_every=1",
    "inner.total_timesteps=512",
    "inner.num_steps=32",
    "inner.update_epochs=2",
    "inner.num_minibatches=2",
    "+inner.hidden_sizes=[16]",
    "fitness.num_seeds=1",
    "fitness.reference_seeds=1",
    "objective.hidden_size=8",
    "progress_bar=false",
]


def test_score_returns_final_and_mean_by_hand():
    returns = jnp.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0]])
    # final_fraction 0.25 of 12 updates -> last 3: (10 + 11 + 12) / 3 = 11
    np.testing.assert_allclose(score_returns(returns, "final", 0.25), [11.0])
    np.testing.assert_allclose(score_returns(returns, "final", 0.01), [12.0])  # at least one update
    np.testing.assert_allclose(score_returns(returns, "mean", 0.25), [6.5])
    # NaN = no episode finished yet in that update; ignored.
    np.testing.assert_allclose(score_returns(jnp.array([jnp.nan, 2.0, 4.0]), "mean", 1.0), 3.0)
    with pytest.raises(ValueError, match="fitness.reduce"):
        FitnessConfig(reduce="median")


def test_ppo_initialised_candidate_scores_one_against_the_ppo_reference():
    # The reference is PPO's return on the same seeds; LPO with PPO-init and a zero
    # output layer *is* PPO, so its normalised fitness must be 1 -- and a candidate
    # with a strong learned drift must score differently.
    config = PPOConfig(**(TINY_PPO | {"total_timesteps": 1024, "lr": 0.01}))  # big steps: drifts matter
    fitness_cfg = FitnessConfig(num_seeds=2, reference_seeds=2, reduce="mean")
    key = jax.random.PRNGKey(5)
    refs = measure_reference_returns(["CartPole-v1"], config, fitness_cfg, key)
    assert refs["CartPole-v1"] > 5.0
    objective = LPO(hidden_size=8)
    ppo_like = objective.init(jax.random.PRNGKey(0))
    wild = {"w1": 3.0 * ppo_like["w1"], "w2": jnp.full((8, 1), -40.0)}
    population = jax.tree.map(lambda a, b: jnp.stack([a, b]), ppo_like, wild)
    fitness = jax.jit(make_inner_fitness(objective, ["CartPole-v1"], config, fitness_cfg, refs))(key, population)
    assert fitness.shape == (2,)
    assert float(fitness[0]) == pytest.approx(1.0, abs=1e-4)
    assert abs(float(fitness[1]) - 1.0) > 1e-3
    with pytest.raises(ValueError, match="no reference return"):
        make_inner_fitness(objective, ["Acrobot-v1"], config, fitness_cfg, refs)


def _cli(args: list[str], cwd: Path, timeout: int = 400) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", "from metarl.cli.meta_train import main; main()", *args]
    return subprocess.run(command, env=os.environ | {"JAX_PLATFORMS": "cpu"}, capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The uninterrupted 2-generation CLI run, with evaluation and report."""
    base = tmp_path_factory.mktemp("straight")
    run_dir = base / "run"
    out = _cli([*TINY_CLI, "meta.generations=2", "evaluate.seeds=2", f"run_dir={run_dir}", f"hydra.run.dir={base / 'hydra'}"], base)
    return run_dir, out


def test_cli_two_generations_end_to_end(straight_run):
    run_dir, out = straight_run
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"report: {run_dir / 'report.md'}" in out.stdout
    log = read_log(run_dir / "meta_log.jsonl")
    assert [r["generation"] for r in log] == [0, 1]
    assert all(np.isfinite(r["fitness_mean"]) and r["seconds"] > 0 for r in log)
    refs = json.loads((run_dir / "reference_returns.json").read_text())["returns"]
    assert refs["CartPole-v1"] > 5.0
    objective, params, header = load_objective(run_dir / "learned_objective.npz")
    assert objective.name == "lpo" and objective.hidden_size == 8 and params["w1"].shape == (8, 8)
    assert header["extra"]["generations"] == 2
    resolved = header["extra"]["resolved_config"]  # the whole config that produced the artifact
    assert resolved["job"] == "meta_train" and resolved["inner"]["hidden_sizes"] == [16]
    assert resolved["meta"]["population_size"] == 4 and resolved["objective"]["hidden_size"] == 8
    final_copy, _ = load_artifact(run_dir / "checkpoints" / "final_objective.npz")
    np.testing.assert_array_equal(final_copy["w2"], params["w2"])
    assert {"1", "2"} <= {p.name for p in (run_dir / "checkpoints").iterdir()}
    for name in ("meta_curve.png", "drift_heatmap.png", "learning_curves.png", "per_seed_returns.csv"):
        assert (run_dir / name).stat().st_size > 0, name
    report = (run_dir / "report.md").read_text()
    for label in ("LPO (learned)", "| CartPole-v1 | PPO |", "| CartPole-v1 | DPO |", "95% CI"):
        assert label in report
    rows = json.loads((run_dir / "aggregate.json").read_text())
    assert len(rows) == 3 and all(r["ci_low"] <= r["iqm"] <= r["ci_high"] for r in rows)


def test_env_config_forms():
    assert as_env_list("CartPole-v1") == ["CartPole-v1"]
    assert as_env_list({"name": ["CartPole-v1", "Acrobot-v1"], "overrides": {}}) == ["CartPole-v1", "Acrobot-v1"]
    assert env_overrides({"name": "CartPole-v1", "overrides": {"gravity": 12.0}}) == {"gravity": 12.0}
    assert env_overrides("CartPole-v1") == {}
    with pytest.raises(ValueError, match="at least one environment"):
        as_env_list([])


def test_meta_config_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown ES strategy 'NoSuchES'"):
        split_meta_config({"strategy": "NoSuchES", "generations": 2})
    with pytest.raises(ValueError, match="unknown meta option 'sigmaa'"):
        split_meta_config({"sigmaa": 0.1})
    es_config, trainer = split_meta_config({"strategy": "SNES", "generations": 3, "checkpoint_every": 2, "sigma": 0.1})
    assert es_config.evosax_name == "SNES" and es_config.sigma == 0.1
    assert trainer == {"generations": 3, "checkpoint_every": 2}
    with pytest.raises(ValueError, match="objective.name must be one of"):
        build_objective({"name": "dpo"}, PPOConfig())
    ta = build_objective({"name": "ta_lpo", "use_log_lifetime": True}, PPOConfig(total_timesteps=2560, num_steps=128))
    assert ta.lifetime == 5  # N filled in from the inner run: 2560 / (4 * 128) updates


@pytest.mark.parametrize(
    "overrides, job, writes",
    [
        ([], "meta_train", "objective"),
        (["objective=ta_lpo"], "meta_train", "objective"),
        (["objective=ppo", "optimizer=learned"], "meta_train_optimizer", "learned_optimizer"),
        (["objective=lpg"], "meta_train_lpg", "lpg_rule"),
        (["objective=ta_lpg", "teacher=domain_randomization"], "meta_train_lpg", "lpg_rule"),
        (["objective=lpg_mg"], "meta_train_lpg_mg", "lpg_rule"),
    ],
)
def test_the_config_names_its_job_and_the_job_its_sections(overrides, job, writes):
    from hydra import compose, initialize_config_dir

    configs = Path(__file__).resolve().parents[1] / "configs"
    with initialize_config_dir(config_dir=str(configs), version_base=None):
        cfg = compose("meta_train", overrides=overrides)
    registered = get(cfg.job)
    assert cfg.job == job and registered.writes == (writes,) and registered.config_name == "meta_train"
    # every section a job declares (or the key of a section it reads in part) exists in its config;
    # the routing keys never reach a job's settings
    for declared in registered.sections:
        top, _, rest = declared.partition(".")
        assert top in cfg and (not rest or rest in cfg[top]), declared
    assert "job" not in section(cfg, "objective") and "meta_train_job" not in section(cfg, "optimizer")


def test_lpg_mg_uses_no_es_sections():
    assert not {"env", "meta", "evaluate", "inner", "fitness"} & set(get("meta_train_lpg_mg").sections)
    assert not {"inner", "fitness"} & set(get("meta_train_lpg").sections)
    assert "optimizer" not in get("meta_train").sections and "optimizer" in get("meta_train_optimizer").sections
