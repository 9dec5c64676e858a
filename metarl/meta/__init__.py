"""Meta-learning: the one ES loop, the one chunked meta-gradient loop, fitness builders.

* :mod:`metarl.meta.es` — a maximising evosax wrapper over any meta-parameter pytree;
* :mod:`metarl.meta.trainer` — the ES generation loop (checkpoint/resume, JSONL log,
  chunked/sharded populations, optional extra state such as a level teacher);
* :mod:`metarl.meta.gradient_loop` — jitted chunks of meta-gradient steps with the same
  log/checkpoint/resume discipline;
* fitness builders: :mod:`~metarl.meta.fitness` (learned PPO objectives),
  :mod:`~metarl.meta.optimizer_fitness` (learned optimizers), :mod:`~metarl.meta.lpg_es`
  (LPG rules by ES) and :mod:`~metarl.meta.lpg_meta_gradient` (LPG rules by meta-gradients).
"""

from metarl.meta.es import ESConfig, EvolutionStrategy, replace_nonfinite
from metarl.meta.gradient_loop import GradientLoopResult, run_gradient_loop
from metarl.meta.trainer import (
    AllCandidatesFailedError,
    MetaTrainResult,
    TrainerConfig,
    make_generation,
    make_population_evaluator,
    run_meta_training,
)

__all__ = [
    "AllCandidatesFailedError",
    "ESConfig",
    "EvolutionStrategy",
    "GradientLoopResult",
    "MetaTrainResult",
    "TrainerConfig",
    "make_generation",
    "make_population_evaluator",
    "replace_nonfinite",
    "run_gradient_loop",
    "run_meta_training",
]
