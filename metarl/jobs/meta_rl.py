"""Job ``meta_rl`` (``metarl-meta-rl``): RL² meta-trained on a benchmark, evaluated in context on held-out tasks.

    metarl-meta-rl task=bandit-k5-n10-v1 seeds=5
    metarl-meta-rl task=dark-room-v1 seeds=5 +agent.cell=lstm
    metarl-meta-rl task=bandit-k2-dependent-v1 scale=ci seeds=2       # the test suite's budget
    metarl-meta-rl task=dark-room-v1 teacher=plr seeds=5              # PLR over the 64 training goals
    metarl-meta-rl task=ml1-reach-v1 seeds=5                          # Meta-World ML1 on the manipulation family

Benchmarks are versioned data (:mod:`metarl.in_context.benchmarks`): env, trial shape (k episodes of
H steps), held-out tasks, RL² settings and a ``ci`` scale. Training runs ``num_trials`` PPO updates
(one trial per env each) in chunks of ``chunk_trials``, seeds vmapped; then each seed's policy plays
one trial per held-out task (``eval.repeats`` times), its carry kept across the episodes.

``teacher=<name>`` (the ``configs/teacher/`` group, :func:`curricula.factory.make_teacher`) picks each
trial's training tasks; without one they come uniformly from the training goals of a goal split, else
from the env's sampler. A teacher sees the training goals only; which teachers work on which benchmark
(and the one-line refusals) is :mod:`metarl.in_context.teachers`.

Writes into the run directory: ``config.yaml``, ``metrics.jsonl`` (one row per chunk and seed: trial
return and the return of each episode, mean over the chunk's trials; PPO losses), ``summary.json``
(held-out trial return per seed with its mean and 95% bootstrap interval over seeds; the in-context
curve — the return of episode 1..k, or the reward of pull 1..n of a one-episode bandit trial — with
intervals; for bandits UCB1, Thompson, Gittins, random and oracle on the same tasks (intervals over
tasks), for Dark Room the optimal return, for the Meta-World benchmarks the success rate of each episode on
training and held-out tasks, meta-train and meta-test; for benchmarks of k > 1 episodes PPO trained from scratch on
each held-out task with one trial's steps (``eval.scratch_ppo``, :mod:`metarl.eval.scratch_ppo`), intervals over
its runs; wall time and steps/s), ``report.md`` (the tables) and
``in_context_curve.png``; with a teacher, what it sampled over training (summary ``teacher.sampled``, a table in
the report and ``task_distribution.png``). Checkpoints (the teacher's state included) every ``checkpoint_every``
chunks; ``resume=true`` continues bit for bit.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from metarl.agents import rl2
from metarl.agents.rl2 import LOSS_NAMES
from metarl.agents.rl2_config import RL2Config, trial_layout
from metarl.config import as_int, build_dataclass, check_bool, check_choice, check_keys, plain, positive_int
from metarl.eval import bandit_baselines
from metarl.eval.curriculum import check_teacher
from metarl.eval.report import plot_learning_curve
from metarl.eval.scratch_ppo import scratch_ppo
from metarl.in_context import benchmarks, runner, teachers
from metarl.in_context import tasks as task_sets
from metarl.io import tracking
from metarl.io.checkpoint import ESCheckpointer
from metarl.io.outputs import ProgressBar, jsonable, write_config
from metarl.io.progress import append_records, read_log, truncate_log
from metarl.jobs.registry import Job, register
from metarl.stats import bootstrap_ci

CHECKPOINTS, METRICS, FIGURE = "checkpoints", "metrics.jsonl", "in_context_curve.png"
TASK_FIGURE = "task_distribution.png"
EVAL_KEYS = ("greedy", "tasks", "repeats", "baselines", "scratch_ppo")
BASELINE_ORDER = ("gittins", "thompson", "ucb1", "random", "oracle")  # as the headline and the table show them
BASELINE_NAMES = {"gittins": "Gittins", "thompson": "Thompson", "ucb1": "UCB1", "random": "random", "oracle": "oracle",
                  "optimal": "optimum"}
BASELINE_STREAM = 2  # folded into PRNGKey(seed) (training and evaluation: metarl.in_context.runner's streams)


@dataclasses.dataclass(frozen=True)
class MetaRLRun:
    """The resolved settings of one run."""

    bench: benchmarks.InContextBenchmark
    scale: str
    rl2: RL2Config
    seeds: int
    seed: int
    chunk_trials: int
    test_tasks: int  # held-out tasks
    repeats: int  # evaluation trials per held-out task
    greedy: bool
    baselines: tuple[str, ...]  # the bandit baselines run (a bandit benchmark's); () for an optimal-return one
    scratch_ppo: bool = False  # PPO from scratch on each held-out task with a trial's steps (metarl.eval.scratch_ppo)
    teacher: dict | None = None  # the resolved teacher config (metarl.in_context.teachers); None: the default tasks

    @property
    def chunks(self) -> int:
        return self.rl2.num_trials // self.chunk_trials


def build(cfg: Any) -> MetaRLRun:
    """Config -> resolved settings, with one-line errors and nothing compiled."""
    cfg = plain(cfg)
    bench = benchmarks.get(cfg.get("task"))
    scale = check_choice(cfg.get("scale", "full"), "scale", ("full", "ci"))
    ci = scale == "ci"
    seeds = positive_int(cfg.get("seeds", 1), "seeds")
    seed = as_int(cfg.get("seed", 0), "seed")
    agent = check_keys(cfg.get("agent"), [f.name for f in dataclasses.fields(RL2Config)], "agent")
    rl2 = build_dataclass(RL2Config, {**bench.rl2_settings(ci), **agent}, "agent")
    env, env_params = benchmarks.make_env(bench)
    trial_layout(rl2, env, env_params)  # bptt_chunk divides the trial
    chunk = cfg.get("chunk_trials")
    chunk = bench.chunk(ci) if chunk is None else positive_int(chunk, "chunk_trials")
    if rl2.num_trials % chunk:
        raise ValueError(f"agent.num_trials={rl2.num_trials} is not a multiple of chunk_trials={chunk} "
                         "(training runs in whole chunks)")
    evaluation = check_keys(cfg.get("eval"), EVAL_KEYS, "eval")
    greedy = check_bool(evaluation.get("greedy", False), "eval.greedy")
    tasks = evaluation.get("tasks")
    if tasks is not None:
        tasks = positive_int(tasks, "eval.tasks")
        if bench.held_out == "goals":
            raise ValueError(f"eval.tasks={tasks}: {bench.id} holds out a fixed split of {bench.test_tasks} goals; "
                             "eval.tasks sets the number of sampled held-out tasks (eval.repeats plays each more "
                             "often)")
    repeats = evaluation.get("repeats")
    repeats = bench.repeats(ci) if repeats is None else positive_int(repeats, "eval.repeats")
    baselines = evaluation.get("baselines")
    if bench.baselines == "bandit":
        baselines = BASELINE_ORDER if baselines is None else _bandit_policies(baselines)
    elif baselines:
        scored = "its optimal return" if bench.baselines == "optimal" else "its success rates"
        raise ValueError(f"eval.baselines={baselines}: {bench.id} is scored against {scored}; the bandit "
                         "baselines apply to bandit tasks (leave eval.baselines null)")
    else:
        baselines = ()
    scratch = evaluation.get("scratch_ppo")
    multi_episode = bench.episodes_per_trial > 1
    scratch = multi_episode if scratch is None else check_bool(scratch, "eval.scratch_ppo")
    if scratch and not multi_episode:
        raise ValueError(f"eval.scratch_ppo=true: {bench.id}'s trial is one episode, so PPO from scratch would "
                         "never update within it (its bandit baselines are the learners to compare with)")
    task_sets.check_split(bench, env)
    teacher = cfg.get("teacher")
    if teacher is not None:
        teachers.check_name(teacher)
        check_teacher(teacher)  # its options' names, types and ranges, as metarl-curriculum checks them
        teacher = teachers.resolve(teacher, bench, env, task_sets.training_tasks(bench, env))
    if cfg.get("checkpoint_every") is not None:
        positive_int(cfg.get("checkpoint_every"), "checkpoint_every")
    return MetaRLRun(bench, scale, rl2, seeds, seed, chunk, bench.num_test_tasks(ci) if tasks is None else tasks,
                     repeats, greedy, baselines, scratch, teacher)


def _bandit_policies(value: Any) -> tuple[str, ...]:
    """``eval.baselines``: a list of bandit policies (each once), shown in :data:`BASELINE_ORDER`."""
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"eval.baselines must be a list of bandit policies ({', '.join(BASELINE_ORDER)}), "
                         f"got {value!r}")
    for name in value:
        check_choice(name, "eval.baselines", BASELINE_ORDER)
    return tuple(name for name in BASELINE_ORDER if name in value)


# --- training ---------------------------------------------------------------------------------------------
def _rows(metrics: dict[str, np.ndarray], chunk: int, trials: int, success: bool = False) -> list[dict]:
    """One row per seed: the chunk's trials averaged (with the success rate of each episode when ``success``)."""
    rows = []
    for s in range(metrics["trial_return"].shape[0]):
        row = {"chunk": chunk, "seed": s, "trials": trials, "timesteps": int(metrics["timesteps"][s, -1]),
               "trial_return": float(np.mean(metrics["trial_return"][s])),
               "episode_returns": [float(v) for v in np.mean(metrics["episode_returns"][s], axis=0)]}
        row.update({name: float(np.mean(metrics[name][s])) for name in LOSS_NAMES})
        if success:
            row["episode_success"] = [float(v) for v in np.mean(metrics["episode_success"][s], axis=0)]
        rows.append(row)
    return rows


