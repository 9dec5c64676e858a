"""Plug any drift objective into PPO on any env and report how well it trains.

    metarl-evaluate objective=<artifact .npz | meta-train run dir | ppo | dpo> env=CartPole-v1 seeds=8
    metarl-evaluate optimizer=<learned_optimizer.npz | run dir | adam | adam@1e-3 | any zoo name> \
        compare_optimizers=[adam] env=[CartPole-v1,Acrobot-v1] seeds=8

Writes to the run directory: ``per_seed_returns.csv`` (final and
training-mean return of every seed), ``aggregate.md`` / ``aggregate.json``
(IQM with 95% stratified-bootstrap intervals from rliable), 
``learning_curves.png`` and ``drift_heatmap.png`` (the drift over (r, A) as
in the LPO paper; TA-LPO at several training-progress values).
``compare=[ppo,dpo]`` adds baselines to the same table and plots.

Objectives and optimizers are two axes: every objective (``objective`` +
``compare``) is run with every optimizer (``optimizer`` +
``compare_optimizers``; default Adam at ``agent.lr`` with PPO's epsilon).
Runs with an explicit optimizer record the mean |Δθ| per step of the actor
and critic inside the jitted run (:mod:`metarl.optimizers.instrument`);
with a learned optimizer the run directory also gets
``update_magnitude.csv`` and ``update_magnitude.png`` (its step size, and
its ratio to Adam's when Adam is in the comparison, against training
proportion).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import math
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import envs
from metarl.agents.ppo import PPOConfig, make_train
from metarl.io.artifacts import load_objective
from metarl.meta.fitness import as_env_list, env_overrides, score_returns
from metarl.objectives import TALPO, make_objective
from metarl.optimizers.instrument import GROUPS, make_instrumented_train

FIXED_OBJECTIVES = ("ppo", "dpo")
ARTIFACT_NAMES = ("learned_objective.npz", "checkpoints/final_objective.npz")
OPTIMIZER_ARTIFACT_NAMES = ("learned_optimizer.npz",)
DEFAULT_OPTIMIZER = "adam"
ADAM_EPS = 1e-5  # PPO's built-in Adam
HEATMAP_RATIOS = (0.5, 1.5)
HEATMAP_ADVANTAGES = (-2.0, 2.0)
TA_PROGRESS_VALUES = (0.0, 0.25, 0.5, 0.75, 1.0)
_EVAL_SALT = 7_919  # evaluation seeds differ from any meta-training seed


@dataclasses.dataclass
class ObjectiveSpec:
    label: str
    objective: Any
    meta_params: Any


@dataclasses.dataclass
class OptimizerSpec:
    label: str
    optimizer: Any  # optax transformation, or a learned optimizer (``.transform(meta_params)``)
    meta_params: Any  # {} for hand-designed optimizers

    @property
    def learned(self) -> bool:
        return hasattr(self.optimizer, "transform")


@dataclasses.dataclass
class RunSpec:
    """One row of the comparison: an objective trained with an optimizer."""

    label: str
    objective: ObjectiveSpec
    optimizer: OptimizerSpec | None  # None: PPO's built-in Adam (not instrumented)


@dataclasses.dataclass
class EvalResults:
    returns: dict[str, dict[str, np.ndarray]]  # label -> env -> [seeds, updates]
    final: dict[str, np.ndarray]  # label -> [seeds, envs] final return
    env_names: list[str]
    timesteps: np.ndarray  # [updates]
    # label -> env -> group (actor/critic) -> [seeds, updates] mean |Δθ| per optimizer step
    magnitudes: dict[str, dict[str, dict[str, np.ndarray]]] = dataclasses.field(default_factory=dict)
    learned_optimizer_labels: list[str] = dataclasses.field(default_factory=list)


def _artifact_in(path: Path, names: Sequence[str]) -> Path:
    """``path`` itself, or the first of ``names`` inside it when it is a run directory."""
    if not path.is_dir():
        return path
    found = [path / n for n in names if (path / n).is_file()]
    if not found:
        raise ValueError(f"no {' or '.join(names)} in {path}")
    return found[0]


def resolve_objective(spec: str, clip_eps: float = 0.2, label: str | None = None) -> ObjectiveSpec:
    """``ppo`` / ``dpo``, an artifact ``.npz``, or a meta-train run directory."""
    name = str(spec)
    if name.lower() in FIXED_OBJECTIVES:
        objective = make_objective(name.lower(), **({"clip_eps": clip_eps} if name.lower() == "ppo" else {}))
        return ObjectiveSpec(label or name.upper(), objective, {})
    path = _artifact_in(Path(name), ARTIFACT_NAMES)
    if not path.is_file():
        raise ValueError(f"objective must be ppo, dpo, an objective .npz or a run directory; {name!r} is none of these")
    objective, meta_params, header = load_objective(path)
    return ObjectiveSpec(label or f"learned {header['name'].upper()}", objective, meta_params)


def _zoo_config(name: str, learning_rate: float) -> dict:
    """``configs/optimizer/<name>.yaml`` with ``${agent.lr}`` resolved to ``learning_rate``."""
    from omegaconf import OmegaConf

    path = Path(__file__).resolve().parents[2] / "configs" / "optimizer" / f"{name}.yaml"
    root = OmegaConf.create({"agent": {"lr": float(learning_rate)}, "optimizer": OmegaConf.load(path)})
    return OmegaConf.to_container(root, resolve=True)["optimizer"]


def _zoo_names() -> list[str]:
    return sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "configs" / "optimizer").glob("*.yaml"))


def _load_optimizer_file(path: Path, label: str | None) -> OptimizerSpec:
    from metarl.optimizers import load_learned_optimizer

    try:
        optimizer, meta_params, header = load_learned_optimizer(path)
    except (OSError, EOFError, KeyError, TypeError, zipfile.BadZipFile, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not a readable learned-optimizer file ({type(error).__name__})") from None
    return OptimizerSpec(label or f"learned {header['name'].upper()}", optimizer, meta_params)


def resolve_optimizer(spec: str, learning_rate: float, label: str | None = None) -> OptimizerSpec:
    """A zoo name (``adam``, ``lion``, ...; ``adam@1e-3`` sets the lr), a ``.npz`` or a run directory.

    ``adam`` is PPO's Adam (``learning_rate`` = ``agent.lr``, eps 1e-5) as an
    explicit optax transformation, so its steps can be recorded.
    """
    from metarl.optimizers import LearnedOptimizer, build_optimizer

    text = str(spec)
    name, at, lr_text = text.partition("@")
    if name.lower() in _zoo_names():
        name = name.lower()
        cfg = _zoo_config(name, learning_rate)
        if at:
            try:
                cfg["learning_rate"] = float(lr_text)
            except ValueError:
                raise ValueError(f"bad learning rate in optimizer {text!r}; write e.g. adam@1e-3") from None
        load = cfg.get("load")
        if name == "learned" and load:
            return _load_optimizer_file(Path(load), label)
        optimizer = build_optimizer(cfg)
        if isinstance(optimizer, LearnedOptimizer):
            return OptimizerSpec(label or "learned OPEN (init)", optimizer, optimizer.init_meta(jax.random.PRNGKey(0)))
        lr = cfg.get("learning_rate")
        pretty = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop", "lion": "Lion"}.get(name, name)
        return OptimizerSpec(label or (f"{pretty}(lr={lr:g})" if lr is not None else pretty), optimizer, {})
    path = _artifact_in(Path(text), OPTIMIZER_ARTIFACT_NAMES)
    if not path.is_file():
        raise ValueError(
            f"optimizer must be one of {', '.join(_zoo_names())} (name@lr to set the lr), "
            f"a learned-optimizer .npz or a run directory; {text!r} is none of these"
        )
    return _load_optimizer_file(path, label)


def combine_runs(objectives: Sequence[ObjectiveSpec], optimizers: Sequence[OptimizerSpec]) -> list[RunSpec]:
    """Every objective with every optimizer; labels name only the axes that vary."""
    show_objective = len(objectives) > 1 or len(optimizers) == 1
    show_optimizer = len(optimizers) > 1
    runs = []
    for objective in objectives:
        for optimizer in optimizers:
            parts = ([objective.label] if show_objective else []) + ([optimizer.label] if show_optimizer else [])
            runs.append(RunSpec(" + ".join(parts), objective, optimizer))
    return runs


def _as_run(spec: ObjectiveSpec | RunSpec) -> RunSpec:
    return spec if isinstance(spec, RunSpec) else RunSpec(spec.label, spec, None)


def train_returns(
    spec: ObjectiveSpec | RunSpec, env_name: str, ppo_config: PPOConfig, keys: jax.Array, overrides: dict | None = None
) -> np.ndarray:
    """Per-update episode returns ``[seeds, updates]`` of PPO with this objective (and optimizer)."""
    return train_with_magnitudes(spec, env_name, ppo_config, keys, overrides)[0]


def train_with_magnitudes(
    spec: ObjectiveSpec | RunSpec, env_name: str, ppo_config: PPOConfig, keys: jax.Array, overrides: dict | None = None
) -> tuple[np.ndarray, dict[str, np.ndarray] | None]:
    """Returns ``[seeds, updates]`` and, with an explicit optimizer, ``{group: [seeds, updates]}`` mean |Δθ|."""
    run_spec = _as_run(spec)
    objective, optimizer = run_spec.objective, run_spec.optimizer
    env, env_params = envs.make(env_name, **(overrides or {}))
    # meta_params as arguments, not baked-in constants: one program per objective
    # and optimizer *type*, so compiled programs are reused across weights.
    if optimizer is None:
        train = make_train(ppo_config, env, env_params, drift=objective.objective)
        run = jax.jit(jax.vmap(lambda k, p: train(k, p)[1]["episode_return"], in_axes=(0, None)))
        return np.asarray(run(keys, objective.meta_params)), None
    train = make_instrumented_train(ppo_config, env, env_params, drift=objective.objective, optimizer=optimizer.optimizer)
    run = jax.jit(jax.vmap(lambda k, p, q: train(k, p, q if optimizer.learned else None), in_axes=(0, None, None)))
    returns, magnitudes = run(keys, objective.meta_params, optimizer.meta_params if optimizer.learned else None)
    return np.asarray(returns), {g: np.asarray(m) for g, m in magnitudes.items()}


def evaluate_objectives(
    specs: Sequence[ObjectiveSpec | RunSpec],
    env_names: Sequence[str],
    ppo_config: PPOConfig,
    num_seeds: int,
    seed: int = 0,
    final_fraction: float = 0.1,
    overrides: dict | None = None,
) -> EvalResults:
    """Every objective (or objective + optimizer run) on every env with the same ``num_seeds`` seeds."""
    if num_seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {num_seeds}")
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise ValueError(f"objective labels must be distinct, got {labels}")
    runs = [_as_run(s) for s in specs]
    returns: dict[str, dict[str, np.ndarray]] = {s.label: {} for s in runs}
    magnitudes: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for env_index, env_name in enumerate(env_names):
        keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed + _EVAL_SALT), env_index), num_seeds)
        for spec in runs:
            curves, steps = train_with_magnitudes(spec, env_name, ppo_config, keys, overrides)
            returns[spec.label][env_name] = curves
            if steps is not None:
                magnitudes.setdefault(spec.label, {})[env_name] = steps
    final = {
        label: np.stack(
            [np.asarray(score_returns(jnp.asarray(per_env[e]), "final", final_fraction)) for e in env_names], axis=1
        )
        for label, per_env in returns.items()
    }
    timesteps = (np.arange(ppo_config.num_updates) + 1) * ppo_config.batch_size
    learned = [s.label for s in runs if s.optimizer is not None and s.optimizer.learned]
    return EvalResults(returns, final, list(env_names), timesteps, magnitudes, learned)


def stratified_bootstrap_iqm(scores: np.ndarray, reps: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """IQM of ``scores[runs, tasks]`` with a 95% percentile CI, resampling runs within each task.

    The same estimator as rliable's ``StratifiedBootstrap`` + ``aggregate_iqm``,
    used when rliable's bootstrap cannot be imported (rliable 1.2 needs
    ``arch`` 7.x, which breaks on pandas 3).
    """
    from scipy import stats

    scores = np.asarray(scores, np.float64)
    runs, tasks = scores.shape
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, runs, size=(reps, runs, tasks))
    resampled = scores[rows, np.arange(tasks)]
    estimates = stats.trim_mean(resampled.reshape(reps, -1), 0.25, axis=1)
    low, high = np.percentile(estimates, [2.5, 97.5])
    return float(stats.trim_mean(scores.ravel(), 0.25)), float(low), float(high)


@functools.cache
def _rliable() -> tuple[Any, Any] | None:
    try:
        from rliable import library, metrics
    except Exception:  # noqa: BLE001 - any failure in its arch/pandas import chain
        return None
    return library, metrics


def _rliable_iqm(scores: np.ndarray, reps: int, seed: int) -> tuple[float, float, float] | None:
    if _rliable() is None:
        return None
    rly, metrics = _rliable()
    np.random.seed(seed)  # rliable's bootstrap draws from NumPy's global generator
    point, interval = rly.get_interval_estimates(
        {"x": scores}, lambda x: np.array([metrics.aggregate_iqm(x)]), reps=reps
    )
    return float(point["x"][0]), float(interval["x"][0, 0]), float(interval["x"][1, 0])


def aggregate_rows(results: EvalResults, reps: int = 2000, seed: int = 0) -> list[dict]:
    """IQM and 95% stratified-bootstrap CI of the final return, per env and objective."""
    rows = []
    for env_index, env_name in enumerate(results.env_names):
        for label, final in results.final.items():
            score = final[:, env_index : env_index + 1]
            row = {"env": env_name, "objective": label, "seeds": int(score.shape[0]), "mean": float(np.nanmean(score))}
            if np.isfinite(score).all():
                estimate = _rliable_iqm(score, reps, seed)
                method = "rliable"
                if estimate is None:
                    estimate, method = stratified_bootstrap_iqm(score, reps, seed), "stratified_bootstrap"
                row |= {"iqm": estimate[0], "ci_low": estimate[1], "ci_high": estimate[2], "ci_method": method}
            else:  # a seed never finished an episode: no bootstrap
                row |= {"iqm": math.nan, "ci_low": math.nan, "ci_high": math.nan, "ci_method": "none"}
            rows.append(row)
    return rows


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| env | method | IQM final return | 95% CI | mean | seeds |",
        "|---|---|---:|---|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['env']} | {r['objective']} | {r['iqm']:.1f} | [{r['ci_low']:.1f}, {r['ci_high']:.1f}] "
            f"| {r['mean']:.1f} | {r['seeds']} |"
        )
    return "\n".join(lines)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_learning_curves(results: EvalResults, path: str | os.PathLike) -> Path:
    """Mean episode return (+- standard error over seeds) against environment steps."""
    plt = _pyplot()
    n = len(results.env_names)
    fig, axes = plt.subplots(1, n, figsize=(5.5 * n, 4), squeeze=False)
    for ax, env_name in zip(axes[0], results.env_names):
        for label, per_env in results.returns.items():
            curves = per_env[env_name]
            mean = np.nanmean(curves, axis=0)
            stderr = np.nanstd(curves, axis=0) / math.sqrt(curves.shape[0])
            ax.plot(results.timesteps, mean, label=label)
            ax.fill_between(results.timesteps, mean - stderr, mean + stderr, alpha=0.2)
        ax.set(title=env_name, xlabel="environment steps", ylabel="episode return")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def drift_grid(spec: ObjectiveSpec, progress: float, size: int = 121) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ratios, advantages, drift[adv, ratio]) on the heatmap grid."""
    ratios = np.linspace(*HEATMAP_RATIOS, size, dtype=np.float32)
    advantages = np.linspace(*HEATMAP_ADVANTAGES, size, dtype=np.float32)
    r, a = np.meshgrid(ratios, advantages)
    drift = spec.objective(spec.meta_params, jnp.asarray(r), jnp.asarray(a), jnp.float32(progress))
    return ratios, advantages, np.asarray(drift)


