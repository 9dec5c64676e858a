"""Test-wide settings, applied before JAX is imported by any test module."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Same CPU defaults as the package (see envs/_xla_defaults.py), applied before
# any test module imports JAX; CLI subprocesses inherit them.
import envs._xla_defaults  # noqa: E402,F401
