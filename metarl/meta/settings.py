"""Config sections -> meta-training settings, shared by the meta-train jobs.

* :func:`section` — a plain config section without the routing keys (``job``,
  ``meta_train_job``: they name the job that runs, they are no option of it).
* :func:`split_meta_config` / :func:`es_settings` — the ``meta`` section as an
  :class:`ESConfig` plus the :class:`TrainerConfig`.

The PPO-based jobs' settings are :class:`metarl.meta.ppo_meta.PPOMetaSettings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from metarl.config import plain
from metarl.meta.es import ESConfig
from metarl.meta.trainer import TrainerConfig

TRAINER_KEYS = ("generations", "checkpoint_every", "chunk_size", "shard")
ROUTING_KEYS = ("job", "meta_train_job")


def section(cfg: Any, name: str) -> dict:
    """``cfg[name]`` as a plain dict (``{}`` when absent or null), routing keys removed."""
    value = plain(cfg.get(name)) if cfg is not None else None
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be a mapping, got {value!r}")
    return {k: v for k, v in value.items() if k not in ROUTING_KEYS}


def split_meta_config(meta_cfg: dict) -> tuple[ESConfig, dict]:
    """``meta`` section -> (ES settings, trainer keyword arguments); unknown keys are an error."""
    meta_cfg = dict(meta_cfg)
    trainer = {k: meta_cfg.pop(k) for k in TRAINER_KEYS if k in meta_cfg}
    known = set(ESConfig.__dataclass_fields__)
    unknown = sorted(set(meta_cfg) - known)
    if unknown:
        raise ValueError(f"unknown meta option {unknown[0]!r} (valid: {', '.join(sorted(known | set(TRAINER_KEYS)))})")
    return ESConfig(**meta_cfg), trainer


def es_settings(cfg: Any) -> tuple[ESConfig, TrainerConfig]:
    """The ES and the trainer of a meta-train config (``meta`` section and ``progress_bar``)."""
    es_config, trainer = split_meta_config(section(cfg, "meta"))
    return es_config, TrainerConfig(show_progress=bool(cfg.get("progress_bar", True)), **trainer)
