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

# The local Neo4j server's libraries (graph_store/neo4j_server/pom.xml), resolved by Maven into
# its cache once; Maven comes from Debian's package where it is missing and this runs as root.
.PHONY: neo4j-libs
neo4j-libs: $(VENV)/.installed
	@command -v mvn >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  apt-get install -y -qq maven >/dev/null; } || echo "neo4j-libs: no Maven, install it"
	$(BIN)/python -c "from graph_store.local_neo4j import find_java, resolve_classpath; \
	  print('Neo4j runs on', find_java()); resolve_classpath()"

install: $(VENV)/.installed node_modules/.installed neo4j-libs

demo: install
	$(BIN)/donor-match demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

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

# Deploy checks (tests/test_deploy.py) need promtool. It comes from Debian's `prometheus`
# package, unpacked under the venv instead of installed, so no Prometheus service is set up or
# started. Best effort: where apt cannot fetch it, the promtool checks skip and say why.
PROMTOOL := $(VENV)/tools/prometheus/usr/bin/promtool

.PHONY: tools
tools: | $(BIN)/python
	@if [ -x $(PROMTOOL) ] || command -v promtool >/dev/null; then exit 0; fi; \
	if ! command -v apt-get >/dev/null; then \
	  echo "tools: no apt-get here, promtool checks will skip"; exit 0; fi; \
	rm -rf $(VENV)/tools/deb && mkdir -p $(VENV)/tools/deb && cd $(VENV)/tools/deb && \
	{ apt-get download prometheus >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get download prometheus; } || \
	  { sudo -n true 2>/dev/null && sudo apt-get update -qq && apt-get download prometheus; }; } && \
	dpkg-deb -x prometheus_*.deb ../prometheus && cd .. && rm -rf deb && \
	echo "tools: promtool from Debian's prometheus package in $(PROMTOOL)" || \
	echo "tools: could not fetch Debian's prometheus package, promtool checks will skip"

test: tools

# The GraphiQL browser test (tests/test_graphiql_browser.py) drives Debian's `chromium` with
# Playwright (no browser download). Installed with apt-get where this runs as root (or with
# passwordless sudo); elsewhere the browser test skips and says why.
.PHONY: chromium
chromium:
	@bash tests/browser/install-chromium.sh

test: chromium
