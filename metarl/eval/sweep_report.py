"""A sweep gathered into one table, one figure and one CSV (``metarl-sweep-report``).

The jobs of a sweep directory (:mod:`metarl.io.sweep`) are grouped into
configurations: a job's configuration is its overrides that differ between
the jobs, leaving out ``seed``, so the seeds of one setting pool together.
Each job contributes one number, the summary key ``metric`` (default: the
key the jobs recorded, ``sweep.metric`` or their headline). Per
configuration the table gives the number of jobs with a finite value, the
mean with a 95% percentile-bootstrap interval and the IQM with a 95%
bootstrap interval (:mod:`metarl.stats`, 2000 resamples, fixed seed), and
names the jobs that failed, each with its error line.

Files (:func:`write_report`): ``sweep_report.md`` (the table, the failed
jobs, every job's value), ``sweep_report.csv`` (one row per configuration)
and ``sweep_report.png`` (every job's value with the mean and IQM intervals
per configuration).
"""

from __future__ import annotations

import collections
import dataclasses
import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from metarl.io.sweep import SweepJob, describe_overrides, find_jobs, lookup, numbers, override_items, varying_keys

SEED_KEYS = ("seed",)  # overrides that repeat a configuration rather than make a new one
ALL_JOBS = "all jobs"  # the label of the one configuration of a sweep over seeds only
REPORT_NAME = "sweep_report"
LABEL_WIDTH = 60  # characters of a configuration label on the figure's axis
CSV_COLUMNS = ("configuration", "n", "failed", "jobs", "mean", "mean_ci_low", "mean_ci_high", "iqm", "iqm_ci_low",
               "iqm_ci_high")


@dataclasses.dataclass(frozen=True)
class Configuration:
    """The jobs of one setting and the statistics of their values (NaN where there is no value)."""

    label: str
    jobs: tuple[int, ...]
    values: tuple[float, ...]  # per job, NaN for a failed job or one without a number
    failed: int

    @property
    def finite(self) -> np.ndarray:
        values = np.asarray(self.values, np.float64)
        return values[np.isfinite(values)]

    @property
    def n(self) -> int:
        return int(self.finite.size)

    def mean_ci(self) -> tuple[float, float, float]:
        from metarl.stats import bootstrap_ci

        if self.n == 0:
            return math.nan, math.nan, math.nan
        mean, low, high = bootstrap_ci(self.finite)
        return (mean, low, high) if self.n > 1 else (mean, math.nan, math.nan)  # one job: no interval

    def iqm_ci(self) -> tuple[float, float, float]:
        from metarl.stats import iqm_ci

        if self.n == 0:
            return math.nan, math.nan, math.nan
        value, low, high = iqm_ci(self.finite)
        return (value, low, high) if self.n > 1 else (value, math.nan, math.nan)


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A gathered sweep: its jobs, the metric, their values and the configurations."""

    path: Path
    jobs: tuple[SweepJob, ...]
    metric: str | None
    values: dict[int, float]  # job number -> value (NaN: none)
    labels: dict[int, str]  # job number -> configuration label
    common: str  # the overrides every job shares
    configurations: tuple[Configuration, ...]

    @property
    def failed(self) -> list[SweepJob]:
        return [job for job in self.jobs if job.status != "finished"]


def recorded_metric(jobs: Sequence[SweepJob]) -> str | None:
    """The metric the finished jobs recorded; a ``ValueError`` if they disagree."""
    recorded = sorted({job.result.get("metric") for job in jobs if job.result and job.result.get("metric")})
    if len(recorded) > 1:
        raise ValueError(f"the jobs recorded different metrics ({', '.join(recorded)}); choose one with --metric")
    return recorded[0] if recorded else None


def job_value(job: SweepJob, metric: str | None) -> float:
    """The job's number at ``metric`` (NaN: failed, no metric, or no finite number there)."""
    if job.result is None or metric is None:
        return math.nan
    try:
        value = lookup(job.result.get("summary") or {}, metric)
    except KeyError:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)


