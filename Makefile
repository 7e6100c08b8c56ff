# Footfall: one entry point for every check. `make test` and `make run` set up
# everything they need on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# `make run` installs only what serving needs; tests and checks add their extras.
RUN_STAMP  := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test

.PHONY: setup run test test-unit test-interop protos check-protos lint clean test-tools \
	bench bench-quick

setup: $(TEST_STAMP)

$(RUN_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e .
	touch $(RUN_STAMP)

$(TEST_STAMP): $(RUN_STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,dev]'
	touch $(TEST_STAMP)

# What the browser, Node.js, generated-client and benchmark tests drive: Debian's
# chromium, nghttp2-client (h2load) and the C++, Go and Ruby gRPC toolchains,
# installed only if missing, and the official Node.js client (npm ci into the
# ignored tests/node/node_modules), and axe-core, which tests/browser runs in the
# console's pages (npm ci into tests/browser/axe/node_modules). When one cannot be had,
# its test skips, loudly.
NODE_MODULES := tests/node/node_modules/.package-lock.json
AXE := tests/browser/axe/node_modules/.package-lock.json
# The C++ toolchain also builds bench/watchers.cc, the watch benchmark's watchers.
# tests/clients: without golang-github-golang-protobuf-1-5-dev
# apt picks golang/protobuf 1.3, whose Go client panics decoding a reply.
CLIENT_PACKAGES := protobuf-compiler pkg-config g++ libgrpc++-dev protobuf-compiler-grpc \
	golang-go golang-google-grpc-dev golang-google-protobuf-dev golang-google-genproto-dev \
	golang-github-golang-protobuf-1-5-dev protoc-gen-go protoc-gen-go-grpc \
	ruby-grpc ruby-grpc-tools

test-tools: $(NODE_MODULES) $(AXE)
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for tests/browser"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); \
	  { $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    $$SUDO apt-get install -y -qq chromium >/dev/null; } \
	  || echo "WARNING: could not install chromium; tests/browser will skip"; }
	@{ command -v h2load && command -v wrk; } >/dev/null 2>&1 || { \
	  echo "installing Debian's nghttp2-client (h2load) and wrk for bench/"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); \
	  { $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    $$SUDO apt-get install -y -qq nghttp2-client wrk >/dev/null; } \
	  || echo "WARNING: could not install nghttp2-client/wrk; tests/benchmarks will skip"; }
	@dpkg -s $(CLIENT_PACKAGES) >/dev/null 2>&1 || { \
	  echo "installing Debian's C++, Go and Ruby gRPC toolchains for tests/clients"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); \
	  { $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    $$SUDO apt-get install -y -qq $(CLIENT_PACKAGES) >/dev/null; } \
	  || echo "WARNING: could not install the C++/Go/Ruby gRPC toolchains; tests/clients will skip"; }

$(NODE_MODULES): tests/node/package.json tests/node/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix tests/node --no-audit --no-fund --loglevel=error; \
	else echo "WARNING: npm not found; tests/node will skip"; fi

$(AXE): tests/browser/axe/package.json tests/browser/axe/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix tests/browser/axe --no-audit --no-fund --loglevel=error; \
	else echo "WARNING: npm not found; the console's accessibility test will skip"; fi

run: $(RUN_STAMP)
	$(PY) -m server serve

# pytest exits 5 when it collects nothing, which fails make too.
# Our own stubs and the official clients register the same message names in
# protobuf's default pool, so the interop suite runs in a pytest process of its own
# (with tests/clients, which starts the server as a subprocess the same way).
# The PostgreSQL store and replica tests need FOOTFALL_TEST_POSTGRES_DSN (.ci/run sets it).
#
# Both runs spread their tests over PYTEST_WORKERS processes (pytest-xdist; 0: all in
# this process, as before). Most of a test's time is spent waiting on a server, a
# browser or a child process (one pytest process kept about half a core busy), so
# three workers pay even on two cores: measured on a shared 2-core machine, the first
# run took 698 s alone, 491 s on 2 workers, 393 s on 3; the interop run 806, 371, 306.
# A module's tests stay together on one worker (--dist loadscope): its module fixtures
# start once, and each worker has a shared server and PostgreSQL databases of its own.
# The longest modules are named first, so no worker is left running one of them alone
# at the end (the benchmarks' smoke run, the generated clients' builds).
PYTEST_WORKERS ?= 3
PYTEST := $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadscope
test: setup test-tools
	@[ -n "$$FOOTFALL_TEST_POSTGRES_DSN" ] || echo "!!!!!!!! FOOTFALL_TEST_POSTGRES_DSN is not set:" \
	  "the PostgreSQL tests are SKIPPED (e.g. postgresql://postgres@127.0.0.1:5432/postgres) !!!!!!!!"
	$(PYTEST) tests/benchmarks tests/browser tests/node tests/integration tests/unit
	$(PYTEST) tests/clients tests/contract tests/interop

test-unit: setup
	$(PYTEST) tests/integration tests/unit

test-interop: setup
	$(PYTEST) tests/clients tests/contract tests/interop

protos: setup
	$(PY) tools/genprotos.py

# Fails when generated/ differs from what `make protos` writes.
check-protos: protos
	git diff --exit-code --stat -- generated
	test -z "$$(git status --porcelain -- generated)"

lint: setup
	$(VENV)/bin/ruff check server tests tools bench
	$(VENV)/bin/mypy

# Every benchmark, each beside a baseline measured in the same run:
# bench/results/<date>-full.json and its part of bench/REPORT.md, the rest kept
# (about 35 minutes on 2 cores).
bench: setup test-tools
	$(PY) -m bench.run --profile full

# The same benchmarks on small sizes (about a minute); writes only the JSON.
bench-quick: setup test-tools
	$(PY) -m bench.run --profile quick

clean:
	rm -rf $(VENV) build *.egg-info
