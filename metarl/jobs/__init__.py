"""Every job, registered by importing its module (see :mod:`metarl.jobs.registry`)."""

from metarl.jobs import (
    continual,
    curriculum,
    evaluate,
    meta_rl,
    meta_train,
    meta_train_lpg,
    meta_train_lpg_mg,
    meta_train_optimizer,
    reset_free,
    train,
)

__all__ = [
    "continual",
    "curriculum",
    "evaluate",
    "meta_rl",
    "meta_train",
    "meta_train_lpg",
    "meta_train_lpg_mg",
    "meta_train_optimizer",
    "reset_free",
    "train",
]
