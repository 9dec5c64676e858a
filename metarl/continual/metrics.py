"""Continual World metrics (docs/algorithms.md §6.1), with revisits made explicit.

Inputs are evaluation curves: ``eval_steps[E]`` (env steps at which every
task was evaluated) and ``perf[E, T]`` (score of task ``t`` in [0, 1], e.g.
success rate), plus the stream's segments ``(task, start, end)``.

Definitions (CW's, generalised to streams that revisit tasks):

* ``value(t, seg)`` — the mean of the last ``k`` (= 5) evaluations inside the
  segment ``seg``: steps in ``(start, end]``. Restricting the window to the
  segment stops a short segment from averaging in the previous task's phase.
* **Average performance** ``P = mean_i value_i(final segment)``.
* **End of task i** — the end of task i's *last* visit (a visit = a maximal
  run of consecutive segments on one task). For the task trained last this is
  the stream end, so its forgetting is 0, exactly as in CW.
  ``F_i = value_i(last visit of i) - value_i(final segment)``; ``F`` is the
  mean over tasks that were trained (never-trained tasks give NaN and are
  skipped).
* **Backward transfer** ``B = mean_{i != last task} (value_i(final) - value_i(last visit))``.
* **Forward transfer** is measured on the *first* visit only:
  ``AUC_i`` = mean of the evaluations of task i with steps in
  ``(start, end]`` of that visit; ``AUC_i^ref`` = the same mean for a
  from-scratch single-task reference run on task i over ``(0, L_i]``, ``L_i``
  the visit's length. ``FT_i = (AUC_i - AUC_i^ref) / (1 - AUC_i^ref)`` (NaN
  when ``AUC^ref = 1``) and the raw difference ``AUC_i - AUC_i^ref``.
* Across seeds (:mod:`metarl.stats`): percentile bootstrap of the mean, 4000
  resamples, 95 % (the suite's standard; Continual World reports 90 %);
  rliable's IQM (25 % trimmed mean over runs x tasks) with a stratified
  bootstrap at the same settings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from metarl.stats import bootstrap_ci, iqm_ci

LAST_K = 5
BOOTSTRAP_REPS = 4000
CONFIDENCE = 0.95  # what the job's headline prints; Continual World's own tables use 0.9


@dataclasses.dataclass(frozen=True)
class Visit:
    task: int
    start: int
    end: int


def visits(segments: Sequence[Any]) -> list[Visit]:
    """Visits from segments given as objects with ``task``/``steps`` or ``(task, steps)``."""
    out: list[Visit] = []
    t = 0
    for seg in segments:
        task, steps = (seg.task, seg.steps) if hasattr(seg, "task") else seg
        if out and out[-1].task == task:
            out[-1] = Visit(task, out[-1].start, t + steps)
        else:
            out.append(Visit(int(task), t, t + int(steps)))
        t += int(steps)
    return out


def _window(eval_steps: np.ndarray, start: float, end: float) -> np.ndarray:
    return np.flatnonzero((eval_steps > start) & (eval_steps <= end))


def last_k_mean(eval_steps, values, start: float, end: float, k: int = LAST_K) -> float:
    """Mean of the last ``k`` evaluations with steps in ``(start, end]`` (NaN if none)."""
    idx = _window(np.asarray(eval_steps), start, end)
    if idx.size == 0:
        return float("nan")
    return float(np.mean(np.asarray(values)[idx[-k:]]))


def window_mean(eval_steps, values, start: float, end: float) -> float:
    """Mean of all evaluations with steps in ``(start, end]`` (the AUC estimate)."""
    idx = _window(np.asarray(eval_steps), start, end)
    return float(np.mean(np.asarray(values)[idx])) if idx.size else float("nan")


def _check_curves(eval_steps: np.ndarray, perf: np.ndarray, what: str) -> None:
    if perf.ndim != 2 or perf.shape[0] != eval_steps.shape[0]:
        raise ValueError(f"{what}: perf must be [evals, tasks] matching eval_steps, got {perf.shape}")
    if np.any(np.diff(eval_steps) <= 0):
        raise ValueError(f"{what}: eval_steps must be strictly increasing")


def continual_metrics(
    eval_steps: Any,
    perf: Any,
    segments: Sequence[Any],
    ref_steps: Any | None = None,
    ref_perf: Any | None = None,
    k: int = LAST_K,
) -> dict[str, Any]:
    """All CW metrics of one run (one seed); see the module docstring.

    ``ref_steps[E']``/``ref_perf[E', T]``: the single-task reference runs, one
    column per task, steps counted from the start of that run. Without them the
    forward-transfer entries are NaN.
    """
    eval_steps, perf = np.asarray(eval_steps, np.float64), np.asarray(perf, np.float64)
    _check_curves(eval_steps, perf, "continual_metrics")
    n_tasks = perf.shape[1]
    vis = visits(segments)
    if any(v.task >= n_tasks for v in vis):
        raise ValueError(f"segments name a task >= {n_tasks}, the number of perf columns")
    final = vis[-1]
    p_final = np.array([last_k_mean(eval_steps, perf[:, i], final.start, final.end, k) for i in range(n_tasks)])

    forgetting = np.full(n_tasks, np.nan)
    backward = np.full(n_tasks, np.nan)
    auc, auc_ref = np.full(n_tasks, np.nan), np.full(n_tasks, np.nan)
    for i in range(n_tasks):
        mine = [v for v in vis if v.task == i]
        if not mine:
            continue
        last = mine[-1]
        p_end_i = last_k_mean(eval_steps, perf[:, i], last.start, last.end, k)
        forgetting[i] = p_end_i - p_final[i]
        if i != final.task:
            backward[i] = p_final[i] - p_end_i
        first = mine[0]
        auc[i] = window_mean(eval_steps, perf[:, i], first.start, first.end)
        if ref_perf is not None:
            r_steps, r_perf = np.asarray(ref_steps, np.float64), np.asarray(ref_perf, np.float64)
            _check_curves(r_steps, r_perf, "reference")
            auc_ref[i] = window_mean(r_steps, r_perf[:, i], 0, first.end - first.start)

    ft_raw = auc - auc_ref
    denom = 1.0 - auc_ref
    with np.errstate(divide="ignore", invalid="ignore"):
        ft = np.where(denom > 1e-8, ft_raw / np.where(denom > 1e-8, denom, 1.0), np.nan)
    return {
        "average_performance": float(np.mean(p_final)),
        "final_performance": p_final,
        "forgetting": _nanmean(forgetting),
        "forgetting_per_task": forgetting,
        "backward_transfer": _nanmean(backward),
        "forward_transfer": _nanmean(ft),
        "forward_transfer_per_task": ft,
        "forward_transfer_raw": _nanmean(ft_raw),
        "forward_transfer_raw_per_task": ft_raw,
        "auc": auc,
        "auc_reference": auc_ref,
    }


def _nanmean(x: np.ndarray) -> float:
    x = np.asarray(x, np.float64)
    return float(np.mean(x[~np.isnan(x)])) if np.any(~np.isnan(x)) else float("nan")


# ---------------------------------------------------------------------------
# across seeds
# ---------------------------------------------------------------------------


def summarize_seeds(per_seed: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Bootstrap CI of each scalar metric across seeds, plus the IQM of
    final per-task performance."""
    out: dict[str, dict[str, float]] = {}
    for name in ("average_performance", "forgetting", "backward_transfer", "forward_transfer", "forward_transfer_raw"):
        vals = np.array([m[name] for m in per_seed], np.float64)
        if np.all(np.isnan(vals)):
            continue
        mean, lo, hi = bootstrap_ci(vals, reps=BOOTSTRAP_REPS, confidence=CONFIDENCE)
        out[name] = {"mean": mean, "ci_low": lo, "ci_high": hi, "n_seeds": int(np.sum(~np.isnan(vals)))}
    final = np.stack([m["final_performance"] for m in per_seed])
    iqm, lo, hi = iqm_ci(final, reps=BOOTSTRAP_REPS, confidence=CONFIDENCE)
    out["final_performance_iqm"] = {"mean": iqm, "ci_low": lo, "ci_high": hi, "n_seeds": len(per_seed)}
    return out


def plot_task_curves(eval_steps: Any, perf: Any, segments: Sequence[Any], task_names: Sequence[str], path: str) -> None:
    """Per-task curves (mean over seeds with a 95 % bootstrap band) and segment boundaries.

    ``perf``: ``[seeds, evals, tasks]``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    perf = np.asarray(perf, np.float64)
    steps = np.asarray(eval_steps)
    fig, ax = plt.subplots(figsize=(9, 4))
    cmap = plt.get_cmap("tab10")
    for i in range(perf.shape[2]):
        mean = perf[:, :, i].mean(0)
        ax.plot(steps, mean, color=cmap(i % 10), label=str(task_names[i]))
        if perf.shape[0] > 1:
            _, low, high = bootstrap_ci(perf[:, :, i], reps=500, confidence=CONFIDENCE)
            ax.fill_between(steps, low, high, color=cmap(i % 10), alpha=0.2)
    for v in visits(segments):
        ax.axvspan(v.start, v.end, color=cmap(v.task % 10), alpha=0.06)
        ax.axvline(v.end, color="grey", lw=0.5)
    ax.set_xlabel("env steps")
    ax.set_ylabel("performance")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