def plot_drift_heatmaps(specs: Sequence[ObjectiveSpec], path: str | os.PathLike) -> Path:
    """One panel per fixed objective; a row of progress values per temporally-aware one."""
    plt = _pyplot()
    panels = []
    for spec in specs:
        values = TA_PROGRESS_VALUES if isinstance(spec.objective, TALPO) else (None,)
        panels += [(spec, p) for p in values]
    cols = min(len(panels), 5)
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    for ax, (spec, progress) in zip(axes.flat, panels):
        ratios, advantages, drift = drift_grid(spec, 0.0 if progress is None else progress)
        image = ax.imshow(
            drift, origin="lower", aspect="auto", cmap="viridis",
            extent=(ratios[0], ratios[-1], advantages[0], advantages[-1]),
        )
        ax.axvline(1.0, color="white", lw=0.6, ls="--")
        ax.axhline(0.0, color="white", lw=0.6, ls="--")
        title = spec.label if progress is None else f"{spec.label}, n/N = {progress:g}"
        ax.set(title=title, xlabel="ratio r", ylabel="advantage A")
        fig.colorbar(image, ax=ax, label="drift")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def _reference_label(results: EvalResults) -> str | None:
    """The Adam run that learned optimizers are compared with (the first recorded Adam run)."""
    return next((label for label in results.magnitudes if "Adam(" in label and label not in results.learned_optimizer_labels), None)


