# vigiamar: `make run` replays the bundled sample; `make test` runs lint, types and tests.
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
	$(BIN)/vigiamar replay data/samples/virginia_beach_2020-06-04_to_06.csv.gz

lint: $(STAMP)
	$(BIN)/ruff check models detectors streams tests benchmarks tools

typecheck: $(STAMP)
	$(BIN)/mypy models detectors
	$(BIN)/mypy streams

pytest: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
