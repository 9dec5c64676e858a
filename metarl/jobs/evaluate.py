"""Jobs ``evaluate_objective``, ``evaluate_optimizer``, ``evaluate_lpg`` (``metarl-evaluate``).

    metarl-evaluate artifact=<file.npz | meta-train run dir> env=CartPole-v1 seeds=8 compare=[ppo,dpo]
    metarl-evaluate objective=dpo optimizer=adam@1e-3 compare_optimizers=[lion]
    metarl-evaluate artifact=<learned_rule.npz> levels=[dense,long] baselines=[a2c,ppo,random]

The artifact's recorded ``kind`` chooses the job (the registry's
``job_reading``): an ``objective`` is plugged into PPO next to the
``compare`` objectives; a ``learned_optimizer`` trains PPO next to the
``compare_optimizers``; an ``lpg_rule`` trains agents against A2C, PPO and
random (:mod:`metarl.eval.lpg`). ``objective=`` / ``optimizer=`` may also name
the artifact. Without an artifact: ``objective`` x ``optimizer`` as named.

The inner PPO is the one recorded with the artifact; ``agent.<key>=...``
replaces a recorded value (each replacement is printed). Without a recorded
config the ``agent`` section is used as it is.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import envs
from metarl.agents.ppo import PPOConfig
from metarl.config import build_dataclass, check_finite, check_keys, check_number, group_options, override_keys, plain
from metarl.config import user_overrides
from metarl.eval.lpg import check_arguments, evaluate_and_write, methods_for
from metarl.eval.objectives import FIXED_OBJECTIVES, combine_runs, evaluate_objectives, ppo_settings
from metarl.eval.objectives import recorded_ppo_settings, resolve_objective
from metarl.eval.optimizers import ZOO_GROUP, name_duplicates, resolve_optimizer
from metarl.eval.report import write_comparison, write_results
from metarl.io import tracking
from metarl.io.artifacts import find_artifact, read_header
from metarl.jobs.registry import Job, register
from metarl.meta.fitness import as_env_list, env_overrides

PROGRAM = "metarl-evaluate"
DEFAULT_OBJECTIVE, DEFAULT_OPTIMIZER = "ppo", "adam"
COMMON = ("artifact", "objective", "compare", "seeds", "seed", "out_dir")
LEGACY_KINDS = {"optimizer": "learned_optimizer"}  # learned optimizers saved before the kind had its full name
# the slot an artifact of each kind fills
SLOT = {"objective": "objective", "lpg_rule": "objective", "learned_optimizer": "optimizer"}


def _names_a_file(key: str, value: Any) -> bool:
    if value is None:
        return False
    name = str(value)
    fixed = FIXED_OBJECTIVES if key == "objective" else group_options(ZOO_GROUP)
    return name.partition("@")[0].lower() not in fixed and Path(name).exists()


def artifact_path(cfg: Any) -> Path | None:
    """The artifact whose kind chooses the job: ``artifact=``, else ``objective=``/``optimizer=`` naming a file."""
    if cfg.get("artifact") is not None:
        return find_artifact(str(cfg.get("artifact")))
    for key in ("objective", "optimizer"):
        if _names_a_file(key, cfg.get(key)):
            return find_artifact(str(cfg.get(key)))
    return None


def artifact_kind(cfg: Any) -> str | None:
    """The recorded kind of the artifact ``cfg`` evaluates (``None``: no artifact, e.g. ``objective=dpo``)."""
    path = artifact_path(cfg)
    if path is None:
        return None
    kind = read_header(path)["kind"]
    return LEGACY_KINDS.get(kind, kind)


def _slot_values(cfg: Any, kind: str) -> dict[str, str]:
    """``{"objective": ..., "optimizer": ...}``: the artifact in its kind's slot, the other as given or default."""
    values = {"objective": cfg.get("objective"), "optimizer": cfg.get("optimizer")}
    if cfg.get("artifact") is not None:
        slot = SLOT[kind]
        if values[slot] is not None:
            raise ValueError(f"artifact= is the {slot} here; {slot}={values[slot]} names another (add it to compare)")
        values[slot] = str(cfg.get("artifact"))
    return {"objective": str(values["objective"] or DEFAULT_OBJECTIVE),
            "optimizer": str(values["optimizer"] or DEFAULT_OPTIMIZER)}


def _with(first: str, more: Any) -> list[str]:
    return [first] + [str(m) for m in (more or []) if str(m) != first]


def _user_agent_keys() -> list[str]:
    return [key.split(".", 1)[1] for key in override_keys(user_overrides()) if key.startswith("agent.")]


def _ppo_config(cfg: Any) -> tuple[PPOConfig, str | None]:
    """Recorded inner PPO (of the artifact) with the user's ``agent.*`` values, and a note of what they replaced."""
    path = artifact_path(cfg)
    recorded = recorded_ppo_settings(read_header(path)) if path is not None else None
    settings, notes = ppo_settings(recorded, plain(cfg.agent), _user_agent_keys())
    note = None
    if recorded is not None:
        replaced = "; replaced: " + ", ".join(notes) if notes else ""
        note = f"{PROGRAM}: inner PPO as recorded with {path.name}{replaced}"
    return build_dataclass(PPOConfig, settings, "agent"), note


def _common(cfg: Any) -> tuple[int, int]:
    """``(seeds, seed)``, checked."""
    seeds = check_number(cfg.get("seeds"), "seeds", integer=True, ge=1)
    return seeds, check_number(cfg.get("seed"), "seed", integer=True)


