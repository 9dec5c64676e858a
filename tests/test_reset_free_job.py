"""``metarl-reset-free``: the installed script from another directory, outputs, and an exact resume."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from metarl.cli import reset_free
from metarl.io.progress import read_log

TINY = ("task=four-rooms-v1", "scale=ci", "seeds=2", "progress=false", "protocol.eval_episodes=2",
        "+agent.hidden_sizes=[16]", "+agent.buffer_size=1000", "+agent.learning_starts=200")


def test_installed_script_runs_four_rooms_at_ci_scale_from_another_directory(tmp_path):
    script = shutil.which("metarl-reset-free", path=str(Path(sys.executable).parent))
    assert script, "metarl-reset-free is not installed"
    out = tmp_path / "run"
    done = subprocess.run([script, *TINY, "algorithm=risc", f"run_dir={out}"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "four-rooms-v1, risc (bootstrap correct), 2 seeds: deployed success" in done.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 4_000 and summary["interventions"] == 1  # fully reset-free: H_T = 100k steps
    assert summary["deployed_success"]["n_seeds"] == 2 and summary["settings"]["algorithm"] == "risc"
    rows = read_log(out / "metrics.jsonl")
    assert len(rows) == 4 * 2 and {r["seed"] for r in rows} == {0, 1}
    assert all(np.isfinite(r["deployed_success"]) for r in rows)
    assert (out / "deployed_success.png").stat().st_size > 0


def test_a_resumed_run_equals_the_uninterrupted_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = [*TINY, "algorithm=fbrl", "protocol.total_steps=3000", "checkpoint_every=1"]
    reset_free.main([*args, f"run_dir={tmp_path / 'whole'}"])
    # the same run stopped after two of its three periods, then resumed with the full budget
    reset_free.main([*args[:-2], "protocol.total_steps=2000", "checkpoint_every=1", f"run_dir={tmp_path / 'part'}"])
    reset_free.main([*args, "resume=true", "allow_changes=[protocol.total_steps]", f"run_dir={tmp_path / 'part'}"])
    whole, part = read_log(tmp_path / "whole" / "metrics.jsonl"), read_log(tmp_path / "part" / "metrics.jsonl")
    assert len(whole) == 6 and whole == part
