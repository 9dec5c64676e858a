"""Evaluate learned LPG rules: agents trained by them vs A2C vs PPO vs a uniform-random policy.

    metarl-evaluate artifact=outputs/.../learned_rule.npz levels=[dense,long,small] \
        minatar=[Breakout-MinAtar,SpaceInvaders-MinAtar] baselines=[a2c,ppo,random] \
        lifetimes=[10,40,120] compare=[outputs/.../dr/learned_rule.npz] seeds=8

(``metarl-evaluate`` runs this for artifacts of kind ``lpg_rule``.)

Grid worlds (``levels``, names from ``envs.gridworld``): a named level
(``dense``, ``sparse``, ``long``, ...) is used as is; a distribution
(``small``, ``medium``, ``all``) gives every seed its own level drawn with a
held-out key. Per level, method and lifetime (``lifetimes``: agent updates;
default the meta-training lifetime; TA-LPG is meant to be probed shorter and
longer in one call) each seed trains a fresh agent and reports the mean
evaluation return of its stochastic policy over ``eval_episodes`` episodes
(``LifetimeResult.final_return``). A2C trains for the same lifetime; PPO
(:mod:`metarl.eval.lpg_baselines`) gets the same environment steps
(``num_envs x num_steps x lifetime``) on the same level and is evaluated on the
same evaluation key; the random policy is the uniform policy (no training).

MinAtar (``minatar``, gymnax names): the rule drives the MLP agent on
flattened observations (:mod:`metarl.eval.lpg_envs`) for ``minatar_updates``
updates (one budget for every method, reported as the lifetime column).

``compare`` adds rows for further rules (e.g. the same rule meta-trained with
domain randomisation), labelled ``LPG-<teacher>``; every rule, baseline and
method sees the same keys and levels, seed by seed.

Writes ``per_seed.csv``, ``aggregate.md`` (one table per suite and lifetime,
then the long table), ``aggregate.csv`` / ``aggregate.json`` (IQM and mean with
95% bootstrap intervals from :mod:`metarl.stats`), ``returns.png`` (a panel per
suite and lifetime) and, with several lifetimes, ``lifetimes.png``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import envs
from envs.gridworld_levels import DISTRIBUTIONS, LEVELS
from metarl.eval.lpg_baselines import env_steps, make_ppo_runner, ppo_config_for
from metarl.eval.lpg_envs import check_minatar, minatar_env, mlp_agent_config
from metarl.config import check_keys, positive_int, unknown_name
from metarl.eval import report
from metarl.eval.report import ci_text, iqm_interval, mean_interval, text
from metarl.io.outputs import ProgressBar, pyplot, write_csv

METHODS = ("LPG", "A2C", "PPO", "random")
DEFAULT_METHODS = ("LPG", "A2C", "random")  # evaluate()'s default (meta-training's own evaluation); the CLI adds PPO
BASELINES = {"a2c": "A2C", "ppo": "PPO", "random": "random"}  # baselines=[...] names -> method rows
DEFAULT_LEVELS = ("dense", "sparse", "long", "small", "medium")
DEFAULT_MINATAR_UPDATES = 100
_EVAL_SALT = 104_729  # evaluation keys differ from every meta-training key
_MINATAR_INDEX = 1_000  # MinAtar keys: fold_in index offset, distinct from every grid-world level index
_SHORT_TEACHERS = {"domain_randomization": "DR", "groove": "GROOVE", "fixed": "fixed"}


@dataclasses.dataclass
class LPGEvalResults:
    final: dict[tuple[str, int, str], np.ndarray]  # (env, lifetime, method) -> [seeds] evaluation return
    curves: dict[tuple[str, int, str], np.ndarray]  # (env, lifetime, method) -> [seeds, updates] training return
    levels: list[str]
    lifetimes: list[int]
    rule_label: str
    minatar: list[str] = dataclasses.field(default_factory=list)
    minatar_updates: int = 0
    suites: dict[str, str] = dataclasses.field(default_factory=dict)  # env -> "gridworld" | "minatar"
    env_steps: dict[tuple[str, int], int] = dataclasses.field(default_factory=dict)  # per agent
    methods: list[str] = dataclasses.field(default_factory=list)  # row labels, rules first


@dataclasses.dataclass
class RuleSpec:
    label: str
    rule: Any
    agent_config: Any
    meta_params: Any
    header: dict


def level_batch(level: str, seeds: int, key: jax.Array) -> tuple[Any, Any]:
    """``(env, params batched over seeds)`` for a named level or a distribution (one level per seed)."""
    check_levels([level])
    env, params = envs.make(f"gridworld-{level}")
    if level in DISTRIBUTIONS:
        return env, env.task_space.sample_batch(key, seeds)
    return env, _broadcast(params, seeds)


def _broadcast(params: Any, seeds: int) -> Any:
    return jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x), (seeds, *jnp.shape(x))), params)


def check_levels(levels: Sequence[str]) -> list[str]:
    levels = names_list(levels, "levels")
    for level in levels:
        if level not in LEVELS and level not in DISTRIBUTIONS:
            raise unknown_name("grid-world level", level, [*LEVELS, *DISTRIBUTIONS])
    return levels


def as_list(value: Any, name: str) -> list:
    """``value`` as a list; a lone string or number is refused (``levels=small`` would be five letters)."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(f"{name} must be a list, e.g. {name}=[{value}], got {value!r}")
    return list(value)


