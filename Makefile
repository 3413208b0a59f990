# vigiamar: `make run` replays the bundled sample; `make test` runs lint, types and tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck pytest browser bench compiled clean

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

# The map test renders the backtest map in headless Chromium. Nothing to do when one is on PATH;
# as root with apt-get, install Debian's chromium; else say so in one line and go on (the test skips).
BROWSERS    := chromium chromium-browser google-chrome
BROWSER_LOG := $(or $(TMPDIR),/tmp)/vigiamar-browser-install.log
APT_OPTS    := -qq -o Acquire::Retries=1 -o Acquire::http::Timeout=30

browser:
	@for b in $(BROWSERS); do command -v $$b >/dev/null 2>&1 && exit 0; done; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
		echo "browser: none of $(BROWSERS) on PATH, and no root apt-get to install chromium: the headless map test will skip"; \
	elif { apt-get update $(APT_OPTS) && DEBIAN_FRONTEND=noninteractive apt-get install -y $(APT_OPTS) \
			--no-install-recommends chromium; } >$(BROWSER_LOG) 2>&1; then \
		echo "browser: installed chromium with apt-get"; \
	else \
		echo "browser: apt-get could not install chromium (see $(BROWSER_LOG)): the headless map test will skip"; \
	fi

test: lint typecheck browser pytest

bench: $(STAMP)
	-@$(MAKE) --no-print-directory compiled
	$(BIN)/python -m benchmarks

# mypyc build of models/ and detectors/ into build/compiled/ (tools/compile.py, about 2 minutes);
# every command loads it while it matches the sources (models/compiled.py), VIGIAMAR_COMPILED=0 not.
# Rebuilt only when a source changed since; `make clean` removes it.
compiled: $(STAMP)
	@if VIGIAMAR_COMPILED=0 $(BIN)/python -c "import sys; from models.compiled import BUILD, stale_reason; \
			sys.exit(0 if BUILD.is_dir() and stale_reason() is None else 1)"; then \
		echo "compiled: build/compiled/ matches the sources"; \
	else $(BIN)/python tools/compile.py; fi

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
