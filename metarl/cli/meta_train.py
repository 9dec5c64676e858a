"""Console entry point (temporary shim while the CLI layer is split out)."""

from metarl.jobs.meta_train import main

__all__ = ["main"]