def magnitude_rows(results: EvalResults, reps: int = 1000, seed: int = 0) -> list[dict]:
    """Per run, env, group and update: mean |Δθ| over seeds, and its ratio to Adam's with a 95% bootstrap CI."""
    from metarl.io.outputs import bootstrap_ci

    reference = _reference_label(results)
    proportion = np.arange(1, len(results.timesteps) + 1) / len(results.timesteps)
    rows = []
    for label, per_env in results.magnitudes.items():
        for env_name, groups in per_env.items():
            for group, values in groups.items():
                mean = np.mean(values, axis=0)
                ratio = low = high = np.full_like(mean, np.nan)
                if reference is not None and label != reference:
                    # seed i of both runs shares its key: ratio per seed, then bootstrap over seeds
                    per_seed = values / np.maximum(results.magnitudes[reference][env_name][group], 1e-30)
                    ratio, low, high = bootstrap_ci(per_seed, n_boot=reps, seed=seed)
                for u in range(len(mean)):
                    rows.append({
                        "run": label, "env": env_name, "group": group, "update": u + 1,
                        "training_proportion": float(proportion[u]), "mean_abs_update": float(mean[u]),
                        "ratio_to_adam": float(ratio[u]), "ratio_ci_low": float(low[u]), "ratio_ci_high": float(high[u]),
                    })
    return rows


