"""Evaluate a learned LPG rule: agents trained by it vs A2C vs a uniform-random policy on held-out levels.

    python -m metarl.lpg.evaluate objective=outputs/.../learned_rule.npz levels=[dense,sparse,long] seeds=8

Levels are grid-world names (``envs.gridworld``): a named level (``dense``,
``sparse``, ``long``, ...) is used as is; a distribution (``small``,
``medium``, ``all``) gives every seed its own level drawn with a held-out key.
Per level, method and lifetime (``lifetimes``: agent updates; default the
meta-training lifetime; TA-LPG is meant to be probed shorter and longer) each
seed trains a fresh agent and reports its evaluation return
(``LifetimeResult.final_return``). A2C trains for the same lifetime; the
random policy is the uniform policy (no training).

Writes ``per_seed.csv``, ``aggregate.md`` / ``aggregate.json`` (IQM and mean
with 95% bootstrap intervals; IQM via rliable when importable, else the same
stratified bootstrap from :mod:`metarl.evaluate`) and ``returns.png``.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import envs
from envs.gridworld_levels import DISTRIBUTIONS, LEVELS
from metarl.evaluate import _rliable_iqm, stratified_bootstrap_iqm
from metarl.outputs import bootstrap_ci

METHODS = ("LPG", "A2C", "random")
DEFAULT_LEVELS = ("dense", "sparse", "long", "small", "medium")
_EVAL_SALT = 104_729  # evaluation keys differ from every meta-training key


@dataclasses.dataclass
class LPGEvalResults:
    final: dict[tuple[str, int, str], np.ndarray]  # (level, lifetime, method) -> [seeds] evaluation return
    curves: dict[tuple[str, int, str], np.ndarray]  # (level, lifetime, method) -> [seeds, updates] training return
    levels: list[str]
    lifetimes: list[int]
    rule_label: str


def level_batch(level: str, seeds: int, key: jax.Array) -> tuple[Any, Any]:
    """``(env, params batched over seeds)`` for a named level or a distribution (one level per seed)."""
    if level not in LEVELS and level not in DISTRIBUTIONS:
        raise ValueError(f"unknown grid-world level {level!r}; known: {', '.join([*LEVELS, *DISTRIBUTIONS])}")
    env, params = envs.make(f"gridworld-{level}")
    if level in DISTRIBUTIONS:
        return env, env.task_space.sample_batch(key, seeds)
    return env, jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x), (seeds, *jnp.shape(x))), params)


def _programs(env: Any, rule: Any, agent_config: Any, num_updates: int):
    # keyed by the rule's config: artifacts of one config share the compiled programs
    return _programs_for(env, rule.config, agent_config, num_updates)


@functools.lru_cache(maxsize=None)
def _programs_for(env: Any, rule_config: Any, agent_config: Any, num_updates: int):
    """Jitted seed-batched (LPG, A2C, random) programs; equal grid-world envs share them.

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
        return uniform.evaluate(params, key, level)

    def lpg_run(keys, meta_params, levels, lifetime):
        result = jax.vmap(lambda k, lvl: lpg(k, meta_params, lvl, num_updates=num_updates, lifetime=lifetime))(
            keys, levels)
        return result.final_return, result.returns

    def a2c_run(keys, levels, lifetime):
        result = jax.vmap(lambda k, lvl: a2c(k, lvl, num_updates=num_updates, lifetime=lifetime))(keys, levels)
        return result.final_return, result.returns

    return jax.jit(lpg_run), jax.jit(a2c_run), jax.jit(jax.vmap(random_policy))


def evaluate(
    rule_artifact: str | Path,
    levels: Sequence[str] = DEFAULT_LEVELS,
    seeds: int = 8,
    lifetimes: Sequence[int] | None = None,
    seed: int = 0,
    methods: Sequence[str] = METHODS,
) -> LPGEvalResults:
    """Train ``seeds`` agents per level, lifetime and method with common keys; see the module docstring."""
    from metarl.lpg.meta import load_rule

    rule, agent_config, meta_params, header = load_rule(rule_artifact)
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise ValueError(f"unknown method {bad[0]!r}; choose from {list(METHODS)}")
    if lifetimes is None:
        lifetimes = [int(header.get("extra", {}).get("lifetime") or 50)]
    lifetimes = [int(n) for n in lifetimes]
    if any(n < 1 for n in lifetimes):
        raise ValueError(f"lifetimes must be positive, got {lifetimes}")
    final, curves = {}, {}
    for level_index, level in enumerate(levels):
        key = jax.random.fold_in(jax.random.PRNGKey(seed + _EVAL_SALT), level_index)
        level_key, agent_key = jax.random.split(key)
        env, batch = level_batch(level, seeds, level_key)
        keys = jax.random.split(agent_key, seeds)
        lpg_run, a2c_run, random_run = _programs(env, rule, agent_config, max(lifetimes))
        for lifetime in lifetimes:
            if "LPG" in methods:
                ret, curve = lpg_run(keys, meta_params, batch, lifetime)
                final[level, lifetime, "LPG"], curves[level, lifetime, "LPG"] = np.asarray(ret), np.asarray(curve)
            if "A2C" in methods:
                ret, curve = a2c_run(keys, batch, lifetime)
                final[level, lifetime, "A2C"], curves[level, lifetime, "A2C"] = np.asarray(ret), np.asarray(curve)
            if "random" in methods:  # untrained: the same for every lifetime
                final[level, lifetime, "random"] = np.asarray(random_run(keys, batch))
    return LPGEvalResults(final, curves, list(levels), lifetimes, header.get("name", "lpg").upper())


