"""Continual-RL benchmark: methods x one stream, vmapped seeds, shared references.

    python scripts/continual_bench.py --benchmark ccartpole5 --steps-per-task 40960 \
        --methods finetune reset shrink_perturb redo cbp l2_init ewc --seeds 5 \
        --out outputs/continual_bench/ccartpole5

Settings come from ``configs/benchmark/<name>.yaml`` and ``configs/method/<m>.yaml``
(the same files ``metarl-continual`` composes), overridable with ``--set``.
The from-scratch single-task reference runs are computed once, on the
fine-tuning runner (no extra compilation), and reused for every method's
forward transfer. Writes ``<out>/table.md``, ``<out>/table.json``,
``<out>/<method>.npz`` (curves + diagnostics), ``<out>/task_curves.png`` and
``<out>/dormant.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import metarl.runtime

metarl.runtime.configure_cpu()  # the console scripts' CPU defaults, before JAX starts
import numpy as np
from omegaconf import OmegaConf

from metarl.continual import metrics as M
from metarl.continual.runner import ContinualRunner, evaluate_results, reference_runs
from metarl.io.outputs import jsonable
from metarl.jobs import continual as cli
from metarl.stats import bootstrap_ci, iqm_ci

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
CONFIDENCE = 0.95
SCALARS = ("average_performance", "forgetting", "forward_transfer", "forward_transfer_raw")


def load_yaml(kind: str, name: str) -> dict[str, Any]:
    path = CONFIG_DIR / kind / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in (CONFIG_DIR / kind).glob("*.yaml"))
        raise ValueError(f"unknown {kind} {name!r}; known: {', '.join(known)}")
    # OmegaConf, as Hydra reads them (PyYAML reads "1.0e4" as a string)
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True) or {}


def parse_set(pairs: list[str]) -> dict[str, dict[str, Any]]:
    """``method.ewc_coef=100`` / ``agent.lr=1e-3`` -> nested overrides."""
    out: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        if "=" not in pair or "." not in pair.split("=", 1)[0]:
            raise ValueError(f"--set expects section.key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        section, field = key.split(".", 1)
        out.setdefault(section, {})[field] = OmegaConf.to_container(OmegaConf.create(f"v: {value}"))["v"]
    return out


def build_config(args, method: str) -> dict[str, Any]:
    bench = load_yaml("benchmark", args.benchmark)
    if args.steps_per_task:
        bench["steps_per_task"] = args.steps_per_task
    sets = parse_set(args.set)
    bench["eval"] = {**bench.get("eval", {}), **({"every_steps": args.eval_every} if args.eval_every else {}),
                     **sets.get("eval", {})}
    method_cfg = {**load_yaml("method", method), **sets.get(f"method_{method}", {})}
    return {"benchmark": bench, "method": method_cfg, "agent": sets.get("agent", {}),
            "eval": {"episodes": args.eval_episodes}, "seeds": args.seeds, "seed": args.seed}


# --- summaries ---------------------------------------------------------------


def dormant_curves(diagnostics: dict[str, np.ndarray], tau: float) -> dict[str, np.ndarray]:
    """Mean τ-dormant fraction over the hidden layers of each net: ``{net: [seeds, evals]}``."""
    out = {}
    for net in ("actor", "critic"):
        keys = sorted(k for k in diagnostics if k.startswith(f"{net}/hidden_") and k.endswith(f"/dormant_{tau:g}"))
        if not keys:
            raise ValueError(f"no dormant_{tau:g} diagnostics for {net}; taus logged: 0, 0.025, 0.1")
        out[net] = np.mean([diagnostics[k] for k in keys], axis=0)
    return out


def ci(values: Any) -> dict[str, float]:
    vals = np.asarray(values, np.float64)
    if np.all(np.isnan(vals)):
        return {"mean": float("nan"), "ci_low": float("nan"), "ci_high": float("nan")}
    mean, lo, hi = bootstrap_ci(vals, reps=M.BOOTSTRAP_REPS, confidence=CONFIDENCE)
    return {"mean": mean, "ci_low": lo, "ci_high": hi}


def summarize(results: dict[str, Any], evaluation: dict[str, Any], tau: float) -> dict[str, Any]:
    per_seed = evaluation["per_seed"]
    row: dict[str, Any] = {name: ci([m[name] for m in per_seed]) for name in SCALARS}
    final = np.stack([m["final_performance"] for m in per_seed])  # [seeds, tasks]
    iqm, lo, hi = iqm_ci(final, reps=M.BOOTSTRAP_REPS, confidence=CONFIDENCE)
    row["average_performance_iqm"] = {"mean": iqm, "ci_low": lo, "ci_high": hi}
    # forward transfer of the later half of the stream (does plasticity fade?)
    ft_raw = np.stack([m["forward_transfer_raw_per_task"] for m in per_seed])  # [seeds, tasks]
    order = [task for task, _ in results["segments"]]
    late = sorted(set(order[len(order) // 2:]))
    early = sorted(set(order[: len(order) // 2]))
    row["forward_transfer_raw_early"] = ci(np.nanmean(ft_raw[:, early], axis=1))
    row["forward_transfer_raw_late"] = ci(np.nanmean(ft_raw[:, late], axis=1))
    row["forward_transfer_raw_per_task"] = np.nanmean(ft_raw, axis=0).tolist()
    row["auc_per_task"] = np.nanmean(np.stack([m["auc"] for m in per_seed]), axis=0).tolist()
    row["auc_reference_per_task"] = np.nanmean(np.stack([m["auc_reference"] for m in per_seed]), axis=0).tolist()
    dormant = dormant_curves(results["diagnostics"], tau)
    for net, curve in dormant.items():
        row[f"dormant_{net}_first_eval"] = ci(curve[:, 0])
        row[f"dormant_{net}_final"] = ci(curve[:, -1])
    row["wall_time_s"] = results["wall_time_s"]
    row["compile_counts"] = results["compile_counts"]
    return row


def _fmt(m: dict[str, float]) -> str:
    if not np.isfinite(m["mean"]):
        return "n/a"
    return f"{m['mean']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]"


def markdown_table(stream_id: str, rows: dict[str, dict[str, Any]], tau: float, seeds: int) -> str:
    lines = [
        f"**{stream_id}**, {seeds} seeds, mean [95 % bootstrap CI over seeds]; AP IQM: rliable IQM of final "
        "per-task scores (runs x tasks, stratified bootstrap).",
        "",
        "| method | avg perf | avg perf IQM | forgetting | FT (norm.) | FT (raw) | FT raw, early tasks | "
        f"FT raw, late tasks | dormant τ={tau:g} actor (end) | dormant critic (end) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for method, r in rows.items():
        cells = [method] + [_fmt(r[k]) for k in (
            "average_performance", "average_performance_iqm", "forgetting", "forward_transfer",
            "forward_transfer_raw", "forward_transfer_raw_early", "forward_transfer_raw_late",
            "dormant_actor_final", "dormant_critic_final")]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Per-task raw forward transfer (AUC − AUC_ref, mean over seeds):", "",
              "| method | " + " | ".join(f"task {i}" for i in range(len(next(iter(rows.values()))["forward_transfer_raw_per_task"]))) + " |",
              "|---|" + "---|" * len(next(iter(rows.values()))["forward_transfer_raw_per_task"])]
    for method, r in rows.items():
        lines.append(f"| {method} | " + " | ".join(f"{v:+.3f}" for v in r["forward_transfer_raw_per_task"]) + " |")
    return "\n".join(lines) + "\n"


# --- plots ---------------------------------------------------------------------


def plot_task_curves(curves: dict[str, dict[str, Any]], task_names: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(curves)
    cols = min(4, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), sharex=True, sharey=True, squeeze=False)
    cmap = plt.get_cmap("tab10")
    for ax, (method, c) in zip(axes.flat, curves.items()):
        steps, perf = c["eval_steps"], c["perf"]  # perf [seeds, evals, tasks]
        for i in range(perf.shape[2]):
            ax.plot(steps, perf[:, :, i].mean(0), color=cmap(i % 10), lw=1.0, label=f"task {i}")
        for v in M.visits(c["segments"])[:-1]:
            ax.axvline(v.end, color="grey", lw=0.6, ls="--")
        ax.set_title(method, fontsize=9)
        ax.set_ylim(-0.02, 1.02)
        ax.tick_params(labelsize=7)
    for ax in axes.flat[n:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6, loc="upper right")
    fig.supxlabel("env steps (dashed: task switch)", fontsize=8)
    fig.supylabel("score (mean over seeds)", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_dormant(curves: dict[str, dict[str, Any]], tau: float, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), sharey=True)
    cmap = plt.get_cmap("tab10")
    for j, (method, c) in enumerate(curves.items()):
        for ax, net in zip(axes, ("actor", "critic")):
            d = c["dormant"][net]  # [seeds, evals]
            ax.plot(c["eval_steps"], d.mean(0), color=cmap(j % 10), lw=1.2, label=method)
            ax.fill_between(c["eval_steps"], d.min(0), d.max(0), color=cmap(j % 10), alpha=0.08)
    first = next(iter(curves.values()))
    for ax, net in zip(axes, ("actor", "critic")):
        for v in M.visits(first["segments"])[:-1]:
            ax.axvline(v.end, color="grey", lw=0.6, ls="--")
        ax.set_title(f"{net}: τ={tau:g}-dormant fraction (hidden layers; band = seed range)", fontsize=8)
        ax.set_xlabel("env steps", fontsize=8)
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write_outputs(out, stream, agent, configs, rows, curves, ref, ref_wall, total, args, argv) -> None:
    """Table (Markdown + JSON) and figures of the methods finished so far."""
    import dataclasses

    np.savez(out / "reference.npz", ref_steps=ref[0], ref_perf=ref[1])
    record = {
        "stream": stream.id, "stream_spec": stream.spec, "segments_run": next(iter(curves.values()))["segments"],
        "seeds": args.seeds, "confidence": CONFIDENCE, "dormant_tau": args.tau,
        "argv": sys.argv[1:] if argv is None else argv,
        "reference_wall_time_s": ref_wall, "total_wall_time_s": total,
        "agent": dataclasses.asdict(agent), "methods": rows,
        "method_configs": {m: dataclasses.asdict(configs[m][2]) for m in rows},
    }
    (out / "table.json").write_text(json.dumps(jsonable(record), indent=1))
    (out / "table.md").write_text(markdown_table(stream.id, rows, args.tau, args.seeds)
                                  + f"\nTotal wall time {total:.0f}s (references {ref_wall:.0f}s).\n")
    title = f"{stream.id} ({stream.total_steps} steps, {args.seeds} seeds)"
    plot_task_curves(curves, list(stream.task_names), out / "task_curves.png", title)
    plot_dormant(curves, args.tau, out / "dormant.png", title)


# --- main ----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--benchmark", required=True, help="configs/benchmark/<name>.yaml")
    parser.add_argument("--methods", nargs="+", default=["finetune", "reset", "shrink_perturb", "redo", "cbp",
                                                          "l2_init", "ewc"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps-per-task", type=int, default=None)
    parser.add_argument("--eval-every", type=int, default=None)
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--tau", type=float, default=0.1, choices=(0.025, 0.1))
    parser.add_argument("--set", nargs="*", default=[], help="agent.lr=1e-3, eval.max_steps=100, method_ewc.ewc_coef=100")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    try:
        if args.seeds < 1:
            raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
        configs = {m: _ppo_only(cli.build(build_config(args, m))) for m in args.methods}  # fail before compiling
    except (ValueError, TypeError) as err:
        print(f"continual_bench: {err}", file=sys.stderr)
        sys.exit(2)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()

    # the fine-tuning runner serves the references (same compiled programs)
    stream, agent, _, run_cfg = next(iter(configs.values()))
    ft_args = _ppo_only(cli.build(build_config(args, "finetune")))
    ft_runner = ContinualRunner(*ft_args)
    t0 = time.time()
    ref = reference_runs(stream, agent, run_cfg, ft_runner)
    ref_wall = time.time() - t0
    print(f"references: {ref_wall:.0f}s", flush=True)

    rows, curves = {}, {}
    for method, (stream, agent, method_cfg, run_cfg) in configs.items():
        runner = ft_runner if method == "finetune" else ContinualRunner(stream, agent, method_cfg, run_cfg)
        t0 = time.time()
        results = runner.run()
        results["wall_time_s"] = time.time() - t0  # includes this runner's compilation
        evaluation = evaluate_results(results, ref)
        rows[method] = summarize(results, evaluation, args.tau)
        curves[method] = {"eval_steps": results["eval_steps"], "perf": results["perf"],
                          "segments": results["segments"], "dormant": dormant_curves(results["diagnostics"], args.tau)}
        np.savez(out / f"{method}.npz", eval_steps=results["eval_steps"], perf=results["perf"],
                 returns=results["returns"], **{f"diag/{k}": v for k, v in results["diagnostics"].items()})
        r = rows[method]
        print(f"{method}: AP {_fmt(r['average_performance'])} F {_fmt(r['forgetting'])} "
              f"FT raw {_fmt(r['forward_transfer_raw'])} ({results['wall_time_s']:.0f}s)", flush=True)
        write_outputs(out, stream, agent, configs, rows, curves, ref, ref_wall, time.time() - t_start, args, argv)


    print((out / "table.md").read_text())


def _ppo_only(built: tuple) -> tuple:
    """``(stream, agent, method, run)`` of a PPO benchmark; the SAC (Continual World) ones run through the job."""
    *config, switch = built
    if switch is not None:
        raise ValueError("continual_bench compares methods on PPO benchmarks; run SAC benchmarks with metarl-continual")
    return tuple(config)


if __name__ == "__main__":
    main()
