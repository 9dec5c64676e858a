"""ES meta-training: a maximising evosax wrapper, a generic checkpointed loop, logging.

Reusable by anything with a meta-parameter pytree and a batched fitness
``fitness(key, meta_params_batch) -> [population]`` (learned objectives here,
learned optimizers in ``metarl.optimizers``).
"""

from metarl.io.checkpoint import ESCheckpointer
from metarl.meta.es import ESConfig, EvolutionStrategy, replace_nonfinite
from metarl.io.progress import GenerationLog, read_log, truncate_log
from metarl.meta.trainer import (
    AllCandidatesFailedError,
    MetaTrainResult,
    TrainerConfig,
    make_population_evaluator,
    run_meta_training,
)

__all__ = [
    "AllCandidatesFailedError",
    "ESCheckpointer",
    "ESConfig",
    "EvolutionStrategy",
    "GenerationLog",
    "MetaTrainResult",
    "TrainerConfig",
    "make_population_evaluator",
    "read_log",
    "replace_nonfinite",
    "run_meta_training",
    "truncate_log",
]
