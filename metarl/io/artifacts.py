"""Self-describing files for learned objectives and optimizers (``.npz``, no pickle).

An artifact is one ``.npz`` holding every array leaf of the meta-parameters
under its path (``"w1"``, ``"layers/0/kernel"``) plus ``__header__``, a JSON
string (a NumPy unicode scalar, so ``allow_pickle=False`` loads it):

    {"format": "metarl-artifact", "version": 1, "kind": "objective",
     "name": "lpo", "config": {...}, "leaves": ["w1", "w2"], "extra": {...}}

Meta-parameters must be nested dicts (string keys) and lists of arrays,
which is what the objectives and optimizers in this package use.  Files are
written to a temporary name and renamed, so a reader never sees half a file.

``kind`` says what the file holds (``objective``, ``lpg_rule``,
``learned_optimizer``, ``policy_checkpoint``); readers such as
``metarl-evaluate`` choose what to do from it (:func:`read_header`), never from
the array names. An artifact stored in another format (an orbax checkpoint)
gets the same header as a ``.json`` file (:func:`save_header`).
:func:`find_artifact` turns a run directory into its artifact file.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "metarl-artifact"
VERSION = 1
_HEADER_KEY = "__header__"
_LIST_MARK = "#"  # path segment prefix for list indices: "layers/#0/kernel"
# what a run directory's artifact is called: learned_{objective,optimizer,rule}.npz, a policy checkpoint's header
RUN_DIR_ARTIFACTS = ("learned_*.npz", "policy_checkpoint.json")


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


def _checked(header: Any, path: Path) -> dict:
    if not isinstance(header, dict) or header.get("format") != FORMAT or header.get("version") != VERSION:
        found = header if not isinstance(header, dict) else f"{header.get('format')} v{header.get('version')}"
        raise ValueError(f"{path}: unsupported artifact format {found}")
    return header


def _unreadable(path: Path, error: BaseException) -> ValueError:
    return ValueError(f"{path} is not a readable metarl artifact ({type(error).__name__})")


def _open_npz(path: Path) -> Any:
    if not path.is_file():
        raise ValueError(f"no artifact file at {path}")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as error:  # not an .npz at all
        raise _unreadable(path, error) from None
    if not hasattr(data, "files"):  # a bare .npy array
        raise ValueError(f"{path} is not a metarl artifact (an array, not an .npz archive)")
    return data


def _npz_header(data: Any, path: Path) -> dict:
    if _HEADER_KEY not in data.files:
        raise ValueError(f"{path} is not a metarl artifact (no {_HEADER_KEY})")
    try:
        header = json.loads(str(data[_HEADER_KEY]))
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as error:
        raise _unreadable(path, error) from None
    return _checked(header, path)


def load_artifact(path: str | os.PathLike) -> tuple[Any, dict]:
    """Returns (meta_params as nested dicts/lists of float arrays, header dict)."""
    path = Path(path)
    with _open_npz(path) as data:
        header = _npz_header(data, path)
        try:
            leaves = {name: np.array(data[name]) for name in header["leaves"]}
        except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as error:
            raise _unreadable(path, error) from None
    return _unflatten(leaves), header


# --- headers without arrays: artifacts stored in another format (an orbax checkpoint) -----------------
def save_header(
    path: str | os.PathLike, *, kind: str, name: str, config: dict | None = None, extra: dict | None = None
) -> Path:
    """Write the description of an artifact whose arrays live elsewhere, as ``<path>.json``."""
    path = Path(path)
    if path.suffix != ".json":
        raise ValueError(f"artifact header path must end in .json, got {path}")
    header = {"format": FORMAT, "version": VERSION, "kind": kind, "name": name, "config": config or {},
              "leaves": [], "extra": extra or {}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(header, indent=1))
    os.replace(tmp, path)
    return path


def read_header(path: str | os.PathLike) -> dict:
    """The header of an artifact (``.npz``: without loading its arrays; ``.json``: a :func:`save_header` file)."""
    path = Path(path)
    if path.suffix != ".json":
        with _open_npz(path) as data:
            return _npz_header(data, path)
    if not path.is_file():
        raise ValueError(f"no artifact file at {path}")
    try:
        header = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise _unreadable(path, error) from None
    return _checked(header, path)


def find_artifact(path: str | os.PathLike) -> Path:
    """``path`` itself when it is a file, else the one artifact at the top of a run directory."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise ValueError(f"no artifact file or run directory at {path}")
    found = sorted({p for pattern in RUN_DIR_ARTIFACTS for p in path.glob(pattern) if p.is_file()})
    if not found:
        raise ValueError(f"no artifact ({' or '.join(RUN_DIR_ARTIFACTS)}) in {path}")
    if len(found) > 1:
        raise ValueError(f"{path} holds several artifacts ({', '.join(p.name for p in found)}); name the file")
    return found[0]
