"""Save and load a learned optimizer as one self-describing ``.npz`` (no pickle).

The file holds one float32 array per meta-parameter leaf, named by its key
path (``network/gru/ir/kernel``), and a ``__metadata__`` JSON string with the
optimizer's ``name`` and ``config`` (everything needed to rebuild it) plus any
caller metadata (generation, fitness, ...). ``np.load(..., allow_pickle=False)``
reads it back.
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import numpy as np

from metarl.optimizers.learned import LearnedOptimizer

FORMAT = "metarl.learned_optimizer"
VERSION = 1
METADATA_KEY = "__metadata__"
LEARNED_OPTIMIZERS = {LearnedOptimizer.name: LearnedOptimizer}


def _flatten_dicts(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    flat = {}
    for key, value in tree.items():
        if "/" in str(key):
            raise ValueError(f"meta-parameter key {key!r} contains '/'")
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten_dicts(value, name + "/"))
        else:
            flat[name] = np.asarray(jax.device_get(value), np.float32)
    return flat


def _unflatten_dicts(flat: dict[str, np.ndarray]) -> dict:
    tree: dict = {}
    for name, value in flat.items():
        node = tree
        *parents, leaf = name.split("/")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def build_learned_optimizer(config: dict) -> LearnedOptimizer:
    """Rebuild a learned optimizer from its ``config`` (``{"name": ..., **options}``)."""
    name = config.get("name")
    if name not in LEARNED_OPTIMIZERS:
        raise ValueError(f"unknown learned optimizer {name!r}; known: {', '.join(sorted(LEARNED_OPTIMIZERS))}")
    return LEARNED_OPTIMIZERS[name].from_config(config)


def save_learned_optimizer(path: str | os.PathLike, optimizer: LearnedOptimizer, meta_params: Any, **metadata: Any) -> str:
    """Write ``optimizer`` and one set of ``meta_params`` (no population axis) to ``path``."""
    flat = _flatten_dicts(meta_params)
    header = {"format": FORMAT, "version": VERSION, "optimizer": optimizer.config, "metadata": metadata}
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "wb") as f:
        np.savez(f, **flat, **{METADATA_KEY: np.asarray(json.dumps(header))})
    return path


def load_learned_optimizer(path: str | os.PathLike) -> tuple[LearnedOptimizer, dict, dict]:
    """Read a file written by :func:`save_learned_optimizer`: ``(optimizer, meta_params, metadata)``."""
    with np.load(os.fspath(path), allow_pickle=False) as data:
        if METADATA_KEY not in data:
            raise ValueError(f"{path} is not a learned optimizer file (no {METADATA_KEY})")
        header = json.loads(str(data[METADATA_KEY]))
        flat = {name: np.asarray(data[name]) for name in data.files if name != METADATA_KEY}
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise ValueError(f"{path}: unsupported format {header.get('format')!r} v{header.get('version')}")
    optimizer = build_learned_optimizer(header["optimizer"])
    meta_params = jax.tree_util.tree_map(np.asarray, _unflatten_dicts(flat))
    template = jax.eval_shape(optimizer.init_meta, jax.random.PRNGKey(0))
    expected = jax.tree_util.tree_map(lambda s: tuple(s.shape), template)
    if jax.tree_util.tree_map(np.shape, meta_params) != expected:
        raise ValueError(f"{path}: meta-parameter shapes do not match the optimizer config")
    return optimizer, meta_params, header["metadata"]
