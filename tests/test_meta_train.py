"""Inner-loop fitness and the meta_train job's config (tiny PPO budgets, real runs). The CLI end to end, with its
evaluation and report, is tests/test_installed_wheel.py's meta-train run."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl.agents.ppo import PPOConfig
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

# Two epochs x two minibatches: with a single gradient step per update r = 1 throughout,
# where every drift has zero value and gradient, so objectives could not differ.
TINY_PPO = dict(total_timesteps=512, num_envs=4, num_steps=32, update_epochs=2, num_minibatches=2, hidden_sizes=(16,))


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
