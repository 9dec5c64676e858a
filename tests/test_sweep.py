"""Sweeps (``-m``) through Hydra's launchers, and ``metarl-sweep-report`` gathering them.

The launcher and Optuna tests run the installed console scripts from an empty
directory and skip without the ``[sweep]`` extra (``make install-sweep``). Their jobs
are the smallest PPO run there is (a few hundred CartPole steps); the
subprocesses share one JAX compilation cache, so only the first job of the
file compiles.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from metarl.cli import sweep as cli_sweep
from metarl.eval.sweep_report import ALL_JOBS, gather, write_report
from metarl.io.sweep import check_sweep_dir, metric_value, write_error, write_result
from metarl.stats import iqm

TINY_PPO = ("agent.total_timesteps=512", "agent.num_steps=16", "agent.num_minibatches=2", "agent.update_epochs=1",
            "progress=false")
TIMEOUT_S = 300


def _installed(*modules: str) -> bool:
    try:
        return all(importlib.util.find_spec(m) is not None for m in modules)
    except ModuleNotFoundError:  # no hydra_plugins package at all: no plugin installed
        return False


needs_ray = pytest.mark.skipif(not _installed("ray", "hydra_plugins.hydra_ray_launcher"),
                               reason="the [sweep] extra (Ray launcher) is not installed: make install-sweep")
needs_submitit = pytest.mark.skipif(not _installed("submitit", "hydra_plugins.hydra_submitit_launcher"),
                                    reason="the [sweep] extra (submitit launcher) is not installed: make install-sweep")
needs_optuna = pytest.mark.skipif(not _installed("optuna", "hydra_plugins.hydra_optuna_sweeper"),
                                  reason="the [sweep] extra (Optuna sweeper) is not installed: make install-sweep")


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    """The subprocesses' environment: one persistent JAX compilation cache for every job of this file."""
    cache = tmp_path_factory.mktemp("jax_cache")
    return {**os.environ, "JAX_PLATFORMS": "cpu", "JAX_COMPILATION_CACHE_DIR": str(cache),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1",
            "RAY_DISABLE_USAGE_STATS": "1"}


