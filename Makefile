# patchrisk — two commands matter: `make run` (the whole local loop) and `make test`.
# Every target sets up what it needs (venv with the locked dependencies) on first use.

SHELL := /bin/bash
# The distribution's python3.11 when it can make a venv (Debian's needs python3.11-venv for that):
# Debian builds it with profile-guided optimisation and LTO and links libpython into the executable,
# and it spends ~15 % less CPU than a python3.11 built with neither (pyenv's default, first on PATH
# on these machines) on what make test mostly does: importing MLflow, pandas, Evidently and kfp in
# every task, server and CLI process it starts. Otherwise the first python3.11 on PATH.
SYSTEM_PYTHON := /usr/bin/python3.11
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell $(SYSTEM_PYTHON) -c "import ensurepip, venv" >/dev/null 2>&1 && echo $(SYSTEM_PYTHON) || echo python3.11)
endif
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
CHECKOV_VENV := .venv-checkov
STAMP := $(VENV)/.installed
STATE_DIR ?= .state

# These machines set PYTHONDONTWRITEBYTECODE, so every process (each kfp.local task, each test
# subprocess) compiled pandas, MLflow... from source again. Our recipes let Python cache bytecode as it
# imports: only what is imported gets compiled (about a sixth of the venv), once, by whoever needs it
# first; compiling the whole venv at install cost ≈ 55 CPU-s and ≈ 25 s of set-up. Images compile at
# build time (pip's default) and keep the variable.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help venv bytecode browser postgresql bubblewrap system-packages test-setup local-up local-down run test test-unit test-integration manifests-check compile-pipelines serve \
        stack-up stack-down bench lock clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-20s %s\n", $$1, $$2}'

# .venv keeps pip (kfp.local's bootstrap of a component that installs its own kfp calls `python -m pip`);
# its uv also creates and fills the checkov venv, which needs no pip of its own.
$(UV):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check uv==0.13.9

$(STAMP): requirements.lock pyproject.toml setup.py | $(UV)
	@$(UV) pip install -q --python $(PY) -r requirements.lock
	@$(UV) pip install -q --python $(PY) --no-deps -e .
	@touch $(STAMP)

# Compiled ahead, not on first import: our own packages (compileall only rewrites what changed), and
# the libraries that processes started in the local pod runner import (its sandbox mounts the venv
# read-only, so a pod never caches what it compiles: each monitor Job would compile Evidently again).
# Importing compiles what is imported, and nothing else. In stages, so that set-up uses both cores:
# what everything imports first, then Evidently (half the work) beside the rest. One process took
# 26-27 s of make test's set-up, the stages 17-21 s (timed back to back on 2 cores, from no bytecode).
FIRST_PARTY := src serving components pipelines tests
POD_SHARED_IMPORTS := pandas pyarrow.parquet scipy.stats pydantic
POD_EVIDENTLY_IMPORTS := evidently.presets patchrisk.monitoring.drift.evidently_report
POD_IMPORTS := patchrisk_serving.catboost_predictor.model patchrisk_serving.catboost_predictor.server_hooks \
  patchrisk_cli.sink patchrisk_cli.monitor patchrisk.monitoring.sink.app patchrisk.monitoring.drift.job \
  mlflow.tracking kfp.local
IMPORT_ALL = $(PY) -c "import importlib, sys; [importlib.import_module(m) for m in sys.argv[1:]]"
$(VENV)/.pod-bytecode: $(STAMP)
	@$(IMPORT_ALL) $(POD_SHARED_IMPORTS)
	@$(IMPORT_ALL) $(POD_EVIDENTLY_IMPORTS) & evidently=$$!; \
	  $(IMPORT_ALL) $(POD_IMPORTS); rest=$$?; wait $$evidently && exit $$rest
	@touch $@

bytecode: $(STAMP) $(VENV)/.pod-bytecode
	@$(PY) -m compileall -q -j0 $(FIRST_PARTY) >/dev/null

venv: $(STAMP)  ## create .venv with the locked dependencies

$(CHECKOV_VENV)/.installed: requirements-checkov.lock | $(UV)
	@test -x $(CHECKOV_VENV)/bin/python || $(UV) venv -q --python $(PYTHON) $(CHECKOV_VENV)
	@$(UV) pip install -q --python $(CHECKOV_VENV)/bin/python -r requirements-checkov.lock
	@touch $@

# Debian packages, each installed on first need: PostgreSQL for MLflow-on-PostgreSQL (stack-up
# DB=postgres and its integration test), Chromium for the report test (playwright's own browser
# download cannot run here), bubblewrap for the local pod runner (user namespaces). Without the
# recommended packages (fonts, docs, extensions) the three install in about half the time.
APT_INSTALL = apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends
HAS_POSTGRESQL = ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1
HAS_CHROMIUM = command -v chromium >/dev/null 2>&1
HAS_BUBBLEWRAP = command -v bwrap >/dev/null 2>&1

postgresql:
	@$(HAS_POSTGRESQL) || { echo "installing postgresql (Debian package) for MLflow on PostgreSQL"; \
	  ($(APT_INSTALL) postgresql >/dev/null) || echo "warning: could not install postgresql; its integration test will be skipped"; }

browser:
	@$(HAS_CHROMIUM) || { echo "installing chromium (Debian package) for the report test"; \
	  ($(APT_INSTALL) chromium >/dev/null) || echo "warning: could not install chromium; the browser test will be skipped outside CI"; }

bubblewrap:
	@$(HAS_BUBBLEWRAP) || { echo "installing bubblewrap (Debian package) for the local pod runner"; \
	  ($(APT_INSTALL) bubblewrap >/dev/null) || echo "warning: could not install bubblewrap; the local runner's tests will be skipped"; }

