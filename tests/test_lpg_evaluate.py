"""LPG evaluation rows: PPO baseline, MinAtar envs, the lifetime axis, tables and the CLI."""

from __future__ import annotations

import csv
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from metarl.agents.policy import categorical_act, evaluate_policy
from metarl.agents.ppo import PPO, make_train
from metarl.lpg import AgentConfig, LPGConfig, LPGRule, make_lpg_lifetime
from metarl.eval.lpg_baselines import evaluation_key, make_ppo_runner, ppo_config_for
from metarl.cli.evaluate import main
from metarl.eval.lpg import (
    LPGEvalResults,
    aggregate,
    evaluate,
    level_batch,
    methods_for,
    wide_tables,
    write_results,
)
from metarl.lpg.lifetime import LPGLifetime
from metarl.lpg.artifact import save_rule

TINY_AGENT = AgentConfig(num_envs=4, num_steps=8, eval_episodes=2)


@pytest.fixture(scope="module")
def ta_rule(tmp_path_factory) -> Path:
    """A freshly initialised TA-LPG rule saved as an artifact (meta-training lifetime 3)."""
    rule = LPGRule(LPGConfig(hidden=8, time_aware=True))
    path = tmp_path_factory.mktemp("rule") / "learned_rule.npz"
    extra = {"lifetime": 3, "objective": "ta_lpg", "teacher": "groove"}
    return save_rule(path, rule, TINY_AGENT, rule.init(jax.random.PRNGKey(0)), extra)


def test_ppo_budget_matches_the_lpg_lifetime():
    config = ppo_config_for(TINY_AGENT, 7, {"lr": 1e-3})
    assert (config.num_envs, config.num_steps, config.num_updates) == (4, 8, 7)
    assert config.total_timesteps == 4 * 8 * 7 and config.lr == 1e-3 and config.gamma == TINY_AGENT.gamma
    with pytest.raises(ValueError, match="ppo.num_envs is fixed"):
        ppo_config_for(TINY_AGENT, 7, {"num_envs": 2})
    with pytest.raises(ValueError, match="unknown PPO option ppo.lrr"):
        ppo_config_for(TINY_AGENT, 7, {"lrr": 1.0})


def test_ppo_row_equals_a_direct_make_train_call_per_seed_and_level():
    # two seeds on two different tasks: the runner must give each seed its own level
    env, default = envs.make("CartPole-v1")
    levels = jax.tree.map(lambda x: jnp.stack([jnp.asarray(x)] * 2), default)
    levels = levels.replace(gravity=jnp.array([9.8, 19.6]), force_mag=jnp.array([10.0, 5.0]))
    config = ppo_config_for(TINY_AGENT, 3, {"hidden_sizes": [16], "update_epochs": 2, "num_minibatches": 2})
    keys = jax.random.split(jax.random.PRNGKey(3), 2)
    final, curves = make_ppo_runner(config, env, eval_episodes=3)(keys, levels)
    assert final.shape == (2,) and curves.shape == (2, 3)

    @jax.jit
    def direct(key, level):  # make_train's program on one level, then the shared evaluation of PPO's policy
        state, metrics = make_train(config, env, level)(key)
        act = PPO(config, env, level).policy()
        episodes = evaluate_policy(act, PPO.policy_params(state), env, level, evaluation_key(key), 3)
        return jnp.mean(episodes["return"]), metrics

    for i in range(2):
        expected, metrics = direct(keys[i], jax.tree.map(lambda x: x[i], levels))
        np.testing.assert_allclose(curves[i], metrics["episode_return"], rtol=1e-5)
        np.testing.assert_allclose(final[i], expected, rtol=1e-5)
    assert 5.0 < float(final[0]) <= 500.0  # CartPole pays 1 per step: a real episode was played


