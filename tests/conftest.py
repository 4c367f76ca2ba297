"""Shared fixtures: real SQLite and PostgreSQL databases, real Redis."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from bot.store.db import Database
from bot.store.migrate import upgrade

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
# One Redis server for the whole suite, each test module on its own database number.
# TEST_REDIS_SERVER points the suite at another server (two checkouts testing at once).
REDIS_SERVER = os.environ.get("TEST_REDIS_SERVER", "redis://127.0.0.1:6379").rstrip("/")


# The database numbers the suite uses (each a fixture's or module's own). Under pytest-xdist
# every worker process (gw0, gw1, ...) gets a block of its own, so no two workers share a
# database: gw0 0-7, gw1 8-15, and so on (a Redis server has 16 unless started with
# --databases N; `pytest_xdist_auto_num_workers` below never starts more workers than fit).
SUITE_DBS = range(7, 15)
DEFAULT_REDIS_DATABASES = 16


def xdist_worker_index() -> int | None:
    """This process's pytest-xdist worker number (gw3 -> 3), None when not under xdist."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(name.removeprefix("gw")) if name.startswith("gw") else None


def redis_db_number(number: int, worker: int | None) -> int:
    """The database `worker` uses for the suite's database `number`."""
    if number not in SUITE_DBS:
        raise ValueError(f"Redis database {number} is not one of the suite's {SUITE_DBS}")
    if worker is None:
        return number
    return worker * len(SUITE_DBS) + SUITE_DBS.index(number)


def redis_db_url(number: int) -> str:
    """The URL of the suite's database `number` on the test Redis server (this xdist
    worker's own copy of it)."""
    return f"{REDIS_SERVER}/{redis_db_number(number, xdist_worker_index())}"


def redis_database_count() -> int:
    """How many databases the test Redis server has (16 when it does not say)."""
    try:
        client = redis.Redis.from_url(f"{REDIS_SERVER}/0", socket_connect_timeout=2)
        with client:
            answer = client.config_get("databases")
        return int(answer.get("databases", DEFAULT_REDIS_DATABASES))
    except (redis.RedisError, ValueError):
        return DEFAULT_REDIS_DATABASES


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: one worker per CPU, but no more than the Redis server has database blocks."""
    blocks = redis_database_count() // len(SUITE_DBS)
    return max(1, min(os.cpu_count() or 1, blocks))


def pytest_configure(config: pytest.Config) -> None:
    worker = xdist_worker_index()
    if worker is None:
        return
    needed = redis_db_number(SUITE_DBS[-1], worker) + 1
    if needed > redis_database_count():
        raise pytest.UsageError(
            f"xdist worker gw{worker} needs Redis databases up to {needed - 1} on "
            f"{REDIS_SERVER}: start it with --databases {needed} or run fewer workers (-n)"
        )


REDIS_TEST_URL = os.environ.get("TEST_REDIS_URL", redis_db_url(13))


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards."""
    name = f"approval_bot_test_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required for these tests ({PG_ADMIN_URL}): {exc}")
    admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def fresh_pg_database(server_url: str) -> str:
    """Another empty database next to the session one (for tests that need a clean schema)."""
    name = f"approval_bot_test_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty, migrated database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/approvals.db"
        return
    server = request.getfixturevalue("pg_server_url")
    url = fresh_pg_database(server)
    try:
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    upgrade(database)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def redis_url() -> Iterator[str]:
    client = redis.Redis.from_url(REDIS_TEST_URL)
    try:
        client.flushdb()
    except redis.ConnectionError as exc:
        pytest.fail(f"Redis is required for these tests ({REDIS_TEST_URL}): {exc}")
    yield REDIS_TEST_URL
    client.flushdb()
    client.close()
