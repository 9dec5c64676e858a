"""The console scripts keep XLA's compiled programs beside their runs: a repeat run compiles nothing."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).with_name("metarl-train")


def _cache_entries(cache: Path) -> set[str]:
    return {p.name for p in cache.iterdir()} if cache.exists() else set()


@pytest.mark.skipif(not SCRIPT.exists(), reason="metarl-train is not installed beside this Python")
def test_a_repeat_run_beside_the_first_finds_every_program_in_the_cache_and_gives_the_same_run(tmp_path):
    runs, cwd = tmp_path / "runs", tmp_path / "elsewhere"
    cwd.mkdir()
    # the test session's own shared cache (tests/conftest.py) would win over the run directory's; every program is
    # stored (JAX keeps only those that took > 1 s to compile, and under load a program can cross that line between
    # the two runs: the repeat then compiles, and stores, one the first left out)
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"} | {
        "JAX_PLATFORMS": "cpu", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    tiny = ["env=cartpole", "seeds=2", "agent.total_timesteps=2048", "agent.num_steps=32", "progress=false"]
    losses = []
    for name in ("first", "repeat"):
        out = subprocess.run([str(SCRIPT), *tiny, f"run_dir={runs / name}"], cwd=cwd, env=env, capture_output=True,
                             text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        if name == "first":
            written = _cache_entries(runs / ".xla_cache")
            assert written, "the first run left no compiled program beside its run directory"
        rows = [json.loads(line) for line in (runs / name / "metrics.jsonl").read_text().splitlines()]
        losses.append([(r["seed"], r["update"], r["actor_loss"], r["value_loss"]) for r in rows])
    assert _cache_entries(runs / ".xla_cache") == written  # the repeat run compiled nothing new
    assert losses[0] == losses[1]
    assert not (cwd / ".xla_cache").exists()


def test_a_cache_the_user_chose_wins_and_the_switch_turns_it_off(tmp_path):
    from metarl import runtime

    assert runtime.persist_compilation_cache(tmp_path / "run") is None  # this session set JAX_COMPILATION_CACHE_DIR
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"} | {"METARL_XLA_CACHE": "0"}
    probe = "import sys; from metarl import runtime; print(runtime.persist_compilation_cache(sys.argv[1]))"
    out = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "run")], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.strip() == "None", out.stderr
    out = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "run")], env=env | {"METARL_XLA_CACHE": "1"},
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == str(tmp_path / ".xla_cache"), out.stderr
