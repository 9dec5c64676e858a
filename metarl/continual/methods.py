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

from metarl.config import build_dataclass, check_fields, close_matches, option
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
    """The ``method`` section; each field declares what it accepts (:func:`metarl.config.option`)."""

    name: str = "finetune"
    # reset / shrink-and-perturb: at task switches and/or every N updates (0 = never)
    at_switch: bool = True
    every_updates: int = option(0, ge=0)
    reset_which: str = option("all", choices=RESET_WHICH)
    reset_last_k: int = option(1, ge=1)
    shrink: float = option(0.8, ge=0, le=1)
    perturb: float = option(0.01, ge=0)
    # ReDo (LoP PPO setting: τ 0.1 every 100 updates)
    redo_tau: float = option(0.1, ge=0)
    redo_every_updates: int = option(100, ge=0)
    # continual backprop
    cbp_decay: float = option(0.99, ge=0, lt=1)
    cbp_maturity: int = option(100, ge=0)
    cbp_replacement_rate: float = option(1e-3, ge=0, le=1)
    # loss-side regularisers
    l2_coef: float = option(1e-3, ge=0)
    l2_init_coef: float = option(1e-3, ge=0)
    ewc_coef: float = option(1e4, ge=0)
    ewc_accumulate: bool = False  # sum the Fishers of all earlier tasks instead of the last one (CW sums)
    # Continual World's L2 on SAC streams: λ Σ (θ − θ*)² towards the previous task's actor (CW 1e5)
    cw_l2_coef: float = option(1e5, ge=0)
    # replay (behaviour cloning on earlier tasks' states)
    replay_capacity: int = option(4096, ge=1)
    replay_batch: int = option(64, ge=1)
    replay_coef: float = option(1.0, ge=0)
    # A-GEM (Continual World: 10 000 samples per task, batch 128); the memory never evicts while
    # agem_capacity >= runner.replay_per_task x number of tasks
    agem_capacity: int = option(10240, ge=1)
    agem_batch: int = option(128, ge=1)
    agem_per_task: int = option(10000, ge=1)  # SAC streams: transitions each finished task leaves in the memory
    # PackNet (SAC runner): the last fraction of each task's steps retrains after pruning (Continual World:
    # 1e5 of 1e6 steps)
    packnet_retrain_fraction: float = option(0.1, gt=0, lt=1)

    def __post_init__(self) -> None:
        check_fields(self)

    def validate(self) -> None:
        """The method's own checks (e.g. a reset that never fires); the fields are checked on construction."""
        method_class(self.name).validate(self)

    def build(self) -> Method:
        """The method object, after validating the settings."""
        self.validate()
        return method_class(self.name)(self)
