"""Every console script as a user gets it: a wheel of this checkout in a fresh virtual environment.

The module builds a wheel (``pip wheel``) from a copy of the checkout, creates
a virtual environment outside it, installs the wheel there with ``--no-deps``
and then makes the running environment's packages (jax, hydra, ...) visible
through a ``.pth`` file. A ``.pth`` line only appends a directory to
``sys.path``; the ``.pth`` files inside that directory are not run, so the
editable install of the checkout stays out and ``metarl`` is the installed
copy. Each script then runs once from an empty directory, on a tiny config,
with its output files, its closing lines and its quiet stderr checked.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from metarl.io.artifacts import find_artifact, load_artifact, read_header
from metarl.io.outputs import load_checkpoint
from metarl.io.progress import read_log
from metarl.objectives.io import load_objective

# `make test` uses --dist loadfile: one xdist worker builds the environment and runs every test of this module

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ("metarl-train", "metarl-meta-train", "metarl-evaluate", "metarl-curriculum", "metarl-continual",
           "metarl-reset-free", "metarl-meta-rl")
NOT_COPIED = (".git", ".venv", "outputs", "multirun", "runs", "build", "dist", "*.egg-info", "__pycache__",
              ".pytest_cache")
TINY_PPO = ("agent.total_timesteps=512", "agent.num_steps=16", "agent.num_minibatches=2", "agent.update_epochs=1")
# two generations with the job's own evaluation and report (two epochs x two minibatches: with one gradient step
# per update the ratio stays 1, where every drift is zero, so objectives could not differ)
# The main job's own envs (Acrobot tasks, CartPole held out): 512 steps per env, so each Acrobot episode (500 steps
# unless swung up) ends inside the final 10% of updates
TINY_META = ("meta.population_size=4", "meta.generations=2", "meta.checkpoint_every=1", "inner.total_timesteps=2048",
             "inner.num_steps=32", "inner.update_epochs=2", "inner.num_minibatches=2", "+inner.hidden_sizes=[16]",
             "fitness.num_seeds=1", "fitness.reference_seeds=1", "objective.hidden_size=8", "evaluate.seeds=2",
             "evaluate.baselines=[ppo]")  # DPO's programs would add two compiles; its comparison is the same code


def _run(command: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing may point back at the checkout
    env["JAX_PLATFORMS"] = "cpu"
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"{result.args}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


class Installed:
    """The fresh environment: its scripts, run from an empty working directory."""

    def __init__(self, venv: Path, workdir: Path):
        self.venv, self.workdir = venv, workdir
        self.python = venv / "bin" / "python"

    def script(self, name: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        return _run([str(self.venv / "bin" / name), *args], cwd or self.workdir)


def _build_wheel(source: Path, out_dir: Path) -> Path:
    """``pip wheel`` of ``source``; without an index to fetch the build backend from, with the one installed here."""
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out_dir), str(source)]
    if _run(command, out_dir.parent).returncode != 0:
        _ok(_run([*command, "--no-build-isolation"], out_dir.parent))
    (wheel,) = out_dir.glob("metarl-*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    base = tmp_path_factory.mktemp("installed")
    # a copy, because building in the checkout would write build/ and *.egg-info there, under other running tests
    source = base / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_COPIED))
    wheel = _build_wheel(source, base / "wheels")

    venv = base / "venv"
    _ok(_run([sys.executable, "-m", "venv", "--without-pip", str(venv)], base))
    python = venv / "bin" / "python"
    _ok(_run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
              str(wheel)], base))
    # the dependencies: the running environment's site-packages, appended after the new one's own
    site = Path(_ok(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], base))
                .stdout.strip())
    parents = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (site / "running_environment.pth").write_text("".join(f"{path}\n" for path in parents))

    workdir = base / "work"
    workdir.mkdir()
    return Installed(venv, workdir)


def test_the_wheel_not_the_checkout_is_imported(installed):
    code = "import configs, curricula, envs, metarl; print(metarl.__file__, configs.__file__, envs.__file__)"
    paths = _ok(_run([str(installed.python), "-c", code], installed.workdir)).stdout.split()
    assert all(Path(p).is_relative_to(installed.venv) for p in paths), paths
    assert all(not Path(p).is_relative_to(ROOT) for p in paths), paths


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_from_an_empty_directory(installed, name, tmp_path):
    result = _ok(installed.script(name, "--help", cwd=tmp_path))
    assert f"{name} is powered by Hydra" in result.stdout and "== Config ==" in result.stdout
    assert "verbose=true" in result.stdout  # the app's own switches are named after Hydra's help
    assert not any(tmp_path.iterdir())  # --help writes nothing


# every config group of each script's tree, given after --cfg job, shows up in the composed config
@pytest.mark.parametrize("name, overrides, shown", [
    ("metarl-train", ["env=maze", "agent=ppo", "optimizer=sgd"], ["name: maze", "name: sgd"]),
    ("metarl-meta-train", ["meta=snes", "objective=ta_lpo", "env=gridworld/dense"],
     ["strategy: SNES", "name: ta_lpo", "name: gridworld-dense"]),
    ("metarl-meta-train", ["objective=ppo", "optimizer=learned"], ["job: meta_train_optimizer", "name: learned"]),
    ("metarl-meta-train", ["objective=lpg", "teacher=domain_randomization"],
     ["job: meta_train_lpg", "name: domain_randomization"]),
    ("metarl-evaluate", ["env=Acrobot-v1", "objective=dpo", "optimizer=lion", "agent.lr=0.001"],
     ["env: Acrobot-v1", "objective: dpo", "optimizer: lion", "lr: 0.001"]),
    ("metarl-curriculum", ["env=maze", "teacher=plr", "agent=ppo"], ["name: maze", "name: plr"]),
    ("metarl-continual", ["benchmark=cgw5", "method=ewc"], ["stream: CGW5-v1", "name: ewc"]),
])
def test_cfg_job_with_every_group_from_an_empty_directory(installed, name, overrides, shown, tmp_path):
    result = _ok(installed.script(name, "--cfg", "job", *overrides, "verbose=false", cwd=tmp_path))
    for text in shown:
        assert text in result.stdout, (text, result.stdout[:3000])
    assert not any(tmp_path.iterdir())


def _closing_line(result: subprocess.CompletedProcess, run_dir: Path) -> str:
    """The last line of stdout: where the outputs are."""
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith(f"outputs in {run_dir}"), result.stdout[-2000:]
    return last


def _quiet(result: subprocess.CompletedProcess) -> None:
    """No third-party log line at INFO (progress bars and warnings may be there)."""
    assert "INFO" not in result.stderr, result.stderr[-3000:]


def test_train(installed):
    run_dir = installed.workdir / "train"
    result = _ok(installed.script("metarl-train", "env=cartpole", "seeds=2", *TINY_PPO, f"hydra.run.dir={run_dir}"))
    for name in ("config.yaml", "metrics.jsonl", "learning_curve.png", "checkpoint", "policy_checkpoint.json"):
        assert (run_dir / name).exists(), name
    assert "final return: " in result.stdout and "95% CI [" in result.stdout and "over 2 seeds" in result.stdout
    assert f"wrote {run_dir}" in result.stdout and "metrics.jsonl" in _closing_line(result, run_dir)
    _quiet(result)
    assert "total_timesteps: 512" in (run_dir / "config.yaml").read_text()
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    updates = 512 // (4 * 16)
    assert [(r["update"], r["seed"]) for r in rows] == [(u, s) for u in range(updates) for s in range(2)]
    assert rows[-1]["timesteps"] == 512
    kernel = np.asarray(load_checkpoint(run_dir / "checkpoint")["params"]["actor"]["hidden_0"]["kernel"])
    assert kernel.shape == (2, 4, 64)  # both seeds' final parameters
    assert (run_dir / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    header = read_header(find_artifact(run_dir))  # the run directory's artifact: the policy checkpoint
    assert header["kind"] == "policy_checkpoint" and header["extra"]["checkpoint"] == "checkpoint"
    assert header["config"]["total_timesteps"] == 512
    assert header["extra"]["resolved_config"]["agent"]["total_timesteps"] == 512


def test_train_verbose_shows_the_libraries_logs(installed):
    run_dir = installed.workdir / "train_verbose"
    result = _ok(installed.script("metarl-train", "env=cartpole", "seeds=1", *TINY_PPO, f"hydra.run.dir={run_dir}",
                                  "verbose=true"))
    assert "INFO" in result.stderr and "checkpoint" in result.stderr  # orbax, through absl
    _closing_line(result, run_dir)


@pytest.fixture(scope="module")
def meta_run(installed) -> tuple[Path, subprocess.CompletedProcess]:
    run_dir = installed.workdir / "meta_train"
    return run_dir, _ok(installed.script("metarl-meta-train", *TINY_META, f"run_dir={run_dir}"))


def test_meta_train(meta_run):
    run_dir, result = meta_run
    for name in ("learned_objective.npz", "meta_log.jsonl", "meta_curve.png", "checkpoints"):
        assert (run_dir / name).exists(), name
    assert {"1", "2"} <= {p.name for p in (run_dir / "checkpoints").iterdir()}  # orbax wrote them, quietly
    assert f"learned objective: {run_dir / 'learned_objective.npz'}" in result.stdout
    assert "ES fitness of the population mean" in result.stdout
    assert f"report: {run_dir / 'report.md'}" in result.stdout
    log = read_log(run_dir / "meta_log.jsonl")
    assert [r["generation"] for r in log] == [0, 1]
    assert all(np.isfinite(r["fitness_mean"]) and r["seconds"] > 0 for r in log)
    assert -500.0 <= json.loads((run_dir / "reference_returns.json").read_text())["returns"]["Acrobot-v1"] < 0
    objective, params, header = load_objective(run_dir / "learned_objective.npz")
    assert objective.name == "lpo" and objective.hidden_size == 8 and params["w1"].shape == (8, 8)
    assert header["extra"]["generations"] == 2
    resolved = header["extra"]["resolved_config"]  # the whole config that produced the artifact
    assert resolved["job"] == "meta_train" and resolved["inner"]["hidden_sizes"] == [16]
    assert resolved["meta"]["population_size"] == 4 and resolved["objective"]["hidden_size"] == 8
    assert header["extra"]["env_tasks"] == {"train": 64, "heldout": 32, "seed": 0}
    final_copy, _ = load_artifact(run_dir / "checkpoints" / "final_objective.npz")
    np.testing.assert_array_equal(final_copy["w2"], params["w2"])
    # the job's own evaluation against PPO: held-out Acrobot tasks and CartPole, never trained on
    for name in ("drift_heatmap.png", "learning_curves.png", "per_seed_returns.csv", "performance_profile.png"):
        assert (run_dir / name).stat().st_size > 0, name
    report = (run_dir / "report.md").read_text()
    for label in ("LPO (learned)", "| Acrobot-v1 (held-out tasks) | PPO |", "| CartPole-v1 | PPO |", "95% CI",
                  "seed i trains on held-out task i of 32", "| LPO (learned) vs PPO | all |"):
        assert label in report, label
    assert re.search(r"\*\*The learned objective (beats|ties with|loses to) PPO \(P\(improvement\)", report)
    rows = json.loads((run_dir / "aggregate.json").read_text())
    assert len(rows) == 4 and all(r["ci_low"] <= r["iqm"] <= r["ci_high"] for r in rows)
    comparison = json.loads((run_dir / "comparison.json").read_text())
    assert [(r["baseline"], r["envs"]) for r in comparison] == [
        ("PPO", "all"), ("PPO", "Acrobot-v1 (held-out tasks)"), ("PPO", "CartPole-v1")]
    assert all(0 <= r["ci_low"] <= r["p_improvement"] <= r["ci_high"] <= 1 for r in comparison)
    _closing_line(result, run_dir)
    _quiet(result)


def test_evaluate_the_meta_train_run(installed, meta_run):
    meta_dir, _ = meta_run
    run_dir = installed.workdir / "evaluate"
    # DPO: the meta-train run's own report compared it with PPO
    result = _ok(installed.script("metarl-evaluate", f"artifact={meta_dir}", "compare=[dpo]", "seeds=2",
                                  "agent.update_epochs=1", f"out_dir={run_dir}"))
    assert "inner PPO as recorded with learned_objective.npz; replaced: agent.update_epochs=1 (recorded: " in result.stdout
    for name in ("aggregate.md", "aggregate.json", "per_seed_returns.csv", "learning_curves.png", "drift_heatmap.png"):
        assert (run_dir / name).stat().st_size > 0, name
    with (run_dir / "per_seed_returns.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and {r["objective"] for r in rows} == {"learned LPO", "DPO"}
    assert all(np.isfinite(float(r["final_return"])) and float(r["final_return"]) > 0 for r in rows)
    assert [r["objective"] for r in json.loads((run_dir / "aggregate.json").read_text())] == ["learned LPO", "DPO"]
    assert f"artifact: {meta_dir}" in (run_dir / ".hydra" / "config.yaml").read_text()  # Hydra's record of the run
    assert "| env | method | IQM final return | 95% CI |" in result.stdout
    _closing_line(result, run_dir)
    _quiet(result)


def test_curriculum(installed):
    run_dir = installed.workdir / "curriculum"
    result = _ok(installed.script(
        "metarl-curriculum", "env=maze", "teacher=plr", "teacher.capacity=64", "agent.total_timesteps=512",
        "agent.num_envs=4", "agent.num_steps=32", "eval.num_tasks=4", "eval.max_steps=16", f"run_dir={run_dir}"))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["env"] == "maze" and summary["teacher"] == "plr" and summary["updates"] == 4
    assert 0.0 <= summary["mastered"] <= 1.0
    assert np.load(run_dir / "metrics.npz")["episode_return"].shape == (4,)
    assert (run_dir / ".hydra" / "config.yaml").is_file()  # the run directory is Hydra's, as run_dir says
    assert "held-out tasks mastered: " in result.stdout
    _closing_line(result, run_dir)
    _quiet(result)


def test_continual(installed):
    """Continual World's first triplet with SAC (single head), as the smallest manipulation stream, fine-tuned (4 s;
    with `method=cbp` this run took 34 s): the methods are tested in-process (tests/test_sac_continual_methods.py)."""
    run_dir = installed.workdir / "continual"
    result = _ok(installed.script(
        "metarl-continual", "benchmark=cw10", "benchmark.stream=CW3-1-v1", "benchmark.steps_per_task=512", "seeds=2",
        "reference=false", "progress=false", "benchmark.eval.every_steps=256", "eval.episodes=1",
        "benchmark.eval.max_steps=20", "benchmark.agent.hidden_sizes=[8]", "benchmark.agent.num_envs=2",
        "benchmark.agent.steps_per_update=8", "benchmark.agent.gradient_steps=2", "benchmark.agent.batch_size=8",
        "benchmark.agent.learning_starts=64", "benchmark.agent.buffer_size=256", "switch.heads=single",
        "method=finetune", f"out_dir={run_dir}"))
    for name in ("config.yaml", "results.npz", "metrics.json", "task_curves.png"):
        assert (run_dir / name).stat().st_size > 0, name
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["algorithm"] == "sac" and record["switch"]["heads"] == "single"
    assert record["agent"]["task_heads"] == 0 and record["stream"].startswith("CW3-1")
    assert record["compile_counts"] == {"start": 1, "chunks[6]": 1}  # init, then the stream with its switches
    with np.load(run_dir / "results.npz") as arrays:
        assert arrays["perf"].shape == (2, 6, 3)  # seeds x evaluations x tasks
    assert "AP " in result.stdout and "forgetting " in result.stdout and "FT n/a" in result.stdout  # no reference runs
    _closing_line(result, run_dir)
    _quiet(result)
