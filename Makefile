# rl2fpga: `make demo` and `make test` each set everything up first (idempotent).
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test test-fast lint bench clean

setup:
	@bash scripts/setup.sh

# the demo reruns its own run folder (runs/cartpole) from scratch: --force
demo: setup
	$(BIN)/rl2fpga run --force

test: setup
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow and not verilator and not vivado and not board"

lint: setup
	$(BIN)/ruff check .

bench: setup
	$(BIN)/python -m benchmarks

clean:
	rm -rf build sim_build .pytest_cache
