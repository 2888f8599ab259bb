# The two commands of the README:
#   make demo   set everything up, start the local stack and play the demo scenario
#   make test   set everything up and run the quality gates and the whole test suite
# Other targets: setup, lint, typecheck, unit, host (run the local Functions host), chaos (the full
# chaos suite over three seeds, writes CHAOS.md), bench (write BENCHMARKS.md), clean.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
SOURCES := sync function_app.py local chaos benchmarks tests

.PHONY: demo test setup lint typecheck unit host chaos bench clean

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

demo: setup
	$(PY) -m local.demo

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy --strict $(SOURCES)

unit: setup
	$(VENV)/bin/pytest -m "not integration"

test: lint typecheck
	$(VENV)/bin/pytest

host: setup
	$(PY) -m local.host --port 7071

chaos: setup
	$(PY) -m chaos --seeds 1 2 3 --report CHAOS.md

bench: setup
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache .pytest_cache .hypothesis
