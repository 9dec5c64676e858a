"""Two processes x two CPU devices as one meta-training run (jax.distributed): the same run as one process.

Through the installed ``metarl-meta-train``, as a user on one machine would start it: a one-process run's
first generation, resumed by two processes (process 0 writes to the run directory, process 1 reads the checkpoint and
writes nothing), ends with the bits of the uninterrupted one-process run. One two-process round, not a fresh
start and a resume: each round costs two process starts and their compiles.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from metarl.distributed import check
from metarl.io.progress import read_log
from metarl.objectives.io import load_objective

SCRIPT = Path(sys.executable).with_name("metarl-meta-train")
TINY = ("env=cartpole", "meta.population_size=8", "meta.chunk_size=2", "inner.total_timesteps=256", "inner.num_steps=32",
        "inner.update_epochs=2", "inner.num_minibatches=2", "fitness.num_seeds=1", "fitness.reference_seeds=1",
        "evaluate.enabled=false", "progress_bar=false")
ENV = os.environ | {"JAX_PLATFORMS": "cpu"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_processes(run_dir: Path, cwd: Path, *extra: str) -> list[subprocess.CompletedProcess]:
    port = _free_port()
    common = [str(SCRIPT), *TINY, "cpu_devices=2", f"distributed.coordinator=127.0.0.1:{port}",
              "distributed.num_processes=2", "distributed.timeout_s=120", f"run_dir={run_dir}", *extra]
    logs = [(cwd / f"process{i}.out", cwd / f"process{i}.err") for i in (0, 1)]  # files: a full pipe would block
    procs = [subprocess.Popen([*common, f"distributed.process_id={i}"], cwd=cwd, env=ENV,
                              stdout=out.open("w"), stderr=err.open("w")) for i, (out, err) in enumerate(logs)]
    codes = [p.wait(timeout=400) for p in procs]
    return [subprocess.CompletedProcess(p.args, code, out.read_text(), err.read_text())
            for p, code, (out, err) in zip(procs, codes, logs)]


def _one_process(run_dir: Path, generations: int) -> None:
    """The same job in this test process (one CPU device, no jax.distributed)."""
    from hydra import compose, initialize_config_module

    from metarl.io.run_dir import prepare_run_dir
    from metarl.jobs.meta_train import run

    with initialize_config_module("configs", version_base=None):
        cfg = compose("meta_train", overrides=[*TINY, f"meta.generations={generations}", f"run_dir={run_dir}"])
    run(cfg, prepare_run_dir(run_dir, cfg))  # config.yaml, as the CLI writes it, for the resume to check against


def _params(run_dir: Path) -> list[np.ndarray]:
    _, params, _ = load_objective(run_dir / "learned_objective.npz")
    return [np.asarray(params[k]) for k in sorted(params)]


@pytest.mark.skipif(not SCRIPT.exists(), reason="metarl-meta-train is not installed beside this Python")
def test_two_processes_resume_and_equal_the_one_process_run(tmp_path):
    two, one = tmp_path / "two", tmp_path / "one"
    _one_process(two, generations=1)
    outs = _two_processes(two, tmp_path, "meta.generations=2", "resume=true", "allow_changes=[meta.generations]")
    for rank, out in enumerate(outs):
        assert out.returncode == 0, f"process {rank}: {out.stderr[-3000:]}"
    assert sorted(p.name for p in (two / "checkpoints").iterdir() if p.name.isdigit())[-1] == "2"
    assert "outputs in " + str(two) in outs[0].stdout and str(two) not in outs[1].stdout  # only process 0 wrote it
    _one_process(one, generations=2)
    keys = ("fitness_min", "fitness_mean", "fitness_max", "sigma_mean")
    assert [[r[k] for k in keys] for r in read_log(two / "meta_log.jsonl")] == \
        [[r[k] for k in keys] for r in read_log(one / "meta_log.jsonl")]
    assert all(np.array_equal(a, b) for a, b in zip(_params(two), _params(one)))


@pytest.mark.parametrize(("settings", "message"), [
    ({"num_processes": 2, "process_id": 2, "coordinator": "h:1"}, "process_id=2 is out of range"),
    ({"num_processes": 2}, "needs distributed.coordinator"),
    ({"num_processes": 2, "coordinator": "nohost"}, "not <host>:<port>"),
    ({"num_processes": 2, "coordinator": "h:70000"}, "not <host>:<port>"),
    ({"num_processes": 0}, "num_processes=0 is out of range"),
    ({"timeout": 3}, "unknown distributed option 'timeout'"),
])
def test_impossible_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        check(settings, environ={})


def test_slurm_environment_fills_the_unset_values():
    environ = {"SLURM_NTASKS": "4", "SLURM_PROCID": "3", "SLURM_STEP_NODELIST": "node[07-10]"}
    settings = check({"coordinator": None, "num_processes": None, "process_id": None}, environ)
    assert (settings.num_processes, settings.process_id, settings.coordinator) == (4, 3, "node07:29517")
    assert check({"num_processes": 1}, environ).num_processes == 1  # a value set by the user wins


@pytest.mark.skipif(not SCRIPT.exists(), reason="metarl-meta-train is not installed beside this Python")
def test_unreachable_coordinator_is_one_line_and_status_2_not_a_hang(tmp_path):
    started = time.monotonic()
    out = subprocess.run([str(SCRIPT), f"distributed.coordinator=127.0.0.1:{_free_port()}",
                          "distributed.num_processes=2", "distributed.process_id=1", "distributed.timeout_s=2",
                          f"run_dir={tmp_path / 'run'}"], cwd=tmp_path, env=ENV, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        out.stderr.strip()] and "nothing accepts connections at the coordinator" in out.stderr
    assert time.monotonic() - started < 60 and not (tmp_path / "run").exists()