def names_list(value: Any, name: str) -> list[str]:
    return [str(v) for v in as_list(value, name)]


def _programs(env: Any, rule: Any, agent_config: Any, num_updates: int):
    # keyed by the rule's config: artifacts of one config share the compiled programs
    return _programs_for(env, rule.config, agent_config, num_updates)


@functools.lru_cache(maxsize=None)
def _programs_for(env: Any, rule_config: Any, agent_config: Any, num_updates: int):
    """Jitted seed-batched (LPG, A2C, random) programs; equal envs share them.

    Compiled once for the longest lifetime; shorter ones pass ``lifetime``
    (traced): the agent stops learning there, and TA-LPG sees that ``N``.
    """
    from metarl.lpg import LPGRule, make_a2c_lifetime, make_lpg_lifetime
    from metarl.lpg.lifetime import LPGLifetime

    rule = LPGRule(rule_config)
    lpg = make_lpg_lifetime(agent_config, env, rule)
    a2c = make_a2c_lifetime(agent_config, env)
    uniform = LPGLifetime(agent_config, env, rule)

    def random_policy(key, level):
        params = jax.tree.map(jnp.zeros_like, uniform.init_params(key))  # zero logits = uniform policy
        return uniform.evaluate(params, jax.random.split(key, 3)[2], level)  # the trained agents' evaluation key

    def lpg_run(keys, meta_params, levels, lifetime):
        result = jax.vmap(lambda k, lvl: lpg(k, meta_params, lvl, num_updates=num_updates, lifetime=lifetime))(
            keys, levels)
        return result.final_return, result.returns

    def a2c_run(keys, levels, lifetime):
        result = jax.vmap(lambda k, lvl: a2c(k, lvl, num_updates=num_updates, lifetime=lifetime))(keys, levels)
        return result.final_return, result.returns

    return jax.jit(lpg_run), jax.jit(a2c_run), jax.jit(jax.vmap(random_policy))


@functools.lru_cache(maxsize=None)
def _ppo_program(env: Any, agent_config: Any, num_updates: int, overrides: tuple):
    """PPO with the budget of ``num_updates`` LPG updates (one compile per lifetime: PPO anneals over its budget)."""
    config = ppo_config_for(agent_config, num_updates, dict(overrides))
    return make_ppo_runner(config, env, agent_config.eval_episodes)


def _frozen(overrides: dict | None) -> tuple:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in (overrides or {}).items()))


def rule_label(header: dict, path: str | Path) -> str:
    """``LPG-<teacher>`` (``TA_LPG-...`` for lifetime-aware rules) from the artifact header, else the file's name."""
    extra = header.get("extra", {}) or {}
    name = str(extra.get("objective") or header.get("name", "lpg")).upper()
    teacher = extra.get("teacher")
    if teacher:
        return f"{name}-{_SHORT_TEACHERS.get(teacher, teacher)}"
    path = Path(path)
    return f"{name}-{path.parent.name if path.name == 'learned_rule.npz' else path.stem}"


