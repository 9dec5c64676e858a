"""``metarl-meta-rl``: the installed script from another directory, its outputs, and an exact resume.

One tiny RL² run on the dependent two-armed bandit (the ``ci`` scale: 4 chunks of 10 trials, two seeds).
An uninterrupted run in-process first (it fills the session's compilation cache, so the script loads
what it compiled); then the script from another directory stops after two chunks, and a resume
in-process finishes it to the uninterrupted run's ``metrics.jsonl``. ``anneal_lr`` is off so that the
shortened first part has the same learning rates.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from metarl.cli import meta_rl
from metarl.io.progress import read_log

TINY = ("task=bandit-k2-dependent-v1", "scale=ci", "seeds=2", "progress=false", "+agent.anneal_lr=false",
        "eval.baselines=[ucb1,random,oracle]")


def test_the_installed_script_runs_from_another_directory_and_a_resume_equals_the_whole_run(tmp_path, monkeypatch,
                                                                                              capsys):
    script = shutil.which("metarl-meta-rl", path=str(Path(sys.executable).parent))
    assert script, "metarl-meta-rl is not installed"
    part, whole = tmp_path / "part", tmp_path / "whole"
    monkeypatch.chdir(tmp_path)
    meta_rl.main([*TINY, f"run_dir={whole}"])
    assert "bandit-k2-dependent-v1, RL2 (gru), 2 seeds: trial return" in capsys.readouterr().out

    # the script as a user calls it: two of the ci scale's four chunks, then stopped
    done = subprocess.run([script, *TINY, "+agent.num_trials=20", f"run_dir={part}"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "bandit-k2-dependent-v1, RL2 (gru), 2 seeds: trial return" in done.stdout
    assert "pull 1 " in done.stdout and "-> pull 10 " in done.stdout and "UCB1 " in done.stdout, done.stdout
    summary = json.loads((part / "summary.json").read_text())
    assert summary["trials"] == 20 and summary["timesteps"] == 20 * 16 * 10  # trials x envs x pulls
    assert summary["trial_return"]["n_seeds"] == 2 and len(summary["trial_return"]["per_seed"]) == 2
    assert len(summary["curve"]["x"]) == 10 and summary["curve"]["unit"] == "pull"
    assert [row["method"] for row in summary["table"]] == ["RL2 (gru)", "UCB1", "random", "oracle"]
    oracle, random = summary["baselines"]["oracle"]["mean"], summary["baselines"]["random"]["mean"]
    for name, row in summary["baselines"].items():  # paired on the same tasks: the difference of the two means
        assert row["rl2_minus"]["mean"] == pytest.approx(summary["trial_return"]["mean"] - row["mean"], abs=1e-4), name
    assert summary["baselines"]["oracle"]["rl2_minus"]["ci_high"] < 0  # the oracle knows the best arm
    assert "RL2 minus each method on the same held-out tasks" in (part / "report.md").read_text()
    assert random < oracle and abs(random - 5.0) < 1.0  # 64 held-out tasks: random earns n/2 in expectation
    assert summary["held_out"] == {"kind": "sampled", "tasks": 64, "repeats": 1, "greedy": False}
    assert (part / "in_context_curve.png").stat().st_size > 0 and "| UCB1 |" in (part / "report.md").read_text()
    assert len(read_log(part / "metrics.jsonl")) == 2 * 2

    meta_rl.main([*TINY, "resume=true", "allow_changes=[agent.num_trials]", f"run_dir={part}"])
    rows = read_log(whole / "metrics.jsonl")
    assert len(rows) == 4 * 2 and {r["seed"] for r in rows} == {0, 1} and rows[-1]["trials"] == 40
    assert all(np.isfinite(r["trial_return"]) and len(r["episode_returns"]) == 1 for r in rows)
    assert read_log(part / "metrics.jsonl") == rows  # stopped after chunk 2, resumed: the same bits
    resumed, uninterrupted = (json.loads((d / "summary.json").read_text()) for d in (part, whole))
    assert resumed["trial_return"]["per_seed"] == uninterrupted["trial_return"]["per_seed"]


def test_the_bandit_grid_report_tabulates_runs_and_refuses_a_non_bandit_run(tmp_path, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("grid", Path(__file__).parents[1] / "scripts" / "bandit_grid_report.py")
    grid = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(grid)
    row = lambda method, mean: {"method": method, "mean": mean, "ci_low": mean - 0.1, "ci_high": mean + 0.1}  # noqa: E731
    for name, arms in (("a", 5), ("b", 10)):
        (tmp_path / name).mkdir()
        summary = {"task": f"bandit-k{arms}-n10-v1", "trials": 500, "benchmark": {"baselines": "bandit"},
                   "table": [row("RL2 (gru)", 6.7), row("Gittins", 6.6), row("random", 5.0), row("oracle", 8.0)]}
        (tmp_path / name / "summary.json").write_text(json.dumps(summary))
    assert grid.main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "grid.png")]) == 0
    out = capsys.readouterr().out
    assert "| `bandit-k10-n10-v1` | 500 | 6.70 [6.60, 6.80] | 6.60 [6.50, 6.70] | — | — | 5.00" in out
    assert (tmp_path / "grid.png").stat().st_size > 0
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "summary.json").write_text(json.dumps({"task": "dark-room-v1", "benchmark": {"baselines": "optimal"}}))
    with pytest.raises(SystemExit) as stop:
        grid.main([str(tmp_path / "c"), "--out", str(tmp_path / "no.png")])
    assert stop.value.code == 2 and "is not a bandit run" in capsys.readouterr().err and not (tmp_path / "no.png").exists()