# What make test needs, in one apt transaction (one index update, one dpkg run).
system-packages:
	@missing=""; $(HAS_CHROMIUM) || missing="$$missing chromium"; \
	  $(HAS_POSTGRESQL) || missing="$$missing postgresql"; $(HAS_BUBBLEWRAP) || missing="$$missing bubblewrap"; \
	  test -z "$$missing" || { echo "installing$$missing (Debian packages) for the browser, PostgreSQL and pod-runner tests"; \
	    ($(APT_INSTALL) $$missing >/dev/null) || echo "warning: could not install$$missing; the tests that need them will be skipped"; }

OVERLAY ?= staging
local-up: $(STAMP) bubblewrap  ## run OVERLAY's pods locally as the cluster would (docs/local-cluster.md)
	@$(VENV)/bin/patchrisk local up --overlay $(OVERLAY) --state-dir $(STATE_DIR)

local-down: $(STAMP)  ## stop every process of OVERLAY's local pods
	@$(VENV)/bin/patchrisk local down --overlay $(OVERLAY) --state-dir $(STATE_DIR)

# RUNNER=0: roll out on stand-ins (no bubblewrap needed) instead of the local pod runner.
RUNNER ?= 1
run: $(STAMP) bytecode $(if $(filter 0,$(RUNNER)),,bubblewrap)  ## the whole local loop on the local pod runner, ending with a summary (RUNNER=0: stand-ins)
	@$(VENV)/bin/patchrisk demo --state-dir $(STATE_DIR) $(if $(filter 0,$(RUNNER)),--stand-ins,--runner)

# pytest-xdist: one worker per core plus two, because the make-run loop's worker sleeps through the
# loop's monitor slots and other tests wait on the servers they start (2 cores: 546 s with 2 workers,
# 487 s with 3 when first measured; 2026-12-02, interleaved, 3 vs 4 workers: 230/212/195 s vs 221/193/189 s, both
# cores busy 73-84 % of the time with 3 while the loop waits); modules that bring up the same
# local-cluster overlay share one worker (SERIAL_GROUPS, tests/serial_groups.py). WORKERS=0: one process.
WORKERS ?= $(shell echo $$(( $$(nproc) + 2 )))
XDIST = $(if $(filter 0,$(WORKERS)),,-n $(WORKERS) --dist loadgroup)
# The unit suite never waits on anything, and every worker imports the same libraries again (kfp,
# MLflow, KServe, CatBoost: ≈ 20 CPU-s a worker): one worker per core (2 cores: 126 → 107 CPU-s).
UNIT_WORKERS ?= $(shell nproc)
UNIT_XDIST = $(if $(filter 0,$(UNIT_WORKERS)),,-n $(UNIT_WORKERS) --dist loadgroup)

# The manifests check runs inside the suite (tests/integration/test_manifests_cli.py), beside other tests.
test: test-setup  ## every test, the manifests check included
	@$(PY) -m pytest -q $(XDIST) --durations=20

# What `make test` needs, side by side: the venvs fill and compile what the pods import while apt
# downloads and installs the Debian packages.
test-setup:
	@$(MAKE) --no-print-directory -j3 bytecode $(CHECKOV_VENV)/.installed system-packages

test-unit: $(STAMP) bytecode  ## fast tests only (no process started; target < 60 s on 2 cores)
	@$(PY) -m pytest -q $(UNIT_XDIST) tests/unit

test-integration: $(STAMP) bytecode  ## tests that start servers, the CLI or pipelines
	@$(PY) -m pytest -q $(XDIST) tests/integration

manifests-check: $(STAMP) $(CHECKOV_VENV)/.installed  ## render, validate and policy-check every overlay
	@$(VENV)/bin/patchrisk manifests check --checkov $(CHECKOV_VENV)/bin/checkov

compile-pipelines: $(STAMP)  ## recompile the committed pipeline YAML
	@$(VENV)/bin/patchrisk pipeline compile

serve: $(STAMP)  ## serve the champion (or MODEL_URI=...) on 127.0.0.1:8080
	@$(VENV)/bin/patchrisk serve --state-dir $(STATE_DIR) $(if $(MODEL_URI),--model-uri $(MODEL_URI),)

stack-up: $(STAMP)  ## local MLflow server + S3-compatible server on 127.0.0.1 (DB=postgres: MLflow on PostgreSQL)
	@$(if $(filter postgres,$(DB)),$(MAKE) --no-print-directory postgresql &&,) \
	  $(VENV)/bin/patchrisk stack up --state-dir $(STATE_DIR) $(if $(DB),--db $(DB),)

stack-down: $(STAMP)  ## stop the local stack
	@$(VENV)/bin/patchrisk stack down --state-dir $(STATE_DIR)

bench: $(STAMP)  ## print the speed figures (training, pipeline, serving, drift, aggregation, sink, predictor image)
	@for b in training serving drift aggregate sink predictor_runtime; do echo "== bench/$$b.py"; $(PY) bench/$$b.py || exit 1; done

lock: $(STAMP)  ## re-resolve every lock: dev (make), components image, predictor image, checkov
	$(UV) pip compile --python-version 3.11 --extra dev pyproject.toml -o requirements.lock
	$(UV) pip compile --python-version 3.11 pyproject.toml -o requirements-components.lock
	$(UV) pip compile --python-version 3.11 requirements-predictor.in --constraints requirements.lock \
	  --excludes requirements-predictor.excludes \
	  -o requirements-predictor.lock
	$(UV) pip compile --python-version 3.11 requirements-checkov.in -o requirements-checkov.lock

clean:  ## remove local state (keeps the venvs)
	rm -rf $(STATE_DIR)
