"""ES meta-training of LPG: antithetic pairing, the fitness inside the one ES loop, resume, the CLI, evaluation."""

import contextlib
import importlib
import io
import json
import os
import subprocess
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from curricula.groove import GROOVE
from curricula.simple import DomainRandomization
from envs.task_space import Field, TaskSpace
from metarl.meta.es import ESConfig, EvolutionStrategy
from metarl.meta.lpg_es import (
    LPGFitness,
    LPGMetaConfig,
    antithetic_pair_ranks,
    build_teacher,
    mirror,
    sample_lifetimes,
)
from metarl.meta.trainer import (AllCandidatesFailedError, TrainerConfig, make_generation, run_meta_training,
                                 strong_types)


def test_pair_ranks_hand_computed():
    # pairs (i, i+4): (3,1) (1,5) (2,2) (nan,0)
    returns = jnp.array([3.0, 1.0, 2.0, jnp.nan, 1.0, 5.0, 2.0, 0.0])
    np.testing.assert_array_equal(antithetic_pair_ranks(returns), [1, -1, 0, -1, -1, 1, 0, 1])
    np.testing.assert_array_equal(antithetic_pair_ranks(jnp.array([jnp.nan, jnp.inf * -1])), [0, 0])
    with pytest.raises(ValueError, match="even"):
        antithetic_pair_ranks(jnp.arange(3.0))


def test_es_population_is_mirrored_as_the_pairing_assumes():
    mean = {"w": jnp.arange(6.0).reshape(2, 3)}
    es = EvolutionStrategy(ESConfig(population_size=8, sigma=0.5, fitness_shaping="identity"), mean)
    population, _ = es.ask(jax.random.PRNGKey(0), es.init(jax.random.PRNGKey(1), mean))
    np.testing.assert_allclose(population["w"][:4] + population["w"][4:], 2 * mean["w"][None].repeat(4, 0), atol=1e-5)
    np.testing.assert_array_equal(mirror(jnp.array([7, 8]))[2:], [7, 8])


def test_pairwise_rank_es_climbs_a_quadratic():
    target = jnp.array([1.0, -2.0, 0.5, 3.0])
    mean = {"x": jnp.zeros(4)}
    es = EvolutionStrategy(ESConfig(population_size=16, sigma=0.1, learning_rate=0.1, fitness_shaping="identity"), mean)
    state = es.init(jax.random.PRNGKey(0), mean)

    def generation(state, key):
        ask_key, tell_key = jax.random.split(key)
        pop, state = es.ask(ask_key, state)
        fitness = antithetic_pair_ranks(-jnp.sum((pop["x"] - target) ** 2, axis=1))
        return es.tell(tell_key, pop, fitness, state)[0], None

    state, _ = jax.lax.scan(generation, state, jax.random.split(jax.random.PRNGKey(1), 150))
    assert float(jnp.linalg.norm(es.mean(state)["x"] - target)) < 0.4 * float(jnp.linalg.norm(target))


def test_sample_lifetimes_fixed_and_log_uniform():
    np.testing.assert_array_equal(sample_lifetimes(jax.random.PRNGKey(0), 3, 50, None), [50, 50, 50])
    lives = np.asarray(sample_lifetimes(jax.random.PRNGKey(0), 4000, 250, 10))
    assert lives.min() >= 10 and lives.max() <= 250
    # log-uniform: the median is near the geometric mean sqrt(10 * 250) = 50, far below the midpoint 130
    assert 40 <= np.median(lives) <= 62


@struct.dataclass
class Level:
    x: jax.Array
    n: jax.Array


@struct.dataclass
class FakeResult:
    final_return: jax.Array


def fake_train(key, meta_params, level, num_updates, lifetime):
    # depends on level, key and lifetime (shared within a pair) and on the candidate's parameters
    base = 100.0 * level.x + lifetime + jax.random.uniform(key)
    return FakeResult(base + jnp.sum(meta_params["w"]))


def _pieces(teacher, fitness="pairwise_rank", lifetime_min=None, meta_scale=1.0, chunk_size=None):
    """(es, LPG fitness, initial mean) around ``fake_train``."""
    mean = {"w": jnp.zeros(3)}
    es = EvolutionStrategy(ESConfig(population_size=6, sigma=0.1, fitness_shaping="identity"), mean)
    train = lambda k, mp, lvl, num_updates, lifetime: fake_train(k, {"w": meta_scale * mp["w"]}, lvl, num_updates,
                                                                 lifetime)
    config = LPGMetaConfig(lifetime=30, lifetime_min=lifetime_min, fitness=fitness)
    return es, LPGFitness(teacher, train, config, 6, chunk_size=chunk_size), mean


