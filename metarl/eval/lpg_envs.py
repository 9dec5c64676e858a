"""Evaluation environments for learned LPG rules besides grid worlds: gymnax MinAtar.

MinAtar observations are ``10 x 10 x C`` boolean images; LPG and A2C agents
see them flattened to float32 vectors (:class:`envs.wrappers.FlattenObservation`)
and use the MLP agent (``AgentConfig(kind="mlp")``: 32 tanh units, Adam), since
a table over images is meaningless. The rule itself only sees rewards, dones,
action probabilities and the agent's predictions, so a rule meta-trained on
grid worlds runs unchanged.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import envs
from envs.wrappers import FlattenObservation
from metarl.config import unknown_name
from metarl.lpg.agents import AgentConfig

MINATAR_SUFFIX = "-MinAtar"


def minatar_names() -> list[str]:
    """Registered gymnax MinAtar envs (``envs.make`` names)."""
    return [name for name in envs.registered() if name.endswith(MINATAR_SUFFIX)]


def check_minatar(names: list[str]) -> list[str]:
    known = minatar_names()
    for name in names:
        if name not in known:
            raise unknown_name("MinAtar env", name, known)
    return list(names)


@functools.lru_cache(maxsize=None)
def minatar_env(name: str) -> tuple[Any, Any, Any]:
    """``(raw env, flattened env, params)``; cached so that compiled programs keyed by env are reused."""
    check_minatar([name])
    env, params = envs.make(name)
    return env, FlattenObservation(env), params


def mlp_agent_config(agent_config: AgentConfig) -> AgentConfig:
    """The rule's agent settings with the MLP agent (rollout shape, discount and eval episodes kept)."""
    return dataclasses.replace(agent_config, kind="mlp")
