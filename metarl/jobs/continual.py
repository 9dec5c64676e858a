"""``metarl-continual benchmark=ccartpole5 method=ewc seeds=3`` (Hydra).

Writes into the run directory: ``config.yaml`` (resolved), ``results.npz``
(eval steps, per-task returns and scores ``[seeds, evals, tasks]``, the
reference runs, plasticity diagnostics), ``metrics.json`` (Continual World
metrics per seed, bootstrap/IQM summary, intervention log, compile counts)
and ``task_curves.png``. A bad configuration exits non-zero with one line.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from metarl.agents.ppo import PPOConfig
from metarl.continual import metrics as M
from metarl.continual.methods import MethodConfig
from metarl.continual.runner import ContinualRunner, RunConfig, evaluate_results, reference_runs
from metarl.continual.streams import from_spec, get_stream


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return _plain(x.tolist())
    if isinstance(x, (np.floating, float)):
        return None if not np.isfinite(x) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


def _fields(cls, values: dict, where: str) -> dict:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"{where}.{unknown[0]} is not a setting (valid: {', '.join(sorted(names))})")
    return values


def build(cfg: dict) -> tuple[Any, PPOConfig, MethodConfig, RunConfig]:
    """Config dict -> (stream, agent, method, run) with one-line errors."""
    bench = dict(cfg.get("benchmark") or {})
    if bench.get("spec"):  # an inline stream spec (data), e.g. for a quick experiment
        stream = from_spec(dict(bench["spec"]))
    elif bench.get("stream"):
        stream = get_stream(str(bench["stream"]), bench.get("steps_per_task"))
    else:
        raise ValueError("benchmark.stream (a registered name) or benchmark.spec is required (e.g. benchmark=ccartpole5)")
    agent_values = {**dict(bench.get("agent") or {}), **dict(cfg.get("agent") or {})}
    agent = PPOConfig(**_fields(PPOConfig, agent_values, "agent"))
    method = MethodConfig(**_fields(MethodConfig, dict(cfg.get("method") or {}), "method"))
    ev = {**dict(bench.get("eval") or {}), **dict(cfg.get("eval") or {})}
    run_values = {
        "eval_every_steps": ev.get("every_steps", 20_000),
        "eval_episodes": ev.get("episodes", 5),
        "eval_max_steps": ev.get("max_steps", 500),
        "eval_greedy": bool(ev.get("greedy", False)),
        "obs_buffer_updates": ev.get("obs_buffer_updates", 16),
        "replay_per_task": ev.get("replay_per_task", 512),
        "seeds": cfg.get("seeds", 1),
        "seed": cfg.get("seed", 0),
    }
    run = RunConfig(**{k: (int(v) if isinstance(v, float) and v.is_integer() else v) for k, v in run_values.items()})
    run.validate()
    method.validate()
    return stream, agent, method, run


def run(cfg: dict, run_dir: Path) -> dict[str, Any]:
    stream, agent, method, run_cfg = build(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    progress = bool(cfg.get("progress", False))
    runner = ContinualRunner(stream, agent, method, run_cfg)
    results = runner.run(progress=progress)
    ref = reference_runs(stream, agent, run_cfg, runner) if cfg.get("reference", True) else None
    evaluation = evaluate_results(results, ref)
    arrays = {
        "eval_steps": results["eval_steps"],
        "returns": results["returns"],
        "perf": results["perf"],
        **{f"diag/{k}": v for k, v in results["diagnostics"].items()},
    }
    if ref is not None:
        arrays.update(ref_steps=ref[0], ref_perf=ref[1])
    np.savez(run_dir / "results.npz", **arrays)
    record = {
        "stream": stream.id,
        "stream_spec": stream.spec,
        "segments_run": results["segments"],
        "method": dataclasses.asdict(method),
        "agent": dataclasses.asdict(agent),
        "metrics": evaluation["summary"],
        "per_seed": evaluation["per_seed"],
        "interventions": results["interventions"],
        "compile_counts": runner.compile_counts(),
        "wall_time_s": results["wall_time_s"],
    }
    (run_dir / "metrics.json").write_text(json.dumps(_plain(record), indent=1))
    M.plot_task_curves(results["eval_steps"], results["perf"], results["segments"], stream.task_names,
                       str(run_dir / "task_curves.png"))
    return record


def main() -> None:
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    config_dir = Path(__file__).resolve().parents[2] / "configs"

    @hydra.main(version_base=None, config_path=str(config_dir), config_name="continual")
    def _main(cfg) -> None:
        run_dir = Path(cfg.out_dir) if cfg.get("out_dir") else Path(HydraConfig.get().runtime.output_dir)
        plain = OmegaConf.to_container(cfg, resolve=True)
        try:
            build(plain)  # fail before compiling anything
        except (ValueError, TypeError) as err:
            print(f"metarl-continual: {err}", file=sys.stderr)
            sys.exit(2)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        record = run(plain, run_dir)
        for name, m in record["metrics"].items():
            print(f"{name}: {m['mean']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]")
        print(f"run directory: {run_dir}")

    _main()


if __name__ == "__main__":
    main()