def check_metric(jobs: Sequence[SweepJob], metric: str) -> None:
    """Some finished job has a number at ``metric``, else a ``ValueError`` naming the numbers they have."""
    finished = [job for job in jobs if job.result is not None]
    if not finished or any(not math.isnan(job_value(job, metric)) or _has_null(job, metric) for job in finished):
        return
    have = sorted({key for job in finished for key in numbers(job.result.get("summary") or {})})
    raise ValueError(f"no job's summary has a number at {metric!r} (their numbers: {', '.join(have) or 'none'})")


def _has_null(job: SweepJob, metric: str) -> bool:
    """The key exists but holds null (a NaN the job wrote as JSON): a real, empty value, not a typo."""
    try:
        return lookup(job.result.get("summary") or {}, metric) is None
    except KeyError:
        return False


def gather(sweep_dir: str | Path, metric: str | None = None) -> Sweep:
    """Read a sweep directory (checked with :func:`metarl.io.sweep.check_sweep_dir` first) into a :class:`Sweep`."""
    jobs = tuple(find_jobs(sweep_dir))
    metric = metric or recorded_metric(jobs)
    if metric is not None:
        check_metric(jobs, metric)
    varying = varying_keys(jobs)
    keys = [key for key in varying if key not in SEED_KEYS]
    labels = {job.num: describe_overrides(job, keys) or ALL_JOBS for job in jobs}
    common = describe_overrides(jobs[0], [k for k in override_items(jobs[0].overrides) if k not in varying]) \
        if jobs else ""
    values = {job.num: job_value(job, metric) for job in jobs}
    grouped: dict[str, list[SweepJob]] = collections.defaultdict(list)
    for job in jobs:  # insertion order: configurations in the order of their first job
        grouped[labels[job.num]].append(job)
    configurations = tuple(
        Configuration(label, tuple(j.num for j in members), tuple(values[j.num] for j in members),
                      sum(j.status != "finished" for j in members))
        for label, members in grouped.items()
    )
    return Sweep(Path(sweep_dir), jobs, metric, values, labels, common, configurations)


# --- the files ---------------------------------------------------------------------------------------------------
def _number(x: float) -> str:
    return "–" if not math.isfinite(x) else f"{x:.4g}"


def _with_interval(value: float, low: float, high: float) -> str:
    if not math.isfinite(value):
        return "–"
    return _number(value) if not math.isfinite(low) else f"{_number(value)} [{_number(low)}, {_number(high)}]"


def table_rows(sweep: Sweep) -> list[dict]:
    """One row per configuration (the CSV's rows; NaN where there is no value or no interval)."""
    rows = []
    for config in sweep.configurations:
        mean, mean_low, mean_high = config.mean_ci()
        iqm, iqm_low, iqm_high = config.iqm_ci()
        rows.append({"configuration": config.label, "n": config.n, "failed": config.failed,
                     "jobs": " ".join(str(j) for j in config.jobs), "mean": mean, "mean_ci_low": mean_low,
                     "mean_ci_high": mean_high, "iqm": iqm, "iqm_ci_low": iqm_low, "iqm_ci_high": iqm_high})
    return rows


