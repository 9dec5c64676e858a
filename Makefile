# `make run` / `make test` / `make bench` each create .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
JOBS ?= 2

.PHONY: run test bench install clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The main job on CPU; `make run ARGS="meta.generations=4 verbose=true"` passes overrides through.
run: $(STAMP)
	JAX_PLATFORMS=$${JAX_PLATFORMS:-cpu} $(VENV)/bin/metarl-meta-train $(ARGS)

test: $(STAMP)
	$(VENV)/bin/lint-imports
	JAX_PLATFORMS=$${JAX_PLATFORMS:-cpu} $(PY) -m pytest -q -n $(JOBS) --dist loadgroup --durations=15 tests

bench: $(STAMP)
	$(PY) scripts/bench.py

clean:
	rm -rf outputs multirun runs bench.json
