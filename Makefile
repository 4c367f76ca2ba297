# approval-bot developer commands. `make run` and `make test` set everything up themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install sandbox run test test-fast lint fmt bench lock clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock requirements-dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

## Try the bot without GitLab or Slack: simulated ones, the real bot, a page at http://127.0.0.1:8000/.
sandbox: $(STAMP)
	$(BIN)/approval-bot sandbox

## Run the bot locally: web on http://127.0.0.1:8080 and a worker, SQLite under var/.
run: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/run-local

## The whole test suite (needs Redis and PostgreSQL on 127.0.0.1, see README).
test: $(STAMP)
	$(BIN)/python -m pytest

## Unit tests only (no Redis, PostgreSQL or processes needed for most of them).
test-fast: $(STAMP)
	$(BIN)/python -m pytest tests/unit -m "not integration"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python -m bench

## Re-pin dependencies after changing pyproject.toml.
lock:
	rm -rf /tmp/approval-bot-lock && $(PYTHON) -m venv /tmp/approval-bot-lock
	/tmp/approval-bot-lock/bin/pip install --quiet . && \
	  /tmp/approval-bot-lock/bin/pip freeze --exclude-editable | grep -v '^approval-bot' \
	  | sed '1i # Exact versions of the runtime dependencies (pip install -r requirements.lock).\n# Regenerate: make lock' > requirements.lock
	@echo "requirements.lock written; update requirements-dev.lock from a dev venv likewise"

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
