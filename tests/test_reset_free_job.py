"""``metarl-reset-free``: the installed script from another directory, its outputs, and an exact resume."""

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
        "+agent.hidden_sizes=[16]", "+agent.buffer_size=1000", "+agent.learning_starts=200", "algorithm=risc",
        "checkpoint_every=1")


def test_the_installed_script_runs_from_another_directory_and_a_resume_equals_the_whole_run(tmp_path, monkeypatch):
    script = shutil.which("metarl-reset-free", path=str(Path(sys.executable).parent))
    assert script, "metarl-reset-free is not installed"
    part, whole = tmp_path / "part", tmp_path / "whole"
    # the script as a user calls it: two of the ci scale's four evaluation periods, then stopped
    done = subprocess.run([script, *TINY, "protocol.total_steps=2000", f"run_dir={part}"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "four-rooms-v1, risc (bootstrap correct), 2 seeds: deployed success" in done.stdout
    summary = json.loads((part / "summary.json").read_text())
    assert summary["steps"] == 2_000 and summary["interventions"] == 1  # fully reset-free: H_T = 100k steps
    assert summary["deployed_success"]["n_seeds"] == 2 and summary["settings"]["algorithm"] == "risc"
    assert (part / "deployed_success.png").stat().st_size > 0

    monkeypatch.chdir(tmp_path)
    reset_free.main([*TINY, "resume=true", "allow_changes=[protocol.total_steps]", f"run_dir={part}"])
    reset_free.main([*TINY, f"run_dir={whole}"])
    rows = read_log(whole / "metrics.jsonl")
    assert len(rows) == 4 * 2 and {r["seed"] for r in rows} == {0, 1}
    assert all(np.isfinite(r["deployed_success"]) for r in rows)
    assert read_log(part / "metrics.jsonl") == rows  # stopped after period 2, resumed: the same bits
