# fleet-eval developer commands; `make help` lists them. Area fragments live in mk/*.mk.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST := $(VENV)/bin/pytest
export FLEET_EVAL_CACHE ?= /var/cache/fleet-eval

.PHONY: help setup test test-tools test-fast lint format services bench

# .venv and the machine's packages: `make setup` makes them, and every target that runs the venv's tools
# depends on this stamp, so `make demo` or `make test` on a fresh machine sets it up first (and a changed
# lock or setup script runs setup again).
SETUP_STAMP := $(VENV)/.fleet-eval-setup
$(SETUP_STAMP): uv.lock pyproject.toml scripts/setup.sh scripts/versions.env
	bash scripts/setup.sh
	@touch $@

help: ## Show this list
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | sort | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

setup: ## Install system packages, local service binaries and the Python environment (.venv)
	bash scripts/setup.sh
	@touch $(SETUP_STAMP)

test-fast: $(SETUP_STAMP) ## Everything that needs no cluster: unit, integration (real local services), workflows, chart
	PYTEST=$(PYTEST) bash scripts/pytest-tier.sh -m "not e2e" --durations=15

# The tools chart and workflow tests call (helm, the argo CLI, Flux's CRDs), built before the fast tiers so
# that `make test` on a fresh machine skips none of those tests; the cluster build needs them anyway.
test-tools: helm ## Build helm, the argo CLI and Flux's CRDs into the machine cache (once)
	bash scripts/build/components.sh argo flux

test: test-tools test-fast test-e2e ## The whole test suite: test-fast, then the cluster tiers (builds the cluster if needed)
	@echo "make test: all tiers passed"

# Every tracked shell script: *.sh, and files without the suffix whose shebang names sh or bash.
SHELL_SCRIPTS = $(shell git ls-files '*.sh'; git grep -IlE '^\#!(/usr)?/bin/(env )?(ba)?sh' -- ':!*.sh')
# scripts/build/argo-ui.sh is hashed into the Argo UI's cache key (argo_ui_key in lib.sh): any edit to it
# rebuilds the UI, the argo binaries and their images (10-17 min), so its one note, SC2012 on counting
# our own patch files with `ls | wc -l`, is excluded here until the script changes for its own sake.
ARGO_UI_SH := scripts/build/argo-ui.sh

lint: $(SETUP_STAMP) ## ruff (lint + format check), mypy strict, shellcheck on every shell script
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy eval_runner demo/fieldsim/fieldsim workflows tests bench
	shellcheck $(filter-out $(ARGO_UI_SH),$(SHELL_SCRIPTS))
	shellcheck --exclude=SC2012 $(ARGO_UI_SH)

format: ## Apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(SETUP_STAMP) cluster demo-images ## Run every benchmark in bench/ (fleet_cluster needs the cluster), figures in bench/results/
	PY=$(PY) bash scripts/bench.sh

services: $(SETUP_STAMP) ## Run S3 (versitygw), PostgreSQL and MLflow on loopback until Ctrl-C, printing their settings
	$(PY) -m tests.services

-include mk/*.mk
