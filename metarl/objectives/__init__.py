"""PPO-family drift objectives: fixed (PPO clip, DPO) and learned (LPO, TA-LPO).

``make_objective(name, **config)`` builds one by name; every objective is a
frozen dataclass with ``init(key) -> meta_params`` and
``__call__(meta_params, ratio, advantage, progress) -> drift``.
"""

from __future__ import annotations

import difflib
from typing import Any

from metarl.objectives.base import Drift
from metarl.objectives.dpo import DPO, dpo_drift
from metarl.objectives.lpo import LPO, TALPO, ratio_features
from metarl.objectives.ppo_clip import PPOClip, ppo_clip_drift

OBJECTIVES: dict[str, type] = {"ppo": PPOClip, "dpo": DPO, "lpo": LPO, "ta_lpo": TALPO}


def make_objective(name: str, **config: Any) -> Drift:
    """Objective by name (``ppo``, ``dpo``, ``lpo``, ``ta_lpo``) with its dataclass fields."""
    key = name.lower().replace("-", "_")
    if key not in OBJECTIVES:
        near = difflib.get_close_matches(key, list(OBJECTIVES), n=3, cutoff=0.4)
        hint = f"; did you mean {', '.join(near)}?" if near else ""
        raise ValueError(f"unknown objective {name!r}{hint} (known: {', '.join(OBJECTIVES)})")
    cls = OBJECTIVES[key]
    fields = set(cls.__dataclass_fields__) - {"name"}
    unknown = sorted(set(config) - fields)
    if unknown:
        raise ValueError(f"objective {key!r} has no option {unknown[0]!r} (valid: {', '.join(sorted(fields))})")
    return cls(**config)


def objective_config(objective: Drift) -> dict:
    """JSON-able constructor arguments of an objective (inverse of ``make_objective``)."""
    fields = [f for f in objective.__dataclass_fields__ if f != "name"]  # type: ignore[attr-defined]
    return {f: getattr(objective, f) for f in fields}


__all__ = [
    "DPO",
    "LPO",
    "OBJECTIVES",
    "TALPO",
    "Drift",
    "PPOClip",
    "dpo_drift",
    "make_objective",
    "objective_config",
    "ppo_clip_drift",
    "ratio_features",
]
