"""metarl-train: one-line failures for bad configs, every env config validates, the bootstrap interval.

The outputs of a run of the installed script are checked in ``test_installed_wheel.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

import envs
from metarl.jobs.train import run
from metarl.stats import bootstrap_ci

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = shutil.which("metarl-train", path=str(Path(sys.executable).parent)) or "metarl-train"


def _cli(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    return subprocess.run(  # from the run directory, not the checkout: configs come with the package
        [SCRIPT, *args, f"hydra.run.dir={tmp_path}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )


def test_bad_config_exits_nonzero_with_one_line(tmp_path):
    result = _cli(["agent.num_minibatches=3"], tmp_path)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["metarl-train: error: agent.num_minibatches=3 does not divide the batch num_envs*num_steps=512"]
    assert not (tmp_path / "metrics.jsonl").exists()


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["env.name=NotAnEnv-v0"], "unknown environment 'NotAnEnv-v0'"),
        (["agent.total_timesteps=-100"], "agent.total_timesteps must be positive"),
        (["agent.num_steps=12.5"], "agent.num_steps must be an integer"),
        (["agent.num_minibatches=7"], "does not divide"),
        (["agent.action_dist=gaussian"], "needs a continuous action space"),
        (["env=pendulum", "agent.action_dist=categorical"], "needs a discrete action space"),
        (["seeds=0"], "seeds must be a positive integer"),
        (["+agent.learning_rate=0.1"], "agent.learning_rate is not a setting"),
        (["+env.overide={}"], "env.overide is not a setting"),
        (["+env.overrides.gravty=3.0"], "no parameter 'gravty'"),
    ],
)
def test_bad_configs_fail_before_compiling(tmp_path, overrides, message):
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base=None):
        cfg = compose("train", overrides=overrides)
    with pytest.raises(ValueError, match=message):
        run(cfg, tmp_path)
    assert not (tmp_path / "config.yaml").exists()


def test_every_env_config_composes_and_validates():
    from metarl.jobs.train import build_agent_config, build_env
    from metarl.meta.ppo_meta import PPOMetaSettings

    names = sorted(p.relative_to(ROOT / "configs" / "env").with_suffix("").as_posix()
                   for p in (ROOT / "configs" / "env").rglob("*.yaml"))
    assert {"cartpole", "pendulum", "breakout_minatar", "maze", "bandit", "gridworld/dense", "gridworld/sparse",
            "manipulation", "mt10"} <= set(names)
    for name in names:
        with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base=None):
            cfg = compose("train", overrides=[f"env={name}"])
            if "tasks" in cfg.env:  # a benchmark task set: an off-policy continuous-control env file
                cfg = compose("train", overrides=[f"env={name}", "agent=sac"])
            if "task_sets" in cfg.env:  # a meta-training task distribution: metarl-meta-train's, refused here
                with pytest.raises(ValueError, match="env.task_sets is for metarl-meta-train"):
                    build_env(cfg.env, "ppo")
                meta = compose("meta_train", overrides=[f"env={name}"])
                assert PPOMetaSettings.from_config(meta).tasks == dict(meta.env.task_sets)
                continue
        agent, config = build_agent_config(cfg.agent)
        _, env, params, _ = build_env(cfg.env, agent)
        config.validate(env, params)


def test_bootstrap_interval_hand_checked():
    # Two seeds: the bootstrap mean of a column is one of 1, 2 (same seed twice) or 1.5.
    mean, low, high = bootstrap_ci(np.array([[1.0, 5.0], [2.0, 5.0]]), reps=4000)
    np.testing.assert_allclose(mean, [1.5, 5.0])
    np.testing.assert_allclose(low, [1.0, 5.0])
    np.testing.assert_allclose(high, [2.0, 5.0])
    # Many seeds: the 95% interval of the mean is about mean +- 1.96 sd/sqrt(n).
    x = np.random.default_rng(0).normal(size=(400, 1))
    _, low, high = bootstrap_ci(x)
    half = 1.96 * x.std() / np.sqrt(400)
    np.testing.assert_allclose([low[0], high[0]], [x.mean() - half, x.mean() + half], atol=0.02)
