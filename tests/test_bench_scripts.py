"""The benchmark scripts measure what the CLIs actually run."""

import dataclasses
import importlib.util
import re
import sys
from pathlib import Path

from omegaconf import OmegaConf

from metarl.agents.ppo import PPOConfig
from metarl.meta.fitness import as_env_list

ROOT = Path(__file__).resolve().parent.parent


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the script runs
    spec.loader.exec_module(module)
    return module


def test_bench_meta_times_the_default_meta_train_config():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base=None):
        cfg = compose("meta_train")
    setting = _load("bench_meta").default_setting()
    assert setting.inner == PPOConfig(**OmegaConf.to_container(cfg.inner))
    assert dataclasses.asdict(setting.fitness) == OmegaConf.to_container(cfg.fitness)
    assert setting.es.population_size == cfg.meta.population_size and setting.es.sigma == cfg.meta.sigma
    assert setting.es.strategy == cfg.meta.strategy
    assert setting.objective == OmegaConf.to_container(cfg.objective)
    assert setting.env_names == as_env_list(OmegaConf.to_container(cfg.env))
    assert setting.tasks == OmegaConf.to_container(cfg.env.task_sets)  # the same training tasks


def test_bench_runs_every_suite_script():
    bench = _load("bench")
    assert set(bench.SUITES) == {"envs", "export", "manipulation", "ppo", "meta", "devices", "continual_world",
                                 "rl2", "brax"}
    for module in bench.SUITES.values():
        assert (ROOT / "scripts" / f"{module}.py").is_file()


def test_bench_continual_world_times_the_agent_of_the_documented_cw10_runs():
    """The full bench times the SAC agent of continual_world.md's CW10 command; the rest is the cw10 benchmark's."""
    bench = _load("bench_continual_world")
    doc = (ROOT / "docs" / "results" / "continual_world.md").read_text()
    command = doc.split("metarl-continual benchmark=cw10 benchmark.steps_per_task=100000", 1)[1].split("```")[0]
    documented = dict(re.findall(r"benchmark\.agent\.(\w+)=(\S+)", command))
    documented.pop("learning_starts")  # the bench's tasks are 10x shorter, so learning starts sooner
    parsed = OmegaConf.to_container(OmegaConf.create("\n".join(f"{k}: {v}" for k, v in documented.items())))
    assert parsed == bench.CPU_RUNS_AGENT  # (OmegaConf, as the CLI, reads 3e-4 as a float)
    agent = bench._cw_agent(quick=False)
    assert all(getattr(agent, k) == (tuple(v) if isinstance(v, list) else v) for k, v in bench.CPU_RUNS_AGENT.items())
    cfg = OmegaConf.load(ROOT / "configs" / "benchmark" / "cw10.yaml").agent
    assert (agent.gamma, agent.tau) == (cfg.gamma, cfg.tau)
    assert agent.learning_starts < bench.STEPS_PER_TASK  # every task learns


def test_bench_rl2_times_the_meta_rl_jobs_settings():
    from metarl.jobs import meta_rl

    bench_rl2 = _load("bench_rl2")
    for task in bench_rl2.BENCHMARKS:
        for scale, quick in (("full", False), ("ci", True)):
            assert bench_rl2.rl2_config(task, quick) == meta_rl.build({"task": task, "scale": scale}).rl2, (task, scale)


def test_reference_ppo_has_the_suites_default_setting():
    """make bench compares the suite's PPO with scripts/ppo_reference.py on the same setting."""
    ref = dataclasses.asdict(_load("ppo_reference").Config())
    ours = dataclasses.asdict(PPOConfig())
    ours["clip"] = ours.pop("clip_eps")
    assert {k: ours[k] for k in ref} == ref
    assert PPOConfig().hidden_sizes == (64, 64) and PPOConfig().activation == "tanh" and PPOConfig().anneal_lr
