# ecs-dns-canary: two commands on a fresh machine.
#   make demo   a real canary deployment with automatic rollback on a local AWS
#   make test   every check but the slow reliability cases; CI (.ci/run)
#               runs it and then test-reliability-slow
# Rust, Python 3 and Node come with the machine; everything else is installed
# here, pinned, into project-owned folders (.venv, statemachine/.venv, ...).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
VENV := .venv
PY := $(VENV)/bin/python
# Each test suite is type-checked in a run of its own (they all have a
# conftest.py); the rest is `[tool.mypy] files` in pyproject.toml.
MYPY_SUITES := local/tests tests/e2e tests/reliability tests/statemachine
export CARGO_TERM_COLOR ?= never

.PHONY: help setup build demo test test-rust lint test-statemachine test-infra test-local test-e2e test-reliability test-reliability-fast test-reliability-slow test-bench-smoke bench clean-local

help:
	@echo "make demo   - canary deployment + automatic rollback on a local AWS (no account)"
	@echo "make test   - fmt, clippy, ruff, unit/mock tests, state machine, infra, local AWS and end-to-end tests"
	@echo "make bench  - benchmarks (init time, size, overhead, rollback reaction, cost, what clients see, the fleet: ~40 min)"

setup:
	local/setup.sh

# One debug build of the whole workspace: the functions that cargo-lambda
# serves, the CLI, and what the tests link.
build:
	cargo build --workspace --bins

demo: setup build
	$(PY) demo/demo.py

# Rust: rustfmt and clippy. Python: ruff (pinned in local/requirements.txt,
# rules in pyproject.toml).
lint: setup
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	for suite in $(MYPY_SUITES); do $(VENV)/bin/mypy $$suite || exit 1; done

test-rust:
	cargo test --workspace

test-statemachine:
	statemachine/test.sh

test-infra:
	infra/check.sh

test-local: setup
	$(PY) -m pytest -q local/tests

test-e2e: setup build
	$(PY) -m pytest -q tests/e2e

# Faults at every AWS call, bad input, retries, concurrency (tests/reliability/README.md).
# The fast subset runs in `make test`; the slow cases (full fault matrix,
# Route 53 down past every retry) in test-reliability-slow; CI runs both.
test-reliability-fast: setup build
	$(PY) -m pytest -q -m "not slow" tests/reliability

test-reliability-slow: setup build
	$(PY) -m pytest -q -m slow tests/reliability

test-reliability: setup build
	$(PY) -m pytest -q tests/reliability

test-bench-smoke: setup build
	bench/setup.sh
	$(PY) -m pytest -q bench/test_bench_smoke.py

test: lint test-rust test-statemachine test-infra test-local test-e2e test-reliability-fast test-bench-smoke

# Release build of the five functions (~6 min cold), then about 2 minutes of runs.
bench: setup build
	bench/setup.sh
	$(PY) bench/bench.py

clean-local:
	-$(PY) -m localaws down
	rm -rf .local