def load_rules(primary: str | Path, compare: Sequence[str | Path] = ()) -> list[RuleSpec]:
    """The evaluated rule (label ``LPG``) and the comparison rules (distinct labels, same agent config)."""
    from metarl.lpg.artifact import load_rule

    specs = [RuleSpec("LPG", *load_rule(primary))]
    for path in compare:
        rule, agent_config, meta_params, header = load_rule(path)
        if agent_config != specs[0].agent_config:
            raise ValueError(f"compare rule {path} was meta-trained with a different agent config than {primary}")
        label = rule_label(header, path)
        taken = {s.label for s in specs}
        if label in taken:
            label = f"{label}:{Path(path).stem}"
        if label in taken:
            raise ValueError(f"compare rule {path} is given twice")
        specs.append(RuleSpec(label, rule, agent_config, meta_params, header))
    return specs


def _check_methods(methods: Sequence[str]) -> list[str]:
    for method in methods:
        if method not in METHODS:
            raise unknown_name("method", method, METHODS)
    return list(methods)


@dataclasses.dataclass(frozen=True)
class EvaluationPlan:
    """The checked arguments of :func:`evaluate` (built before anything compiles)."""

    levels: list[str]
    minatar: list[str]
    methods: list[str]
    seeds: int
    minatar_updates: int
    rules: list[RuleSpec]
    lifetimes: list[int]
    ppo_overrides: tuple


EVALUATE_OPTIONS = ("levels", "seeds", "lifetimes", "methods", "minatar", "minatar_updates", "compare", "ppo")


def check_settings(settings: Any, name: str = "objective.eval") -> None:
    """:func:`evaluate` options without a rule file yet (meta-training's own evaluation): keys, names, counts."""
    settings = check_keys(settings, (*EVALUATE_OPTIONS, "enabled"), name)
    check_levels(settings.get("levels", DEFAULT_LEVELS))
    check_minatar(names_list(settings.get("minatar", ()), f"{name}.minatar"))
    _check_methods(names_list(settings.get("methods", DEFAULT_METHODS), f"{name}.methods"))
    for key in ("seeds", "minatar_updates"):
        if key in settings:
            positive_int(settings[key], f"{name}.{key}")
    if settings.get("lifetimes") is not None:
        for lifetime in as_list(settings["lifetimes"], f"{name}.lifetimes"):
            positive_int(lifetime, f"{name}.lifetimes: each lifetime")


def check_arguments(rule_artifact: str | Path, levels: Sequence[str] = DEFAULT_LEVELS, seeds: int = 8,
                    lifetimes: Sequence[int] | None = None, methods: Sequence[str] = DEFAULT_METHODS,
                    minatar: Sequence[str] = (), minatar_updates: int = DEFAULT_MINATAR_UPDATES,
                    compare: Sequence[str | Path] = (), ppo: dict | None = None) -> EvaluationPlan:
    """Every argument of :func:`evaluate` checked (names, counts, rule files, PPO options); one-line errors."""
    levels, minatar = check_levels(levels), check_minatar(names_list(minatar, "minatar"))
    if not levels and not minatar:
        raise ValueError("nothing to evaluate: give grid-world levels and/or MinAtar envs")
    methods = _check_methods(methods)
    seeds = positive_int(seeds, "seeds")
    minatar_updates = positive_int(minatar_updates, "minatar_updates")
    rules = load_rules(rule_artifact, names_list(compare, "compare"))
    if lifetimes is None:
        lifetimes = [int(rules[0].header.get("extra", {}).get("lifetime") or 50)]
    lifetimes = [positive_int(n, "lifetimes: each lifetime") for n in as_list(lifetimes, "lifetimes")]
    if not lifetimes:
        raise ValueError("lifetimes must name at least one lifetime")
    ppo_overrides = _frozen(ppo)
    ppo_config_for(rules[0].agent_config, 1, dict(ppo_overrides))  # bad PPO options fail before compiling
    return EvaluationPlan(levels, minatar, methods, seeds, minatar_updates, rules, lifetimes, ppo_overrides)


