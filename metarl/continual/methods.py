"""Method (intervention) settings: one frozen dataclass, chosen by ``method=``.

Units: schedules count PPO *updates* (one rollout + its epochs); continual
backprop steps once per update, so its maturity and replacement rate are per
update (LoP's are per SGD step: m 1e4, ρ 1e-4; one update here is
``update_epochs × num_minibatches`` SGD steps).
"""

from __future__ import annotations

import dataclasses

METHODS = ("finetune", "reset", "shrink_perturb", "redo", "cbp", "l2", "l2_init", "ewc", "replay")
RESET_WHICH = ("all", "last", "critic")


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
        if self.name not in METHODS:
            raise ValueError(f"method.name must be one of {METHODS}, got {self.name!r}")
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
        if self.name == "redo" and self.redo_every_updates < 1:
            raise ValueError("method.redo_every_updates must be >= 1 for ReDo")
        if self.name in ("reset", "shrink_perturb") and not self.at_switch and self.every_updates < 1:
            raise ValueError(f"method {self.name!r} never fires: set at_switch or every_updates")
