"""The console scripts: one error format, unused options refused, evaluators by kind."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hydra import compose, initialize_config_module

from metarl.cli import continual, curriculum, evaluate, meta_rl, meta_train, reset_free, train
from metarl.cli.app import check_sections
from metarl.io.artifacts import save_artifact, save_header
from metarl.jobs.registry import Job


def _error_line(main, args, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("main, program, args, names", [
    (train.main, "metarl-train", ["+teacher=plr"], "+teacher=plr: job train has no setting 'teacher'"),
    (train.main, "metarl-train", ["+agent.foo=1"], "agent.foo is not a setting"),
    (train.main, "metarl-train", ["agent.foo=1"], "Could not override 'agent.foo'"),
    (train.main, "metarl-train", ["+env.overrides.gravty=3.0"], "no parameter 'gravty'"),
    (train.main, "metarl-train", ["teacher=plr"], "Could not override 'teacher'"),
    (curriculum.main, "metarl-curriculum", ["+optimizer=adam"], "job curriculum has no setting 'optimizer'"),
    (curriculum.main, "metarl-curriculum", ["+eval.episodes=3"], "eval.episodes is not a setting"),
    (continual.main, "metarl-continual", ["+env=maze"], "job continual has no setting 'env'"),
    (continual.main, "metarl-continual", ["+eval.episodez=3"], "eval.episodez is not a setting"),
    (evaluate.main, "metarl-evaluate", ["lifetimes=[3]"], "job evaluate_objective has no setting 'lifetimes'"),
])
def test_an_option_the_job_does_not_use_exits_2_naming_it(main, program, args, names, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # Hydra's run directory goes below the working directory
    line = _error_line(main, args, capsys)
    assert line.startswith(f"{program}: error: ") and names in line, line


def test_debug_shows_the_traceback(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="job train has no setting 'teacher'"):
        train.main(["+teacher=plr", "--debug"])


def test_sections_check_ignores_hydra_and_jobs_without_sections():
    job = Job("j", lambda cfg, run_dir: {}, "train", sections=("agent", "env"))
    check_sections(job, ["agent.lr=1", "env=maze", "hydra.run.dir=x", "+env.overrides.a=1", "~agent.lr"])
    with pytest.raises(ValueError, match="seedz=3: job j has no setting 'seedz'"):
        check_sections(job, ["seedz=3"])
    check_sections(Job("all", lambda cfg, run_dir: {}, "train"), ["anything=1"])


def test_meta_train_runs_the_job_its_config_names():
    with initialize_config_module("configs", version_base=None):
        cfg = compose("meta_train")
        chosen = meta_train._job(cfg)
        assert chosen == str(cfg.get("job") or "meta_train")


@pytest.mark.parametrize("kind, job", [
    ("objective", "evaluate_objective"),
    ("lpg_rule", "evaluate_lpg"),
    ("learned_optimizer", "evaluate_optimizer"),
])
def test_evaluate_picks_its_evaluator_from_the_recorded_kind(kind, job, tmp_path):
    # same arrays, same name for every kind: only the header's kind tells the evaluations apart
    path = save_artifact(tmp_path / "run" / "learned_thing.npz", {"w": np.zeros(3)}, kind=kind, name="x")
    with initialize_config_module("configs.evaluate", version_base=None):
        for spelling in (f"artifact={path}", f"artifact={path.parent}"):  # the file or its run directory
            assert evaluate.job_for(compose("evaluate", overrides=[spelling])) == job
        slot = "optimizer" if kind == "learned_optimizer" else "objective"  # objective=/optimizer= may name it
        assert evaluate.job_for(compose("evaluate", overrides=[f"{slot}={path}"])) == job
        assert evaluate.job_for(compose("evaluate", overrides=["objective=dpo", "optimizer=lion"])) == "evaluate_objective"


def test_evaluate_refuses_an_artifact_no_job_reads(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save_header(tmp_path / "train_run" / "policy_checkpoint.json", kind="policy_checkpoint", name="ppo")
    line = _error_line(evaluate.main, [f"artifact={tmp_path / 'train_run'}"], capsys)
    assert "no job reads artifacts of kind 'policy_checkpoint'" in line


@pytest.mark.parametrize("cli", [train, meta_train, evaluate, curriculum, continual, reset_free, meta_rl])
def test_every_entry_point_applies_the_cpu_defaults_first(cli, monkeypatch, capsys):
    import metarl.cli.app as app

    calls = []
    monkeypatch.setattr(app, "configure_cpu", lambda: calls.append("cpu"))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0 and calls == ["cpu"]


def test_a_section_read_in_part_refuses_its_other_keys():
    """LPG-by-ES reads only evaluate.enabled (its evaluation settings live in objective.eval)."""
    from metarl.cli.app import check_sections
    from metarl.jobs import registry

    job = registry.get("meta_train_lpg")
    check_sections(job, ["evaluate.enabled=false", "objective.eval.seeds=2"])
    with pytest.raises(ValueError, match="has no setting 'evaluate.seeds' \\(of evaluate it reads only evaluate.enabled\\)"):
        check_sections(job, ["evaluate.seeds=3"])


def test_the_registry_loads_only_the_job_asked_for_and_knows_every_jobs_module():
    """``registry.get`` imports one job's module (a console script does not load every job); ``MODULES`` names
    every registered job and the module that registers it."""
    code = ("import sys; from metarl.jobs import registry; registry.get('reset_free'); "
            "print(sorted(m for m in sys.modules if m.startswith('metarl.jobs.')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert loaded.stdout.strip() == "['metarl.jobs.registry', 'metarl.jobs.reset_free']"
    from metarl.jobs import registry

    assert registry.registered() == sorted(registry.MODULES)
    for name, module in registry.MODULES.items():
        assert registry.get(name).run.__module__ == f"metarl.jobs.{module}", name
