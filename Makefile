# One command each: `make dev` (UI + daemon + demo data), `make test` (lint, types, tests), `make demo`
# (the same work headless). Only python3, pip and make are needed; everything else is installed here.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export INTELLIGENCE_HOME ?= $(CURDIR)/data
HOST ?= 127.0.0.1
PORT ?= 3000

.PHONY: install dev demo test lint typecheck pytest bench clean dagster-home

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

install: $(BIN)/.installed

# Dagster reads dagster.yaml from DAGSTER_HOME, never from the project folder: keep a copy there.
dagster-home:
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

# The UI and the daemon on the local instance. Run from DAGSTER_HOME so the project's own
# dagster.yaml is not mistaken for the instance's; storage is created (or upgraded) once first,
# so the two processes never race to create it.
dev: install dagster-home
	$(BIN)/python -m intelligence.demo land
	$(BIN)/dagster instance migrate > /dev/null
	cd $(DAGSTER_HOME) && { $(CURDIR)/$(BIN)/dagster-daemon run -w $(CURDIR)/workspace.yaml & \
	  DAEMON=$$!; trap 'kill $$DAEMON 2>/dev/null' EXIT INT TERM; \
	  $(CURDIR)/$(BIN)/dagster-webserver -w $(CURDIR)/workspace.yaml -h $(HOST) -p $(PORT); }

demo: install dagster-home
	$(BIN)/python -m intelligence.demo run

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy intelligence assets resources

pytest: install
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

# The whole test suite: lint, types, tests. `.ci/run` calls exactly this.
test: lint typecheck pytest

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
