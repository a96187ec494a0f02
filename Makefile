# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO := .cache/demo.mp4

.PHONY: setup run test lint typecheck unit clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Until the service exists: make a short clip with known defects and check it.
run: setup
	mkdir -p .cache
	$(BIN)/avwatch synth $(DEMO) --duration 12 \
	    --defect black:2-3 --defect freeze:4-7 --defect silence:5-8 \
	    --defect silence:8.5-11.5:channel=1 --defect dropped_frames:9.6-9.8 \
	    --truth .cache/demo.truth.json
	$(BIN)/avwatch check $(DEMO) -o .cache/demo.report.json || test $$? -eq 1

lint: setup
	$(BIN)/ruff check src tests

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest

test: lint typecheck unit

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache
