# targetadmin — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.12 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
DEPS := $(VENV)/.deps-installed
RUN_DEPS := $(VENV)/.run-deps-installed
# targetadmin-upload, the command-line uploader (uploader/, docs/uploader.md): installed
# editable into the same virtualenv by both commands.
UPLOADER := uploader/pyproject.toml

.PHONY: run test test-postgresql lint format bench bench-online bench-batch bench-batch-rounds bench-postgresql

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Playwright drives Debian's Chromium (.ci/ensure-chromium); it never downloads a browser.
$(DEPS): $(VENV)/bin/python requirements.txt requirements-dev.txt $(UPLOADER)
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet -e ./uploader
	touch $@

$(RUN_DEPS): $(VENV)/bin/python requirements.txt $(UPLOADER)
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet -e ./uploader
	touch $@

# Migrate, collect static files, seed the demo client, then serve (bin/run starts the
# processes and stops them all on Ctrl-C).
run: $(RUN_DEPS)
	bin/run

# Style, types, and the import-linter contracts of pyproject.toml (the app's layers, no circles).
lint: $(DEPS)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

format: $(DEPS)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

.PHONY: chromium screenshots

chromium:
	.ci/ensure-chromium

test: lint chromium
	$(VENV)/bin/coverage run -m pytest
	$(VENV)/bin/coverage report

# The property-based tests with many examples each (``make test`` runs a few of each).
.PHONY: fuzz
fuzz: $(DEPS)
	HYPOTHESIS_PROFILE=fuzz $(VENV)/bin/pytest tests/test_fuzz_parsers.py tests/test_fuzz_envelopes.py tests/test_api_schema.py

# docs/bad-input.md, from the cases tests/test_bad_input_catalogue.py sends.
.PHONY: bad-input-catalogue
bad-input-catalogue: $(DEPS)
	$(PY) -m tests.bad_input_catalogue > docs/bad-input.md

# The suite again on PostgreSQL: a throwaway local server unless DATABASE_URL names one.
test-postgresql: $(DEPS) chromium
	.ci/with-postgresql $(VENV)/bin/coverage run -m pytest
	$(VENV)/bin/coverage report

# Benchmarks (docs/performance.md); each part prints its own table.
bench: bench-online bench-batch bench-postgresql

# The online profile APIs under gunicorn and wrk, on SQLite then on a throwaway PostgreSQL
# (unless DATABASE_URL names one); BENCH_ONLINE_ARGS=--help lists the knobs.
bench-online: $(DEPS)
	$(PY) -m bench.online $(BENCH_ONLINE_ARGS)
	.ci/with-postgresql $(PY) -m bench.online --database postgresql $(BENCH_ONLINE_ARGS)

# The screenshots of docs/screen.md, taken by the browser journeys (tests/browser) at 1280 px wide.
screenshots: $(DEPS) chromium
	SCREENSHOT_DIR=docs/screenshots $(VENV)/bin/pytest -m browser

# The batch file path end to end against plain sqlite3.
bench-batch: $(DEPS)
	$(PY) -m bench.batch

# The batch worker (writer and parser) against the engine alone, in interleaved rounds:
# BENCH_BATCH_ROUNDS=3, BENCH_BATCH_SIZES=500000,50000.
bench-batch-rounds: $(DEPS)
	$(PY) -m bench.batch_rounds

# The batch file path on PostgreSQL against plain psycopg (COPY + one merge), on a throwaway
# local server unless DATABASE_URL names one; BENCH_POSTGRESQL_ROWS=50000 for a quick run.
bench-postgresql: $(DEPS)
	.ci/with-postgresql $(PY) -m bench.batch_postgresql $(BENCH_POSTGRESQL_ROWS)
