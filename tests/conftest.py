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


def redis_db_url(number: int) -> str:
    """The URL of database `number` on the test Redis server."""
    return f"{REDIS_SERVER}/{number}"


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
