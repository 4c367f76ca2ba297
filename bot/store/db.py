"""Engine and transactions for SQLite (the default) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_S = 30


class DatabaseUnavailable(Exception):
    """The database did not answer."""


class DatabaseEncodingError(Exception):
    """A PostgreSQL database whose encoding is not UTF8: the bot refuses it.

    SQL_ASCII in particular stores any bytes unchecked and makes psycopg return bytes for
    text, which fails deep inside SQLAlchemy and Alembic with a TypeError.
    """


def normalize_url(raw: str) -> URL:
    """Accept plain `postgres://` and `postgresql://` URLs with the driver we ship (psycopg 3)."""
    if raw.startswith("postgres://"):
        raw = "postgresql://" + raw.removeprefix("postgres://")
    url = make_url(raw)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return url


def make_engine(raw_url: str) -> Engine:
    url = normalize_url(raw_url)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}
        )
        _sqlite_serializable(engine)
        return engine
    engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, pool_recycle=1800)
    # First of the connect hooks, before SQLAlchemy's own first query (which a non-UTF8
    # database answers with bytes).
    event.listen(engine, "connect", _require_utf8, insert=True)
    return engine


def _require_utf8(dbapi_connection: Any, _record: Any) -> None:
    """Refuse a PostgreSQL database whose encoding is not UTF8 (no query: libpq knows it)."""
    info = dbapi_connection.info
    encoding = info.parameter_status("server_encoding")
    if encoding is not None and encoding.upper() not in ("UTF8", "UTF-8"):
        raise DatabaseEncodingError(
            f"the database must be UTF8: {info.dbname!r} on {info.host}:{info.port} has "
            f"encoding {encoding} (create it with ENCODING 'UTF8', see docs/production.md)"
        )


def _sqlite_serializable(engine: Engine) -> None:
    """Make every SQLite transaction take the write lock up front (BEGIN IMMEDIATE).

    pysqlite's default deferred transactions let two writers both read the same state and
    then race; taking the lock first gives SQLite the same read-then-write safety that
    SELECT ... FOR UPDATE gives us on PostgreSQL.
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let us issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """One engine and session factory per process, created at startup."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits together or not at all."""
        with self.sessions.begin() as session:
            yield session

    def check_encoding(self) -> None:
        """Raise DatabaseEncodingError if the database answers and is not UTF8.

        An unreachable database passes: it may come up later, and every new connection is
        checked again then.
        """
        try:
            with self.engine.connect():
                pass
        except DatabaseEncodingError:
            raise
        except Exception:  # not reachable (yet): not ours to judge here
            return

    def ping(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:  # any driver error means "not ready"
            return False
        return True

    def dispose(self) -> None:
        self.engine.dispose()
