# Butler Portal — the everyday commands. `make help` lists them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Browser libraries from the npm registry (xterm.js for the VM console), copied into static/.
VENDOR := static/vendor/.installed

.DEFAULT_GOAL := help
.PHONY: help install run test lint typecheck check-deploy image bench clean

help:  ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	@touch $(STAMP)

$(VENDOR): package.json package-lock.json scripts/vendor-static.sh
	scripts/vendor-static.sh
	@touch $(VENDOR)

install: $(STAMP) $(VENDOR)  ## create .venv, install the portal with its development tools and its browser libraries

run: $(STAMP) $(VENDOR)  ## serve the embedded portal on http://127.0.0.1:8000 (demo accounts printed)
	$(BIN)/python manage.py serve

test: $(STAMP) $(VENDOR)  ## run the whole test suite against real Postgres, Redis, Kubernetes API and Chromium
	scripts/test.sh $(ARGS)

lint: $(STAMP)  ## ruff (lint and format check)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)  ## mypy, strict, with the Django and DRF plugins
	$(BIN)/mypy .

check-deploy: $(STAMP)  ## Django's deployment checklist with production settings
	scripts/check-deploy.sh

image:  ## build and check the container image from the Containerfile (buildah; needs root)
	scripts/build-image.sh $(TAG)

bench: $(STAMP)  ## benchmarks on loopback (see bench/README.md); writes bench/results/
	eval "$$(scripts/test-services.sh)" && $(BIN)/python -m bench.status_to_event --output bench/results/status_to_event.md
	eval "$$(scripts/test-services.sh)" && $(BIN)/python -m bench.live_updates --output bench/results/live_updates.md
	eval "$$(scripts/test-services.sh)" && $(BIN)/python -m bench.console_echo --output bench/results/console_echo.md

clean:  ## remove the virtualenv, local databases and caches
	rm -rf $(VENV) var staticfiles node_modules static/vendor .mypy_cache .ruff_cache .pytest_cache test-artifacts