def _space():
    return TaskSpace(Level(np.float32(0), np.int32(0)), (Field("x", 0.0, 1.0), Field("n", 0, 9, kind="int")))


def _groove(capacity=8):
    return GROOVE(lambda k, lvl: 100.0 * lvl.x + 50.0, batch_size=3, capacity=capacity, replay_prob=0.5)


def test_generation_pairs_share_level_key_and_lifetime():
    teacher = GROOVE(lambda k, lvl: 100.0 * lvl.x + 50.0, batch_size=3, capacity=8, replay_prob=0.0)
    # meta_scale 0: the rule does not matter, so a pair differing in anything else would not tie
    es, fitness, mean = _pieces(teacher, lifetime_min=5, meta_scale=0.0)
    es_state, t_state = strong_types((es.init(jax.random.PRNGKey(0), mean),
                                      teacher.init(jax.random.PRNGKey(1), _space())))
    es_state, t_state, _, metrics = make_generation(es, fitness)(jax.random.PRNGKey(2), es_state, t_state)
    assert float(metrics["fitness_max"]) == 0.0 and float(metrics["fitness_min"]) == 0.0  # all ties
    assert int(metrics["antagonist_evaluations"]) == 3 and int(metrics["buffer_size"]) == 3
    # AR = (100x + 50) - (100x + lifetime + u): between 50 - 30 - 1 and 50 - 5
    regrets = np.asarray(t_state.buffer.scores)[:3]
    assert np.all(regrets > 18.9) and np.all(regrets < 45.0)


def test_generation_ranks_follow_the_rule_and_es_moves():
    es, fitness, mean = _pieces(DomainRandomization(_space()))
    state = strong_types((es.init(jax.random.PRNGKey(0), mean), fitness.teacher.init(jax.random.PRNGKey(1))))
    step = make_generation(es, fitness)
    for g in range(30):
        es_state, t_state, _, metrics = step(jax.random.PRNGKey(g), *state)
        state = (es_state, t_state)
        assert float(metrics["fitness_mean"]) == 0.0 and float(metrics["fitness_max"]) == 1.0
    # return grows with sum(w): the pairwise-rank ES must increase it
    assert float(jnp.sum(es.mean(state[0])["w"])) > 0.05


def test_chunked_lpg_population_gives_the_same_generation():
    teacher = GROOVE(lambda k, lvl: 100.0 * lvl.x + 50.0, batch_size=3, capacity=8, replay_prob=0.0)
    outs = []
    for chunk_size in (None, 2):
        es, fitness, mean = _pieces(teacher, fitness="return", lifetime_min=5, chunk_size=chunk_size)
        state = strong_types((es.init(jax.random.PRNGKey(0), mean), teacher.init(jax.random.PRNGKey(1), _space())))
        outs.append(make_generation(es, fitness)(jax.random.PRNGKey(2), *state)[2])
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-6)


def _lpg_loop(run_dir, generations, resume=False):
    teacher = _groove()
    es, fitness, mean = _pieces(teacher, lifetime_min=5)
    config = TrainerConfig(generations=generations, show_progress=False)
    return run_meta_training(es, fitness, mean, jax.random.PRNGKey(7), config, run_dir, resume=resume,
                             extra_state=teacher.init(jax.random.PRNGKey(8), _space()))


