"""Self-describing files for learned objectives and optimizers (``.npz``, no pickle).

An artifact is one ``.npz`` holding every array leaf of the meta-parameters
under its path (``"w1"``, ``"layers/0/kernel"``) plus ``__header__``, a JSON
string (a NumPy unicode scalar, so ``allow_pickle=False`` loads it):

    {"format": "metarl-artifact", "version": 1, "kind": "objective",
     "name": "lpo", "config": {...}, "leaves": ["w1", "w2"], "extra": {...}}

Meta-parameters must be nested dicts (string keys) and lists of arrays,
which is what the objectives and optimizers in this package use.  Files are
written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "metarl-artifact"
VERSION = 1
_HEADER_KEY = "__header__"
_LIST_MARK = "#"  # path segment prefix for list indices: "layers/#0/kernel"


def _flatten(tree: Any, prefix: str = "") -> dict[str, np.ndarray]:
    if isinstance(tree, dict):
        out: dict[str, np.ndarray] = {}
        for key, value in tree.items():
            if not isinstance(key, str) or not key or "/" in key or key.startswith(_LIST_MARK):
                raise ValueError(f"artifact keys must be non-empty strings without '/' or a leading '#': {key!r}")
            out.update(_flatten(value, f"{prefix}{key}/"))
        return out
    if isinstance(tree, (list, tuple)):
        out = {}
        for i, value in enumerate(tree):
            out.update(_flatten(value, f"{prefix}{_LIST_MARK}{i}/"))
        return out
    array = np.asarray(tree)
    if array.dtype == object:
        raise ValueError(f"artifact leaf {prefix.rstrip('/')!r} is not an array: {type(tree).__name__}")
    return {prefix.rstrip("/"): array}


def _unflatten(leaves: dict[str, np.ndarray]) -> Any:
    root: dict = {}
    for path, array in leaves.items():
        node = root
        parts = path.split("/")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = array

    def lists_back(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        if node and all(k.startswith(_LIST_MARK) for k in node):
            return [lists_back(node[f"{_LIST_MARK}{i}"]) for i in range(len(node))]
        return {k: lists_back(v) for k, v in node.items()}

    return lists_back(root)


def save_artifact(
    path: str | os.PathLike,
    meta_params: Any,
    *,
    kind: str,
    name: str,
    config: dict | None = None,
    extra: dict | None = None,
) -> Path:
    """Write ``meta_params`` with its description; returns the path written."""
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"artifact path must end in .npz, got {path}")
    if not isinstance(meta_params, (dict, list, tuple)):
        raise ValueError(f"artifact meta-params must be a dict or list of arrays, got {type(meta_params).__name__}")
    leaves = _flatten(meta_params)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "kind": kind,
        "name": name,
        "config": config or {},
        "leaves": sorted(leaves),
        "extra": extra or {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    with tmp.open("wb") as f:
        np.savez(f, **{_HEADER_KEY: np.array(json.dumps(header))}, **leaves)
    os.replace(tmp, path)
    return path


def load_artifact(path: str | os.PathLike) -> tuple[Any, dict]:
    """Returns (meta_params as nested dicts/lists of float arrays, header dict)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no artifact file at {path}")
    with np.load(path, allow_pickle=False) as data:
        if _HEADER_KEY not in data.files:
            raise ValueError(f"{path} is not a metarl artifact (no {_HEADER_KEY})")
        header = json.loads(str(data[_HEADER_KEY]))
        if header.get("format") != FORMAT or header.get("version") != VERSION:
            raise ValueError(f"{path}: unsupported artifact format {header.get('format')} v{header.get('version')}")
        leaves = {name: np.array(data[name]) for name in header["leaves"]}
    return _unflatten(leaves), header


def save_objective(path: str | os.PathLike, objective: Any, meta_params: Any, extra: dict | None = None) -> Path:
    """Save a drift objective (name + constructor config) with its meta-parameters."""
    from metarl.objectives import objective_config

    return save_artifact(
        path, meta_params, kind="objective", name=objective.name, config=objective_config(objective), extra=extra
    )


def load_objective(path: str | os.PathLike) -> tuple[Any, Any, dict]:
    """Returns (objective, meta_params as jnp float32 arrays, header)."""
    import jax
    import jax.numpy as jnp

    from metarl.objectives import make_objective

    meta_params, header = load_artifact(path)
    if header["kind"] != "objective":
        raise ValueError(f"{path} holds a {header['kind']!r}, not an objective")
    objective = make_objective(header["name"], **header["config"])
    return objective, jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), meta_params), header
