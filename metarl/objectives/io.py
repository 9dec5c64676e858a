"""Save and load a drift objective as a metarl artifact (kind ``objective``): its name, constructor
config and meta-parameters (:mod:`metarl.io.artifacts` holds the file format)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from metarl.io.artifacts import load_artifact, save_artifact
from metarl.objectives import make_objective, objective_config

KIND = "objective"


def save_objective(path: str | os.PathLike, objective: Any, meta_params: Any, extra: dict | None = None) -> Path:
    """Save a drift objective (name + constructor config) with its meta-parameters."""
    return save_artifact(
        path, meta_params, kind=KIND, name=objective.name, config=objective_config(objective), extra=extra
    )


def load_objective(path: str | os.PathLike) -> tuple[Any, Any, dict]:
    """Returns (objective, meta_params as jnp float32 arrays, header)."""
    meta_params, header = load_artifact(path)
    if header["kind"] != KIND:
        raise ValueError(f"{path} holds a {header['kind']!r}, not an objective")
    objective = make_objective(header["name"], **header["config"])
    return objective, jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), meta_params), header
