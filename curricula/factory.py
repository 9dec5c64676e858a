"""Build a teacher from a plain config mapping (the Hydra group ``teacher/``).

Keys by ``name``:

An optional ``label`` key is a display name and is ignored here.

* ``domain_randomization`` | ``fixed`` (optional ``task``: field overrides)
* ``bandit``: ``algorithm: {name, **kwargs}`` (``curricula.bandits.ALGORITHMS``),
  ``signal: {name, **kwargs}`` (``curricula.progress.SIGNALS``),
  ``arms: {bins, dims}`` (bins of the TaskSpace) or ``arms: {tasks: [{field: value}, ...]}``,
  ``reward_scaling``, ``history``, ``return_range``.
* ``alp_gmm``: ``curricula.alp_gmm.ALPGMM`` keyword arguments.
* ``plr`` / ``robust_plr``: ``curricula.plr.PLR`` keyword arguments.
* ``accel``: PLR keywords plus ``mutate: {name: maze, n_edits}`` or
  ``mutate: {name: gaussian, std}`` (Gaussian noise on the unit-box task
  vector, for continuous task spaces) and ``batch_size`` (= ``num_envs``).
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from curricula import bandits, progress
from curricula.alp_gmm import ALPGMM
from curricula.arms import BinnedArms, TaskSetArms
from curricula.bandit_teacher import SCALINGS, BanditTeacher
from curricula.gmm import CRITERIA
from curricula.level_buffer import PRIORITIZATIONS
from curricula.plr import ACCEL, PLR
from curricula.plr import SCORES as PLR_SCORES
from curricula.simple import DomainRandomization, FixedTask
from envs.task_space import stack_tasks

# built by metarl.meta.lpg_es (they need an antagonist agent), not for PPO curricula
META_TRAINING_TEACHERS = ("groove",)
TEACHERS = ("domain_randomization", "fixed", "bandit", "alp_gmm", "plr", "robust_plr", "accel")
# the class whose keyword arguments a teacher's config keys are (besides name, label and the keys built here)
_CLASSES = {"bandit": BanditTeacher, "alp_gmm": ALPGMM, "plr": PLR, "robust_plr": PLR, "accel": PLR}
_BUILT_HERE = {"fixed": ("task",), "bandit": ("arms", "algorithm", "signal"), "accel": ("mutate", "batch_size")}
# Declared ranges of the teachers' numeric options (gt/ge/lt/le as in metarl.config.option), checked by the
# caller before a teacher is built, so a bad value fails with its name before anything runs.
OPTION_BOUNDS = {
    "capacity": {"ge": 1}, "replay_prob": {"ge": 0, "le": 1}, "staleness_coef": {"ge": 0, "le": 1},
    "temperature": {"gt": 0}, "min_fill_ratio": {"ge": 0, "le": 1}, "batch_size": {"ge": 1},
    "fit_rate": {"ge": 2}, "random_task_ratio": {"ge": 0, "le": 1}, "history_size": {"ge": 1}, "em_iters": {"ge": 1},
    "history": {"ge": 1},
}
# ... and of their named options
OPTION_CHOICES = {"prioritization": PRIORITIZATIONS, "score": PLR_SCORES, "criterion": CRITERIA,
                  "reward_scaling": SCALINGS}


def unknown_teacher(name: Any) -> ValueError:
    near = difflib.get_close_matches(str(name), TEACHERS, n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(near)}?)" if near else ""
    return ValueError(f"unknown teacher {name!r}{hint}; choose one of {list(TEACHERS)}")


def teacher_options(name: str) -> dict[str, str]:
    """The config keys of teacher ``name`` (besides ``name`` and ``label``) and their annotated types."""
    if name not in TEACHERS:
        raise unknown_teacher(name)
    options = {key: "dict" for key in _BUILT_HERE.get(name, ())}
    if name == "accel":
        options["batch_size"] = "int | None"
    if name in _CLASSES:
        # set by make_teacher itself (robust: by the name, except for plr where it is an option)
        skip = {"self", "task_space", "generator", *_BUILT_HERE.get(name, ()), *(() if name == "plr" else ("robust",))}
        for key, param in inspect.signature(_CLASSES[name].__init__).parameters.items():
            if key not in skip and param.kind is param.POSITIONAL_OR_KEYWORD:
                options[key] = str(param.annotation)
    return options


def _named(cfg: Mapping, registry: Mapping, what: str):
    cfg = dict(cfg)
    name = cfg.pop("name", None)
    if name not in registry:
        raise ValueError(f"unknown {what} {name!r}; choose one of {sorted(registry)}")
    return registry[name](**cfg)


def _task(task_space: Any, overrides: Mapping) -> Any:
    known = set(task_space.names)
    bad = [k for k in overrides if k not in known]
    if bad:
        raise ValueError(f"task fields {bad} are not free fields of {task_space.name} ({sorted(known)})")
    values = {k: jnp.asarray(v, jnp.asarray(getattr(task_space.default, k)).dtype) for k, v in overrides.items()}
    return task_space.default.replace(**values)


def gaussian_mutation(task_space: Any, std: float):
    """``mutate_fn`` that adds N(0, std²) noise to the unit-box task vector (clipped to the box)."""

    def mutate(key, task):
        unit = task_space.normalize(task_space.to_vector(task))
        unit = jnp.clip(unit + std * jax.random.normal(key, unit.shape), 0.0, 1.0)
        return task_space.from_vector(task_space.denormalize(unit), task)

    return mutate


def _mutation(cfg: Mapping, task_space: Any):
    cfg = dict(cfg)
    name = cfg.pop("name", "gaussian")
    if name == "maze":
        from envs.maze import mutate_level

        n_edits = int(cfg.get("n_edits", 5))
        return lambda key, level: mutate_level(key, level, n_edits)
    if name == "gaussian":
        return gaussian_mutation(task_space, float(cfg.get("std", 0.1)))
    raise ValueError(f"unknown mutation {name!r}; choose 'maze' or 'gaussian'")


def make_teacher(cfg: Any, task_space: Any, num_envs: int | None = None) -> Any:
    """Teacher from a plain config mapping (jobs resolve Hydra configs first); ``task_space`` is the env's."""
    if not isinstance(cfg, Mapping):
        raise ValueError(f"teacher config must be a mapping, got {type(cfg).__name__}")
    cfg = dict(cfg)
    name = cfg.pop("name", None)
    cfg.pop("label", None)  # display name only (benchmarks tell apart configs of one teacher)
    if name in META_TRAINING_TEACHERS:
        raise ValueError(
            f"teacher {name!r} scores levels by algorithmic regret against a learned update rule; "
            "use it with metarl-meta-train objective=lpg teacher=groove"
        )
    if name not in TEACHERS:
        raise unknown_teacher(name)
    if name == "domain_randomization":
        return DomainRandomization(task_space)
    if name == "fixed":
        task = _task(task_space, cfg.get("task") or {})
        return FixedTask(task, task_space)
    if name == "bandit":
        arms_cfg = dict(cfg.pop("arms", {"bins": 4}))
        if "tasks" in arms_cfg:
            arms = TaskSetArms(stack_tasks([_task(task_space, t) for t in arms_cfg["tasks"]]))
        else:
            arms = BinnedArms(arms_cfg.get("bins", 4), arms_cfg.get("dims"), task_space)
        algorithm = _named(cfg.pop("algorithm", {"name": "exp3"}), bandits.ALGORITHMS, "bandit algorithm")
        signal = _named(cfg.pop("signal", {"name": "alp"}), progress.SIGNALS, "progress signal")
        rr = cfg.pop("return_range", None)
        return BanditTeacher(arms, algorithm, signal, return_range=None if rr is None else tuple(rr), **cfg)
    if name == "alp_gmm":
        for key in ("ks", "return_range"):
            if cfg.get(key) is not None:
                cfg[key] = tuple(cfg[key])
        return ALPGMM(task_space=task_space, **cfg)
    if name in ("plr", "robust_plr"):
        cfg.setdefault("robust", name == "robust_plr")
        return PLR(task_space=task_space, **cfg)
    mutate = _mutation(cfg.pop("mutate", {"name": "gaussian"}), task_space)
    batch_size = cfg.pop("batch_size", None) or num_envs
    if batch_size is None:
        raise ValueError("accel needs batch_size (or num_envs) to size the parent buffer")
    return ACCEL(mutate, int(batch_size), task_space=task_space, **cfg)