def evaluate(
    rule_artifact: str | Path,
    levels: Sequence[str] = DEFAULT_LEVELS,
    seeds: int = 8,
    lifetimes: Sequence[int] | None = None,
    seed: int = 0,
    methods: Sequence[str] = DEFAULT_METHODS,
    minatar: Sequence[str] = (),
    minatar_updates: int = DEFAULT_MINATAR_UPDATES,
    compare: Sequence[str | Path] = (),
    ppo: dict | None = None,
) -> LPGEvalResults:
    """Train ``seeds`` agents per env, lifetime and method with common keys; see the module docstring.

    Every argument is checked before anything is compiled, so a bad name fails at once.
    """
    plan = check_arguments(rule_artifact, levels, seeds, lifetimes, methods, minatar, minatar_updates, compare, ppo)
    levels, minatar, methods, seeds, rules = plan.levels, plan.minatar, plan.methods, plan.seeds, plan.rules
    minatar_updates, lifetimes, ppo_overrides = plan.minatar_updates, plan.lifetimes, plan.ppo_overrides
    agent_config, header = rules[0].agent_config, rules[0].header
    lpg_rules = rules if "LPG" in methods else []
    row_methods = [r.label for r in lpg_rules] + [m for m in methods if m != "LPG"]
    results = LPGEvalResults({}, {}, list(levels), lifetimes, header.get("name", "lpg").upper(), list(minatar),
                             minatar_updates if minatar else 0, methods=row_methods)
    base_key = jax.random.PRNGKey(seed + _EVAL_SALT)
    bar = ProgressBar(len(levels) + len(minatar), description=f"evaluate x{seeds} seeds", unit="env")
    with bar:
        for level_index, level in enumerate(levels):
            level_key, agent_key = jax.random.split(jax.random.fold_in(base_key, level_index))
            env, batch = level_batch(level, seeds, level_key)
            results.suites[level] = "gridworld"
            _evaluate_env(results, level, env, env, batch, jax.random.split(agent_key, seeds), agent_config,
                          rules, lpg_rules, lifetimes, methods, ppo_overrides)
            bar.callback(level_index + 1)
        for index, name in enumerate(minatar):
            agent_key = jax.random.fold_in(base_key, _MINATAR_INDEX + index)
            raw_env, flat_env, params = minatar_env(name)
            results.suites[name] = "minatar"
            _evaluate_env(results, name, flat_env, raw_env, _broadcast(params, seeds),
                          jax.random.split(agent_key, seeds), mlp_agent_config(agent_config), rules, lpg_rules,
                          [minatar_updates], methods, ppo_overrides)
            bar.callback(len(levels) + index + 1)
    return results


def _evaluate_env(results: LPGEvalResults, label: str, env: Any, ppo_env: Any, batch: Any, keys: jax.Array,
                  agent_config: Any, rules: list[RuleSpec], lpg_rules: list[RuleSpec], lifetimes: list[int],
                  methods: list[str], ppo_overrides: tuple) -> None:
    """All rows of one env: every rule, then the baselines, for every lifetime (same keys and levels)."""
    longest = max(lifetimes)
    final, curves = results.final, results.curves
    for lifetime in lifetimes:
        results.env_steps[label, lifetime] = env_steps(agent_config, lifetime)
        for spec in lpg_rules:
            lpg_run = _programs(env, spec.rule, agent_config, longest)[0]
            ret, curve = lpg_run(keys, spec.meta_params, batch, lifetime)
            final[label, lifetime, spec.label] = np.asarray(ret)
            curves[label, lifetime, spec.label] = np.asarray(curve)[:, :lifetime]
        a2c_run, random_run = _programs(env, rules[0].rule, agent_config, longest)[1:]
        if "A2C" in methods:
            ret, curve = a2c_run(keys, batch, lifetime)
            final[label, lifetime, "A2C"], curves[label, lifetime, "A2C"] = np.asarray(ret), np.asarray(curve)[:, :lifetime]
        if "PPO" in methods:
            ret, curve = _ppo_program(ppo_env, agent_config, lifetime, ppo_overrides)(keys, batch)
            final[label, lifetime, "PPO"], curves[label, lifetime, "PPO"] = np.asarray(ret), np.asarray(curve)
        if "random" in methods:  # untrained: the same for every lifetime
            final[label, lifetime, "random"] = np.asarray(random_run(keys, batch))