def _train(spec: MetaRLRun, prog: runner.Programs, run_dir: Path, cfg: dict) -> tuple[Any, int]:
    """The trained states (seed axis first), from a checkpoint where ``resume`` finds one, and the number of
    chunks this call trained."""
    every = positive_int(cfg.get("checkpoint_every", 1), "checkpoint_every")
    seed, index = np.int32(spec.seed), np.arange(spec.seeds, dtype=np.int32)
    checkpointer = ESCheckpointer(run_dir / CHECKPOINTS, max_to_keep=2)
    steps_per_trial = spec.rl2.num_envs * prog.layout.trial_steps
    done = resumed_at = 0
    bar = ProgressBar(spec.rl2.num_trials, f"{spec.bench.id} RL2 x{spec.seeds}", unit="trial") \
        if cfg.get("progress", True) else None
    try:
        if cfg.get("resume") and checkpointer.latest_generation() is not None:
            done, states, _ = checkpointer.restore(jax.eval_shape(prog.init, seed, index))  # the template: no compile
            resumed_at = done
            # as host arrays: orbax's are committed to a device, which would make the programs trace and compile anew
            states = jax.tree.map(np.asarray, states)
        else:
            states = prog.init(seed, index)
        truncate_log(run_dir / METRICS, done, key="chunk")  # rows past the checkpoint are redone
        tracking.restart_at(done * spec.chunk_trials * steps_per_trial)  # tracker steps are env steps per seed
        if bar:
            bar.callback(done * spec.chunk_trials)
        while done < spec.chunks:
            states, metrics = prog.chunk(states)
            metrics = {k: np.asarray(v) for k, v in jax.device_get(metrics).items()}
            rows = _rows(metrics, done, (done + 1) * spec.chunk_trials, spec.bench.baselines == "success")
            append_records(run_dir / METRICS, rows)
            means = {k: float(np.mean([r[k] for r in rows])) for k in ("trial_return", *LOSS_NAMES)}
            means.update({f"episode_{j + 1}": float(v) for j, v in
                          enumerate(np.mean([r["episode_returns"] for r in rows], axis=0))})
            tracking.log("meta_rl", rows[0]["timesteps"], means)  # the mean over seeds
            done += 1
            if done % every == 0 or done == spec.chunks:
                checkpointer.save(done, states, {"chunks_done": done})
            if bar:
                bar.callback(done * spec.chunk_trials)
    finally:
        checkpointer.close()
        if bar:
            bar.close()
    return states, done - resumed_at


