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

.PHONY: run deps test test-postgresql lint format bench bench-online bench-batch bench-batch-rounds bench-postgresql bench-spread bench-counting

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Playwright drives Debian's Chromium (.ci/ensure-chromium); it never downloads a browser.
$(DEPS): $(VENV)/bin/python requirements.txt requirements-dev.txt $(UPLOADER)
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet -e ./uploader
	touch $@

# What the checks and the suite need, without running them (.ci/run installs it first).
deps: $(DEPS)

$(RUN_DEPS): $(VENV)/bin/python requirements.txt $(UPLOADER)
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet -e ./uploader
	touch $@

# Migrate, collect static files, seed the demo client, then serve (bin/run starts the
# processes and stops them all on Ctrl-C).
run: $(RUN_DEPS)
	bin/run

# Style, types, the import-linter contracts of pyproject.toml (the app's layers, no circles),
# and the subjects of new commits (docs/development.md#commit-messages).
lint: $(DEPS)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache
	.ci/check-commit-subjects

format: $(DEPS)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

.PHONY: chromium screenshots

chromium:
	.ci/ensure-chromium

# The suite under coverage, spread over the machine's cores by pytest-xdist (each test file
# in one worker; PYTEST_WORKERS=0 runs it in one process). pytest-cov follows the workers,
# prints the lines left uncovered and fails under the floor (fail_under in pyproject.toml).
PYTEST_WORKERS ?= auto
SUITE := $(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadfile --cov --cov-report=term-missing:skip-covered

test: lint chromium
	$(SUITE)

# The property-based tests with many examples each (``make test`` runs a few of each).
.PHONY: fuzz
fuzz: $(DEPS)
	HYPOTHESIS_PROFILE=fuzz $(VENV)/bin/pytest tests/test_fuzz_parsers.py tests/test_fuzz_envelopes.py tests/test_api_schema.py

# docs/bad-input.md, from the cases tests/test_bad_input_catalogue.py sends.
.PHONY: bad-input-catalogue
bad-input-catalogue: $(DEPS)
	$(PY) -m tests.bad_input_catalogue > docs/bad-input.md

# The suite again on PostgreSQL: a throwaway local server unless DATABASE_URL names one.
# Its coverage data is a file of its own, so it may run beside ``make test`` (.ci/run does).
# Its floor is lower than SQLite's (pyproject.toml): it cannot reach the SQLite-only code (the
# SQLite backend and its writer queue, the SQLite merge engine, group commit: about 180
# statements), which the SQLite run covers.
POSTGRESQL_COVERAGE_FLOOR := 90
test-postgresql: $(DEPS) chromium
	COVERAGE_FILE=.coverage-postgresql .ci/with-postgresql $(SUITE) --cov-fail-under=$(POSTGRESQL_COVERAGE_FLOOR)

# Benchmarks (docs/performance.md); each part prints its own table.
bench: bench-online bench-batch bench-postgresql

# The online profile APIs under gunicorn and wrk, on SQLite then on a throwaway PostgreSQL
# (unless DATABASE_URL names one); BENCH_ONLINE_ARGS=--help lists the knobs.
bench-online: $(DEPS)
	$(PY) -m bench.online $(BENCH_ONLINE_ARGS)
	.ci/with-postgresql $(PY) -m bench.online --database postgresql $(BENCH_ONLINE_ARGS)

# The CPU a request counted for /metrics costs: held in memory, against written straight.
bench-counting: $(DEPS)
	$(PY) -m bench.counting

# Keep-alive connections spread over gunicorn's processes: ten wrk runs of the bare view.
bench-spread: $(DEPS)
	$(PY) -m bench.spread

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
