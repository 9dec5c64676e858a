"""The meta-gradient driver: agent replacement on new levels, lifetimes, level pools, checkpoint/resume, the job.

Compilation dominates: every driver test shares one compiled chunk program and
one A2C program (``teacher=groove``, cached by :func:`programs`). The DR branch
(``level_sampler``) is the same restart code with levels from the generator.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs.gridworld import GridWorld
from metarl.lpg import AgentConfig, LPGConfig, LPGRule, make_meta_gradient_step
from curricula.level_pool import UNPLAYED, LevelPool, slots_in_use
from metarl.jobs import meta_train_lpg_mg
from metarl.lpg.artifact import load_rule
from metarl.io.progress import read_log
from metarl.meta.gradient_loop import run_gradient_loop
from metarl.meta.lpg_meta_gradient import MetaGradientRunConfig, initial_state, meta_train, programs, training_env

ENV = GridWorld(6, 3, 3, tabular=True, level="small")
RULE = LPGRule(LPGConfig(hidden=8, pred_dim=4))
TINY_RUN = dict(num_agents=4, meta_steps=4, chunk=2, inner_updates=2, agent_lifetime=8, teacher="groove",
                pool_capacity=16, refresh_levels=4,
                rule={"hidden": 8, "pred_dim": 4}, agent={"num_envs": 4, "num_steps": 5, "eval_episodes": 2})



def _leaves_equal(a, b):
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_finished_agents_restart_fresh_on_pool_levels():
    config = MetaGradientRunConfig(**TINY_RUN)
    learner, env, chunk, antagonist = programs(config)
    state = initial_state(learner, env, config, antagonist)
    first = np.asarray(state.lifetimes)
    assert first.min() >= 2 and first.max() <= 8  # staggered first lifetimes in [K, L]
    # one chunk = 2 meta steps = 4 updates: agents 0 and 2 finish after it (lifetime 4), 1 and 3 do not
    forced = jnp.asarray([4.0, 8.0, 4.0, 8.0])
    new, metrics = chunk(state.replace(lifetimes=forced))
    done = np.array([True, False, True, False])
    assert float(metrics["finished"]) == 2.0
    np.testing.assert_array_equal(np.asarray(new.agents.update_index), np.where(done, 0, 4))
    np.testing.assert_array_equal(np.asarray(new.lifetimes), [8.0, 8.0, 8.0, 8.0])  # fresh lifetimes: L
    old_levels, new_levels = state.level_params, new.level_params
    moved = np.asarray(jnp.any(new_levels.walls != old_levels.walls, axis=-1)
                       | (new_levels.start_pos != old_levels.start_pos)
                       | (new_levels.grid_size != old_levels.grid_size))
    assert not moved[~done].any() and moved[done].all()  # kept levels stay; replaced ones are new draws
    np.testing.assert_array_equal(np.asarray(new.slots)[~done], np.asarray(state.slots)[~done])
    # the new levels are the pool's levels at the new slots; finished agents scored their old slots
    np.testing.assert_array_equal(np.asarray(new.level_params.start_pos)[done],
                                  np.asarray(new.pool.levels.start_pos)[np.asarray(new.slots)[done]])
    scored = np.asarray(state.slots)[done]
    assert np.all(np.asarray(new.pool.scores)[scored] < UNPLAYED)
    actor = np.asarray(new.agents.params["actor"]["kernel"])
    assert np.all(actor[done] == 0) and np.all(np.abs(actor[~done]).max(axis=(1, 2)) > 0)


def test_lifetimes_are_log_uniform_and_bad_options_raise():
    config = AgentConfig(num_envs=4, num_steps=5)
    ta = make_meta_gradient_step(config, ENV, RULE, inner_updates=2, agent_lifetime=1000, lifetime_min=10)
    draws = np.asarray(ta.sample_lifetimes(jax.random.key(3), 4000))
    assert draws.min() >= 10 and draws.max() <= 1000
    assert 0.45 < np.mean(draws < 100) < 0.55  # half the log-uniform mass below sqrt(10 * 1000)
    with pytest.raises(ValueError, match="lifetime_min"):
        make_meta_gradient_step(config, ENV, RULE, inner_updates=2, agent_lifetime=10, lifetime_min=20)
    with pytest.raises(ValueError, match="pool"):
        ta.init(jax.random.key(0), RULE.init(jax.random.key(1)), None, pool=object(), slots=jnp.zeros(2))


def test_run_writes_log_and_artifact_and_resume_is_exact(tmp_path):
    config = MetaGradientRunConfig(**TINY_RUN)
    assert meta_train(config, tmp_path / "straight")["meta_steps"] == 4
    records = [json.loads(line) for line in (tmp_path / "straight" / "meta_log.jsonl").read_text().splitlines()]
    assert [r["meta_step"] for r in records] == [2, 4] and all(np.isfinite(r["meta_loss"]) for r in records)
    rule, agent_config, meta_params, header = load_rule(tmp_path / "straight")
    assert rule.config.hidden == 8 and agent_config.num_envs == 4
    assert header["extra"]["path"] == "meta_gradient" and header["extra"]["lifetime"] == 8
    learner, env, _, antagonist = programs(config)
    initial = initial_state(learner, env, config, antagonist).meta_params
    assert not _leaves_equal(meta_params, initial)  # the rule was trained
    # 2 steps, then resume to 4: bit-equal to 4 straight steps; a repeat is deterministic
    meta_train(MetaGradientRunConfig(**{**TINY_RUN, "meta_steps": 2}), tmp_path / "resumed")
    # a run killed after logging a chunk but before its checkpoint: the resumed run logs that chunk once
    log = tmp_path / "resumed" / "meta_log.jsonl"
    log.write_text(log.read_text() + json.dumps({"meta_step": 4, "meta_loss": 0.0}) + "\n")
    meta_train(config, tmp_path / "resumed", resume=True)
    assert _leaves_equal(meta_params, load_rule(tmp_path / "resumed")[2])
    resumed = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["meta_step"] for r in resumed] == [2, 4]
    assert resumed[0] == records[0] | {"seconds": resumed[0]["seconds"]}
    assert resumed[1]["meta_loss"] == records[1]["meta_loss"]
    # a time limit stops after the first chunk and still saves the rule
    limited = meta_train(MetaGradientRunConfig(**{**TINY_RUN, "time_limit_s": 1e-6}), tmp_path / "limited")
    assert limited["meta_steps"] == 2 and limited["stopped_by_time_limit"]
    assert (tmp_path / "limited" / "learned_rule.npz").exists()


def test_level_pool_scores_samples_and_refreshes():
    levels = ENV.task_space.sample_batch(jax.random.key(0), 4)
    teacher = LevelPool(capacity=4, score="regret", staleness_coef=0.0)
    pool = teacher.init(levels, jnp.asarray([1.0, 2.0, 3.0, 4.0]))
    assert np.all(np.asarray(pool.scores) == UNPLAYED)
    # agents on slots 0, 1, 3 finished with returns 0.5, 2.5, 1.0; slot 2's agent did not finish
    slots, finished = jnp.asarray([0, 1, 2, 3]), jnp.asarray([True, True, False, True])
    pool = teacher.report(pool, slots, finished, jnp.asarray([0.5, 2.5, 9.0, 1.0]), jnp.zeros(4))
    np.testing.assert_allclose(np.asarray(pool.scores), [0.5, -0.5, UNPLAYED, 3.0])  # AR = A2C - LPG
    # rank prioritisation, T = 1: P ∝ 1/rank with ranks slot 2 (unplayed) 1, slot 3 2, slot 0 3, slot 1 4
    np.testing.assert_allclose(np.asarray(teacher.weights(pool)), np.array([1 / 3, 1 / 4, 1, 1 / 2]) / (25 / 12),
                               rtol=1e-6)
    pool2, got, picked = teacher.sample(pool, jax.random.key(1), jnp.asarray([True, False]))
    np.testing.assert_array_equal(np.asarray(got.start_pos), np.asarray(levels.start_pos)[np.asarray(picked)])
    assert int(pool2.timestamps[int(picked[0])]) == 1 and int(pool2.episode_count) == 1
    # refresh: the lowest-scored free slot (1: AR -0.5) is replaced; slot 0 is in use and kept
    new_level = ENV.task_space.sample_batch(jax.random.key(5), 1)
    pool3 = teacher.refresh(pool, new_level, jnp.asarray([7.0]), slots_in_use(jnp.asarray([0]), 4))
    np.testing.assert_allclose(np.asarray(pool3.max_returns), [1.0, 7.0, 3.0, 4.0])
    assert float(pool3.scores[1]) == UNPLAYED
    pvl = LevelPool(capacity=4, score="pvl")
    scored = pvl.report(pvl.init(levels, jnp.zeros(4)), slots, finished, jnp.zeros(4), jnp.asarray([.1, .2, .3, .4]))
    np.testing.assert_allclose(np.asarray(scored.scores), [0.1, 0.2, UNPLAYED, 0.4], rtol=1e-6)
    with pytest.raises(ValueError, match="score"):
        LevelPool(score="bogus")


def test_groove_run_scores_the_pool(tmp_path):
    summary = meta_train(MetaGradientRunConfig(**TINY_RUN), tmp_path)
    records = [json.loads(line) for line in (tmp_path / "meta_log.jsonl").read_text().splitlines()]
    assert summary["meta_steps"] == 4 and sum(r["finished"] for r in records) >= 4  # lifetimes <= 8 updates
    assert 0 < records[-1]["pool_played"] <= 1 and np.isfinite(records[-1]["pool_score_mean"])
    assert load_rule(tmp_path)[3]["extra"]["teacher"] == "groove"
    # the job (metarl-meta-train objective=lpg_mg) builds the same run from the objective section
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"job": "meta_train_lpg_mg", "objective": {"job": "meta_train_lpg_mg", "name": "lpg_mg",
                                                                       **TINY_RUN},
                            "seed": 0, "resume": False, "progress_bar": False})
    again = meta_train_lpg_mg.run(cfg, tmp_path / "from_config")
    rule_header = load_rule(again["artifact"])[3]
    assert _leaves_equal(load_rule(tmp_path)[2], load_rule(again["artifact"])[2])
    assert rule_header["extra"]["resolved_config"]["objective"]["num_agents"] == TINY_RUN["num_agents"]
    with pytest.raises(ValueError, match="objective.bogus"):
        meta_train_lpg_mg.run_config(OmegaConf.create({"objective": {"name": "lpg_mg", "bogus": 1}}))


def test_training_env_and_bad_options():
    env = training_env("small")
    assert (env.max_grid_size, env.max_n_objs) == (6, 3)
    for bad, match in (({"level": "dense"}, "level"), ({"num_agents": 0}, "num_agents"),
                       ({"teacher": "x"}, "teacher")):
        with pytest.raises(ValueError, match=match):
            MetaGradientRunConfig(**bad)
    from omegaconf import OmegaConf

    # the top-level seed fills in objective.seed; lists become tuples
    config = meta_train_lpg_mg.run_config(OmegaConf.create(
        {"objective": {"name": "lpg_mg", "rule": {"hidden": 16}, "lifetime_min": 10, "regularisers": [0, 0, 0, 0]},
         "seed": 3}))
    assert config.rule == {"hidden": 16} and config.lifetime_min == 10 and config.seed == 3
    assert config.regularisers == (0, 0, 0, 0)


def test_gradient_loop_counts_steps_logs_each_chunk_and_stops_on_time(tmp_path):
    def chunk(state):
        return {"step": state["step"] + 3, "x": state["x"] * 0.5}, {"x": state["x"]}

    state = {"step": jnp.zeros((), jnp.int32), "x": jnp.ones(())}
    done = run_gradient_loop(chunk, state, tmp_path, 7, steps_done=lambda s: int(s["step"]))
    assert [r["meta_step"] for r in done.history] == [3, 6, 9] and int(done.state["step"]) == 9
    assert [r["x"] for r in done.history] == [1.0, 0.5, 0.25] and not done.stopped_by_time_limit
    again = run_gradient_loop(chunk, state, tmp_path, 12, steps_done=lambda s: int(s["step"]), resume=True)
    assert again.resumed_from == 9 and [r["meta_step"] for r in again.history] == [3, 6, 9, 12]
    fresh = run_gradient_loop(chunk, state, tmp_path / "fresh", 12, steps_done=lambda s: int(s["step"]),
                              time_limit_s=1e-9)
    assert fresh.stopped_by_time_limit and [r["meta_step"] for r in fresh.history] == [3]


def test_gradient_loop_stops_on_a_nan_loss_and_keeps_the_last_good_checkpoint(tmp_path):
    from metarl.meta.gradient_loop import DivergedError

    def chunk(state):  # the loss turns NaN in the third chunk
        step = state["step"] + 2
        return {"step": step, "x": state["x"] + 1.0}, {"meta_loss": jnp.where(step > 4, jnp.nan, 1.0)}

    state = {"step": jnp.zeros((), jnp.int32), "x": jnp.zeros(())}
    with pytest.raises(DivergedError, match="meta step 6: meta_loss is not finite"):
        run_gradient_loop(chunk, state, tmp_path, 10, steps_done=lambda s: int(s["step"]))
    assert [r["meta_step"] for r in read_log(tmp_path / "meta_log.jsonl")] == [2, 4]  # the bad chunk is not logged
    assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()) == [2, 4]