# --- evaluation -------------------------------------------------------------------------------------------
def _interval(values: np.ndarray) -> dict:
    mean, low, high = bootstrap_ci(values)
    return {"mean": mean, "ci_low": low, "ci_high": high}


def _curve(x: np.ndarray, per_seed: np.ndarray, unit: str) -> dict:
    return {"unit": unit, "x": x.tolist(), **{k: np.asarray(v).tolist() for k, v in _interval(per_seed).items()}}


def _baselines(spec: MetaRLRun, env: Any, test: Any, repeated: Any, rl2_per_task: np.ndarray) -> tuple[dict, dict]:
    """``(rows by method: total reward over the trial, 95% CI over tasks; reference lines per curve point)``. Bandit
    rows also hold ``rl2_minus``: RL2's total (mean over seeds) minus the method's on each held-out task, with its 95%
    CI over tasks (a paired comparison: the task-to-task spread that widens both rows' own intervals cancels)."""
    k, horizon = spec.rl2.episodes_per_trial, spec.bench.horizon
    if spec.bench.baselines == "bandit":
        means = np.asarray(repeated.arm_means)
        key = jax.random.fold_in(jax.random.PRNGKey(spec.seed), BASELINE_STREAM)  # the same key for every method
        rows = {}
        if spec.baselines:
            totals = jax.device_get(bandit_baselines.run_many(spec.baselines, means, key, k * horizon))  # one compile
            rows = {policy: {**_interval(np.asarray(totals[policy])), "ci_over": "tasks", "n": int(totals[policy].size),
                             "rl2_minus": _interval(rl2_per_task - np.asarray(totals[policy], np.float64))}
                    for policy in spec.baselines}
        per_step = {"oracle": float(np.mean(means.max(axis=1))), "random": float(np.mean(means.mean(axis=1)))}
        return rows, per_step
    if spec.bench.baselines == "success":
        return {}, {}
    optimum = np.asarray(env.optimal_return(test), np.float64)  # per held-out task, one episode
    rows = {"optimal": {**_interval(k * optimum), "ci_over": "tasks", "n": int(optimum.size),
                        "per_episode": float(optimum.mean()), "per_task_episode": optimum.tolist()}}
    return rows, {"optimum": float(optimum.mean()) / horizon}


