"""Test-wide settings, applied before JAX is imported by any test module."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Tests are mostly compilation of tiny programs: skipping LLVM's expensive
# passes made test_ppo.py + test_kill_resume.py 26% faster (382 s -> 282 s,
# same machine, side by side) with the same results; on the whole suite the
# gain was within this VM's variance between sittings. Only the test session
# (and the CLIs it starts) sets it; the console scripts keep full optimization.
# LLVM's optimization level 1 (XLA's default is 2): test_ppo.py + test_lpg_rule.py +
# test_es.py took 295 s against 317 s at level 2 (one core, back to back); level 0
# compiled faster still but ran the CartPole PPO test 3x slower.
# XLA CPU's older elemental emitters instead of its MLIR fusion emitters: test_ppo.py spent 51 s compiling
# against 81 s (555 programs, jax.monitoring's backend_compile_duration) and took 116 s against 132-138 s.
for flag in ("--xla_llvm_disable_expensive_passes=true", "--xla_backend_optimization_level=1",
             "--xla_cpu_use_fusion_emitters=false"):
    if flag.split("=")[0] not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flag).strip()
# The console scripts' CPU defaults (metarl/runtime.py), applied before any
# test module starts JAX; CLI subprocesses inherit them.
import metarl.runtime  # noqa: E402

metarl.runtime.configure_cpu()

# One persistent XLA compilation cache per test session, shared by both xdist workers and every CLI subprocess
# they start: many tests compile the same tiny PPO/ES programs (the installed-wheel, CLI, resume and sweep tests).
# A fresh session starts empty, so the suite's results never depend on an earlier run's cache.
_SESSION = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"pid{os.getpid()}"
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(
    os.environ.get("TMPDIR", "/tmp"), f"metarl-test-xla-cache-{_SESSION}"))

# `make test` hands whole files to its xdist workers in collection order (--dist loadfile). The longest files go
# first so that no worker starts one of them near the end while the other sits idle (longest-first scheduling);
# the rest keep their alphabetical order. Ranked by their summed test times in a full run (2026-12-06, junit XML,
# with the flags above; 60-137 s each).
LONGEST_FIRST = ("test_installed_wheel.py", "test_ppo.py", "test_bad_input.py", "test_sac.py",
                 "test_continual_world.py", "test_kill_resume.py", "test_sweep.py", "test_gymnasium_export_envs.py",
                 "test_run_safety.py", "test_lpg_meta_gradient_train.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONGEST_FIRST)))  # stable: file order kept otherwise
