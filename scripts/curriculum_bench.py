"""Curriculum benchmark: teachers x seeds on one env, % held-out mastered over training.

    python scripts/curriculum_bench.py stumps --seeds 5 --out outputs/curricula/stumps
    python scripts/curriculum_bench.py stumps-pilot --seeds 3 --out outputs/curricula/pilot
    python scripts/curriculum_bench.py maze --seeds 5 --out outputs/curricula/maze

Suites (teacher settings come from ``configs/teacher/<name>.yaml`` plus the
overrides below):

* ``stumps``: domain randomisation, ALP-GMM and one bandit teacher
  (``--bandit``, picked with ``stumps-pilot``) on Stump Track with stump
  height in [0, 9] (TeachMyAgent's "mostly infeasible" profile); evaluated on
  the 100-task held-out set.
* ``stumps-pilot``: the bandit teachers ``exp3_alp``, ``thompson``,
  ``ucb_fast_slow`` on the same setting.
* ``maze``: DR, PLR, robust PLR, ACCEL on the 13x13 maze; zero-shot success
  on the named held-out mazes.

Writes ``results.json``, ``table.md``, ``curves.png`` and the sampling /
buffer plots into ``--out``. Training runs through ``metarl.eval.curriculum_bench``
(which builds everything with ``metarl.eval.curriculum``).
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

ROOT = Path(__file__).resolve().parent.parent
STUMPS_ENV = {"env": "stumps", "env_kwargs": {"max_height": 9.0}, "eval": {"num_tasks": 100, "max_steps": 64}}
STUMPS_RANGE = [-1.0, 2.0]  # return normalisation for ALP signals (Stump Track returns lie in about [-0.8, 2])
MAZE_ENV = {
    "env": "maze",
    "agent": {"num_envs": 32, "num_steps": 128, "lr": 3e-4, "ent_coef": 0.01, "teacher_score": "pvl"},
    "eval": {"max_steps": 250, "set": "named"},
}
PLR_MAZE = {"capacity": 1000}  # a 4000-level buffer would never reach min_fill 0.5 in this budget
BANDITS = ("exp3_alp", "thompson", "ucb_fast_slow")
SERIAL = ("alp_gmm",)  # under vmap ALP-GMM's occasional EM refit would run on every update


def teacher_config(name: str, **overrides: Any) -> dict:
    from omegaconf import OmegaConf

    path = ROOT / "configs" / "teacher" / f"{name}.yaml"
    if not path.exists():
        raise ValueError(f"no teacher config {path.name} in configs/teacher/")
    cfg = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    cfg.update(overrides)
    cfg["label"] = name
    return cfg


def suite(name: str, bandit: str) -> tuple[dict, list[dict]]:
    if name == "stumps":
        teachers = [
            teacher_config("domain_randomization"),
            teacher_config("alp_gmm", return_range=STUMPS_RANGE),
            teacher_config(bandit, return_range=STUMPS_RANGE),
        ]
        return STUMPS_ENV, teachers
    if name == "stumps-pilot":
        return STUMPS_ENV, [teacher_config(b, return_range=STUMPS_RANGE) for b in BANDITS]
    if name == "maze":
        teachers = [
            teacher_config("domain_randomization"),
            teacher_config("plr", **PLR_MAZE),
            teacher_config("robust_plr", **PLR_MAZE),
            teacher_config("accel", mutate={"name": "maze", "n_edits": 5}, **PLR_MAZE),
        ]
        return MAZE_ENV, teachers
    raise ValueError(f"unknown suite {name!r}; choose stumps, stumps-pilot or maze")


MIN_IQM_SEEDS = 5  # an IQM of fewer runs is just a trimmed mean of 1-3 values


def summarize(run: Any) -> dict:
    from metarl.stats import bootstrap_ci, iqm_ci

    final = run.mastered[:, -1]
    auc = run.mastered.mean(axis=1)  # mean % mastered over the evaluation points
    row = {
        "teacher": run.teacher,
        "seeds": int(final.size),
        "final_mastered": bootstrap_ci(final),
        "mean_over_training": bootstrap_ci(auc),
        "final_test_return": bootstrap_ci(run.test_return[:, -1]),
        "final_mastered_iqm": iqm_ci(final) if final.size >= MIN_IQM_SEEDS else None,
        "train_seconds": round(run.train_seconds, 1),
        "eval_seconds": round(run.eval_seconds, 1),
        "timesteps": run.timesteps.tolist(),
        "mastered_per_seed": run.mastered.tolist(),
        "test_return_per_seed": run.test_return.tolist(),
        "per_task_mastered_final": run.per_task_mastered.tolist(),
    }
    return row


def _fmt(ci: Any, scale: float = 100.0, digits: int = 1) -> str:
    if ci is None:
        return "n/a"
    mean, low, high = (scale * v for v in ci)
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def markdown_table(rows: list[dict], what: str) -> str:
    lines = [
        f"| teacher | seeds | final {what} % (95% CI) | IQM % (95% CI) | mean over training % | test return | train s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['teacher']} | {r['seeds']} | {_fmt(r['final_mastered'])} | {_fmt(r['final_mastered_iqm'])} | "
            f"{_fmt(r['mean_over_training'])} | {_fmt(r['final_test_return'], 1.0, 3)} | {r['train_seconds']} |"
        )
    return "\n".join(lines) + "\n"


def plot_extras(suite_name: str, cfg_env: dict, teachers: list[dict], runs: list, out: Path) -> list[str]:
    from metarl.eval import curriculum_plots as plots
    from metarl.eval.curriculum import build, resolve_config

    written = []
    for tcfg, run in zip(teachers, runs):
        _, agent, _ = build(resolve_config({**cfg_env, "teacher": tcfg}))
        label = tcfg["label"]
        if suite_name.startswith("stumps"):
            path = out / f"samples_{label}.png"
            plots.plot_task_samples(agent.teacher, agent.env, run, path)
            written.append(str(path))
            if tcfg["name"] == "bandit":
                path = out / f"arms_{label}.png"
                plots.plot_arm_probabilities(agent.teacher, run, path)
                written.append(str(path))
        elif tcfg["name"] in ("plr", "robust_plr", "accel"):
            path = out / f"buffer_{label}.png"
            plots.plot_buffer(run, path)
            written.append(str(path))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite", choices=["stumps", "stumps-pilot", "maze"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--segments", type=int, default=10, help="evaluation points after the initial one")
    parser.add_argument("--timesteps", type=int, default=None, help="env steps per run (suite default otherwise)")
    parser.add_argument("--bandit", default="exp3_alp", choices=BANDITS, help="bandit teacher of the stumps suite")
    parser.add_argument("--teachers", default=None, help="comma-separated labels: run only these of the suite")
    parser.add_argument("--eval-set", choices=["default", "named"], default=None,
                        help="maze: named held-out mazes (default) or 100 DR levels drawn with seed 31")
    parser.add_argument("--out", default="outputs/curricula/run")
    args = parser.parse_args(argv)
    try:
        if args.seeds < 1:
            raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
        cfg_env, teachers = suite(args.suite, args.bandit)
        if args.teachers:
            wanted = args.teachers.split(",")
            unknown = sorted(set(wanted) - {t["label"] for t in teachers})
            if unknown:
                raise ValueError(f"--teachers {unknown} not in suite {args.suite}")
            teachers = [t for t in teachers if t["label"] in wanted]
        if args.eval_set is not None:
            cfg_env = {**cfg_env, "eval": {**cfg_env.get("eval", {}), "set": args.eval_set}}
        default_steps = 1_000_000 if args.suite == "maze" else 100_000
        steps = args.timesteps or default_steps
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    from metarl.eval import curriculum_plots as plots
    from metarl.eval.curriculum_bench import run_segmented

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    runs, rows = [], []
    for tcfg in teachers:
        cfg = {**cfg_env, "agent": {**cfg_env.get("agent", {}), "total_timesteps": steps}, "teacher": tcfg}
        t0 = time.perf_counter()
        run = run_segmented(cfg, list(range(args.seeds)), args.segments, vmap_seeds=tcfg["name"] not in SERIAL)
        runs.append(run)
        rows.append(summarize(run))
        print(
            f"{run.teacher}: final mastered {_fmt(rows[-1]['final_mastered'])} %, "
            f"{time.perf_counter() - t0:.0f} s",
            flush=True,
        )
    what = "solved" if args.suite == "maze" else "mastered"
    title = f"{args.suite}: {args.seeds} seeds, 95% bootstrap CI"
    plots.plot_curves(runs, out / "curves.png", title, f"% held-out {what}")
    figures = plot_extras(args.suite, cfg_env, teachers, runs, out)
    wall = time.perf_counter() - started
    report = {
        "suite": args.suite,
        "command": " ".join(["python", "scripts/curriculum_bench.py", *(argv if argv is not None else sys.argv[1:])]),
        "env": cfg_env,
        "timesteps": steps,
        "wall_seconds": round(wall, 1),
        "teachers": rows,
        "figures": ["curves.png", *[Path(f).name for f in figures]],
    }
    (out / "results.json").write_text(json.dumps(report, indent=1))
    (out / "table.md").write_text(markdown_table(rows, what))
    print(markdown_table(rows, what))
    print(f"wall {wall:.0f} s; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
