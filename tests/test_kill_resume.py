"""SIGKILL the installed console scripts at random points after a checkpoint, resume, and get the very same run.

Each test runs a tiny job uninterrupted, then again with two real SIGKILLs
(each a seeded random delay after the process writes a checkpoint at a
seeded random step, so it can land in training, in a log append or in a
checkpoint save), resumes it to the end with ``resume=true``, and compares:
the final arrays bit for bit, and every log record exactly once with the
same values. The kill points are in every assertion message.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from metarl.io.artifacts import load_artifact
from metarl.io.outputs import load_checkpoint
from metarl.io.progress import read_log

KILL_SEED = int(os.environ.get("METARL_KILL_SEED", "16"))  # reproducible kill points; set it to explore others
STARTUP_TIMEOUT_S = 400

META_TRAIN = [
    "env=cartpole", "meta.population_size=4", "meta.generations=12", "meta.checkpoint_every=1",
    "inner.total_timesteps=1024", "inner.num_envs=2", "inner.num_steps=64",
    "fitness.reference_seeds=1", "fitness.num_seeds=1", "evaluate.enabled=false", "progress_bar=false",
]
TRAIN = [
    "seeds=2", "agent.total_timesteps=2048", "agent.num_steps=16", "agent.num_minibatches=2", "agent.update_epochs=1",
    "checkpoint_every=2", "progress=false",
]


def _script(name: str) -> str:
    return shutil.which(name, path=str(Path(sys.executable).parent)) or name


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    cache = tmp_path_factory.mktemp("jax_cache")  # the runs of a test share their compiled programs
    return {**os.environ, "JAX_PLATFORMS": "cpu", "JAX_COMPILATION_CACHE_DIR": str(cache),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}


def _command(script: str, args: list[str], run_dir: Path, hydra_dir: Path) -> list[str]:
    return [_script(script), *args, f"run_dir={run_dir}", f"hydra.run.dir={hydra_dir}"]


def _run(command: list[str], cwd: Path, env: dict) -> None:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=STARTUP_TIMEOUT_S)
    assert done.returncode == 0, f"{' '.join(command[1:])}\n{done.stderr[-3000:]}"


def _steps(checkpoints: Path) -> set[int]:
    # orbax renames a finished step's temporary directory to its number: a numbered directory is complete
    return {int(p.name) for p in checkpoints.glob("*") if p.name.isdigit()} if checkpoints.is_dir() else set()


def _kill_after_checkpoint(command: list[str], cwd: Path, env: dict, checkpoints: Path, step: int,
                           delay: float) -> str:
    """Start ``command``; SIGKILL it ``delay`` s after it writes a checkpoint >= ``step``; returns the kill point."""
    before = _steps(checkpoints)
    log_path = cwd / f"killed_{len(list(cwd.glob('killed_*')))}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while process.poll() is None and time.monotonic() < deadline:
            written = [s for s in _steps(checkpoints) - before if s >= step]
            if written:
                break
            time.sleep(0.01)
        time.sleep(delay)
        exited = process.poll()
        if exited is None:
            process.send_signal(signal.SIGKILL)
        process.wait()
    point = f"{delay:.2f}s after checkpoint >= {step} (on disk at the kill: {sorted(_steps(checkpoints))})"
    assert exited is None and process.returncode == -signal.SIGKILL, (
        f"not killed {point}: exit {exited}\n{log_path.read_text()[-2000:]}")
    return point


def _interrupted_run(script: str, args: list[str], tmp_path: Path, env: dict, first: list[int], second: list[int],
                     max_delay: float) -> tuple[Path, list[str]]:
    """Run, SIGKILL, resume, SIGKILL again, resume to the end; returns (run_dir, kill points).

    A kill comes a random ``[0, max_delay]`` s after a checkpoint at a random step of ``first``
    (``second`` for the resumed run) appears.
    """
    run_dir, hydra_dir, checkpoints = tmp_path / "interrupted", tmp_path / "hydra", tmp_path / "interrupted" / "checkpoints"
    rng = random.Random(f"{KILL_SEED}-{script}")
    points = [_kill_after_checkpoint(_command(script, args, run_dir, hydra_dir), tmp_path, env, checkpoints,
                                     rng.choice(first), rng.uniform(0.0, max_delay))]
    resume = _command(script, [*args, "resume=true"], run_dir, hydra_dir)
    points.append(_kill_after_checkpoint(resume, tmp_path, env, checkpoints, rng.choice(second),
                                         rng.uniform(0.0, max_delay)))
    _run(resume, tmp_path, env)
    return run_dir, points


def _without_wall_clock(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def test_meta_train_killed_twice_resumes_to_the_identical_run(tmp_path, env):
    straight = tmp_path / "straight"
    _run(_command("metarl-meta-train", META_TRAIN, straight, tmp_path / "hydra"), tmp_path, env)
    run_dir, points = _interrupted_run("metarl-meta-train", META_TRAIN, tmp_path, env, first=[1, 2, 3, 4],
                                       second=[6, 7, 8], max_delay=0.3)
    where = f"kill points: {points}"

    expected, _ = load_artifact(straight / "learned_objective.npz")
    resumed, _ = load_artifact(run_dir / "learned_objective.npz")
    assert sorted(expected) == sorted(resumed), where
    for name in expected:
        np.testing.assert_array_equal(resumed[name], expected[name], err_msg=f"{name}; {where}")
    log, straight_log = read_log(run_dir / "meta_log.jsonl"), read_log(straight / "meta_log.jsonl")
    assert [r["generation"] for r in log] == list(range(12)), where
    assert _without_wall_clock(log) == _without_wall_clock(straight_log), where


def test_train_killed_twice_resumes_to_the_identical_run(tmp_path, env):
    straight = tmp_path / "straight"
    _run(_command("metarl-train", TRAIN, straight, tmp_path / "hydra"), tmp_path, env)
    run_dir, points = _interrupted_run("metarl-train", TRAIN, tmp_path, env, first=[2, 4, 6, 8],
                                       second=[16, 18, 20, 22], max_delay=1.0)
    where = f"kill points: {points}"

    expected, resumed = load_checkpoint(straight / "checkpoint"), load_checkpoint(run_dir / "checkpoint")
    assert jax.tree.structure(expected) == jax.tree.structure(resumed), where
    for a, b in zip(jax.tree.leaves(expected), jax.tree.leaves(resumed)):
        np.testing.assert_array_equal(np.asarray(b), np.asarray(a), err_msg=where)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    updates = 2048 // (4 * 16)
    assert [(r["update"], r["seed"]) for r in rows] == [(u, s) for u in range(updates) for s in range(2)], where
    assert (run_dir / "metrics.jsonl").read_text() == (straight / "metrics.jsonl").read_text(), where
