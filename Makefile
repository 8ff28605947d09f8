# One task runner for developers and CI. Every target creates .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check lint typecheck proto bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest

# A longer check than the one in `make test`: a minute of faults, report in build/check.
check: $(STAMP)
	$(BIN)/python -m dbank check --processes --duration 60 --report build/check

proto: $(STAMP)
	$(BIN)/python scripts/gen_proto.py src/dbank/_proto

bench: $(STAMP)
	$(BIN)/python benchmarks/deposits.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
