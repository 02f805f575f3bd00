# ecs-dns-canary: two commands on a fresh machine.
#   make demo   a real canary deployment with automatic rollback on a local AWS
#   make test   every check CI runs
# Rust, Python 3 and Node come with the machine; everything else is installed
# here, pinned, into project-owned folders (.venv, statemachine/.venv, ...).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
VENV := .venv
PY := $(VENV)/bin/python
export CARGO_TERM_COLOR ?= never

.PHONY: help setup build demo test test-rust lint test-statemachine test-infra test-local test-e2e test-reliability bench clean-local

help:
	@echo "make demo   - canary deployment + automatic rollback on a local AWS (no account)"
	@echo "make test   - fmt, clippy, unit/mock tests, state machine, infra, local AWS and end-to-end tests"
	@echo "make bench  - benchmarks (init time, size, overhead, rollback reaction, cost)"

setup:
	local/setup.sh

# One debug build of the whole workspace: the functions that cargo-lambda
# serves, the CLI, and what the tests link.
build:
	cargo build --workspace --bins

demo: setup build
	$(PY) demo/demo.py

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

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

test: lint test-rust test-statemachine test-infra test-local test-e2e

# Release build of the five functions (~6 min cold), then about 2 minutes of runs.
bench: setup build
	bench/setup.sh
	$(PY) bench/bench.py

clean-local:
	-$(PY) -m localaws down
	rm -rf .local