@dataclasses.dataclass
class ObjectivesPlan:
    """Everything an objective / optimizer evaluation needs, checked before anything compiles."""

    specs: list
    env_names: list[str]
    overrides: dict
    ppo_config: PPOConfig
    seeds: int
    seed: int
    final_fraction: float
    note: str | None  # what the user's agent.* replaced in the recorded inner PPO


def plan_objectives(cfg: Any, kind: str = "objective") -> ObjectivesPlan:
    """Check every option and resolve every name, file and env (:func:`run_objectives` without the runs)."""
    seeds, seed = _common(cfg)
    final_fraction = check_number(cfg.get("final_fraction"), "final_fraction", gt=0, le=1)
    slots = _slot_values(cfg, kind)
    ppo_config, note = _ppo_config(cfg)
    objectives = [resolve_objective(t, ppo_config.clip_eps) for t in _with(slots["objective"], cfg.get("compare"))]
    optimizer_names = _with(slots["optimizer"], cfg.get("compare_optimizers"))
    optimizers = [resolve_optimizer(name, ppo_config.lr) for name in optimizer_names]
    name_duplicates(optimizers, optimizer_names)
    env_cfg = plain(cfg.env)
    env_names, overrides = as_env_list(env_cfg), env_overrides(env_cfg)
    check_finite(overrides, "env.overrides")
    for name in env_names:
        ppo_config.validate(*envs.make(name, **overrides))
    return ObjectivesPlan(combine_runs(objectives, optimizers), env_names, overrides, ppo_config, seeds, seed,
                          final_fraction, note)


def run_objectives(cfg: Any, run_dir: Path, kind: str = "objective") -> dict:
    """Every objective x every optimizer on every env; the report in ``run_dir``."""
    plan = plan_objectives(cfg, kind)
    if plan.note:
        print(plan.note)
    results = evaluate_objectives(plan.specs, plan.env_names, plan.ppo_config, plan.seeds, plan.seed,
                                  plan.final_fraction, plan.overrides)
    paths = write_results(results, plan.specs, run_dir, plan.seed)
    tracking.log_table("evaluate", json.loads(paths["table_json"].read_text()))
    print(paths["table"].read_text())
    if len(plan.specs) > 1:  # the first method against the others: probability of improvement, profiles
        labels = [spec.label for spec in plan.specs]
        comparison = write_comparison(results, labels[0], labels[1:], run_dir, plan.seed)
        paths.update({f"comparison_{k}": v for k, v in comparison.items() if k != "rows"})
        print(comparison["table"].read_text())
    print(f"evaluation written to {run_dir}")
    return {"run_dir": str(run_dir), **{k: str(v) for k, v in paths.items()}}


def run_optimizers(cfg: Any, run_dir: Path) -> dict:
    return run_objectives(cfg, run_dir, kind="learned_optimizer")


def lpg_arguments(cfg: Any) -> dict:
    """The keyword arguments of :func:`metarl.eval.lpg.evaluate` from the config (checked there)."""
    seeds, seed = _common(cfg)
    ppo = check_keys(cfg.get("ppo"), [f.name for f in dataclasses.fields(PPOConfig)], "ppo")
    return {"rule_artifact": _slot_values(cfg, "lpg_rule")["objective"], "seed": seed, "seeds": seeds,
            "levels": plain(cfg.get("levels")) or [], "minatar": plain(cfg.get("minatar")) or [],
            "minatar_updates": cfg.get("minatar_updates"), "methods": methods_for(plain(cfg.get("baselines")) or []),
            "lifetimes": plain(cfg.get("lifetimes")), "compare": plain(cfg.get("compare")) or [], "ppo": ppo or None}


def check_lpg(cfg: Any) -> None:
    """Every option of an LPG-rule evaluation, checked as :func:`run_lpg` would (nothing runs)."""
    check_arguments(**{k: v for k, v in lpg_arguments(cfg).items() if k != "seed"})


def run_lpg(cfg: Any, run_dir: Path) -> dict:
    """A learned LPG rule (and ``compare`` rules) against A2C, PPO and random (:mod:`metarl.eval.lpg`)."""
    arguments = lpg_arguments(cfg)
    paths = evaluate_and_write(arguments.pop("rule_artifact"), run_dir, **arguments)
    if "table_json" in paths:  # the machine-readable table, when the evaluation wrote one
        tracking.log_table("evaluate", json.loads(paths["table_json"].read_text()), names=("lifetime",))
    print(paths["table"].read_text())
    print(f"evaluation written to {run_dir}")
    return {"run_dir": str(run_dir), **{k: str(v) for k, v in paths.items()}}


OBJECTIVE_SECTIONS = (*COMMON, "optimizer", "compare_optimizers", "env", "final_fraction", "agent")
register(Job("evaluate_objective", run_objectives, "evaluate", "a drift objective plugged into PPO, vs others",
             reads=("objective",), sections=OBJECTIVE_SECTIONS))
register(Job("evaluate_optimizer", run_optimizers, "evaluate", "a learned optimizer training PPO, vs others",
             reads=("learned_optimizer",), sections=OBJECTIVE_SECTIONS))
register(Job("evaluate_lpg", run_lpg, "evaluate", "a learned LPG rule vs A2C, PPO and random",
             reads=("lpg_rule",), sections=(*COMMON, "levels", "minatar", "minatar_updates", "baselines", "lifetimes", "ppo")))
