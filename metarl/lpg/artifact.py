"""A learned LPG rule on disk: ``learned_rule.npz``, a :mod:`metarl.io.artifacts` file of kind ``lpg_rule``.

The header's ``config`` holds the rule's :class:`LPGConfig` and the inner
agent's :class:`AgentConfig`, so :func:`load_rule` rebuilds both without any
other input; ``extra`` is the writer's (run settings, the resolved config).
Both meta-training paths (ES and meta-gradient) write it; the LPG evaluation reads it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from metarl.config import build_dataclass
from metarl.io.artifacts import load_artifact, save_artifact
from metarl.lpg.agents import AgentConfig
from metarl.lpg.rule import LPGConfig, LPGRule

ARTIFACT = "learned_rule.npz"
ARTIFACT_KIND = "lpg_rule"


def build_rule(rule_cfg: dict, time_aware: bool) -> LPGRule:
    """An :class:`LPGRule` from its config section; ``time_aware`` unless the section says otherwise."""
    cfg = dict(rule_cfg)
    cfg["time_aware"] = bool(cfg.get("time_aware", time_aware))
    return LPGRule(build_dataclass(LPGConfig, cfg, "objective.rule"))


def build_agent_config(agent_cfg: dict) -> AgentConfig:
    return build_dataclass(AgentConfig, agent_cfg, "objective.agent")


def save_rule(path: Path, rule: LPGRule, agent_config: AgentConfig, meta_params: Any,
              extra: dict | None = None) -> Path:
    config = {"rule": dataclasses.asdict(rule.config), "agent": dataclasses.asdict(agent_config)}
    meta_params = jax.tree.map(np.asarray, meta_params)
    return save_artifact(path, meta_params, kind=ARTIFACT_KIND, name="lpg", config=config, extra=extra)


def load_rule(path: str | Path) -> tuple[LPGRule, AgentConfig, Any, dict]:
    """``(rule, agent_config, meta_params, header)`` from a ``learned_rule.npz`` (or its run directory)."""
    path = Path(path)
    if path.is_dir():
        path = path / ARTIFACT
    meta_params, header = load_artifact(path)
    if header["kind"] != ARTIFACT_KIND:
        raise ValueError(f"{path} holds a {header['kind']!r}, not an LPG rule")
    rule = build_rule(header["config"]["rule"], header["config"]["rule"].get("time_aware", False))
    agent_config = build_agent_config(header["config"]["agent"])
    template = rule.init(jax.random.PRNGKey(0))
    if jax.tree.structure(template) != jax.tree.structure(meta_params):
        raise ValueError(f"{path}: the stored parameters do not match the rule config in its header")
    meta_params = jax.tree.map(lambda t, x: jnp.asarray(x, t.dtype), template, meta_params)
    return rule, agent_config, meta_params, header
