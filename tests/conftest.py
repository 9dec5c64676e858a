"""Test-wide settings, applied before JAX is imported by any test module."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# jaxlib 0.10's multi-threaded Eigen pool can deadlock on batched LAPACK calls
# (Cholesky in the GMM teacher, SVD in plasticity metrics) when vmapped on a
# 2-core machine; single-threaded Eigen removes the hang. Subprocesses started
# by CLI tests inherit it through the environment.
_flag = "--xla_cpu_multi_thread_eigen=false"
if _flag not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _flag).strip()