def run(program: str, *args: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    command = shutil.which(program, path=str(Path(sys.executable).parent)) or program
    return subprocess.run([command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)


def report_rows(sweep_dir: Path) -> list[dict]:
    with (sweep_dir / "sweep_report.csv").open() as f:
        return list(csv.DictReader(f))


def check_two_seed_sweep(sweep_dir: Path, env: dict) -> None:
    """Both jobs finished, each in its own directory, and the report gathers them into one configuration."""
    for num in (0, 1):
        result = json.loads((sweep_dir / str(num) / "result.json").read_text())
        assert result["job"] == "train" and result["metric"] == "final_return.mean"
        assert result["value"] == result["summary"]["final_return"]["mean"]
    report = run("metarl-sweep-report", str(sweep_dir), cwd=sweep_dir.parent, env=env)
    assert report.returncode == 0, report.stderr
    rows = report_rows(sweep_dir)
    assert [(r["configuration"], r["n"], r["jobs"]) for r in rows] == [(ALL_JOBS, "2", "0 1")]
    table = (sweep_dir / "sweep_report.md").read_text()
    assert "| 0 | `all jobs` | 0 |" in table and "| 1 | `all jobs` | 1 |" in table  # job, configuration, seed
    assert (sweep_dir / "sweep_report.png").stat().st_size > 0


# --- sweeps through the launchers (subprocesses) -------------------------------------------------------------------
def test_a_failing_job_stops_only_itself_and_the_report_names_it(tmp_path, env):
    # job 0 fails its checks (3 minibatches do not divide 64 samples); job 1, launched after it, still runs
    sweep_dir = tmp_path / "sweep"
    done = run("metarl-train", "-m", "agent.num_minibatches=3,2", *TINY_PPO[:2], *TINY_PPO[3:],
               f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path, env=env)
    assert done.returncode == 1, done.stderr[-2000:]  # the sweep ran; one of its jobs failed
    error = "agent.num_minibatches=3 does not divide the batch num_envs*num_steps=64"
    assert f"metarl-train: job 0 (agent.num_minibatches=3) failed: {error}" in done.stderr
    assert "Traceback" not in done.stderr
    assert (sweep_dir / "0" / "error.txt").read_text().strip() == error
    assert not (sweep_dir / "0" / "config.yaml").exists()  # failed before anything was written
    assert json.loads((sweep_dir / "1" / "result.json").read_text())["value"] is not None

    report = run("metarl-sweep-report", str(sweep_dir), cwd=tmp_path, env=env)
    assert report.returncode == 0, report.stderr
    assert f"| 0 | `agent.num_minibatches=3` | {error} |" in report.stdout  # the failed jobs' table
    rows = {r["configuration"]: r for r in report_rows(sweep_dir)}
    assert (rows["agent.num_minibatches=3"]["n"], rows["agent.num_minibatches=3"]["failed"]) == ("0", "1")
    assert (rows["agent.num_minibatches=2"]["n"], rows["agent.num_minibatches=2"]["failed"]) == ("1", "0")


@needs_ray
def test_two_jobs_through_the_ray_launcher(tmp_path, env):
    sweep_dir = tmp_path / "ray_sweep"
    done = run("metarl-train", "-m", "hydra/launcher=ray_local", "hydra.launcher.ray.init.num_cpus=2", "seed=0,1",
               *TINY_PPO, f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"sweep of 2 jobs: 2 finished, 0 failed; metarl-sweep-report {sweep_dir}" in done.stdout
    check_two_seed_sweep(sweep_dir, env)


@needs_submitit
def test_two_jobs_through_the_submitit_local_launcher(tmp_path, env):
    sweep_dir = tmp_path / "submitit_sweep"
    done = run("metarl-train", "-m", "hydra/launcher=submitit_local", "seed=0,1", *TINY_PPO,
               f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (sweep_dir / ".submitit").is_dir()  # the jobs ran as submitit's processes
    check_two_seed_sweep(sweep_dir, env)


@needs_optuna
def test_optuna_gets_each_jobs_headline(tmp_path, env):
    # the seed as the searched parameter: every trial runs the program the cache already holds
    sweep_dir = tmp_path / "optuna_sweep"
    done = run("metarl-train", "-m", "hydra/sweeper=optuna_maximize", "hydra.sweeper.n_trials=2",
               "seed=choice(0,1,2,3)", *TINY_PPO, f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    values = [json.loads((sweep_dir / str(n) / "result.json").read_text())["value"] for n in (0, 1)]
    best = yaml_value(sweep_dir / "optimization_results.yaml", "best_value")
    assert best == pytest.approx(max(values))  # Optuna maximized what the jobs returned
    assert "sweep of 2 jobs: 2 finished, 0 failed; best: seed=" in done.stdout
    assert "Trial" not in done.stderr and "study created" not in done.stderr  # Optuna's INFO lines stay off


def yaml_value(path: Path, key: str):
    from omegaconf import OmegaConf

    return OmegaConf.load(path)[key]


@pytest.mark.parametrize("make, says", [
    (lambda tmp: tmp / "missing", "does not exist"),
    (lambda tmp: tmp, "is not a multirun directory"),
])
def test_the_report_on_bad_input_is_one_line_and_status_2(make, says, tmp_path, env):
    path = make(tmp_path)
    done = run("metarl-sweep-report", str(path), cwd=tmp_path, env=env)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("metarl-sweep-report: error: ") and says in lines[0], lines
    assert not any(tmp_path.iterdir())  # nothing written


# --- gathering, on hand-made sweep directories -------------------------------------------------------------------
def make_job(sweep_dir: Path, num: int, overrides: list[str], value: float | None = None, error: str | None = None,
             metric: str = "final_return.mean") -> Path:
    job_dir = sweep_dir / str(num)
    (job_dir / ".hydra").mkdir(parents=True)
    (job_dir / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (job_dir / ".hydra" / "hydra.yaml").write_text(f"hydra:\n  mode: MULTIRUN\n  job:\n    num: {num}\n")
    if error is not None:
        write_error(job_dir, error)
    else:
        summary = {"final_return": {"mean": value, "max": None if value is None else value + 1}, "seconds": 1.0}
        write_result(job_dir, "train", metric, value, summary)
    return job_dir


@pytest.fixture
def sweep_dir(tmp_path) -> Path:
    """lr=0.1: four seeds, values 1, 2, 3, 10; lr=0.2: one value, 5, and one job that failed."""
    path = tmp_path / "multirun"
    path.mkdir()
    (path / "multirun.yaml").write_text("hydra: {}\n")
    for num, (seed, value) in enumerate(zip(range(4), (1.0, 2.0, 3.0, 10.0))):
        make_job(path, num, ["agent.lr=0.1", f"seed={seed}", "agent.total_timesteps=512"], value)
    make_job(path, 4, ["agent.lr=0.2", "seed=0", "agent.total_timesteps=512"], 5.0)
    make_job(path, 5, ["agent.lr=0.2", "seed=1", "agent.total_timesteps=512"], error="ValueError: boom")
    return path


def test_jobs_group_into_configurations_without_their_seed(sweep_dir):
    sweep = gather(sweep_dir)
    assert sweep.metric == "final_return.mean" and sweep.common == "agent.total_timesteps=512"
    first, second = sweep.configurations
    assert (first.label, first.jobs, first.n, first.failed) == ("agent.lr=0.1", (0, 1, 2, 3), 4, 0)
    assert (second.label, second.jobs, second.n, second.failed) == ("agent.lr=0.2", (4, 5), 1, 1)
    mean, low, high = first.mean_ci()
    assert mean == pytest.approx(4.0) and low <= mean <= high and low >= 1.0 and high <= 10.0
    value, low, high = first.iqm_ci()
    assert value == pytest.approx(2.5) == pytest.approx(iqm([1.0, 2.0, 3.0, 10.0]))  # the middle two: (2 + 3) / 2
    assert low <= value <= high
    assert second.mean_ci()[0] == 5.0 and math.isnan(second.mean_ci()[1])  # one value: no interval
    assert [(job.num, job.error) for job in sweep.failed] == [(5, "ValueError: boom")]


def test_the_report_files(sweep_dir, tmp_path):
    paths = write_report(gather(sweep_dir), tmp_path / "out")
    rows = report_rows(tmp_path / "out")
    assert [(r["configuration"], r["n"], r["failed"], r["jobs"]) for r in rows] == [
        ("agent.lr=0.1", "4", "0", "0 1 2 3"), ("agent.lr=0.2", "1", "1", "4 5")]
    assert float(rows[0]["mean"]) == pytest.approx(4.0) and float(rows[0]["iqm"]) == pytest.approx(2.5)
    assert rows[1]["mean_ci_low"] == ""  # no interval from one value
    table = paths["table"].read_text()
    assert "| `agent.lr=0.1` | 4 | 0 | 4 [" in table and "| 5 | `agent.lr=0.2` | ValueError: boom |" in table
    assert paths["figure"].stat().st_size > 0


def test_the_metric_is_the_recorded_one_or_any_number_of_the_summaries(sweep_dir):
    assert gather(sweep_dir, "final_return.max").configurations[0].mean_ci()[0] == pytest.approx(5.0)
    with pytest.raises(ValueError, match=r"no job's summary has a number at 'final_return\.median' \(their numbers: "
                                         r"final_return\.max, final_return\.mean, seconds\)"):
        gather(sweep_dir, "final_return.median")
    make_job(sweep_dir, 6, ["agent.lr=0.3", "seed=0"], 1.0, metric="seconds")
    with pytest.raises(ValueError, match="different metrics"):
        gather(sweep_dir)


def test_what_is_not_a_sweep_directory(sweep_dir, tmp_path):
    assert check_sweep_dir(sweep_dir) == sweep_dir
    with pytest.raises(ValueError, match="one job of a sweep; pass the sweep's directory"):
        check_sweep_dir(sweep_dir / "0")
    single = tmp_path / "single"
    (single / ".hydra").mkdir(parents=True)
    (single / ".hydra" / "overrides.yaml").write_text("[]\n")
    with pytest.raises(ValueError, match="the directory of a single run"):
        check_sweep_dir(single)
    (tmp_path / "started").mkdir()
    (tmp_path / "started" / "multirun.yaml").write_text("hydra: {}\n")
    with pytest.raises(ValueError, match="holds no jobs yet"):
        check_sweep_dir(tmp_path / "started")
    with pytest.raises(ValueError, match="is a file"):
        check_sweep_dir(sweep_dir / "multirun.yaml")


def test_a_jobs_number_for_the_sweeper():
    summary = {"final_return": {"mean": np.float32(2.5)}, "curve": np.zeros(100), "nan": float("nan")}
    assert metric_value(summary, "final_return.mean") == 2.5
    assert metric_value(summary, "nan") is None  # Optuna counts a None as a failed trial and goes on
    with pytest.raises(ValueError, match=r"no number at 'final_return\.max' \(its numbers: final_return\.mean\)"):
        metric_value(summary, "final_return.max")


def test_sweep_metric_is_taken_out_of_the_config():
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"seed": 0, "sweep": {"metric": "final_return.max"}})
    OmegaConf.set_struct(cfg, True)
    assert cli_sweep.take_metric(cfg) == "final_return.max" and "sweep" not in cfg
    assert cli_sweep.take_metric(OmegaConf.create({"seed": 0})) is None
    with pytest.raises(ValueError, match="sweep.metric must be a dotted key"):
        cli_sweep.take_metric(OmegaConf.create({"sweep": {"metric": 3}}))
    with pytest.raises(ValueError, match="sweep.metrc is not a setting"):
        cli_sweep.take_metric(OmegaConf.create({"sweep": {"metric": None, "metrc": "x"}}))
