"""metarl: meta-learned RL algorithms and curricula in JAX."""

import envs._xla_defaults  # noqa: F401  (CPU XLA defaults before JAX starts)

__version__ = "0.1.0"
