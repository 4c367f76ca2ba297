"""Shared by the `approval-bot` subcommands: the one-line error, and the database checks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.store.db import Database

NO_LEDGER_YET = "no ledger in {where} yet: run `approval-bot db upgrade` first"
LEDGER_TABLE = "ledger_entries"


class CliError(Exception):
    """A one-line error for the operator; exits 2 without a traceback."""


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:300]


def ledger_database(url: str) -> Database:
    """The database, once it is known to hold the ledger: else exit 2 and create nothing."""
    from bot.store.db import Database

    missing = _missing_sqlite_file(url)
    if missing is not None:  # SQLite would create an empty file (and var/) on connecting
        raise CliError(NO_LEDGER_YET.format(where=missing))
    try:
        db = Database(url)
    except Exception as exc:
        raise CliError(f"cannot open the database: {first_line(exc)}") from None
    try:
        if not _has_table(db, LEDGER_TABLE):
            raise CliError(NO_LEDGER_YET.format(where=_redacted_database(url)))
    except CliError:
        db.dispose()
        raise
    return db


def _missing_sqlite_file(url: str) -> str | None:
    """The path of a file-backed SQLite database that does not exist yet, else None."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return None  # Database() says what is wrong with it
    path = parsed.database
    if parsed.get_backend_name() != "sqlite" or path in (None, "", ":memory:"):
        return None
    return None if Path(path).expanduser().exists() else path


def _has_table(db: Database, name: str) -> bool:
    from sqlalchemy import inspect

    from bot.store.db import DatabaseEncodingError

    try:
        with db.engine.connect() as connection:
            return inspect(connection).has_table(name)
    except DatabaseEncodingError as exc:
        raise CliError(str(exc)) from None
    except Exception as exc:  # an unreachable server: one clear line
        raise CliError(
            f"cannot open the database: {type(exc).__name__}: {first_line(exc)}"
        ) from None


def _redacted_database(url: str) -> str:
    """A SQLite database's path, else the URL without its password."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        return parsed.database
    return parsed.render_as_string(hide_password=True)
