# vigiamar: `make run` replays the bundled sample; `make test` runs lint, types and tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck pytest browser bench clean

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
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
