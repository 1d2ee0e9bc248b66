# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: run test test-fast test-postgres bench bench-large lint clean

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

## Create the venv if needed, install the test dependencies, lint, check the types and the layers and run
## every test.
test: $(TEST_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest

## The inner loop (under 2 minutes on 2 cores): lint, and every test but the slow ones, the browser
## tests and the PostgreSQL ones (`make test` runs them all).
test-fast: $(TEST_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/pytest -m "not slow and not browser and not postgres"

## The suite again with every test's catalog on PostgreSQL (a throwaway cluster the tests start with
## Debian's postgresql package; tests that cannot depend on the catalog are left to `make test`).
test-postgres: $(TEST_STAMP)
	$(BIN)/pytest --catalog postgres

## Benchmarks (never part of `make test`): ingest against face_recognition, search at 100k faces, crawl,
## the HTTP API under load and under attack from anonymous clients, and the index at 1M and 10M faces
## against numpy, raw FAISS and a Python list (galleries cached under var/bench; the report and its plot
## go to docs/benchmarks/).
DEV_FACES := ../shared/data/faces/dev

bench: $(BENCH_STAMP)
	$(BIN)/python bench/ingest_benchmark.py
	$(BIN)/python bench/search_benchmark.py
	$(BIN)/python bench/cli_startup.py --report bench/results/cli_startup.json
	$(BIN)/python bench/crawl_benchmark.py
	$(BIN)/python bench/load_benchmark.py
	$(BIN)/python bench/hostile_load.py
	$(BIN)/python bench/soak.py --minutes 10
	$(BIN)/facetrace bench search --folder $(DEV_FACES) --size 1000000 --size 10000000 \
		--report docs/benchmarks/search_scale.json

## Opt-in: the same at 100M faces (25.6 GB of float16 templates and a 17.6 GB index under
## var/bench; about 2 hours on 2 cores, 40 minutes of them the exact truth for the 995 queries), after
## measuring what assigning every face to an IVF list costs.
bench-large: $(BENCH_STAMP)
	$(BIN)/python bench/coarse_assignment.py
	$(BIN)/facetrace bench search --folder $(DEV_FACES) --size 100000000 \
		--report docs/benchmarks/search_scale_100m.json

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