def test_lpg_es_resumes_exactly_with_the_teacher_state(tmp_path):
    straight = _lpg_loop(tmp_path / "straight", 4)
    _lpg_loop(tmp_path / "resumed", 2)
    resumed = _lpg_loop(tmp_path / "resumed", 4, resume=True)
    assert resumed.resumed_from == 2
    assert int(straight.extra_state.buffer.size) > 3  # the level buffer filled over the run
    for a, b in zip(jax.tree.leaves((straight.mean, straight.extra_state)),
                    jax.tree.leaves((resumed.mean, resumed.extra_state))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    keys = ("return_mean", "buffer_size", "antagonist_evaluations", "replay")
    assert [[r[k] for k in keys] for r in straight.history] == [[r[k] for k in keys] for r in resumed.history]


def test_every_agent_failing_stops_the_lpg_loop(tmp_path):
    es, _, mean = _pieces(DomainRandomization(_space()))
    failing = LPGFitness(DomainRandomization(_space()), lambda *a, **k: FakeResult(jnp.float32(jnp.nan)),
                         LPGMetaConfig(lifetime=3), 6)
    with pytest.raises(AllCandidatesFailedError, match="generation 0"):
        run_meta_training(es, failing, mean, jax.random.PRNGKey(0), TrainerConfig(generations=2, show_progress=False),
                          tmp_path, extra_state=failing.teacher.init(jax.random.PRNGKey(1)))


def test_build_teacher_rejects_unknown_names_and_keys():
    with pytest.raises(ValueError, match="unknown teacher 'plr_x'"):
        build_teacher({"name": "plr_x"}, None, lambda k, l: 0.0, 2)
    with pytest.raises(ValueError, match="teacher.bogus"):
        build_teacher({"name": "groove", "bogus": 1}, None, lambda k, l: 0.0, 2)
    with pytest.raises(ValueError, match="fitness"):
        LPGMetaConfig(fitness="median")


# --- the CLI, end to end ----------------------------------------------------------------
def _cli(module: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``module``'s ``main(args)`` in this process from ``cwd`` (exit status, stdout, stderr); the console scripts
    themselves run installed in tests/test_installed_wheel.py and tests/test_bad_input.py."""
    main = importlib.import_module(module).main
    out, err, before = io.StringIO(), io.StringIO(), os.getcwd()
    code = 0
    try:
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main(args)
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    finally:
        os.chdir(before)
    return subprocess.CompletedProcess([module, *args], code, out.getvalue(), err.getvalue())


TINY = [
    "objective=lpg", "env=gridworld/all", "meta.generations=2", "meta.population_size=4", "meta.checkpoint_every=1",
    "objective.lifetime=4", "objective.agent.num_envs=4", "objective.agent.num_steps=8",
    "objective.agent.eval_episodes=2", "objective.rule.hidden=8", "progress_bar=false",
]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("lpg_cli")
    run_dir = root / "run"
    # evaluation off: its programs would double the compile time (the evidence runs exercise it)
    args = [*TINY, "teacher=groove", "teacher.capacity=8", f"run_dir={run_dir}", "evaluate.enabled=false"]
    result = _cli("metarl.cli.meta_train", args, root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root, run_dir


def test_cli_meta_trains_and_writes_artifact_and_log(tiny_run):
    from metarl.lpg.artifact import load_rule

    _, run_dir = tiny_run
    log = [json.loads(line) for line in (run_dir / "meta_log.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in log] == [0, 1]
    assert log[0]["antagonist_evaluations"] == 2 and log[0]["buffer_size"] == 2
    assert all(np.isfinite(r["return_mean"]) for r in log)
    rule, agent_config, meta_params, header = load_rule(run_dir / "learned_rule.npz")
    assert header["kind"] == "lpg_rule" and rule.config.hidden == 8 and agent_config.num_envs == 4
    resolved = header["extra"]["resolved_config"]  # the whole config that produced the rule
    assert resolved["job"] == "meta_train_lpg" and resolved["objective"]["lifetime"] == 4
    assert resolved["teacher"]["capacity"] == 8
    assert jax.tree.structure(meta_params) == jax.tree.structure(rule.init(jax.random.PRNGKey(0)))
    assert not (run_dir / "evaluation").exists()


def test_cli_bad_values_exit_2_with_one_line(tmp_path):
    root = tmp_path
    result = _cli("metarl.cli.meta_train", [*TINY, "teacher.name=bogus", f"run_dir={root / 'bad'}"], root)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    # the last line is the one error line (the CLI layer's reporter; Hydra may print a line before it)
    assert lines[-1] == ("metarl-meta-train: error: unknown teacher 'bogus' for LPG meta-training; "
                         "choose one of ['groove', 'domain_randomization', 'fixed']")
    assert "Traceback" not in result.stderr


def test_evaluation_intervals_and_table():
    from metarl.eval.lpg import interval_row, markdown_table

    row = interval_row(np.array([1.0, 2.0, 3.0, 4.0, 100.0]))
    assert row["mean"] == pytest.approx(22.0) and row["seeds"] == 5
    # IQM of 5 values trims one from each end (scipy trim_mean 0.25): mean(2, 3, 4) = 3
    assert row["iqm"] == pytest.approx(3.0) and row["iqm_low"] <= row["iqm"] <= row["iqm_high"]
    assert row["mean_low"] < 22.0 < row["mean_high"]
    table = markdown_table([{"level": "dense", "lifetime": 40, "method": "LPG", **row}])
    assert "| dense | 40 | LPG |" in table


def test_metarl_evaluate_routes_lpg_rules_to_the_lpg_evaluator(tiny_run):
    root, run_dir = tiny_run
    # the LPG evaluator's own option check answers (no compilation needed to see the routing)
    result = _cli("metarl.cli.evaluate", [f"objective={run_dir}", "seedz=3"], root)
    assert result.returncode == 2 and "seedz" in result.stderr
