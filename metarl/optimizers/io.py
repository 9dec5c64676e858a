"""Save and load a learned optimizer as a self-describing ``.npz`` (no pickle).

Uses the project's artifact format (:mod:`metarl.io.artifacts`) with
``kind="learned_optimizer"`` (files written before the kind had its full name
say ``"optimizer"`` and still load): the header names the optimizer and
carries its ``config``, so ``load_learned_optimizer`` rebuilds it without any
other input.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from metarl.io.artifacts import load_artifact, save_artifact
from metarl.optimizers.learned import LearnedOptimizer

KIND = "learned_optimizer"
LEGACY_KINDS = ("optimizer",)
LEARNED_OPTIMIZERS = {LearnedOptimizer.name: LearnedOptimizer}


def build_learned_optimizer(config: dict) -> LearnedOptimizer:
    """Rebuild a learned optimizer from its ``config`` (``{"name": ..., **options}``)."""
    name = config.get("name")
    if name not in LEARNED_OPTIMIZERS:
        raise ValueError(f"unknown learned optimizer {name!r}; known: {', '.join(sorted(LEARNED_OPTIMIZERS))}")
    return LEARNED_OPTIMIZERS[name].from_config(config)


def save_learned_optimizer(
    path: str | os.PathLike, optimizer: LearnedOptimizer, meta_params: Any, extra: dict | None = None
) -> Path:
    """Write ``optimizer`` and one set of ``meta_params`` (no population axis)."""
    host = jax.tree_util.tree_map(lambda x: np.asarray(jax.device_get(x), np.float32), meta_params)
    return save_artifact(path, host, kind=KIND, name=optimizer.name, config=optimizer.config, extra=extra)


def load_learned_optimizer(path: str | os.PathLike) -> tuple[LearnedOptimizer, Any, dict]:
    """Returns ``(optimizer, meta_params as float32 arrays, header)``; ``header["extra"]`` is the caller's."""
    meta_params, header = load_artifact(path)
    if header["kind"] != KIND and header["kind"] not in LEGACY_KINDS:
        raise ValueError(f"{path} holds a {header['kind']!r}, not an optimizer")
    optimizer = build_learned_optimizer(header["config"])
    meta_params = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float32), meta_params)
    template = jax.eval_shape(optimizer.init_meta, jax.random.PRNGKey(0))
    if jax.tree_util.tree_map(jnp.shape, meta_params) != jax.tree_util.tree_map(lambda s: s.shape, template):
        raise ValueError(f"{path}: meta-parameter shapes do not match the optimizer's config")
    return optimizer, meta_params, header