def test_evaluate_policy_is_the_lifetime_evaluation():
    # PPO rows are scored by metarl.agents.policy.evaluate_policy; it must be the loop LPG/A2C rows are scored by
    from metarl.lpg.agents import policy_logits

    env, level = envs.make("CartPole-v1")
    lifetime = LPGLifetime(AgentConfig(kind="mlp", num_envs=4, num_steps=8, eval_episodes=4), env,
                           LPGRule(LPGConfig(hidden=8)))
    params = lifetime.init_params(jax.random.PRNGKey(1))
    params["actor"]["out"]["kernel"] = 30.0 * params["actor"]["out"]["kernel"]  # far from uniform
    act = categorical_act(lambda p, obs: policy_logits(p, lifetime.observe(obs)))
    ours = lambda k: jnp.mean(evaluate_policy(act, params, env, level, k, 4)["return"])  # noqa: E731
    both = jax.jit(lambda k: (ours(k), lifetime.evaluate(params, k, level)))
    ours, theirs = both(jax.random.PRNGKey(5))
    assert float(ours) == pytest.approx(float(theirs), abs=1e-5) and float(ours) > 0.0


def test_lifetime_axis_in_one_call_matches_separate_lifetimes(ta_rule, tmp_path):
    # TA-LPG at lifetimes shorter (2) and longer (5) than meta-training (3), in one call
    results = evaluate(ta_rule, levels=["dense"], seeds=2, lifetimes=[2, 5], methods=["LPG"])
    assert set(results.final) == {("dense", 2, "LPG"), ("dense", 5, "LPG")}
    assert results.curves["dense", 2, "LPG"].shape == (2, 2) and results.curves["dense", 5, "LPG"].shape == (2, 5)
    assert results.env_steps["dense", 5] == 4 * 8 * 5
    # the masked short lifetime is exactly a separate run of 2 updates (same keys as the evaluation uses)
    from metarl.eval.lpg import _EVAL_SALT
    from metarl.lpg.artifact import load_rule

    rule, agent_config, meta_params, _ = load_rule(ta_rule)
    level_key, agent_key = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(_EVAL_SALT), 0))
    env, batch = level_batch("dense", 2, level_key)
    keys = jax.random.split(agent_key, 2)
    train = make_lpg_lifetime(agent_config, env, rule)
    direct = jax.vmap(lambda k, lvl: train(k, meta_params, lvl, num_updates=2).final_return)(keys, batch)
    np.testing.assert_allclose(results.final["dense", 2, "LPG"], direct, rtol=1e-5)


def test_minatar_rows_run_under_jit_with_a_tiny_budget(ta_rule):
    # A2C and PPO rows on MinAtar use the same programs as on grid worlds (tested above); LPG is the new path
    results = evaluate(ta_rule, levels=[], seeds=2, methods=["LPG"], minatar=["Breakout-MinAtar"],
                       minatar_updates=2, compare=[ta_rule])
    assert results.methods == ["LPG", "TA_LPG-GROOVE"] and results.suites == {"Breakout-MinAtar": "minatar"}
    for method in results.methods:
        scores = results.final["Breakout-MinAtar", 2, method]
        assert scores.shape == (2,) and np.all(np.isfinite(scores)) and np.all(scores >= 0)
        assert results.curves["Breakout-MinAtar", 2, method].shape == (2, 2)
    # the compared rule is the same artifact: same keys, same agents, same numbers
    np.testing.assert_array_equal(results.final["Breakout-MinAtar", 2, "LPG"],
                                  results.final["Breakout-MinAtar", 2, "TA_LPG-GROOVE"])
    assert results.env_steps["Breakout-MinAtar", 2] == 4 * 8 * 2


def _fake_results() -> LPGEvalResults:
    rng = np.random.default_rng(0)
    final = {(lv, n, m): rng.normal(size=5) + (2.0 if m == "A2C" else 0.0)
             for lv in ("dense", "small") for n in (10, 40) for m in ("LPG", "A2C")}
    final |= {("Breakout-MinAtar", 100, m): rng.normal(size=5) for m in ("LPG", "PPO")}
    suites = {"dense": "gridworld", "small": "gridworld", "Breakout-MinAtar": "minatar"}
    steps = {(lv, n): 320 * n for lv, n, _ in final}
    return LPGEvalResults(final, {}, ["dense", "small"], [10, 40], "TA_LPG", ["Breakout-MinAtar"], 100, suites,
                          steps, ["LPG", "A2C", "PPO"])


