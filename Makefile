# Two commands on a fresh machine: `make test` and `make demo` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint demo clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check models data inspector ui tests benchmarks
	$(BIN)/lint-imports

test: lint
	QT_QPA_PLATFORM=offscreen $(BIN)/pytest -q

demo: $(STAMP)
	@echo "The demo station arrives with the inspection-engine issue; nothing to run yet."
	@echo "Try: $(BIN)/inspector --help"

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
