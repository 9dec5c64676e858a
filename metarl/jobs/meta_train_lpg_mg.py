"""Job ``meta_train_lpg_mg``: meta-train a Learned Policy Gradient rule by meta-gradients.

    metarl-meta-train objective=lpg_mg objective.teacher=groove objective.meta_steps=1500 run_dir=outputs/lpg_mg/groove
    metarl-meta-train objective=lpg_mg resume=true run_dir=outputs/lpg_mg/groove

The ``objective`` section (minus ``name``) is a
:class:`metarl.meta.lpg_meta_gradient.MetaGradientRunConfig`; the top-level
``seed`` fills in ``objective.seed`` unless that is given. Writes
``meta_log.jsonl`` (one record per chunk), ``checkpoints/`` and
``learned_rule.npz``; ``progress_bar=true`` prints one line per chunk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from metarl.config import as_int, build_dataclass, plain
from metarl.jobs.registry import Job, register
from metarl.meta.lpg_meta_gradient import MetaGradientRunConfig, describe_chunk, meta_train
from metarl.meta.settings import section

SECTIONS = ("objective", "seed", "resume", "allow_changes", "run_dir", "progress_bar")


def run_config(cfg: Any) -> MetaGradientRunConfig:
    """The run config from the ``objective`` section and the top-level ``seed``."""
    values = {k: v for k, v in section(cfg, "objective").items() if k != "name"}
    if "seed" not in values and cfg.get("seed") is not None:
        values["seed"] = as_int(cfg.get("seed"), "seed")  # the job's seed=, as for every other objective
    return build_dataclass(MetaGradientRunConfig, values, "objective")


def run(cfg: Any, run_dir: Path) -> dict:
    report = (lambda record: print(describe_chunk(record), flush=True)) if cfg.get("progress_bar", True) else None
    return meta_train(run_config(cfg), run_dir, resume=bool(cfg.get("resume", False)), report=report,
                      extra={"resolved_config": plain(cfg)})


register(Job(
    name="meta_train_lpg_mg",
    run=run,
    config_name="meta_train",
    description="meta-train a Learned Policy Gradient rule by meta-gradients (objective=lpg_mg)",
    writes=("lpg_rule",),
    sections=SECTIONS,
))
