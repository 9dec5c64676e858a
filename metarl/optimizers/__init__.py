"""Optimizers: the optax zoo and OPEN-style learned optimizers.

``build_optimizer(cfg)`` turns a ``configs/optimizer/*.yaml`` mapping into an
``optax.GradientTransformation`` (hand-designed) or a
:class:`LearnedOptimizer` (``name: learned``; call ``.transform(meta_params)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optax

from metarl.config import plain
from metarl.optimizers.dormancy import dormant_fraction, layer_dormancy, neutral_dormancy, redo_scores
from metarl.optimizers.instrument import make_instrumented_train, recording
from metarl.optimizers.io import build_learned_optimizer, load_learned_optimizer, save_learned_optimizer
from metarl.optimizers.learned import LearnedOptimizer, LearnedOptimizerState, OPENConfig
from metarl.optimizers.zoo import make_optimizer, optimizer_names

LEARNED = "learned"
META_TRAIN_JOB = "meta_train_job"


def build_optimizer(cfg: Any) -> optax.GradientTransformation | LearnedOptimizer:
    """``{name: adam, learning_rate: ..., **kwargs}`` or ``{name: learned, type: open, **options}``."""
    cfg = plain(cfg)
    if not isinstance(cfg, Mapping):
        raise ValueError(f"optimizer config must be a mapping, got {type(cfg).__name__}")
    cfg = dict(cfg)
    cfg.pop(META_TRAIN_JOB, None)  # routes metarl-meta-train to its job; not an optimizer option
    if "name" not in cfg:
        raise ValueError("optimizer config needs a 'name'")
    name = cfg.pop("name")
    if name == LEARNED:
        cfg.pop("load", None)  # a saved file is read by the caller (load_learned_optimizer)
        return build_learned_optimizer({"name": cfg.pop("type", LearnedOptimizer.name), **cfg})
    return make_optimizer(name, cfg.pop("learning_rate", None), **cfg)


__all__ = [
    "LearnedOptimizer",
    "LearnedOptimizerState",
    "OPENConfig",
    "build_learned_optimizer",
    "build_optimizer",
    "dormant_fraction",
    "layer_dormancy",
    "load_learned_optimizer",
    "make_instrumented_train",
    "make_optimizer",
    "neutral_dormancy",
    "optimizer_names",
    "recording",
    "redo_scores",
    "save_learned_optimizer",
]
