"""Continual methods by name: their settings (one frozen dataclass, chosen by ``method=``)
and the registry of method objects (:mod:`metarl.continual.method_base`).

    method = get_method("ewc", ewc_coef=1e3)      # a Method with its hooks
    method = MethodConfig("ewc", ewc_coef=1e3).build()

Units: schedules count PPO *updates* (one rollout + its epochs); continual
backprop steps once per update, so its maturity and replacement rate are per
update (LoP's are per SGD step: m 1e4, ρ 1e-4; one update here is
``update_epochs × num_minibatches`` SGD steps).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from metarl.config import build_dataclass, close_matches
from metarl.continual import loss_methods, surgery_methods  # noqa: F401  (they register their methods)
from metarl.continual.method_base import Method, registered

RESET_WHICH = ("all", "last", "critic")


def method_names() -> tuple[str, ...]:
    return tuple(registered())


def method_class(name: str) -> type[Method]:
    """The registered class of ``name``; unknown names raise with the close matches."""
    classes = registered()
    if name not in classes:
        raise ValueError(f"method.name must be one of {tuple(classes)}, got {name!r}{close_matches(str(name), list(classes))}")
    return classes[name]


def get_method(name: str, **settings: Any) -> Method:
    """The method registered as ``name``, with ``settings`` (``MethodConfig`` fields) over the defaults."""
    return build_dataclass(MethodConfig, {"name": name, **settings}, "method").build()


@dataclasses.dataclass(frozen=True)
class MethodConfig:
    name: str = "finetune"
    # reset / shrink-and-perturb: at task switches and/or every N updates (0 = never)
    at_switch: bool = True
    every_updates: int = 0
    reset_which: str = "all"
    reset_last_k: int = 1
    shrink: float = 0.8
    perturb: float = 0.01
    # ReDo (LoP PPO setting: τ 0.1 every 100 updates)
    redo_tau: float = 0.1
    redo_every_updates: int = 100
    # continual backprop
    cbp_decay: float = 0.99
    cbp_maturity: int = 100
    cbp_replacement_rate: float = 1e-3
    # loss-side regularisers
    l2_coef: float = 1e-3
    l2_init_coef: float = 1e-3
    ewc_coef: float = 1e4
    ewc_accumulate: bool = False  # sum the Fishers of all earlier tasks instead of the last one
    # replay (behaviour cloning on earlier tasks' states)
    replay_capacity: int = 4096
    replay_batch: int = 64
    replay_coef: float = 1.0

    def validate(self) -> None:
        method = method_class(self.name)
        if self.reset_which not in RESET_WHICH:
            raise ValueError(f"method.reset_which must be one of {RESET_WHICH}, got {self.reset_which!r}")
        for field in ("every_updates", "redo_every_updates", "cbp_maturity"):
            if int(getattr(self, field)) < 0:
                raise ValueError(f"method.{field} must be >= 0, got {getattr(self, field)}")
        for field in ("reset_last_k", "replay_capacity", "replay_batch"):
            if int(getattr(self, field)) < 1:
                raise ValueError(f"method.{field} must be >= 1, got {getattr(self, field)}")
        for field in ("l2_coef", "l2_init_coef", "ewc_coef", "replay_coef", "redo_tau", "cbp_replacement_rate"):
            if getattr(self, field) < 0:
                raise ValueError(f"method.{field} must be >= 0, got {getattr(self, field)}")
        if not 0 <= self.cbp_decay < 1:
            raise ValueError(f"method.cbp_decay must be in [0, 1), got {self.cbp_decay}")
        method.validate(self)

    def build(self) -> Method:
        """The method object, after validating the settings."""
        self.validate()
        return method_class(self.name)(self)
