# Footfall: one entry point for every check. `make test` and `make run` set up
# everything they need on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup run test test-unit test-interop protos check-protos lint clean test-tools

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,dev]'
	touch $(STAMP)

# What the browser and Node.js tests drive: Debian's chromium (installed only if
# missing) and the official Node.js client (npm ci into the ignored
# tests/node/node_modules). When either cannot be had, its test skips, loudly.
NODE_MODULES := tests/node/node_modules/.package-lock.json

test-tools: $(NODE_MODULES)
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for tests/browser"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); \
	  { $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    $$SUDO apt-get install -y -qq chromium >/dev/null; } \
	  || echo "WARNING: could not install chromium; tests/browser will skip"; }

$(NODE_MODULES): tests/node/package.json tests/node/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix tests/node --no-audit --no-fund --loglevel=error; \
	else echo "WARNING: npm not found; tests/node will skip"; fi

run: setup
	$(PY) -m server serve

# pytest exits 5 when it collects nothing, which fails make too.
# Our own stubs and the official clients register the same message names in
# protobuf's default pool, so the interop suite runs in a pytest process of its own.
test: setup test-tools
	$(PY) -m pytest tests/unit tests/integration tests/browser tests/node
	$(PY) -m pytest tests/contract tests/interop

test-unit: setup
	$(PY) -m pytest tests/unit tests/integration

test-interop: setup
	$(PY) -m pytest tests/contract tests/interop

protos: setup
	$(PY) tools/genprotos.py

# Fails when generated/ differs from what `make protos` writes.
check-protos: protos
	git diff --exit-code --stat -- generated
	test -z "$$(git status --porcelain -- generated)"

lint: setup
	$(VENV)/bin/ruff check server tests tools
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) build *.egg-info