# --- aggregation ------------------------------------------------------------------------
def methods_for(baselines: Sequence[str]) -> list[str]:
    """Method rows for ``baselines=[a2c,ppo,random]`` (any subset, any case): the rule(s), then those."""
    for baseline in names_list(baselines, "baselines"):
        if baseline.lower() not in BASELINES:
            raise unknown_name("baseline", baseline, BASELINES)
    return ["LPG"] + [BASELINES[str(b).lower()] for b in baselines]


def interval_row(scores: np.ndarray, reps: int = 2000, seed: int = 0) -> dict:
    """IQM and mean of per-seed scores, each with a 95% bootstrap interval."""
    scores = np.asarray(scores, np.float64)
    mean, low, high = mean_interval(scores, reps, seed)
    iqm, iqm_low, iqm_high = iqm_interval(scores[:, None], reps, seed)
    return {"seeds": int(scores.size), "mean": mean, "mean_low": low, "mean_high": high,
            "iqm": iqm, "iqm_low": iqm_low, "iqm_high": iqm_high}


def aggregate(results: LPGEvalResults, seed: int = 0, reps: int = 2000) -> list[dict]:
    """One row per (env, lifetime, method): suite, env steps per agent, IQM and mean with 95% CIs."""
    rows = []
    for (level, lifetime, method), scores in results.final.items():
        rows.append({"suite": results.suites.get(level, "gridworld"), "level": level, "lifetime": lifetime,
                     "env_steps": results.env_steps.get((level, lifetime), 0), "method": method,
                     **interval_row(scores, reps=reps, seed=seed)})
    return rows


LONG_TABLE = [
    ("level", False, text("level")),
    ("lifetime", True, text("lifetime")),
    ("method", False, text("method")),
    ("IQM return", True, text("iqm", 3)),
    ("95% CI", False, ci_text("iqm_low", "iqm_high", 3)),
    ("mean", True, text("mean", 3)),
    ("95% CI", False, ci_text("mean_low", "mean_high", 3)),
    ("seeds", True, text("seeds")),
]


def markdown_table(rows: list[dict]) -> str:
    """The long table: one line per (env, lifetime, method)."""
    return report.markdown_table(rows, LONG_TABLE)


def _groups(rows: list[dict]) -> list[tuple[str, int]]:
    """(suite, lifetime) in first-seen suite order, lifetimes ascending."""
    suites = list(dict.fromkeys(r.get("suite", "gridworld") for r in rows))
    return [(s, n) for s in suites for n in sorted({r["lifetime"] for r in rows if r.get("suite", "gridworld") == s})]


def wide_tables(rows: list[dict]) -> str:
    """One table per suite and lifetime: env x method, cells ``IQM [95% CI]``."""
    out = []
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for suite, lifetime in _groups(rows):
        sel = [r for r in rows if r.get("suite", "gridworld") == suite and r["lifetime"] == lifetime]
        steps = sel[0].get("env_steps", 0)
        out.append(f"### {suite}, lifetime {lifetime} updates ({steps} env steps per agent), IQM return [95% CI]\n")
        present = [m for m in methods if any(r["method"] == m for r in sel)]
        out.append("| env | " + " | ".join(present) + " |")
        out.append("|---|" + "---|" * len(present))
        cells = {(r["level"], r["method"]): r for r in sel}
        for level in dict.fromkeys(r["level"] for r in sel):
            row = [f"{c['iqm']:.2f} [{c['iqm_low']:.2f}, {c['iqm_high']:.2f}]" if (c := cells.get((level, m))) else "—"
                   for m in present]
            out.append(f"| {level} | " + " | ".join(row) + " |")
        out.append("")
    return "\n".join(out)


# --- plots ------------------------------------------------------------------------------
def _save_figure(plt: Any, fig: Any, axes: Any, ylabel: str, title: str, path: Path) -> Path:
    axes[0][0].set_ylabel(ylabel)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return Path(path)


