# Two commands on a fresh machine: `make test` and `make demo` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint demo screenshots clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check models data inspector ui tests benchmarks
	$(BIN)/lint-imports

test: lint
	QT_QPA_PLATFORM=offscreen $(BIN)/pytest -q

# The simulated ELPV station with the bundled model: the desktop app where there is a display,
# otherwise the headless run with a live terminal status. DEMO_ARGS="--frames 0" runs until Ctrl-C.
DEMO_ARGS ?= --frames 300
demo: $(STAMP)
	$(BIN)/inspector demo $(DEMO_ARGS)

# Every screen, rendered offscreen after a short real demo run, at 1920x1080 and 1366x768.
screenshots: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m ui.screenshots --out docs/screenshots

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
