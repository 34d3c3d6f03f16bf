# designgate: `make run` to serve, `make test` to run the whole suite on SQLite and PostgreSQL.
SHELL := /bin/bash
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
HOST ?= 127.0.0.1
PORT ?= 8000
# uv must use this machine's Python; it may not download one.
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(shell command -v $(PYTHON))
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Installed packages carry their bytecode, so a start never compiles them (a second or more
# on a small machine, and every time where PYTHONDONTWRITEBYTECODE is set).
export UV_COMPILE_BYTECODE := 1
# The app's own modules are compiled before a start as well (0.15 to 0.25 s of a 2 s start on a
# slow machine, measured with PYTHONDONTWRITEBYTECODE set, where Python would compile them at
# every start); compileall skips a module whose source has not changed.
COMPILE_APP := $(VENV)/bin/python -m compileall -q app

.PHONY: run test test-sqlite test-postgres soak lint typecheck browser-deps bench clean

$(UV): tools/uv-requirements.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r tools/uv-requirements.txt
	touch $(UV)

$(VENV)/.synced-runtime: $(UV) uv.lock pyproject.toml Makefile
	$(UV) sync --frozen --no-dev
	touch $@

$(VENV)/.synced-dev: $(UV) uv.lock pyproject.toml Makefile
	$(UV) sync --frozen
	touch $@ $(VENV)/.synced-runtime

## Serve on http://$(HOST):$(PORT) with SQLite in ./designgate.db (migrations applied first).
run: $(VENV)/.synced-runtime
	$(COMPILE_APP)
	$(VENV)/bin/designgate serve --host $(HOST) --port $(PORT)

## Browser tests drive Debian's chromium; install it when it is missing.
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

lint: $(VENV)/.synced-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.synced-dev
	$(VENV)/bin/mypy

test-sqlite: $(VENV)/.synced-dev browser-deps
	DESIGNGATE_TEST_DATABASE_URL=sqlite $(VENV)/bin/pytest $(PYTEST_ARGS)

test-postgres: $(VENV)/.synced-dev browser-deps
	DESIGNGATE_TEST_DATABASE_URL="$$(scripts/test-postgres.sh)" $(VENV)/bin/pytest $(PYTEST_ARGS)

## The whole suite on both databases, after lint and type checks.
test: lint typecheck test-sqlite test-postgres

## Long fault and fuzz runs (minutes each) on both databases; see docs/RELIABILITY.md.
soak: $(VENV)/.synced-dev
	DESIGNGATE_TEST_DATABASE_URL=sqlite $(VENV)/bin/pytest -m soak tests/hardening $(PYTEST_ARGS)
	DESIGNGATE_TEST_DATABASE_URL="$$(scripts/test-postgres.sh)" $(VENV)/bin/pytest -m soak tests/hardening $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) .pgtest

## Benchmarks (ratios against baselines measured in the same run); see docs/BENCHMARKS.md.
bench: $(VENV)/.synced-dev
	@command -v wrk >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	$(COMPILE_APP)
	$(VENV)/bin/python -m bench $(BENCH_ARGS)
