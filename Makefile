# Everything a fresh Debian machine with Python 3.11, pip, venv, node and make needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# `make test` runs everything; pass PYTEST_ARGS to narrow it.
PYTEST_ARGS ?=

.PHONY: install demo test lint serve store-start store-stop clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the project's dependencies change.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[test]'
	$(BIN)/python -m pip check
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

install: $(VENV)/.installed node_modules/.installed

demo: install
	$(BIN)/donor-match demo

lint: install
	$(BIN)/ruff check .

test: install lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

serve: install
	$(BIN)/donor-match serve

store-start: install
	$(BIN)/donor-match store start

store-stop: install
	$(BIN)/donor-match store stop

clean:
	rm -rf $(VENV) node_modules var dist build
