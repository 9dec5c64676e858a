"""metarl: meta-learned RL algorithms and curricula in JAX."""

__version__ = "0.1.0"
