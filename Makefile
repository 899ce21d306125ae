# Standby: `make demo` and `make test` set everything up themselves.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
# lab/, bench/, tests/ and deployments/ are not in the wheel: every target imports them from this checkout.
export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH))

.PHONY: setup sysdeps test check unit demo bench lab-up lab-down lab-reset lab-status up down server clean

setup: sysdeps $(STAMP)

sysdeps:
	@scripts/sysdeps.sh

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $@

check: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy drkit standby blocks flows tasks deployments
	$(VENV)/bin/lint-imports

test: setup check
	$(PY) -m pytest -q -n 5 --durations=30

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit tests/golden

lab-up: setup
	$(VENV)/bin/standby lab up

lab-down: $(STAMP)
	$(VENV)/bin/standby lab down

lab-reset: $(STAMP)
	$(VENV)/bin/standby lab reset

lab-status: $(STAMP)
	$(VENV)/bin/standby lab status

demo: setup
	$(PY) -m deployments.demo

bench: setup
	$(PY) -m bench

server: setup
	$(PY) -m deployments.server start

up: lab-up server
	@echo "serving Standby's deployments (Ctrl-C to stop serving; the server and lab stay up)"
	PREFECT_API_URL=http://127.0.0.1:$${STANDBY_PREFECT_PORT:-4200}/api PREFECT_API_AUTH_STRING="$$(cat $(PREFECT_HOME)/run/api-auth)" $(VENV)/bin/standby blocks import .lab/standby.yaml --name standby-lab --backup-key standby-backup-key
	PREFECT_API_URL=http://127.0.0.1:$${STANDBY_PREFECT_PORT:-4200}/api PREFECT_API_AUTH_STRING="$$(cat $(PREFECT_HOME)/run/api-auth)" STANDBY_CONFIG=block:standby-lab $(PY) -m deployments.serve

down: $(STAMP)
	-$(PY) -m deployments.server stop
	$(VENV)/bin/standby lab down

clean: down
	rm -rf .lab .prefect
