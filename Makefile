# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup system-deps run test lint typecheck unit fuzz clean

setup: $(STAMP) system-deps

# The service tests start a real PostgreSQL server and drive a real chromium:
# Debian's packages, installed when missing (as root, with apt-get).
system-deps:
	@missing=""; \
	command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing="postgresql"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	        echo "installing $$missing (Debian packages)"; \
	        export DEBIAN_FRONTEND=noninteractive; \
	        apt-get install -y -qq $$missing >/dev/null 2>&1 || \
	            { apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; }; \
	    else \
	        echo "the tests need:$$missing (Debian: apt-get install$$missing)"; \
	    fi; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The service on four synthetic live UDP channels with scheduled defects
# (SQLite store in .cache/demo); the API at http://127.0.0.1:8470/docs.
run: $(STAMP)
	$(BIN)/avwatch demo --dir .cache/demo --port 8470

lint: setup
	$(BIN)/ruff check src tests

typecheck: setup
	$(BIN)/mypy

# Two test processes: live tests mostly wait on real time, so two share 2 cores well.
# Tests that share a machine-wide resource (Ray) are one group, run by one process.
# Groups start in the order tests/conftest.py gives them (the longest first), not
# xdist's order by number of tests.
TEST_JOBS ?= 2
unit: setup
	$(BIN)/pytest -n $(TEST_JOBS) --dist loadgroup --no-loadscope-reorder

test: lint typecheck unit

# `check` on thousands of damaged files (Hypothesis: cut short, bytes changed): any
# internal error, crash or hang fails. 10,000 take about a minute and a half here.
FUZZ_EXAMPLES ?= 10000
fuzz: setup
	AVWATCH_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -q -p no:cacheprovider \
	    tests/properties/test_untrusted_input.py -k check_on_a_damaged_file

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache
