# Footfall: one entry point for every check. `make test` and `make run` set up
# everything they need on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup run test test-unit test-interop protos check-protos lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,dev]'
	touch $(STAMP)

run: setup
	$(PY) -m server serve

# pytest exits 5 when it collects nothing, which fails make too.
# Our own stubs and the official clients register the same message names in
# protobuf's default pool, so the interop suite runs in a pytest process of its own.
test: setup
	$(PY) -m pytest tests/unit tests/integration
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
