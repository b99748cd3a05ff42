# Everything runs through uv in a project-local virtual environment (.venv).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV ?= $(shell command -v uv 2>/dev/null || echo $(VENV)-uv/bin/uv)
MODEL_DIR ?= models/default
PORT ?= 8000
WORKERS ?=
PYTEST_ARGS ?=
# What runs the tests; CI sets it to `.venv/bin/coverage run ... -m pytest` to measure coverage.
PYTEST_RUNNER ?= $(BIN)/pytest
export UV_PYTHON_DOWNLOADS := never

.PHONY: help install run train test lint typecheck pytest system-deps bench bench-costs bench-memory loadtest dashboards screenshots clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(VENV)-uv/bin/uv:
	$(PYTHON) -m venv $(VENV)-uv && $(VENV)-uv/bin/pip install -q uv

$(BIN)/python: | $(UV)
	$(UV) venv --python $(PYTHON) $(VENV)

$(VENV)/.synced: requirements-dev.lock pyproject.toml | $(BIN)/python
	$(UV) pip sync --python $(BIN)/python --require-hashes requirements-dev.lock
	$(UV) pip install --python $(BIN)/python --no-deps -e .
	@touch $@

install: $(VENV)/.synced ## create .venv and install the locked dependencies and the package

$(MODEL_DIR)/card.json: | $(VENV)/.synced
	$(BIN)/lucidserve train --dataset iris --out $(MODEL_DIR)

train: $(MODEL_DIR)/card.json ## train the default iris model bundle (when missing)

run: install train ## serve the default model on port 8000 (gunicorn + uvicorn workers)
	$(BIN)/lucidserve serve --port $(PORT) --model-dir $(MODEL_DIR) $(if $(WORKERS),--workers $(WORKERS))

system-deps: ## install the Debian packages the test suite needs (scripts/system-packages.txt)
	bash scripts/install-system-packages.sh

lint: install ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install ## mypy --strict on src/
	$(BIN)/mypy --strict src/

pytest: install system-deps ## the test suite only
	$(PYTEST_RUNNER) $(PYTEST_ARGS)

test: install system-deps lint typecheck pytest ## the whole suite: lint, types, tests

lock: ## re-resolve the lock files after changing pyproject.toml
	$(UV) pip compile pyproject.toml --all-extras --generate-hashes --universal --python-version 3.11 --no-emit-index-url --no-emit-find-links -q -o requirements-dev.lock
	$(UV) pip compile pyproject.toml --generate-hashes --universal --python-version 3.11 --no-emit-index-url --no-emit-find-links -q -o requirements.lock
	echo 'hatchling>=1.25' | $(UV) pip compile - --generate-hashes --universal --python-version 3.11 --no-emit-index-url --no-emit-find-links -q -o requirements-build.lock

clean: ## remove the environment, models and reports
	rm -rf $(VENV) $(VENV)-uv models reports .pytest_cache .mypy_cache .ruff_cache

screenshots: install system-deps ## the model page of a real server with traffic, in headless Chromium: docs/images/model-page.png
	$(BIN)/python -m tests.support.screenshots --out docs/images/model-page.png

dashboards: install ## regenerate grafana/dashboards/*.json and the k8s dashboard ConfigMaps and PrometheusRule
	$(BIN)/python -m grafana.generator

# Load test (loadtest/, Locust): headless against LOADTEST_URL, or against a local service on
# MODEL_DIR when it is empty; CSV, HTML and JSON reports in reports/loadtest/. Exits non-zero when
# the failure ratio or the p95/p99 latency exceed their limits (see loadtest/README.md).
LOADTEST_URL ?=
LOADTEST_USERS ?= 10
LOADTEST_SPAWN_RATE ?= 5
LOADTEST_RUN_TIME ?= 60s
LOADTEST_SHAPE ?= steady
LOADTEST_ARGS ?=

loadtest: install $(if $(LOADTEST_URL),,train) ## headless Locust run (LOADTEST_URL, default: a local service); reports/loadtest/
	$(BIN)/python -m loadtest.run \
		$(if $(LOADTEST_URL),--url $(LOADTEST_URL),--model-dir $(MODEL_DIR) $(if $(WORKERS),--workers $(WORKERS))) \
		--users $(LOADTEST_USERS) --spawn-rate $(LOADTEST_SPAWN_RATE) --run-time $(LOADTEST_RUN_TIME) \
		--out reports/loadtest --shape $(LOADTEST_SHAPE) $(LOADTEST_ARGS)

# Benchmark (bench/, wrk; bench/README.md): observability off (A), on (B), on without batching (C),
# on the iris forest, the breast-cancer pipeline and a DataFrame pipeline beside its array twin; one
# table per model, ratios, targets; JSON in reports/bench.json. About 20 minutes by default;
# e.g. BENCH_ARGS="--duration 5 --repetitions 2" or BENCH_ARGS="--models churn".
BENCH_ARGS ?=

bench: install ## wrk benchmark: observability off/on/unbatched (BENCH_ARGS); reports/bench.json
	$(BIN)/python -m bench.run --json-out reports/bench.json $(BENCH_ARGS)

# Where observability's cost goes: B and B with one part off at a time, at 64 connections; each
# variant's server CPU per request minus B's is that part's cost, negated. About 12 minutes.
bench-costs: install ## per-part cost of observability: make bench with all of B's variants (BENCH_ARGS); reports/costs.json
	$(BIN)/python -m bench.run --models iris,breast_cancer --concurrency 64 --configs A,B,variants --json-out reports/costs.json $(BENCH_ARGS)

# Memory and start-up by worker count (1, 2, 4) on a generated forest (about 75 MB; BENCH_ARGS=--big
# for about 240 MB), with the throughput of a short wrk run with and without a scrape of the metrics
# port every second. A few minutes; JSON in reports/memory.json.
bench-memory: install ## PSS and time to ready for 1, 2, 4 workers, throughput under scrapes (BENCH_ARGS); reports/memory.json
	$(BIN)/python -m bench.memory --json-out reports/memory.json $(BENCH_ARGS)