def markdown(sweep: Sweep, rows: list[dict]) -> str:
    finished = sum(job.status == "finished" for job in sweep.jobs)
    job_names = sorted({str(job.result.get("job")) for job in sweep.jobs if job.result})
    lines = [
        f"# Sweep {sweep.path}",
        "",
        f"{len(sweep.jobs)} jobs: {finished} finished, {len(sweep.failed)} failed"
        + (f" (job {', '.join(job_names)})" if job_names else "") + ". "
        + (f"Metric: `{sweep.metric}`." if sweep.metric else "No metric: no job finished with one (--metric KEY)."),
    ]
    if sweep.common:
        lines += ["", f"Every job: `{sweep.common}`."]
    lines += [
        "",
        "| configuration | n | failed | mean [95% CI] | IQM [95% CI] | jobs |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(f"| `{row['configuration']}` | {row['n']} | {row['failed']} | "
                     f"{_with_interval(row['mean'], row['mean_ci_low'], row['mean_ci_high'])} | "
                     f"{_with_interval(row['iqm'], row['iqm_ci_low'], row['iqm_ci_high'])} | {row['jobs']} |")
    lines += ["", "n: jobs with a finite value. Intervals: percentile bootstrap over the jobs (2000 resamples); "
              "IQM: the 25% trimmed mean (rliable). A configuration of one job has no interval."]
    if sweep.failed:
        lines += ["", "## Failed jobs", "", "| job | configuration | error |", "|---|---|---|"]
        for job in sweep.failed:
            why = job.error or "no result.json or error.txt (killed, or still running)"
            lines.append(f"| {job.num} | `{sweep.labels[job.num]}` | {why.replace('|', '/')} |")
    lines += ["", "## Jobs", "", "| job | configuration | seed | value | directory |", "|---|---|---|---|---|"]
    for job in sweep.jobs:
        seed = next((o.partition("=")[2] for o in job.overrides if o.partition("=")[0].lstrip("+") == "seed"), "")
        lines.append(f"| {job.num} | `{sweep.labels[job.num]}` | {seed} | "
                     f"{_number(sweep.values[job.num]) if job.status == 'finished' else job.status} | "
                     f"{job.path.relative_to(sweep.path) if job.path.is_relative_to(sweep.path) else job.path} |")
    return "\n".join(lines) + "\n"


def _short(label: str) -> str:
    """A configuration label that fits beside the figure (the table keeps the whole label)."""
    return label if len(label) <= LABEL_WIDTH else label[:LABEL_WIDTH - 1] + "…"


def plot(sweep: Sweep, path: Path) -> Path:
    """Every job's value (dots) and per configuration the mean and the IQM with their 95% intervals."""
    from metarl.io.outputs import pyplot

    plt = pyplot()
    configs = sweep.configurations
    fig, ax = plt.subplots(figsize=(7.0, 1.2 + 0.5 * max(1, len(configs))))
    labelled: set[str] = set()  # each legend entry once

    def once(name: str) -> str | None:
        first = name not in labelled
        labelled.add(name)
        return name if first else None

    for y, config in enumerate(configs):
        values = config.finite
        if values.size:
            ax.scatter(values, np.full(values.size, float(y)), s=14, color="0.55", zorder=1, label=once("job"))
        for stat, style, offset, color, name in ((config.mean_ci(), "o", -0.22, "C0", "mean (95% CI)"),
                                                 (config.iqm_ci(), "D", 0.22, "C1", "IQM (95% CI)")):
            value, low, high = stat
            if not math.isfinite(value):
                continue
            err = None if not math.isfinite(low) else [[value - low], [high - value]]
            ax.errorbar([value], [y + offset], xerr=err, fmt=style, color=color, capsize=3, zorder=2,
                        label=once(name))
    ticks = [_short(c.label) + (f" ({c.failed} failed)" if c.failed else "") for c in configs]
    ax.set_yticks(range(len(configs)), ticks)
    ax.set_ylim(len(configs) - 0.5, -0.5)  # the first configuration at the top, as in the table
    ax.set_xlabel(sweep.metric or "no metric")
    ax.set_title(f"{sweep.path.name}: {sum(c.n for c in configs)} jobs with a value, {len(sweep.failed)} failed",
                 fontsize=10)
    if labelled:
        ax.legend(fontsize=8, loc="best")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # labels wider than the figure: saved with bbox_inches
        fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def write_report(sweep: Sweep, out_dir: str | Path) -> dict[str, Path]:
    """``sweep_report.md``, ``.csv`` and ``.png`` in ``out_dir`` (replacing an earlier report there)."""
    from metarl.io.outputs import write_csv

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = table_rows(sweep)
    paths = {"table": out_dir / f"{REPORT_NAME}.md", "csv": out_dir / f"{REPORT_NAME}.csv",
             "figure": out_dir / f"{REPORT_NAME}.png"}
    paths["table"].write_text(markdown(sweep, rows))
    write_csv(paths["csv"], [{k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
                             for row in rows], header=list(CSV_COLUMNS))
    plot(sweep, paths["figure"])
    return paths
