"""End to end: a tiny stream with revisits, no recompilation between tasks, outputs."""

import json

import numpy as np
import pytest

from metarl.jobs import continual as cli

TINY_SPEC = {
    "name": "tiny",
    "version": 1,
    "env": "CartPole-v1",
    "tasks": {"overrides": [{"gravity": 9.8}, {"gravity": 19.6, "length": 0.25}]},
    "schedule": {"kind": "cyclic", "steps_per_task": 128, "cycles": 2},
    "score": {"kind": "range", "low": 0.0, "high": 50.0},
}
TINY_AGENT = {"num_envs": 4, "num_steps": 16, "update_epochs": 1, "num_minibatches": 1,
              "hidden_sizes": [16, 16], "anneal_lr": False}


def test_runner_end_to_end_without_recompiling(tmp_path):
    cfg = {
        "benchmark": {"spec": TINY_SPEC, "eval": {"every_steps": 64, "max_steps": 40}},
        "method": {"name": "finetune"},
        "agent": TINY_AGENT,
        "eval": {"episodes": 2},
        "seeds": 2,
        "reference": True,
    }
    record = cli.run(cfg, tmp_path)
    # 4 segments (2 revisits), 8 chunks, 8 evaluations, then 2 reference runs on the
    # same runner: every jitted program compiled exactly once
    assert record["compile_counts"] == {"init": 1, "chunk": 1, "switch": 1, "evaluate": 1}
    assert [tuple(s) for s in record["segments_run"]] == [(0, 128), (1, 128), (0, 128), (1, 128)]
    assert [e["event"] for e in record["interventions"]] == ["switch->1", "switch->0", "switch->1"]
    data = np.load(tmp_path / "results.npz")
    assert data["perf"].shape == (2, 8, 2) and np.all((data["perf"] >= 0) & (data["perf"] <= 1))
    np.testing.assert_array_equal(data["eval_steps"], np.arange(1, 9) * 64)
    assert data["ref_perf"].shape == (2, 2, 2) and np.all(np.isfinite(data["ref_perf"]))
    # scores are returns mapped through the stream's score range
    np.testing.assert_allclose(data["perf"], np.clip(data["returns"] / 50.0, 0, 1), rtol=1e-5)
    for key in ("actor/hidden_0/dormant_0.1", "critic/hidden_1/effective_rank", "actor/head/grad_norm",
                "critic/hidden_0/dist_from_init", "actor/hidden_1/stable_rank"):
        assert np.all(np.isfinite(data[f"diag/{key}"])) and data[f"diag/{key}"].shape == (2, 8)
    assert np.all(data["diag/actor/hidden_0/dist_from_init"][:, -1] > 0)  # it trained
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    for name in ("average_performance", "forgetting", "forward_transfer_raw", "final_performance_iqm"):
        m = metrics["metrics"][name]
        assert m["ci_low"] <= m["mean"] <= m["ci_high"]
    # the metrics in the record are the CW metrics of the saved curves
    from metarl.continual import metrics as M

    again = M.continual_metrics(data["eval_steps"], data["perf"][0], record["segments_run"])
    assert again["forgetting"] == pytest.approx(metrics["per_seed"][0]["forgetting"])
    assert (tmp_path / "task_curves.png").stat().st_size > 1000


def test_bad_configs_fail_with_one_line():
    base = {"benchmark": {"spec": TINY_SPEC}, "agent": TINY_AGENT}
    with pytest.raises(ValueError, match="method.name must be one of"):
        cli.build({**base, "method": {"name": "magic"}})
    with pytest.raises(ValueError, match="method.ewc_cof is not a setting"):
        cli.build({**base, "method": {"name": "ewc", "ewc_cof": 1.0}})
    with pytest.raises(ValueError, match="unknown stream"):
        cli.build({"benchmark": {"stream": "CCartPole6-v1"}})
    with pytest.raises(ValueError, match="seeds must be a positive integer"):
        cli.build({**base, "seeds": 0})
    with pytest.raises(ValueError, match="benchmark.stream"):
        cli.build({})


def test_hydra_configs_compose_for_every_method_and_benchmark():
    from pathlib import Path

    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    config_dir = Path(cli.__file__).resolve().parents[2] / "configs"
    methods = sorted(p.stem for p in (config_dir / "method").glob("*.yaml"))
    assert {"finetune", "reset", "shrink_perturb", "redo", "cbp", "l2", "l2_init", "ewc", "replay", "agem",
            "packnet"} <= set(methods)
    with initialize_config_dir(config_dir=str(config_dir), version_base=None):
        with pytest.raises(ValueError, match="method=packnet runs with SAC benchmarks"):
            cli.build(OmegaConf.to_container(compose("continual", overrides=["method=packnet"]), resolve=True))
        for method in [m for m in methods if m != "packnet"]:
            cfg = compose("continual", overrides=[f"method={method}", "seeds=2"])
            stream, agent, m, run, switch = cli.build(OmegaConf.to_container(cfg, resolve=True))
            assert m.name == method and run.seeds == 2 and stream.id == "CCartPole5-v1" and switch is None
        cfg = compose("continual", overrides=["benchmark=ccartpole5_agnostic", "benchmark.steps_per_task=1000"])
        stream, agent, _, _, _ = cli.build(OmegaConf.to_container(cfg, resolve=True))
        assert not stream.observe_task_id and stream.total_steps == 20 * 1000 and agent.anneal_lr is False
        for name, tasks in (("cw10", 10), ("cw20", 20)):  # Continual World: SAC with CW's switch resets
            cfg = compose("continual", overrides=[f"benchmark={name}", "switch.reset_buffer=false", "method=packnet"])
            stream, agent, method, run, switch = cli.build(OmegaConf.to_container(cfg, resolve=True))
            assert method.name == "packnet" and method.packnet_retrain_fraction == 0.1
            assert stream.n_tasks == tasks and type(agent).__name__ == "SACConfig" and agent.hidden_sizes == (256,) * 4
            assert switch.heads == "multi" and not switch.reset_buffer and switch.reset_optimizer
            assert run.eval_every_steps == 20_000 and run.eval_max_steps == 200


def test_cli_bad_config_exits_nonzero(tmp_path, monkeypatch, capsys):
    from metarl.cli.continual import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(["method=ewc", "+method.ewc_cof=1", f"hydra.run.dir={tmp_path}"])
    assert stop.value.code == 2
    assert "method.ewc_cof is not a setting" in capsys.readouterr().err