def plot_update_magnitudes(results: EvalResults, path: str | os.PathLike) -> Path:
    """Rows = envs; columns = actor, critic (mean |Δθ| per step) and, with Adam, their ratio to Adam's."""
    plt = _pyplot()
    reference = _reference_label(results)
    shown = [label for label in results.magnitudes if label in results.learned_optimizer_labels or label == reference]
    columns = [(g, False) for g in GROUPS] + ([(g, True) for g in GROUPS] if reference else [])
    n = len(results.env_names)
    fig, axes = plt.subplots(n, len(columns), figsize=(4.2 * len(columns), 3.4 * n), squeeze=False)
    proportion = np.arange(1, len(results.timesteps) + 1) / len(results.timesteps)
    from metarl.io.outputs import bootstrap_ci

    for row, env_name in enumerate(results.env_names):
        for ax, (group, as_ratio) in zip(axes[row], columns):
            for label in shown:
                if as_ratio and label == reference:
                    continue
                values = results.magnitudes[label][env_name][group]
                if as_ratio:
                    values = values / np.maximum(results.magnitudes[reference][env_name][group], 1e-30)
                mean, low, high = bootstrap_ci(values, n_boot=500)
                ax.plot(proportion, mean, label=label)
                ax.fill_between(proportion, low, high, alpha=0.25)
            if as_ratio:
                ax.axhline(1.0, color="gray", lw=0.8, ls="--")
            ax.set_yscale("log")
            what = f"{group} mean |Δθ| / Adam's" if as_ratio else f"{group} mean |Δθ| per step"
            ax.set(title=f"{env_name}: {what}", xlabel="training proportion")
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def write_results(results: EvalResults, specs: Sequence[ObjectiveSpec | RunSpec], out_dir: str | os.PathLike, seed: int = 0) -> dict[str, Path]:
    """All evaluation files; returns their paths by kind."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "per_seed": out_dir / "per_seed_returns.csv",
        "table": out_dir / "aggregate.md",
        "table_json": out_dir / "aggregate.json",
        "curves": out_dir / "learning_curves.png",
        "heatmap": out_dir / "drift_heatmap.png",
    }
    with paths["per_seed"].open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["objective", "env", "seed", "final_return", "mean_return"])
        for label, per_env in results.returns.items():
            for env_index, env_name in enumerate(results.env_names):
                means = np.nanmean(per_env[env_name], axis=1)
                for s, (final, mean) in enumerate(zip(results.final[label][:, env_index], means)):
                    writer.writerow([label, env_name, s, f"{final:.4f}", f"{mean:.4f}"])
    rows = aggregate_rows(results, seed=seed)
    paths["table"].write_text(markdown_table(rows) + "\n")
    paths["table_json"].write_text(json.dumps(rows, indent=1))
    plot_learning_curves(results, paths["curves"])
    objectives = list({id(s.objective): s.objective for s in map(_as_run, specs)}.values())
    unique = list({s.label: s for s in objectives}.values())
    plot_drift_heatmaps(unique, paths["heatmap"])
    if results.learned_optimizer_labels:
        rows = magnitude_rows(results, seed=seed)
        paths["magnitude_table"] = out_dir / "update_magnitude.csv"
        with paths["magnitude_table"].open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        paths["magnitude"] = plot_update_magnitudes(results, out_dir / "update_magnitude.png")
    return paths


def load_config(overrides: Sequence[str]) -> Any:
    """``configs/evaluate.yaml`` with ``key=value`` overrides (OmegaConf dot-list syntax).

    Not Hydra: in ``configs/`` ``objective`` is a config group (of meta-train),
    so Hydra would read ``objective=<path>`` as a group choice, not a value.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import ConfigKeyError

    config_file = Path(__file__).resolve().parents[2] / "configs" / "evaluate.yaml"
    cfg = OmegaConf.load(config_file)
    OmegaConf.set_struct(cfg, True)
    for item in overrides:
        key, sep, _ = item.partition("=")
        if not sep:
            raise ValueError(f"expected key=value, got {item!r}")
        OmegaConf.set_struct(cfg, not key.startswith("+"))  # +key=value may add a key
        try:
            cfg.merge_with(OmegaConf.from_dotlist([item.lstrip("+")]))
        except ConfigKeyError as error:
            raise ValueError(f"unknown option {key!r} (use +{key}=... to add one)") from error
    OmegaConf.set_struct(cfg, True)
    return cfg