def interval_row(scores: np.ndarray, reps: int = 2000, seed: int = 0) -> dict:
    """IQM and mean of per-seed scores, each with a 95% bootstrap interval."""
    scores = np.asarray(scores, np.float64)
    mean, low, high = bootstrap_ci(scores, n_boot=reps, seed=seed)
    row = {"seeds": int(scores.size), "mean": float(mean[0]), "mean_low": float(low[0]), "mean_high": float(high[0])}
    if np.isfinite(scores).all():
        estimate = _rliable_iqm(scores[:, None], reps, seed) or stratified_bootstrap_iqm(scores[:, None], reps, seed)
        row |= {"iqm": estimate[0], "iqm_low": estimate[1], "iqm_high": estimate[2]}
    else:
        row |= {"iqm": math.nan, "iqm_low": math.nan, "iqm_high": math.nan}
    return row


def aggregate(results: LPGEvalResults, seed: int = 0) -> list[dict]:
    rows = []
    for (level, lifetime, method), scores in results.final.items():
        rows.append({"level": level, "lifetime": lifetime, "method": method, **interval_row(scores, seed=seed)})
    return rows


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| level | lifetime | method | IQM return | 95% CI | mean | 95% CI | seeds |",
        "|---|---:|---|---:|---|---:|---|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['level']} | {r['lifetime']} | {r['method']} | {r['iqm']:.3f} | [{r['iqm_low']:.3f}, {r['iqm_high']:.3f}] "
            f"| {r['mean']:.3f} | [{r['mean_low']:.3f}, {r['mean_high']:.3f}] | {r['seeds']} |"
        )
    return "\n".join(lines)


def plot_returns(rows: list[dict], path: Path, title: str = "LPG evaluation") -> Path:
    """Grouped bars (IQM with 95% CI) per level, one panel per lifetime."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lifetimes = sorted({r["lifetime"] for r in rows})
    levels = list(dict.fromkeys(r["level"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    fig, axes = plt.subplots(1, len(lifetimes), figsize=(1.4 + 1.3 * len(levels) * len(lifetimes), 3.4),
                             squeeze=False)
    width = 0.8 / len(methods)
    for ax, lifetime in zip(axes[0], lifetimes):
        for m, method in enumerate(methods):
            sel = {r["level"]: r for r in rows if r["lifetime"] == lifetime and r["method"] == method}
            x = np.arange(len(levels)) + (m - (len(methods) - 1) / 2) * width
            iqm = np.array([sel[lv]["iqm"] for lv in levels])
            err = np.array([[sel[lv]["iqm"] - sel[lv]["iqm_low"], sel[lv]["iqm_high"] - sel[lv]["iqm"]] for lv in levels]).T
            ax.bar(x, iqm, width, yerr=err, capsize=2, label=method)
        ax.set_xticks(np.arange(len(levels)), levels, rotation=30)
        ax.axhline(0.0, color="gray", lw=0.6)
        ax.set(title=f"lifetime {lifetime} updates", ylabel="evaluation return (IQM, 95% CI)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return Path(path)


def write_results(results: LPGEvalResults, out_dir: str | Path, seed: int = 0) -> dict[str, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"per_seed": out_dir / "per_seed.csv", "table": out_dir / "aggregate.md",
             "table_json": out_dir / "aggregate.json", "plot": out_dir / "returns.png"}
    with paths["per_seed"].open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["level", "lifetime", "method", "seed", "return"])
        for (level, lifetime, method), scores in results.final.items():
            writer.writerows([level, lifetime, method, s, f"{v:.5f}"] for s, v in enumerate(scores))
    rows = aggregate(results, seed)
    paths["table"].write_text(markdown_table(rows) + "\n")
    paths["table_json"].write_text(json.dumps(rows, indent=1))
    plot_returns(rows, paths["plot"], f"{results.rule_label} vs A2C vs random")
    return paths


def evaluate_and_write(rule_artifact: str | Path, out_dir: str | Path, seed: int = 0, **kwargs: Any) -> dict[str, Path]:
    return write_results(evaluate(rule_artifact, seed=seed, **kwargs), out_dir, seed)


# --- CLI --------------------------------------------------------------------------------
_CLI_KEYS = {"objective", "levels", "seeds", "lifetimes", "seed", "out_dir", "methods"}


def parse_args(argv: Sequence[str]) -> dict:
    """``key=value`` pairs (OmegaConf dot-list syntax: lists as ``[a,b]``)."""
    from omegaconf import OmegaConf

    for item in argv:
        if "=" not in item:
            raise ValueError(f"expected key=value, got {item!r}")
    args = OmegaConf.to_container(OmegaConf.from_dotlist(list(argv)), resolve=True)
    unknown = sorted(set(args) - _CLI_KEYS)
    if unknown:
        raise ValueError(f"unknown option {unknown[0]!r} (valid: {', '.join(sorted(_CLI_KEYS))})")
    if "objective" not in args:
        raise ValueError("objective=<learned_rule.npz or its run directory> is required")
    for key in ("levels", "lifetimes", "methods"):
        if key in args and args[key] is not None and not isinstance(args[key], list):
            args[key] = [args[key]]
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """``metarl-evaluate``-style entry point for LPG rules; bad input exits 2 with one line."""
    import time

    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        out_dir = Path(args.pop("out_dir", None) or f"outputs/evaluate_lpg/{time.strftime('%Y-%m-%d_%H-%M-%S')}")
        artifact = args.pop("objective")
        args["levels"] = args.get("levels") or list(DEFAULT_LEVELS)
        paths = evaluate_and_write(artifact, out_dir, **{k: v for k, v in args.items() if v is not None})
    except ValueError as error:
        print(f"metarl-evaluate: error: {' '.join(str(error).split())}", file=sys.stderr)
        raise SystemExit(2) from None
    print(paths["table"].read_text())
    print(f"evaluation written to {out_dir}")


if __name__ == "__main__":
    main()
