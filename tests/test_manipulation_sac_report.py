"""scripts/manipulation_sac_report.py on hand-written run directories: the curves, compute axis, wall time and
tables it reports are the ones the runs hold; scripts/manipulation_sac_probe.py's rollouts show the mocap."""

import importlib.util
import json
from pathlib import Path

import jax
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from envs.manipulation import world
from metarl.agents.sac_networks import init_actor
from metarl.io.outputs import save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SEEDS = 2
# success of each seed at the evaluations after updates 1, 3 and 5 (updates 0-1 collect random data only)
EVAL_SUCCESS = {1: [0.0, 0.0], 3: [0.2, 0.4], 5: [0.6, 1.0]}


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def report():
    return _script("manipulation_sac_report")


@pytest.fixture(scope="module")
def probe():
    return _script("manipulation_sac_probe")


def _write_run(run: Path, gradient_steps: int, log: str, seed: int = 0) -> Path:
    """A 6-update reach-v3 run of 2 envs x 4 steps per update, ``gradient_steps`` per update from update 2."""
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base=None):
        cfg = compose("train", overrides=["agent=sac", "env=manipulation", "env.name=reach-v3", "agent.num_envs=2",
                                          "agent.steps_per_update=4", f"agent.gradient_steps={gradient_steps}",
                                          "agent.hidden_sizes=[8,8]", f"seeds={SEEDS}", f"seed={seed}"])
    run.mkdir()
    OmegaConf.save(cfg, run / "config.yaml", resolve=True)
    rows = [{"seed": s, "update": u, "timesteps": 8 * (u + 1), "gradient_steps": gradient_steps if u >= 2 else 0,
             "eval_success": EVAL_SUCCESS[u][s] if u in EVAL_SUCCESS else None}
            for u in range(6) for s in range(SEEDS)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    keys = jax.random.split(jax.random.key(0), SEEDS)
    actors = jax.vmap(lambda k: init_actor(k, 39, 4, (8, 8), False, 0))(keys)
    save_checkpoint(run / "checkpoint", {"actor": actors})
    run.with_suffix(".log").write_text(log)
    return run


def test_curves_gradient_steps_and_wall_time_come_from_the_run(report, tmp_path):
    # a log with a run and its resumption: both stages' times count
    run = _write_run(tmp_path / "a", 3, "real\t1m30.000s\nuser\t1m0s\n...\nreal\t2m0.500s\n")
    steps, spent, success, total = report.eval_curve(run)
    assert steps.tolist() == [16, 32, 48] and total == 48
    assert spent.tolist() == [0, 6, 12]  # gradient steps up to and including updates 1, 3, 5
    np.testing.assert_array_equal(success, np.array(list(EVAL_SUCCESS.values())).T)
    assert report.wall_time(run) == "3 min 30 s"
    assert report.update_to_data(OmegaConf.load(run / "config.yaml")) == 3 / 8
    no_shell = _write_run(tmp_path / "b", 3, "1000 steps in 12.0s incl. compile\n2000 steps in 20.0s incl. compile\n")
    assert report.wall_time(no_shell) == "0 min 32 s"  # without `time`, the job's own lines


def test_table_and_figures_one_per_class_or_one_comparison(report, tmp_path, capsys):
    runs = [_write_run(tmp_path / name, gs, "real\t0m10.000s\n") for name, gs in (("utd_low", 2), ("utd_high", 8))]
    report.main([str(runs[0]), "--out", str(tmp_path / "figs")])
    table = capsys.readouterr().out.splitlines()
    row = next(line for line in table if line.startswith("| reach-v3 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:5] == ["reach-v3", "MT1:reach-v3:test", "2", "48", "0 min 10 s"]
    final_mean = float(cells[5].split()[0])
    assert 0.0 <= final_mean <= 1.0  # the untrained actors, scored on the 50 held-out goals
    assert cells[6].startswith("0.37 [")  # last three evaluations: seed 0 (0 + .2 + .6) / 3, seed 1 (0 + .4 + 1) / 3
    assert (tmp_path / "figs" / "manipulation_sac_reach-v3.png").read_bytes()[:4] == b"\x89PNG"

    report.main([*map(str, runs), "--compare", "utd", "--out", str(tmp_path / "cmp")])
    out = capsys.readouterr().out
    assert "| reach-v3 (utd_low, UTD 0.25) |" in out and "| reach-v3 (utd_high, UTD 1) |" in out
    assert [p.name for p in (tmp_path / "cmp").iterdir()] == ["manipulation_sac_utd.png"]


def test_pool_takes_the_seeds_of_runs_of_one_config_and_refuses_other_runs(report, tmp_path, capsys):
    a, b = (_write_run(tmp_path / name, 2, "real\t0m10.000s\n", seed=seed) for name, seed in (("a", 0), ("b", 1)))
    report.main([str(a), str(b), "--pool", "--out", str(tmp_path / "figs")])
    row = next(line for line in capsys.readouterr().out.splitlines() if "pooled" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:4] == ["reach-v3 (pooled: a + b)", "MT1:reach-v3:test", str(2 * SEEDS), "48"]
    assert cells[6].startswith("0.37 [")  # the four seeds' last three evaluations, two of each value
    assert [p.name for p in (tmp_path / "figs").iterdir()] == ["manipulation_sac_reach-v3.png"]

    other_setting = _write_run(tmp_path / "c", 8, "", seed=2)
    same_seed = _write_run(tmp_path / "d", 2, "", seed=0)
    for run, problem in ((other_setting, "differ in agent.gradient_steps"), (same_seed, "share seed=0")):
        with pytest.raises(SystemExit) as exit_:
            report.main([str(a), str(run), "--pool", "--out", str(tmp_path / "no")])
        assert exit_.value.code == 2 and problem in capsys.readouterr().err
    assert not (tmp_path / "no").exists()  # refused before anything is computed or written


def test_probe_shows_the_mocap_the_actions_wound_up(probe, tmp_path, capsys):
    run = _write_run(tmp_path / "a", 3, "")
    out = probe.greedy_rollouts(run, 1, 2)
    assert out["obs"].shape == (2, 500, 39) and out["mocap"].shape == (2, 500, 3)
    # Meta-World's set_xyz_action: the mocap starts at the hand and adds action / 100 each step, clipped to the
    # hand bounds (reach has no wall to hold the hand, so only the clip and the hand's lag separate them)
    before = np.concatenate([out["obs"][:, :1, :3], out["mocap"][:, :-1]], axis=1)
    step = world.ACTION_SCALE * np.clip(out["action"][..., :3], -1, 1)
    np.testing.assert_allclose(out["mocap"], np.clip(before + step, world.HAND_LOW, world.HAND_HIGH), atol=1e-6)
    assert np.abs(out["mocap"][:, -1] - out["obs"][:, -1, :3]).max() < 0.05  # the unblocked hand follows it
    probe.main([str(run), "--seeds", "1", "--tasks", "1", "--steps", "0", "499"])
    printed = capsys.readouterr().out.splitlines()
    assert printed[1].startswith("  t=  0") and "mocap-hand [0. 0. 0.]" in printed[1]
    gap = out["mocap"][0, 498] - out["obs"][0, 499, :3]
    assert f"mocap-hand {np.array2string(gap, precision=3, suppress_small=True)}" in printed[2]