def evaluate(spec: MetaRLRun, prog: runner.Programs, params: Any) -> dict:
    """The held-out evaluation as summary entries (no files)."""
    bench, k = spec.bench, spec.rl2.episodes_per_trial
    test, repeated = runner.held_out_tasks(bench, prog.env, spec.scale == "ci", spec.test_tasks, spec.repeats)
    out = jax.device_get(prog.evaluate(params, repeated, np.int32(spec.seed), np.arange(spec.seeds, dtype=np.int32)))
    episodes = np.asarray(out["episode_returns"], np.float64).mean(axis=1)  # [seeds, k]
    steps = np.asarray(out["step_rewards"], np.float64)  # [seeds, T]
    trial = steps.sum(axis=1)
    if k > 1:
        curve = _curve(np.arange(1, k + 1), episodes, "episode")
    else:
        curve = _curve(np.arange(1, steps.shape[1] + 1), steps, bench.step_name)
    rl2_per_task = np.asarray(out["episode_returns"], np.float64).sum(axis=2).mean(axis=0)  # [tasks x repeats]
    baselines, per_step = _baselines(spec, prog.env, test, repeated, rl2_per_task)
    scale = bench.horizon if curve["unit"] == "episode" else 1  # reference lines per curve point
    table = [{"method": f"RL2 ({spec.rl2.cell})", **_interval(trial), "ci_over": "seeds", "n": spec.seeds}]
    table += [{"method": BASELINE_NAMES.get(name, name), **{key: row[key] for key in
               ("mean", "ci_low", "ci_high", "ci_over", "n")}} for name, row in baselines.items()]
    scratch = _scratch_ppo(spec, prog, repeated) if spec.scratch_ppo else None
    if scratch is not None:
        table.append({"method": f"PPO from scratch ({k} x {bench.horizon} steps per task)",
                      **scratch["trial_return"], "ci_over": "runs", "n": scratch["n"]})
    held_out = {"kind": bench.held_out, "tasks": spec.test_tasks, "repeats": spec.repeats, "greedy": spec.greedy}
    extra = {}
    if bench.baselines == "success":
        meta_world = benchmarks.meta_world(bench)
        held_out.update(benchmark=bench.meta_world, test_classes=list(meta_world.test_classes or
                                                                      meta_world.train_classes))
        test_success = np.asarray(out["episode_success"], np.float64)  # [seeds, runs, k]
        train_success, train_tasks = _train_success(spec, prog, params)
        extra["success"] = {"meta_test": _success_entry(test_success, _class_names(repeated)),
                            "meta_train": _success_entry(train_success, _class_names(train_tasks))}
        if scratch is not None:
            extra["success"]["scratch_ppo"] = scratch.pop("success")
    if bench.held_out == "goals":
        held_out["goals"] = np.asarray(test.goal).tolist()
        held_out["train_goals"] = int(np.asarray(prog.train_tasks.goal).shape[0])
    return {
        "trial_return": {**_interval(trial), "per_seed": trial.tolist(), "n_seeds": spec.seeds},
        "episode_returns": {k: np.asarray(v).tolist() for k, v in _interval(episodes).items()},
        "curve": curve,
        "baselines": baselines,
        "reference": {name: value * scale for name, value in per_step.items()},
        "table": table,
        "held_out": held_out,
        "curves": {"rl2": episodes if k > 1 else steps,
                   **({"scratch_ppo": scratch.pop("curve")} if scratch is not None else {})},
        **extra,
        **({"scratch_ppo": scratch} if scratch is not None else {}),
    }