def test_tables_csv_and_plots_have_a_row_per_env_lifetime_and_method(tmp_path):
    results = _fake_results()
    rows = aggregate(results, reps=200)
    assert len(rows) == 2 * 2 * 2 + 2
    tables = wide_tables(rows)
    assert tables.count("### ") == 3  # gridworld x 2 lifetimes, minatar x 1
    assert "### minatar, lifetime 100 updates (32000 env steps per agent)" in tables
    assert "| env | LPG | A2C |" in tables and "| Breakout-MinAtar | " in tables
    paths = write_results(results, tmp_path, reps=200)
    with paths["table_csv"].open() as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(rows) and {"iqm", "iqm_low", "iqm_high", "mean_low", "mean_high"} <= set(table[0])
    a2c = next(r for r in table if r["level"] == "dense" and r["lifetime"] == "10" and r["method"] == "A2C")
    assert float(a2c["iqm_low"]) <= float(a2c["iqm"]) <= float(a2c["iqm_high"])
    assert float(a2c["mean"]) == pytest.approx(results.final["dense", 10, "A2C"].mean())
    for key in ("plot", "lifetimes", "table", "per_seed"):
        assert paths[key].stat().st_size > 0


def test_cli_options_map_to_evaluate_arguments(monkeypatch, tmp_path):
    from hydra import compose, initialize_config_module

    from metarl.jobs import evaluate as job

    seen = {}

    def fake_evaluate_and_write(rule, out_dir, **kwargs):
        seen.update(rule=rule, out_dir=out_dir, **kwargs)
        (tmp_path / "aggregate.md").write_text("table")
        return {"table": tmp_path / "aggregate.md"}

    monkeypatch.setattr(job, "evaluate_and_write", fake_evaluate_and_write)
    with initialize_config_module("configs.evaluate", version_base=None):
        cfg = compose("evaluate", overrides=[
            "artifact=r.npz", "levels=[dense,small]", "minatar=[Breakout-MinAtar]", "baselines=[ppo,random]",
            "lifetimes=[10,40,120]", "compare=[a.npz]", "+ppo.lr=0.001", "seeds=3"])
    job.run_lpg(cfg, tmp_path)
    assert seen["rule"] == "r.npz" and seen["methods"] == ["LPG", "PPO", "random"]
    assert seen["lifetimes"] == [10, 40, 120] and seen["levels"] == ["dense", "small"] and seen["seeds"] == 3
    assert seen["ppo"] == {"lr": 0.001} and seen["compare"] == ["a.npz"] and seen["minatar"] == ["Breakout-MinAtar"]
    assert methods_for(["a2c", "PPO", "random"]) == ["LPG", "A2C", "PPO", "random"]  # the config's default: all


@pytest.mark.parametrize("option, message", [
    ("minatar=[Pong-MinAtar]", "unknown MinAtar env 'Pong-MinAtar'"),
    ("levels=[dense,bogus]", "unknown grid-world level 'bogus'"),
    ("baselines=[a2c,sac]", "unknown baseline 'sac'"),
    ("lifetimes=[10,0]", "each lifetime must be a positive integer, got 0"),
    ("+ppo.num_steps=4", "ppo.num_steps is fixed by the LPG agent config"),
    ("compare=[missing.npz]", "no artifact file at missing.npz"),
    ("env=CartPole-v1", "job evaluate_lpg has no setting 'env'"),  # an objective-evaluation option
])
def test_cli_bad_names_exit_2_with_one_line_before_compiling(ta_rule, option, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # Hydra's run directory goes below the working directory
    with pytest.raises(SystemExit) as exit_info:
        main([f"artifact={ta_rule}", option, "seeds=2"])
    assert exit_info.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("metarl-evaluate: error: ") and message in err[0]
