# `make run` / `make test` / `make bench` each create .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# xdist workers of `make test`. A third worker on CI's 2 cores measured no faster (pytest 21 min 38 s for 1441
# tests against 21 min 8 s for 1410 with 2) and slowed the tests that start subprocesses (Ray launcher 94 s against
# 36 s, two-process jax.distributed 118 s against 87 s).
JOBS ?= 2

.PHONY: run test bench install install-sb3 install-sweep clean metaworld-venv

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Stable-Baselines3 for the SB3 adapter test (skipped without it). TORCH pins the CPU build
# this machine class keeps on disk; an unpinned torch would pull a multi-GB CUDA build.
TORCH ?= torch==2.13.0
install-sb3: $(STAMP)
	$(PY) -m pip install -q '$(TORCH)' -e '.[sb3]'

# Hydra's Ray and submitit launchers and the Optuna sweeper, for sweeps (tests/test_sweep.py skips without them)
install-sweep: $(STAMP)
	$(PY) -m pip install -q -e '.[sweep]'

# The main job on CPU; `make run ARGS="meta.generations=4 verbose=true"` passes overrides through.
run: $(STAMP)
	JAX_PLATFORMS=$${JAX_PLATFORMS:-cpu} $(VENV)/bin/metarl-meta-train $(ARGS)

test: $(STAMP)
	$(VENV)/bin/lint-imports
	JAX_PLATFORMS=$${JAX_PLATFORMS:-cpu} $(PY) -m pytest -q -n $(JOBS) --dist loadfile --durations=15 tests

# With .venv-metaworld (make metaworld-venv) the manipulation figures include real Meta-World side by side.
bench: $(STAMP)
	METAWORLD_PYTHON=$${METAWORLD_PYTHON:-$$(test -x $(MW_VENV)/bin/python && echo $(CURDIR)/$(MW_VENV)/bin/python)} \
		$(PY) scripts/bench.py

# Real Meta-World in its own environment (it pins its own mujoco): bench and scripts/metaworld_crosscheck.py use it.
MW_VENV ?= .venv-metaworld
metaworld-venv:
	test -x $(MW_VENV)/bin/python || python3 -m venv $(MW_VENV)
	$(MW_VENV)/bin/python -m pip install -q 'metaworld==3.1.1' packaging

clean:
	rm -rf outputs multirun runs bench.json
