"""Test-wide settings, applied before JAX is imported by any test module."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# The console scripts' CPU defaults (metarl/runtime.py), applied before any
# test module starts JAX; CLI subprocesses inherit them.
import metarl.runtime  # noqa: E402

metarl.runtime.configure_cpu()