def plot_returns(rows: list[dict], path: Path, title: str = "LPG evaluation") -> Path:
    """Grouped bars (IQM with 95% CI) per env, one panel per suite and lifetime."""
    plt = pyplot()
    groups = _groups(rows)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    widths = [len({r["level"] for r in rows if r.get("suite", "gridworld") == s}) for s, _ in groups]
    fig, axes = plt.subplots(1, len(groups), figsize=(1.6 + 1.4 * sum(widths) + 0.4 * len(groups), 3.6),
                             squeeze=False, gridspec_kw={"width_ratios": widths})
    width = 0.8 / len(methods)
    for ax, (suite, lifetime) in zip(axes[0], groups):
        sel = [r for r in rows if r.get("suite", "gridworld") == suite and r["lifetime"] == lifetime]
        levels = list(dict.fromkeys(r["level"] for r in sel))
        for m, method in enumerate(methods):
            cells = {r["level"]: r for r in sel if r["method"] == method}
            shown = [lv for lv in levels if lv in cells]
            if not shown:
                continue
            x = np.array([levels.index(lv) for lv in shown]) + (m - (len(methods) - 1) / 2) * width
            iqm = np.array([cells[lv]["iqm"] for lv in shown])
            err = np.array([[cells[lv]["iqm"] - cells[lv]["iqm_low"], cells[lv]["iqm_high"] - cells[lv]["iqm"]]
                            for lv in shown]).T
            ax.bar(x, iqm, width, yerr=err, capsize=2, label=method, color=f"C{m}")
        ax.set_xticks(np.arange(len(levels)), levels, rotation=30, fontsize=8)
        ax.axhline(0.0, color="gray", lw=0.6)
        ax.set_title(f"{suite}, {lifetime} updates", fontsize=9)
    return _save_figure(plt, fig, axes, "evaluation return (IQM, 95% CI)", title, path)


def plot_lifetimes(rows: list[dict], path: Path, title: str = "evaluation return against lifetime") -> Path:
    """IQM (95% CI band) against lifetime per method, a panel per grid-world env (several lifetimes only)."""
    plt = pyplot()
    rows = [r for r in rows if r.get("suite", "gridworld") == "gridworld"]
    levels = list(dict.fromkeys(r["level"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    fig, axes = plt.subplots(1, len(levels), figsize=(0.8 + 3.0 * len(levels), 3.2), squeeze=False)
    for ax, level in zip(axes[0], levels):
        for m, method in enumerate(methods):
            sel = sorted((r for r in rows if r["level"] == level and r["method"] == method), key=lambda r: r["lifetime"])
            x = [r["lifetime"] for r in sel]
            ax.plot(x, [r["iqm"] for r in sel], "o-", ms=3, label=method, color=f"C{m}")
            ax.fill_between(x, [r["iqm_low"] for r in sel], [r["iqm_high"] for r in sel], alpha=0.15, color=f"C{m}")
        ax.set_xscale("log")
        ax.set(title=level, xlabel="lifetime (agent updates)")
    return _save_figure(plt, fig, axes, "evaluation return (IQM)", title, path)


def write_results(results: LPGEvalResults, out_dir: str | Path, seed: int = 0, reps: int = 2000) -> dict[str, Path]:
    """Per-seed CSV, aggregate tables (md, csv, json; ``reps`` bootstrap resamples) and plots."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"per_seed": out_dir / "per_seed.csv", "table": out_dir / "aggregate.md",
             "table_csv": out_dir / "aggregate.csv", "table_json": out_dir / "aggregate.json",
             "plot": out_dir / "returns.png"}
    write_csv(paths["per_seed"], [{"level": level, "lifetime": lifetime, "method": method, "seed": s, "return": f"{v:.5f}"}
                                  for (level, lifetime, method), scores in results.final.items()
                                  for s, v in enumerate(scores)])
    rows = aggregate(results, seed, reps)
    paths["table"].write_text(wide_tables(rows) + "\n### all rows\n\n" + markdown_table(rows) + "\n")
    write_csv(paths["table_csv"], rows)
    paths["table_json"].write_text(json.dumps(rows, indent=1))
    versus = " vs ".join(dict.fromkeys(r["method"] for r in rows))
    plot_returns(rows, paths["plot"], f"{results.rule_label} evaluation: {versus}")
    if len(results.lifetimes) > 1 and results.levels:
        paths["lifetimes"] = plot_lifetimes(rows, out_dir / "lifetimes.png")
    return paths


def evaluate_and_write(rule_artifact: str | Path, out_dir: str | Path, seed: int = 0, **kwargs: Any) -> dict[str, Path]:
    return write_results(evaluate(rule_artifact, seed=seed, **kwargs), out_dir, seed)
