"""Tables and figures of SAC on the manipulation tasks from ``metarl-train agent=sac`` run directories.

    python scripts/manipulation_sac_report.py <run dir> [<run dir> ...] [--out docs/results/figures]
    python scripts/manipulation_sac_report.py <run dir> <run dir> ... --compare <name> [--pool]

For each run (5 vmapped seeds): the held-out success curve (the job's greedy
evaluations every ``agent.eval_every`` updates, success at any step of a
500-step episode) with a 95% bootstrap band over seeds, the mean of its last
three points, and a final
evaluation of every seed's final actor on the run's ``env.eval_tasks`` — one
greedy episode per task, and per class for a multi-class env (MT10). Prints
markdown tables: mean success over seeds with a 95% bootstrap CI, steps and
wall time (from the run's log when given as ``<run dir>.log``).

``--compare <name>`` is for runs of one class with different settings (the
update-to-data ratio, say): rows are labelled by run directory and ratio, and
one figure ``manipulation_sac_<name>.png`` puts every run's curve against
environment steps and against gradient steps (the compute a run spent).

``--pool`` adds one row (and, with ``--compare``, one curve) that takes the
seeds of all the runs as one sample: for runs of one config launched with
different ``seed`` values, i.e. more seeds of the same experiment. Runs whose
configs differ in anything else, or that share a ``seed``, are refused.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import metarl.runtime

metarl.runtime.configure_cpu()
import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.ticker import EngFormatter
from omegaconf import OmegaConf

import envs
from envs.wrappers import AnyStepSuccess
from metarl.agents.policy import evaluate_policy
from metarl.agents.sac_networks import actor_mean_log_std
from metarl.eval.report import plot_learning_curve
from metarl.io.outputs import load_checkpoint, pyplot
from metarl.io.run_dir import config_differences
from metarl.stats import bootstrap_ci


def eval_curve(run: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``(env steps [points], gradient steps [points], eval_success [seeds, points], env steps of the run)`` from
    ``metrics.jsonl``; gradient steps count every update's up to and including the evaluated one (none before
    ``learning_starts``)."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    total = max(r["timesteps"] for r in rows)
    seeds = sorted({r["seed"] for r in rows})
    spent = np.cumsum([r["gradient_steps"] for r in sorted((r for r in rows if r["seed"] == seeds[0]),
                                                            key=lambda r: r["update"])])
    rows = [r for r in rows if r.get("eval_success") is not None]
    updates = sorted({r["update"] for r in rows})
    table = {(r["seed"], r["update"]): r for r in rows}
    steps = np.array([table[(seeds[0], u)]["timesteps"] for u in updates])
    success = np.array([[table[(s, u)]["eval_success"] for u in updates] for s in seeds])
    return steps, spent[updates], success, total


def update_to_data(cfg) -> float:
    """Gradient steps per environment step: ``gradient_steps / (num_envs * steps_per_update)``."""
    return cfg.agent.gradient_steps / (cfg.agent.num_envs * cfg.agent.steps_per_update)


def final_success(run: Path) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Greedy success of each seed's final actor: ``(overall [seeds], class names, per class [seeds, classes])``."""
    cfg = OmegaConf.load(run / "config.yaml")
    env, _ = envs.make(cfg.env.name, **OmegaConf.to_container(cfg.env.overrides))
    tasks = envs.benchmark_tasks(cfg.env.eval_tasks)
    actors = load_checkpoint(run / "checkpoint")["actor"]
    activation = cfg.agent.activation
    n = int(tasks.task_id.shape[0])

    def act(actor, obs, key):
        return jnp.tanh(actor_mean_log_std(actor, obs, activation)[0])

    def one_seed(actor):
        out = evaluate_policy(act, actor, AnyStepSuccess(env), tasks, jax.random.key(0), n, batched_params=True)
        return out["success"]

    success = np.asarray(jax.jit(jax.vmap(one_seed))(jax.tree.map(jnp.asarray, actors)), np.float64)
    local = np.asarray(env.local_index(tasks))
    per_class = np.stack([success[:, local == i].mean(1) for i in range(len(env.task_names))], axis=1)
    return success.mean(1), [f"{name}-v3" for name in env.task_names], per_class


def wall_time(run: Path) -> str:
    """Sum of the wall times in ``<run dir>.log`` and ``<run dir>.*.log`` (a run and its resumptions, one or more
    stages per log): the shell's ``real`` lines, else the job's own "steps in <s>s incl. compile" lines."""
    logs = [run.with_suffix(".log"), *sorted(run.parent.glob(run.name + ".*.log"))]
    seconds = 0.0
    for log in (path for path in logs if path.exists()):
        text = log.read_text()
        real = re.findall(r"real\s+(\d+)m([\d.]+)s", text)
        job = re.findall(r"steps in ([\d.]+)s incl\. compile", text)
        seconds += sum(60 * int(m) + float(s) for m, s in real) if real else sum(map(float, job))
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s" if seconds else "?"


# config keys that may differ between pooled runs: where a run was written and how it was resumed or shown
POOL_FREE = ("seed", "run_dir", "resume", "allow_changes", "progress")


