# Two commands matter: `make run` and `make test`. Both build .venv from scratch when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
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

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/workers.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
