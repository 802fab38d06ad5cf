# Two commands matter: `make run` and `make test`. Both build .venv from scratch when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck pytest test-debug test-py bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -qq -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python examples/echo_server.py

lint: $(STAMP)
	$(BIN)/ruff check ecdhe_async tests examples benchmarks
	$(BIN)/ruff format --check ecdhe_async tests examples benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy ecdhe_async tests examples benchmarks

pytest: $(STAMP)
	$(BIN)/python -m pytest

test: lint typecheck pytest

# The whole suite once more in asyncio debug mode (both loops); asyncio's complaints (slow
# callbacks, exceptions never retrieved) fail the test that caused them (tests/asyncio_debug.py).
test-debug: $(STAMP)
	PYTHONASYNCIODEBUG=1 $(BIN)/python -m pytest -q --asyncio-debug -p tests.asyncio_debug

# The whole suite on every other CPython that pyenv provides (.venv-3.12, .venv-3.13, ...).
test-py:
	.ci/test-pythons pytest

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/workers.py

clean:
	rm -rf $(VENV) .venv-3.* .mypy_cache .pytest_cache .ruff_cache
