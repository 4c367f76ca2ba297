"""A PostgreSQL database that is not UTF8 (SQL_ASCII) is refused with one line, not a crash."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bot.store.db import Database, DatabaseEncodingError
from tests.conftest import PG_ADMIN_URL
from tests.integration.harness import FIXTURES, executable

pytestmark = pytest.mark.integration

REQUIRED = {
    "GITLAB_URL": "http://127.0.0.1:9",
    "GITLAB_TOKEN": "glpat-x",
    "GITLAB_WEBHOOK_SECRET": "hook-secret",
    "SLACK_BOT_TOKEN": "xoxb-x",
    "SLACK_SIGNING_SECRET": "signing-secret",
    "APPROVAL_POLICY": str(FIXTURES / "approvers.yml"),
    # Never reached: the database check comes first.
    "REDIS_URL": "redis://127.0.0.1:1/0",
}


@pytest.fixture(scope="module")
def sql_ascii_url() -> Iterator[str]:
    """A database created as an initdb without --encoding=UTF8 would make it."""
    name = f"approval_bot_test_ascii_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required for these tests ({PG_ADMIN_URL}): {exc}")
    admin.execute(
        f"CREATE DATABASE \"{name}\" ENCODING 'SQL_ASCII' TEMPLATE template0 "
        "LC_COLLATE 'C' LC_CTYPE 'C'"
    )
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_check_encoding_refuses_sql_ascii(sql_ascii_url: str) -> None:
    db = Database(sql_ascii_url)
    try:
        with pytest.raises(DatabaseEncodingError, match=r"must be UTF8.*SQL_ASCII"):
            db.check_encoding()
        # Every new connection is checked, not only the first: the database is never ready.
        assert db.ping() is False
        with pytest.raises(DatabaseEncodingError), db.engine.connect():
            pass
    finally:
        db.dispose()


def test_check_encoding_accepts_utf8_and_unreachable(pg_server_url: str) -> None:
    for url in (pg_server_url, "postgresql://x@127.0.0.1:1/x", "sqlite:///:memory:"):
        db = Database(url)
        try:
            db.check_encoding()
        finally:
            db.dispose()


@pytest.mark.parametrize(
    "command", [["db", "upgrade"], ["web", "--port", "0"], ["worker", "--burst"]]
)
def test_commands_exit_2_with_one_line(
    sql_ascii_url: str, tmp_path: Path, command: list[str]
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if k not in REQUIRED},
        **REQUIRED,
        "DATABASE_URL": sql_ascii_url,
    }
    result = subprocess.run(
        [executable(), *command],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("approval-bot: the database must be UTF8: ")
    assert "SQL_ASCII" in lines[0]