def check_poolable(cfgs: list) -> None:
    """Refuses runs that are not more seeds of one experiment: a config key other than ``POOL_FREE`` differs,
    or two runs share a ``seed`` (their seeds would repeat)."""
    first = OmegaConf.to_container(cfgs[0])
    for cfg in cfgs[1:]:
        differ = [path for path in config_differences(first, OmegaConf.to_container(cfg))
                  if path.split(".")[0] not in POOL_FREE]
        if differ:
            raise ValueError(f"--pool: the runs' configs differ in {differ[0]} (pool only runs that differ in seed)")
    seeds = [cfg.seed for cfg in cfgs]
    if len(set(seeds)) < len(seeds):
        raise ValueError(f"--pool: two runs share seed={max(seeds, key=seeds.count)} (their seeds would repeat)")


def plot_comparison(path: Path, curves: dict) -> Path:
    """Each run's mean success with its 95% bootstrap band, against env steps (left) and gradient steps (right)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for label, (steps, spent, curve, _) in curves.items():
        mean, low, high = bootstrap_ci(curve)
        for ax, x in zip(axes, (steps, spent)):
            ax.plot(x, mean, label=f"{label} (n={curve.shape[0]})")
            ax.fill_between(x, low, high, alpha=0.2)
    axes[0].set(xlabel="environment steps", ylabel="held-out success rate")
    axes[1].set(xlabel="gradient steps (per seed)")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_formatter(EngFormatter())  # 100k, not 100000: six-digit ticks run into each other
    axes[1].legend(loc="best", fontsize=8)
    fig.suptitle("SAC, greedy success on held-out tasks (mean over seeds, 95% CI)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def fmt(mean: float, low: float, high: float) -> str:
    return f"{mean:.2f} [{low:.2f}, {high:.2f}]"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/results/figures"))
    parser.add_argument("--compare", metavar="NAME", help="one figure of every run's curve, labelled by run and "
                        "update-to-data ratio, instead of a figure per class")
    parser.add_argument("--pool", action="store_true", help="also one row taking the seeds of all the runs (one "
                        "config, different seed values) as one sample")
    args = parser.parse_args(argv)
    cfgs = [OmegaConf.load(run / "config.yaml") for run in args.runs]
    if args.pool:
        try:
            check_poolable(cfgs)
        except ValueError as error:
            parser.exit(2, f"{error}\n")
    args.out.mkdir(parents=True, exist_ok=True)
    print("| env | held-out tasks | seeds | env steps | wall time | final greedy success [95% CI] | mean of the last "
          "3 evaluations during training [95% CI] |")
    print("|---|---|---|---|---|---|---|")
    per_class_tables = []
    curves = {}
    finals, recents, runs = [], [], []  # runs: each run's curve (same-class labels collide in curves)
    for run, cfg in zip(args.runs, cfgs):
        steps, spent, curve, total = eval_curve(run)
        overall, classes, per_class = final_success(run)
        recent = curve[:, -3:].mean(1)
        label = f"{cfg.env.name} ({run.name}, UTD {update_to_data(cfg):g})" if args.compare else cfg.env.name
        curves[label] = (steps, spent, curve, cfg.env.eval_tasks != cfg.env.tasks)  # MT10 evaluates on its training tasks
        runs.append((*curves[label], total))
        print(f"| {label} | {cfg.env.eval_tasks} | {len(overall)} | {total:,} | {wall_time(run)} | "
              f"{fmt(*bootstrap_ci(overall))} | {fmt(*bootstrap_ci(recent))} |", flush=True)
        finals.append(overall)
        recents.append(recent)
        if len(classes) > 1:
            per_class_tables.append((label, classes, per_class))
    if args.pool:
        overall, recent = np.concatenate(finals), np.concatenate(recents)
        label = f"{cfgs[0].env.name} (pooled: {' + '.join(run.name for run in args.runs)})"
        print(f"| {label} | {cfgs[0].env.eval_tasks} | {len(overall)} | {min(r[4] for r in runs):,} | - | "
              f"{fmt(*bootstrap_ci(overall))} | {fmt(*bootstrap_ci(recent))} |")
        points = min(r[2].shape[1] for r in runs)  # a run cut short has fewer evaluations
        steps, spent, _, held_out, _ = runs[0]
        pooled = np.concatenate([r[2][:, :points] for r in runs])
        if not args.compare:  # the figure per class is the pooled one
            curves, label = {}, cfgs[0].env.name
        curves[label] = (steps[:points], spent[:points], pooled, held_out)
    for label, classes, per_class in per_class_tables:
        print(f"\n{label}, final greedy success per class (50 goals each, {per_class.shape[0]} seeds):\n")
        print("| class | success [95% CI] |\n|---|---|")
        for i, name in enumerate(classes):
            print(f"| {name} | {fmt(*bootstrap_ci(per_class[:, i]))} |")
    if args.compare:
        plot_comparison(args.out / f"manipulation_sac_{args.compare}.png", curves)
        return
    for label, (steps, _, curve, held_out) in curves.items():
        legend = "SAC (greedy, held-out)" if held_out else "SAC (greedy, training tasks)"
        plot_learning_curve(args.out / f"manipulation_sac_{label}.png", steps, {legend: curve},
                            ylabel="success rate", title=f"SAC on {label}: {curve.shape[0]} seeds, 95% CI")


if __name__ == "__main__":
    main()