def _scratch_ppo(spec: MetaRLRun, prog: runner.Programs, repeated: Any) -> dict:
    """PPO from scratch on every held-out task (and repeat) with one trial's steps: its per-episode curve and trial
    return with 95% CIs over those runs (PPO's defaults, one env, one update per episode)."""
    k, horizon = spec.rl2.episodes_per_trial, spec.bench.horizon
    key = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(spec.seed), BASELINE_STREAM), 1)
    tasks = rl2.with_horizon(jax.tree.map(jax.numpy.asarray, repeated), horizon)
    out = jax.device_get(scratch_ppo(prog.env, prog.env_params, tasks, k, horizon, key))
    returns = np.asarray(out["episode_returns"], np.float64)  # [runs, k]
    success = np.asarray(out["episode_success"], np.float64)
    return {"n": int(returns.shape[0]), "steps_per_task": k * horizon, "curve": returns,
            "trial_return": _interval(returns.sum(axis=1)),
            "episode_returns": {name: np.asarray(v).tolist() for name, v in _interval(returns).items()},
            "success": {"per_episode": {name: np.asarray(v).tolist() for name, v in _interval(success).items()},
                        "ci_over": "runs"}}


def _success_entry(runs: np.ndarray, classes: np.ndarray) -> dict:
    """Success per episode of the trial from ``[seeds, runs, k]`` flags: the curve and the last episode's rate (after
    k - 1 episodes in context: Meta-World's adapted success), each with its 95% CI over seeds, and the last episode's
    rate per task class (``classes``: the class name of each run)."""
    per_seed = runs.mean(axis=1)
    return {"per_episode": {key: np.asarray(v).tolist() for key, v in _interval(per_seed).items()},
            "last_episode": {**_interval(per_seed[:, -1]), "per_seed": per_seed[:, -1].tolist()},
            "per_class": _per_class(runs[:, :, -1], classes)}


def _per_class(last: np.ndarray, classes: np.ndarray) -> dict:
    """``{class: last-episode success, 95% CI over seeds}`` from ``[seeds, runs]`` flags, classes in first-seen order."""
    names = list(dict.fromkeys(classes.tolist()))
    return {name: _interval(last[:, classes == name].mean(axis=1)) for name in names}


def _class_names(tasks: Any) -> np.ndarray:
    """The Meta-World class name of each task of a (repeated) manipulation task batch."""
    from envs.manipulation.task_registry import TASK_NAMES

    return np.asarray(TASK_NAMES)[np.asarray(tasks.task_id)]


def _train_success(spec: MetaRLRun, prog: runner.Programs, params: Any) -> tuple[np.ndarray, Any]:
    """``([seeds, runs, k] success flags, the tasks)`` on as many training tasks as held-out ones (evenly spaced),
    same repeats."""
    train = task_sets.repeat_tasks(task_sets.evenly(prog.train_tasks, spec.test_tasks), spec.repeats)
    out = jax.device_get(prog.evaluate(params, train, np.int32(spec.seed), np.arange(spec.seeds, dtype=np.int32)))
    return np.asarray(out["episode_success"], np.float64), train


