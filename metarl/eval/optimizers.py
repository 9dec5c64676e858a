"""Optimizers to evaluate PPO with: zoo names, learned-optimizer artifacts, and their step sizes.

* :func:`resolve_optimizer` — ``adam`` (PPO's Adam at ``agent.lr``), any file of
  the ``configs/optimizer/`` group (``name@lr`` sets the learning rate), or a
  ``learned_optimizer`` artifact (a file or its run directory).
* :func:`magnitude_rows` / :func:`plot_update_magnitudes` — the mean |Δθ| per
  step of actor and critic recorded inside the jitted runs, and its ratio to
  Adam's, against training proportion.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import jax
import numpy as np

from metarl.config import check_number, close_matches, group_config, group_options
from metarl.io.artifacts import find_artifact
from metarl.io.outputs import pyplot
from metarl.optimizers.instrument import GROUPS
from metarl.stats import bootstrap_ci

ZOO_GROUP = "optimizer"  # configs/optimizer/<name>.yaml
_PRETTY = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop", "lion": "Lion"}


@dataclasses.dataclass
class OptimizerSpec:
    label: str
    optimizer: Any  # optax transformation, or a learned optimizer (``.transform(meta_params)``)
    meta_params: Any  # {} for hand-designed optimizers
    header: dict = dataclasses.field(default_factory=dict)  # the artifact's, for learned ones

    @property
    def learned(self) -> bool:
        return hasattr(self.optimizer, "transform")


def _learned_from_file(path: Path, label: str | None) -> OptimizerSpec:
    from metarl.optimizers import load_learned_optimizer

    optimizer, meta_params, header = load_learned_optimizer(path)
    return OptimizerSpec(label or f"learned {header['name'].upper()}", optimizer, meta_params, header)


def _zoo_optimizer(name: str, lr_text: str | None, learning_rate: float, label: str | None) -> OptimizerSpec:
    from metarl.optimizers import LearnedOptimizer, build_optimizer

    cfg = group_config(ZOO_GROUP, name, {"agent": {"lr": float(learning_rate)}})
    if lr_text is not None:
        try:
            lr = float(lr_text)
        except ValueError:
            raise ValueError(f"bad learning rate in optimizer {name}@{lr_text}; write e.g. adam@1e-3") from None
        cfg["learning_rate"] = check_number(lr, f"optimizer {name}@{lr_text}: the learning rate", gt=0)
    if name == "learned" and cfg.get("load"):
        return _learned_from_file(Path(cfg["load"]), label)
    optimizer = build_optimizer(cfg)
    if isinstance(optimizer, LearnedOptimizer):
        return OptimizerSpec(label or "learned OPEN (init)", optimizer, optimizer.init_meta(jax.random.PRNGKey(0)))
    lr = cfg.get("learning_rate")
    pretty = _PRETTY.get(name, name)
    return OptimizerSpec(label or (f"{pretty}(lr={lr:g})" if lr is not None else pretty), optimizer, {})


def resolve_optimizer(spec: str, learning_rate: float, label: str | None = None) -> OptimizerSpec:
    """A zoo name (``adam``, ``lion``, ...; ``adam@1e-3`` sets the lr), a ``.npz`` or a run directory.

    ``adam`` is PPO's Adam (``learning_rate`` = ``agent.lr``, eps 1e-5) as an
    explicit optax transformation, so its steps can be recorded.
    """
    text = str(spec)
    name, at, lr_text = text.partition("@")
    if name.lower() in group_options(ZOO_GROUP):
        return _zoo_optimizer(name.lower(), lr_text if at else None, learning_rate, label)
    if not Path(text).exists():
        raise ValueError(
            f"optimizer must be one of {', '.join(group_options(ZOO_GROUP))} (name@lr to set the lr), "
            f"a learned-optimizer .npz or a run directory; {text!r} is none of these"
            f"{close_matches(name.lower(), group_options(ZOO_GROUP))}"
        )
    return _learned_from_file(find_artifact(text), label)


def name_duplicates(optimizers: list[OptimizerSpec], names: list[str]) -> None:
    """Two learned optimizers share a label: name each by its file or run directory; others must differ."""
    labels = [o.label for o in optimizers]
    for optimizer, name in zip(optimizers, names):
        if labels.count(optimizer.label) > 1:
            optimizer.label = f"{optimizer.label} ({Path(name).stem if Path(name).is_file() else Path(name).name})"
    labels = [o.label for o in optimizers]
    if len(set(labels)) != len(labels):
        raise ValueError(f"optimizers must be distinct, got {labels}")


# --- update magnitudes ------------------------------------------------------------------------
def _reference_label(results: Any) -> str | None:
    """The Adam run that learned optimizers are compared with (the first recorded Adam run)."""
    return next((label for label in results.magnitudes if "Adam(" in label and label not in results.learned_optimizer_labels), None)


def _ratio_to(results: Any, reference: str, label: str, env_name: str, group: str) -> np.ndarray:
    # seed i of both runs shares its key: the ratio is taken per seed
    values = results.magnitudes[label][env_name][group]
    return values / np.maximum(results.magnitudes[reference][env_name][group], 1e-30)


def magnitude_rows(results: Any, reps: int = 1000, seed: int = 0) -> list[dict]:
    """Per run, env, group and update: mean |Δθ| over seeds, and its ratio to Adam's with a 95% bootstrap CI."""
    reference = _reference_label(results)
    proportion = np.arange(1, len(results.timesteps) + 1) / len(results.timesteps)
    rows = []
    for label, per_env in results.magnitudes.items():
        for env_name, groups in per_env.items():
            for group, values in groups.items():
                mean = np.mean(values, axis=0)
                ratio = low = high = np.full_like(mean, np.nan)
                if reference is not None and label != reference:
                    ratio, low, high = bootstrap_ci(_ratio_to(results, reference, label, env_name, group), reps, seed=seed)
                for u in range(len(mean)):
                    rows.append({
                        "run": label, "env": env_name, "group": group, "update": u + 1,
                        "training_proportion": float(proportion[u]), "mean_abs_update": float(mean[u]),
                        "ratio_to_adam": float(ratio[u]), "ratio_ci_low": float(low[u]), "ratio_ci_high": float(high[u]),
                    })
    return rows


def plot_update_magnitudes(results: Any, path: str | os.PathLike) -> Path:
    """Rows = envs; columns = actor, critic (mean |Δθ| per step) and, with Adam, their ratio to Adam's."""
    plt = pyplot()
    reference = _reference_label(results)
    shown = [label for label in results.magnitudes if label in results.learned_optimizer_labels or label == reference]
    columns = [(g, False) for g in GROUPS] + ([(g, True) for g in GROUPS] if reference else [])
    n = len(results.env_names)
    fig, axes = plt.subplots(n, len(columns), figsize=(4.2 * len(columns), 3.4 * n), squeeze=False)
    proportion = np.arange(1, len(results.timesteps) + 1) / len(results.timesteps)
    for row, env_name in enumerate(results.env_names):
        for ax, (group, as_ratio) in zip(axes[row], columns):
            for label in shown:
                if as_ratio and label == reference:
                    continue
                values = (_ratio_to(results, reference, label, env_name, group) if as_ratio
                          else results.magnitudes[label][env_name][group])
                mean, low, high = bootstrap_ci(values, reps=500)
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
