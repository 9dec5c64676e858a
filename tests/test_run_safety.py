"""No bad input, crash or numerical fault loses work: run directories, resume checks, verified checkpoints, NaNs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hydra import compose, initialize_config_module

from metarl.cli import meta_train as meta_train_cli
from metarl.cli import train as train_cli
from metarl.io.checkpoint import ESCheckpointer
from metarl.io.outputs import load_checkpoint
from metarl.io.progress import read_log
from metarl.io.run_dir import CONFIG_FILE, config_differences, prepare_run_dir
from metarl.jobs import train as train_job
from metarl.meta.es import ESConfig, EvolutionStrategy
from metarl.meta.gradient_loop import run_gradient_loop
from metarl.meta.trainer import AllCandidatesFailedError, TrainerConfig, run_meta_training

TINY_TRAIN = ["seeds=2", "agent.total_timesteps=512", "agent.num_steps=16", "agent.num_minibatches=2",
              "agent.update_epochs=1", "progress=false"]  # 8 updates of 4 envs x 16 steps


def _error_line(main, args: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def _snapshot(directory: Path) -> dict:
    """Every entry under ``directory``: its kind, mtime and (for files) bytes."""
    return {str(p.relative_to(directory)): (p.is_dir(), p.stat().st_mtime_ns, None if p.is_dir() else p.read_bytes())
            for p in sorted(directory.rglob("*"))}


def _train_cfg(overrides: list[str]):
    with initialize_config_module("configs", version_base=None):
        return compose("train", overrides=overrides)


def _corrupt(step_dir: Path) -> None:
    for path in step_dir.rglob("*"):
        if path.is_file():
            os.truncate(path, path.stat().st_size // 2)


# --- run directories ---------------------------------------------------------------------------
@pytest.mark.parametrize("main, args", [
    (train_cli.main, TINY_TRAIN),
    (meta_train_cli.main, ["meta.population_size=4", "meta.generations=2", "evaluate.enabled=false"]),
])
def test_a_new_run_into_a_non_empty_run_dir_is_refused_and_nothing_changes(tmp_path, capsys, main, args):
    run_dir = tmp_path / "old_run"
    (run_dir / "checkpoints" / "3").mkdir(parents=True)
    (run_dir / "checkpoints" / "3" / "state").write_bytes(b"\x00\x01")
    (run_dir / "meta_log.jsonl").write_text('{"generation": 0}\n')
    (run_dir / CONFIG_FILE).write_text("seed: 0\n")
    before = _snapshot(run_dir)
    line = _error_line(main, [*args, f"run_dir={run_dir}", f"hydra.run.dir={tmp_path / 'hydra'}"], capsys)
    assert f"run directory {run_dir} already holds a run (checkpoints, meta_log.jsonl)" in line
    assert "resume=true" in line and "another run_dir" in line
    assert _snapshot(run_dir) == before


def test_hydra_records_and_a_config_alone_are_no_run(tmp_path):
    cfg = _train_cfg(TINY_TRAIN)
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text("a: 1\n")
    (tmp_path / CONFIG_FILE).write_text("left: by a run that failed its config checks\n")
    prepare_run_dir(tmp_path, cfg)
    assert "total_timesteps: 512" in (tmp_path / CONFIG_FILE).read_text()
    prepare_run_dir(tmp_path / "new" / "nested", cfg)  # a missing directory is a new one
    assert (tmp_path / "new" / "nested" / CONFIG_FILE).is_file()


def test_resume_with_a_changed_key_is_refused_naming_it(tmp_path, capsys):
    run_dir = tmp_path / "run"
    prepare_run_dir(run_dir, _train_cfg(TINY_TRAIN))
    (run_dir / "metrics.jsonl").write_text("")
    before = _snapshot(run_dir)
    line = _error_line(train_cli.main, [*TINY_TRAIN, "agent.gamma=0.9", "seeds=3", "resume=true", f"run_dir={run_dir}",
                                        f"hydra.run.dir={tmp_path / 'hydra'}"], capsys)
    assert line.startswith(f"metarl-train: error: resume=true: the config differs from the one {run_dir}")
    assert "at agent.gamma, seeds;" in line and "allow_changes=[agent.gamma,seeds]" in line
    assert _snapshot(run_dir) == before


def test_allowed_and_ignored_changes_are_accepted_and_recorded(tmp_path):
    prepare_run_dir(tmp_path, _train_cfg([*TINY_TRAIN, "progress=true"]))
    (tmp_path / "metrics.jsonl").write_text("")
    # resume, progress, run_dir and checkpoint_every may always differ
    prepare_run_dir(tmp_path, _train_cfg([*TINY_TRAIN, "resume=true", f"run_dir={tmp_path}", "checkpoint_every=3"]))
    changed = [*TINY_TRAIN, "resume=true", "agent.total_timesteps=1024", "agent.gamma=0.9"]
    with pytest.raises(ValueError, match=r"at agent.gamma, agent.total_timesteps;"):
        prepare_run_dir(tmp_path, _train_cfg(changed))
    with pytest.raises(ValueError, match=r"at agent.gamma;"):
        prepare_run_dir(tmp_path, _train_cfg([*changed, "allow_changes=[agent.total_timesteps]"]))
    prepare_run_dir(tmp_path, _train_cfg([*changed, "allow_changes=[agent]"]))  # a whole section
    assert "total_timesteps: 1024" in (tmp_path / CONFIG_FILE).read_text()  # the run continues with them
    prepare_run_dir(tmp_path, _train_cfg(changed))  # ... so the next resume needs no allow_changes


def test_resume_of_a_missing_or_empty_run_dir_is_an_error(tmp_path):
    cfg = _train_cfg([*TINY_TRAIN, "resume=true"])
    with pytest.raises(ValueError, match="does not exist; nothing to resume"):
        prepare_run_dir(tmp_path / "typo", cfg)
    with pytest.raises(ValueError, match="holds no run; nothing to resume"):
        prepare_run_dir(tmp_path, cfg)
    (tmp_path / "metrics.jsonl").write_text("")
    with pytest.raises(ValueError, match="has no config.yaml"):
        prepare_run_dir(tmp_path, cfg)


def test_config_differences_are_dotted_paths():
    saved = {"a": {"b": 1, "c": [1, 2], "d": float("nan")}, "e": True, "f": 2}
    assert config_differences(saved, saved) == []
    current = {"a": {"b": 1.0, "c": [1, 3], "d": float("nan"), "new": 0}, "e": 1, "f": 2}
    assert config_differences(saved, current) == ["a.c", "a.new", "e"]


# --- checkpoints verified on load ----------------------------------------------------------------
def _es_run(run_dir: Path, generations: int, resume: bool = False):
    es = EvolutionStrategy(ESConfig(population_size=4, sigma=0.3, learning_rate=0.1), {"x": jnp.zeros(3)})

    def fitness(key, population):
        return -jnp.sum((population["x"] - 1.0) ** 2, axis=-1) + jax.random.uniform(key)

    config = TrainerConfig(generations=generations, checkpoint_every=1, show_progress=False)
    return run_meta_training(es, fitness, {"x": jnp.zeros(3)}, jax.random.PRNGKey(0), config, run_dir, resume=resume)


def test_a_corrupt_latest_es_checkpoint_falls_back_with_one_warning_line(tmp_path, capsys):
    straight = _es_run(tmp_path / "straight", 3)
    _es_run(tmp_path / "run", 2)
    _corrupt(tmp_path / "run" / "checkpoints" / "2")
    capsys.readouterr()
    resumed = _es_run(tmp_path / "run", 3, resume=True)
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(warnings) == 1 and warnings[0].startswith("warning: checkpoint 2 in ")
    assert warnings[0].endswith("discarded it and resumed from checkpoint 1")
    assert resumed.resumed_from == 1
    np.testing.assert_array_equal(resumed.mean["x"], straight.mean["x"])
    assert [r["generation"] for r in read_log(tmp_path / "run" / "meta_log.jsonl")] == [0, 1, 2]


def test_a_corrupt_only_checkpoint_cannot_be_resumed(tmp_path):
    _es_run(tmp_path, 1)
    _corrupt(tmp_path / "checkpoints" / "1")
    with pytest.raises(ValueError, match=r"cannot resume: checkpoint 1 in .* is unreadable .* no older one"):
        _es_run(tmp_path, 2, resume=True)


def test_the_gradient_loop_falls_back_past_a_corrupt_checkpoint(tmp_path, capsys):
    def chunk(state):
        state = {"step": state["step"] + 1, "x": state["x"] * 1.5 + 1.0}
        return state, {"x": state["x"]}

    def run(run_dir, total, resume=False):
        start = {"step": jnp.int32(0), "x": jnp.float32(0.5)}
        return run_gradient_loop(chunk, start, run_dir, total, steps_done=lambda s: int(s["step"]), resume=resume)

    straight = run(tmp_path / "straight", 4)
    run(tmp_path / "run", 3)
    _corrupt(tmp_path / "run" / "checkpoints" / "3")
    capsys.readouterr()
    resumed = run(tmp_path / "run", 4, resume=True)
    assert "discarded it and resumed from checkpoint 2" in capsys.readouterr().err
    assert resumed.resumed_from == 2 and float(resumed.state["x"]) == float(straight.state["x"])
    assert [r["meta_step"] for r in resumed.history] == [1, 2, 3, 4]


def test_train_resumes_past_a_corrupt_checkpoint_and_stops_on_a_corrupt_only_one(tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = [*TINY_TRAIN, "checkpoint_every=4", f"run_dir={run_dir}", f"hydra.run.dir={tmp_path / 'hydra'}"]
    train_cli.main(args)
    final = load_checkpoint(run_dir / "checkpoint")
    metrics = (run_dir / "metrics.jsonl").read_text()
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["4", "8"]
    _corrupt(run_dir / "checkpoints" / "8")
    capsys.readouterr()
    train_cli.main([*args, "resume=true"])  # back to update 4, and the same four updates again
    assert "discarded it and resumed from checkpoint 4" in capsys.readouterr().err
    for a, b in zip(jax.tree.leaves(final), jax.tree.leaves(load_checkpoint(run_dir / "checkpoint"))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert (run_dir / "metrics.jsonl").read_text() == metrics

    for step in ("4", "8"):
        _corrupt(run_dir / "checkpoints" / step)
    line = _error_line(train_cli.main, [*args, "resume=true"], capsys)
    assert line.startswith("metarl-train: error: cannot resume: checkpoint 8, 4 in ")
    assert line.endswith("start a new run in another run_dir")


# --- numerical faults ----------------------------------------------------------------------------------
def _counting_es(run_dir: Path, fitness, generations: int, **config):
    es = EvolutionStrategy(ESConfig(population_size=4, sigma=0.3, learning_rate=0.1), {"x": jnp.zeros(3)})
    extra = {"calls": jnp.zeros((), jnp.int32)}
    trainer = TrainerConfig(generations=generations, show_progress=False, **config)
    return run_meta_training(es, fitness, {"x": jnp.zeros(3)}, jax.random.PRNGKey(0), trainer, run_dir,
                             extra_state=extra)


def test_an_all_nan_generation_is_logged_checkpointed_retried_then_stops(tmp_path):
    def fitness(key, population, extra):  # fine once, then NaN (a failed attempt's state is not kept)
        values = jnp.where(extra["calls"] >= 1, jnp.nan, -jnp.sum(population["x"] ** 2, axis=-1))
        return values, {"calls": extra["calls"] + 1}, {}

    with pytest.raises(AllCandidatesFailedError) as error:
        _counting_es(tmp_path, fitness, 4, checkpoint_every=10, max_failed_retries=2)
    message = str(error.value)
    assert isinstance(error.value, ValueError) and "\n" not in message  # the CLI reports it in one line
    assert message.startswith("generation 1: all 4 candidates returned NaN/inf fitness in 3 attempts")
    assert f"stopped; checkpoint 1 in {tmp_path / 'checkpoints'} keeps the last good state" in message
    log = read_log(tmp_path / "meta_log.jsonl")
    assert [(r["generation"], r.get("failed", False), r.get("attempt")) for r in log] == [
        (0, False, None), (1, True, 0), (1, True, 1), (1, True, 2)]
    assert ESCheckpointer(tmp_path / "checkpoints").steps() == [1]  # the state before the failed generation


def test_a_retried_generation_with_fresh_keys_carries_on(tmp_path):
    def fitness(key, population, extra):  # an all-NaN generation now and then, depending on the key
        values = jnp.where(jax.random.uniform(key) < 0.3, jnp.nan, -jnp.sum(population["x"] ** 2, axis=-1))
        return values, extra, {}

    result = _counting_es(tmp_path, fitness, 8, checkpoint_every=8)
    log = read_log(tmp_path / "meta_log.jsonl")
    assert [r["generation"] for r in result.history] == list(range(8))
    failed = [r for r in log if r.get("failed")]
    assert failed, "the key draws were meant to fail at least one attempt"
    for record in failed:  # each failed attempt is followed by the next attempt at the same generation
        following = log[log.index(record) + 1]
        assert following["generation"] == record["generation"]
        assert following.get("attempt", following.get("retries")) == record["attempt"] + 1
    assert {r["generation"] for r in failed} <= {int(p.name) for p in (tmp_path / "checkpoints").iterdir()}


def test_training_that_turns_nan_stops_and_keeps_the_last_good_checkpoint(tmp_path, capsys, monkeypatch):
    real_make_chunk = train_job.make_chunk

    def poisoned_make_chunk(agent, size, total):  # parameters turn NaN in the chunk from update 4
        chunk = real_make_chunk(agent, size, total)

        def run(state, start, n):
            state, metrics = chunk(state, start, n)
            if start >= 4:
                state = state.replace(params=jax.tree.map(lambda p: p * jnp.nan, state.params))
            return state, metrics

        return run

    monkeypatch.setattr(train_job, "make_chunk", poisoned_make_chunk)
    run_dir = tmp_path / "run"
    line = _error_line(train_cli.main, [*TINY_TRAIN, "checkpoint_every=2", f"run_dir={run_dir}",
                                        f"hydra.run.dir={tmp_path / 'hydra'}"], capsys)
    assert line.startswith("metarl-train: error: training diverged: parameters turned NaN/inf in updates 4..5 (seed 0);")
    assert f"the last good checkpoint (update 4) is in {run_dir / 'checkpoints'}" in line
    assert ESCheckpointer(run_dir / "checkpoints").latest_generation() == 4
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert sorted({r["update"] for r in rows}) == [0, 1, 2, 3]


def test_a_nan_loss_names_its_update_and_seed(tmp_path):
    metrics = {"actor_loss": np.array([[0.1, 0.2], [0.3, np.nan]]), "value_loss": np.zeros((2, 2)),
               "timesteps": np.zeros((2, 2))}
    params = {"w": np.ones((2, 3))}
    with pytest.raises(train_job.TrainingDivergedError, match=r"actor_loss turned NaN/inf at update 7 \(seed 1\); "
                                                              r"stopped, the last good checkpoint \(update 6\)"):
        train_job.check_finite(params, metrics, 6, tmp_path)
    train_job.check_finite(params, {**metrics, "actor_loss": np.zeros((2, 2))}, 6, tmp_path)  # all finite
