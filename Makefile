# approval-bot developer commands. `make run` and `make test` set everything up themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install sandbox run test test-fast lint fmt bench image-test lock clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock requirements-dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

## Try the bot without GitLab or Slack: simulated ones, the real bot, a page at http://127.0.0.1:8000/.
## `make sandbox REDIS_URL=redis://HOST:PORT` uses that Redis (database 15 unless the URL names one).
sandbox: $(STAMP)
	exec $(BIN)/approval-bot sandbox

## Run the bot locally: web on http://127.0.0.1:8080 and a worker, SQLite under var/; a private
## Redis under var/redis/ when REDIS_URL is unset and nothing answers at 127.0.0.1:6379.
## exec: make's SIGTERM goes to the supervisor itself, which stops everything it started.
run: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" exec scripts/run-local

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

## Build the Dockerfile and run the image (podman, no Docker engine; see scripts/image-test).
image-test:
	scripts/image-test

## Re-pin dependencies after changing pyproject.toml. Pins with an environment marker (needed
## only on some Pythons, which `pip freeze` here cannot see) are kept from the old lock.
LOCK_TMP := /tmp/approval-bot-lock
lock:
	rm -rf $(LOCK_TMP) && $(PYTHON) -m venv $(LOCK_TMP)
	$(LOCK_TMP)/bin/pip install --quiet .
	grep -E '^[^#].*;' requirements.lock > $(LOCK_TMP)/marked || true
	{ echo '# Exact versions of the runtime dependencies (pip install -r requirements.lock).'; \
	  echo '# Regenerate: make lock'; \
	  $(LOCK_TMP)/bin/pip freeze --exclude-editable | grep -v '^approval-bot' \
	    | grep -viE "^($$(sed -E 's/[=;<>!~ ].*//' $(LOCK_TMP)/marked | paste -sd'|' -))=="; \
	  if [ -s $(LOCK_TMP)/marked ]; then \
	    echo '# Only on some Pythons (make lock keeps these lines from the previous lock):'; \
	    cat $(LOCK_TMP)/marked; \
	  fi; } > $(LOCK_TMP)/lock
	mv $(LOCK_TMP)/lock requirements.lock
	@echo "requirements.lock written; update requirements-dev.lock from a dev venv likewise"

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
