"""Config sections -> meta-training settings, shared by the meta-train jobs.

* :func:`section` — a plain config section without the routing keys (``job``,
  ``meta_train_job``: they name the job that runs, they are no option of it).
* :func:`split_meta_config` / :func:`es_settings` — the ``meta`` section as an
  :class:`ESConfig` plus the :class:`TrainerConfig`.
* :func:`check_run_options` — the options every meta-train job reads besides
  its sections (``seed``, ``resume``, ``progress_bar``, ``evaluate``).

The PPO-based jobs' settings are :class:`metarl.meta.ppo_meta.PPOMetaSettings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from metarl.config import build_dataclass, check_bool, check_field, check_number, close_matches, plain
from metarl.meta.es import ESConfig
from metarl.meta.trainer import TrainerConfig

TRAINER_KEYS = ("generations", "checkpoint_every", "chunk_size", "shard", "devices", "max_failed_retries")
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
    """``meta`` section -> (ES settings, trainer keyword arguments); unknown keys and bad values are errors."""
    meta_cfg = dict(meta_cfg)
    trainer = {k: check_field(TrainerConfig, k, meta_cfg.pop(k), f"meta.{k}") for k in TRAINER_KEYS if k in meta_cfg}
    known = set(ESConfig.__dataclass_fields__) | set(TRAINER_KEYS)
    unknown = sorted(set(meta_cfg) - known)
    if unknown:
        raise ValueError(f"unknown meta option {unknown[0]!r}{close_matches(unknown[0], known, or_list=True)}")
    es_config = build_dataclass(ESConfig, meta_cfg, "meta")
    chunk = trainer.get("chunk_size")
    if chunk is not None and es_config.population_size % chunk:
        raise ValueError(f"meta.chunk_size={chunk} must divide meta.population_size={es_config.population_size}")
    return es_config, trainer


def es_settings(cfg: Any) -> tuple[ESConfig, TrainerConfig]:
    """The ES and the trainer of a meta-train config (``meta`` section and ``progress_bar``)."""
    es_config, trainer = split_meta_config(section(cfg, "meta"))
    show = check_bool(cfg.get("progress_bar", True), "progress_bar")
    return es_config, TrainerConfig(show_progress=show, **trainer)


def check_run_options(cfg: Any) -> None:
    """``seed``, ``resume``, ``progress_bar`` and the ``evaluate`` switches: kinds and ranges, one line each."""
    check_number(cfg.get("seed", 0), "seed", integer=True)
    for switch in ("resume", "progress_bar"):
        check_bool(cfg.get(switch, False), switch)
    evaluate = section(cfg, "evaluate")
    if "enabled" in evaluate:
        check_bool(evaluate["enabled"], "evaluate.enabled")
    if "seeds" in evaluate:
        check_number(evaluate["seeds"], "evaluate.seeds", integer=True, ge=1)
