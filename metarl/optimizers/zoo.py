"""Named hand-designed optimizers, all built from optax (nothing re-implemented).

``make_optimizer(name, learning_rate, **kwargs)`` forwards ``kwargs`` to the
optax constructor, so any of its keyword arguments can be set from a config
(``configs/optimizer/<name>.yaml``: ``{name: ..., learning_rate: ..., kwargs}``).
``learning_rate`` may be a float or an optax schedule.

Notes
- ``schedule_free_adamw`` keeps an interpolated iterate: evaluate with
  ``optax.contrib.schedule_free_eval_params(state, params)``.
- ``prodigy`` is learning-rate free: its ``learning_rate`` (default 1.0) only
  rescales the step size it estimates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optax
import optax.contrib


def _sgd(learning_rate, momentum: float = 0.9, nesterov: bool = False, **kwargs):
    return optax.sgd(learning_rate, momentum=momentum, nesterov=nesterov, **kwargs)


OPTIMIZERS: dict[str, Callable[..., optax.GradientTransformation]] = {
    "adam": optax.adam,
    "adamw": optax.adamw,
    "rmsprop": optax.rmsprop,
    "sgd": _sgd,
    "lion": optax.lion,
    "adopt": optax.contrib.adopt,
    "schedule_free_adamw": optax.contrib.schedule_free_adamw,
    "prodigy": optax.contrib.prodigy,
}

# Optimizers whose learning rate is a multiplier on an estimated step size.
LEARNING_RATE_FREE = ("prodigy",)


def optimizer_names() -> tuple[str, ...]:
    return tuple(sorted(OPTIMIZERS))


def make_optimizer(name: str, learning_rate: Any = None, **kwargs: Any) -> optax.GradientTransformation:
    """Build the optax optimizer ``name``; unknown names raise ``ValueError``."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(optimizer_names())}")
    if learning_rate is None:
        if name not in LEARNING_RATE_FREE:
            raise ValueError(f"optimizer {name!r} needs a learning_rate")
        learning_rate = 1.0
    try:
        return OPTIMIZERS[name](learning_rate, **kwargs)
    except TypeError as err:  # a misspelt keyword in a config
        raise ValueError(f"bad arguments for optimizer {name!r}: {err}") from None
