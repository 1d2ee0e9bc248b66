# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: run test bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e .
	touch $@

$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install -e '.[test]'
	touch $@

$(BENCH_STAMP): $(TEST_STAMP)
	$(BIN)/pip install -e '.[bench]'
	$(BIN)/pip install --no-deps 'face_recognition==1.3.0'
	touch $@

## Set up (venv, install) and start Facetrace on embedded defaults (SQLite + FAISS under ./var):
## the web app and API on http://127.0.0.1:8000; the first start creates the admin account.
run: $(STAMP)
	$(BIN)/facetrace serve --host 127.0.0.1 --port 8000

## Create the venv if needed, install the test dependencies, lint and run every test.
test: $(TEST_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/pytest

## Benchmarks (never part of `make test`): ingest against face_recognition, search at 100k faces, crawl,
## and the HTTP API under load.
bench: $(BENCH_STAMP)
	$(BIN)/python bench/ingest_benchmark.py
	$(BIN)/python bench/search_benchmark.py
	$(BIN)/python bench/crawl_benchmark.py
	$(BIN)/python bench/load_benchmark.py

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