# --- the teacher ------------------------------------------------------------------------------------------
def _teacher_option() -> str | None:
    """The ``teacher=`` option of the running Hydra app (``exp3_alp`` for a teacher named ``bandit``), if any."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    choice = HydraConfig.get().runtime.choices.get("teacher")
    return None if choice is None else str(choice)


def _teacher_entry(spec: MetaRLRun, prog: runner.Programs, states: Any, cfg: dict) -> dict:
    """``summary["teacher"]``: the teacher and, for a chosen one, what it sampled over training."""
    if spec.teacher is None:
        tasks = (f"uniform over the {np.asarray(jax.tree.leaves(prog.train_tasks)[0]).shape[0]} training tasks"
                 if prog.train_tasks is not None else "the env's task sampler")
        return {"name": "domain_randomization", "chosen": False, "tasks": tasks}
    given = cfg.get("teacher") or {}
    adapted = {key: ("the training goals" if key == "arms" else value) for key, value in spec.teacher.items()
               if given.get(key) != value}  # what the benchmark changed (teachers.resolve)
    entry = {"name": spec.teacher["name"], "chosen": True, "config": given, "adapted": adapted,
             "sampled": teachers.sampled(prog.teacher, jax.device_get(states.teacher_state.counts))}
    label = given.get("label") or _teacher_option()
    if label and label != entry["name"]:
        entry["label"] = str(label)  # what the report and the figure call it
    shares = teachers.branch_shares(jax.device_get(states.teacher_state.teacher))
    if shares is not None:
        entry["batches"] = shares  # PLR: share of new and replayed batches (mean over seeds)
    return entry


def _distribution_rows(sampled: dict) -> list[str]:
    """Markdown rows of the sampled-task distribution (training goals by share, or histograms per entry)."""
    counts = np.asarray(sampled["counts"], np.float64)
    if sampled["kind"] == "goals":  # the most and the least sampled training goals
        share = counts / max(counts.sum(), 1.0)
        order = np.argsort(-share, kind="stable")
        shown = order if order.size <= 10 else np.concatenate([order[:5], order[-5:]])
        lines = [f"| {', '.join(sampled['fields'])} | share of trials |", "|---|---|"]
        lines += [f"| {tuple(sampled['goals'][i])} | {share[i]:.3f} |" for i in shown]
        return lines + ["", f"Uniform: {1 / share.size:.3f} each; {int(np.sum(counts == 0))} of {share.size} training "
                        f"goals never sampled; held-out or other tasks sampled: {sampled['other_tasks']}."]
    bins = sampled["bins"]
    lines = [f"| entry | share per bin (1..{bins} of [low, high]) |", "|---|---|"]
    for name, row in zip(sampled["entries"], counts):
        lines.append(f"| {name} | {' '.join(f'{v:.2f}' for v in row / max(row.sum(), 1.0))} |")
    return lines


def _plot_tasks(path: Path, summary: dict, env: Any) -> None:
    """The training tasks' shares: a map of the room (held-out goals crossed) or a histogram per task entry."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    teacher, sampled = summary["teacher"], summary["teacher"]["sampled"]
    counts = np.asarray(sampled["counts"], np.float64)
    title = f"{summary['task']}: tasks sampled by {teacher.get('label', teacher['name'])}, {summary['n_seeds']} seeds"
    fig, ax = plt.subplots(figsize=(5, 4), dpi=90)
    goals = np.asarray(sampled.get("goals", []))
    if sampled["kind"] == "goals" and goals.ndim == 2 and goals.shape[1] == 2 and hasattr(env, "size"):
        grid = np.full((env.size, env.size), np.nan)
        grid[goals[:, 0], goals[:, 1]] = counts / max(counts.sum(), 1.0)
        image = ax.imshow(grid, cmap="viridis", origin="upper")
        fig.colorbar(image, ax=ax, label="share of training trials")
        held = np.asarray(summary["held_out"].get("goals", []))
        if held.size:
            ax.scatter(held[:, 1], held[:, 0], marker="x", color="red")
            title += " (x: held out)"
        ax.set_xlabel(sampled["fields"][1])
        ax.set_ylabel(sampled["fields"][0])
    elif sampled["kind"] == "goals":
        ax.bar(np.arange(counts.size), counts / max(counts.sum(), 1.0))
        ax.set_xlabel("training task")
        ax.set_ylabel("share of training trials")
    else:
        edges = np.linspace(0.0, 1.0, sampled["bins"] + 1)
        for name, row, low, high in zip(sampled["entries"], counts, sampled["low"], sampled["high"]):
            ax.stairs(row / max(row.sum(), 1.0), low + edges * (high - low), label=name)
        ax.set_xlabel("task-vector entry")
        ax.set_ylabel("share of training trials")
        ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# --- outputs ----------------------------------------------------------------------------------------------
def _report(summary: dict) -> str:
    lines = [f"# {summary['task']}: RL2 ({summary['cell']}) on held-out tasks", "",
             f"{summary['n_seeds']} seeds, trial = {summary['trial']['episodes']} episode(s) x "
             f"{summary['trial']['horizon']} steps, {summary['held_out']['tasks']} held-out tasks x "
             f"{summary['held_out']['repeats']}; {summary['timesteps']:,} training env steps per seed", "",
             "| method | trial return | 95% CI | CI over | n |", "|---|---|---|---|---|"]
    lines += [f"| {r['method']} | {r['mean']:.3f} | [{r['ci_low']:.3f}, {r['ci_high']:.3f}] | {r['ci_over']} | "
              f"{r['n']} |" for r in summary["table"]]
    paired = {name: row["rl2_minus"] for name, row in summary["baselines"].items() if "rl2_minus" in row}
    if paired:
        lines += ["", "RL2 minus each method on the same held-out tasks (paired; RL2's mean over seeds; 95% CI over "
                  "tasks): " + "; ".join(f"{BASELINE_NAMES.get(name, name)} {d['mean']:+.3f} [{d['ci_low']:+.3f}, "
                                        f"{d['ci_high']:+.3f}]" for name, d in paired.items()) + "."]
    curve = summary["curve"]
    lines += ["", f"In-context curve (RL2, mean over seeds, per {curve['unit']}):", "",
              f"| {curve['unit']} | mean | 95% CI |", "|---|---|---|"]
    lines += [f"| {x} | {m:.3f} | [{lo:.3f}, {hi:.3f}] |"
              for x, m, lo, hi in zip(curve["x"], curve["mean"], curve["ci_low"], curve["ci_high"])]
    scratch = summary.get("scratch_ppo")
    if scratch is not None:
        per = scratch["episode_returns"]
        lines += ["", f"PPO from scratch on the same held-out tasks ({scratch['steps_per_task']} steps each, one update "
                  f"per episode; 95% CI over the {scratch['n']} runs), return per episode: "
                  + ", ".join(f"{m:.3f} [{lo:.3f}, {hi:.3f}]" for m, lo, hi in
                              zip(per["mean"], per["ci_low"], per["ci_high"])) + "."]
    if "success" in summary:
        lines += ["", "Success rate per episode of the trial (mean over seeds, 95% CI over seeds; the last episode "
                  "is Meta-World's success after adaptation; PPO from scratch: CI over held-out runs):", ""]
        columns = [("meta-train", "meta_train"), ("meta-test", "meta_test"), ("PPO from scratch", "scratch_ppo")]
        columns = [(name, summary["success"][key]["per_episode"]) for name, key in columns if key in summary["success"]]
        lines += [f"| episode | {' | '.join(name for name, _ in columns)} |", "|---" * (len(columns) + 1) + "|"]
        lines += ["| " + " | ".join([str(j + 1)] + [f"{c['mean'][j]:.3f} [{c['ci_low'][j]:.3f}, {c['ci_high'][j]:.3f}]"
                                                    for _, c in columns]) + " |"
                  for j in range(len(columns[0][1]["mean"]))]
        lines += _class_rows(summary["success"])
    teacher = summary["teacher"]
    if teacher["chosen"]:
        adapted = "; ".join(f"{k}: {v}" for k, v in teacher["adapted"].items())
        batches = teacher.get("batches")
        lines += ["", f"Training tasks: teacher {teacher.get('label', teacher['name'])}"
                  + (f" ({adapted})" if adapted else "")
                  + (f"; {100 * batches['replay']:.0f}% of batches replayed" if batches else "")
                  + ". Tasks sampled over training (all seeds):", ""]
        lines += _distribution_rows(teacher["sampled"])
    else:
        lines += ["", f"Training tasks: {teacher['tasks']} (no teacher chosen)."]
    return "\n".join(lines) + "\n"


def _class_rows(success: dict) -> list[str]:
    """The last episode's success per task class (meta-train classes, then meta-test ones), where a split has more
    than one class (ML10)."""
    splits = [(name, success[key]["per_class"]) for name, key in (("meta-train", "meta_train"), ("meta-test", "meta_test"))]
    if all(len(classes) < 2 for _, classes in splits):
        return []
    lines = ["", "Success of the last episode per task class (mean over seeds, 95% CI over seeds):", "",
             "| split | class | success | 95% CI |", "|---|---|---|---|"]
    return lines + [f"| {split} | {name} | {row['mean']:.3f} | [{row['ci_low']:.3f}, {row['ci_high']:.3f}] |"
                    for split, classes in splits for name, row in classes.items()]


def run(cfg: Any, run_dir: Path) -> dict[str, Any]:
    spec = build(cfg)
    cfg = plain(cfg)
    run_dir = Path(run_dir)
    write_config(run_dir, cfg)
    start = time.perf_counter()
    prog = runner.programs(spec.bench, spec.rl2, spec.chunk_trials, spec.greedy, spec.teacher)
    states, trained_chunks = _train(spec, prog, run_dir, cfg)
    train_seconds = time.perf_counter() - start
    result = evaluate(spec, prog, states.params)
    seconds = time.perf_counter() - start
    rows = read_log(run_dir / METRICS)
    timesteps = spec.rl2.num_trials * spec.rl2.num_envs * prog.layout.trial_steps
    curves = result.pop("curves")
    summary = {"task": spec.bench.id, "method": "RL2", "cell": spec.rl2.cell, "scale": spec.scale,
               "n_seeds": spec.seeds, **result, "teacher": _teacher_entry(spec, prog, states, cfg),
               "trial": {"episodes": prog.layout.episodes, "horizon": prog.layout.horizon,
                         "steps": prog.layout.trial_steps},
               "trials": spec.rl2.num_trials, "timesteps": timesteps, "chunks_logged": len(rows) // spec.seeds,
               "train_time_s": train_seconds, "wall_time_s": seconds,
               # env steps this process trained (a resume counts only its own chunks; none trained: null)
               "steps_per_second": (trained_chunks * spec.chunk_trials * spec.rl2.num_envs * prog.layout.trial_steps
                                    * spec.seeds / max(train_seconds, 1e-9)) if trained_chunks else None,
               "settings": dataclasses.asdict(spec.rl2), "benchmark": dataclasses.asdict(spec.bench)}
    (run_dir / "summary.json").write_text(json.dumps(jsonable(summary), indent=1))
    (run_dir / "report.md").write_text(_report(summary))
    tracking.log_summary({"trial_return": summary["trial_return"], "wall_time_s": seconds})
    curve = summary["curve"]
    x = np.asarray(curve["x"])
    lines = {f"RL2 ({spec.rl2.cell})": curves["rl2"]}
    if "scratch_ppo" in curves:
        lines["PPO from scratch"] = curves["scratch_ppo"]  # rows: held-out runs (its CI is over them)
    lines.update({name: np.full((1, x.size), value) for name, value in summary["reference"].items()})
    plot_learning_curve(run_dir / FIGURE, x, lines, xlabel=curve["unit"],
                        ylabel="episode return" if curve["unit"] == "episode" else f"reward per {curve['unit']}",
                        title=f"{spec.bench.id}: held-out tasks, {spec.seeds} seeds")
    if summary["teacher"]["chosen"]:
        _plot_tasks(run_dir / TASK_FIGURE, summary, prog.env)
    return summary


JOB = register(Job("meta_rl", run, "meta_rl", "RL² meta-trained on a benchmark, in-context curve on held-out tasks",
                   sections=("task", "scale", "agent", "teacher", "eval", "seeds", "seed", "chunk_trials",
                             "checkpoint_every", "resume", "allow_changes", "progress", "run_dir"),
                   headline="trial_return.mean"))