def _is_lpg_rule(argv: Sequence[str]) -> bool:
    """``objective=`` names a learned LPG rule (``learned_rule.npz`` or its run directory)."""
    from metarl.meta.lpg_es import ARTIFACT as RULE_ARTIFACT
    from metarl.meta.lpg_es import ARTIFACT_KIND as RULE_KIND

    for item in argv:
        if not item.startswith("objective="):
            continue
        path = Path(item.split("=", 1)[1])
        if path.is_dir():
            path = path / RULE_ARTIFACT
        if path.suffix != ".npz" or not path.is_file():
            return False
        try:
            from metarl.io.artifacts import load_artifact

            return load_artifact(path)[1].get("kind") == RULE_KIND
        except Exception:  # unreadable files get their one-line error from the normal path
            return False
    return False


def main(argv: Sequence[str] | None = None) -> None:
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    if _is_lpg_rule(argv):  # learned update rules train their own agents (metarl.eval.lpg)
        from metarl.eval.lpg import main as evaluate_lpg

        return evaluate_lpg(argv)
    try:
        _evaluate_cli(load_config(argv))
    except ValueError as error:  # bad user input: one clear line, no traceback
        print(f"metarl-evaluate: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def _evaluate_cli(cfg: Any) -> None:
    import time as _time

    from omegaconf import OmegaConf

    out_dir = Path(cfg.out_dir or f"outputs/evaluate/{_time.strftime('%Y-%m-%d_%H-%M-%S')}")
    ppo_config = PPOConfig(**OmegaConf.to_container(cfg.agent, resolve=True))
    targets = [str(cfg.objective)] + [str(c) for c in (cfg.compare or []) if str(c) != str(cfg.objective)]
    objectives = [resolve_objective(t, ppo_config.clip_eps) for t in targets]
    first = str(cfg.optimizer)
    optimizer_names = [first] + [str(c) for c in (cfg.compare_optimizers or []) if str(c) != first]
    optimizers = [resolve_optimizer(name, ppo_config.lr) for name in optimizer_names]
    labels = [o.label for o in optimizers]
    for optimizer, name in zip(optimizers, optimizer_names):
        if labels.count(optimizer.label) > 1:  # two learned optimizers: name each by its file or run dir
            optimizer.label = f"{optimizer.label} ({Path(name).stem if Path(name).is_file() else Path(name).name})"
    labels = [o.label for o in optimizers]
    if len(set(labels)) != len(labels):
        raise ValueError(f"optimizers must be distinct, got {labels}")
    specs = combine_runs(objectives, optimizers)
    env_cfg = cfg.env if isinstance(cfg.env, str) else OmegaConf.to_container(cfg.env)
    results = evaluate_objectives(
        specs, as_env_list(env_cfg), ppo_config, int(cfg.seeds), int(cfg.seed), float(cfg.final_fraction),
        env_overrides(env_cfg),
    )
    paths = write_results(results, specs, out_dir, int(cfg.seed))
    print(paths["table"].read_text())
    print(f"evaluation written to {out_dir}")


if __name__ == "__main__":
    main()
