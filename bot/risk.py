"""Migration risk detector: flag dangerous schema changes before a deployment gate is approved.

:func:`scan_text` looks at one file by its type: plain SQL (``.sql``, ``.ddl``; see
:mod:`bot.risk_sql`), Laravel migrations (``.php``: ``Schema::table`` / ``create`` / ``drop…``,
Blueprint column calls, ``DB::statement`` SQL, ``DB::table(…)->delete()``), Django migrations
and Alembic revisions (``.py``, told apart by their imports and read with :mod:`ast`). Each
:class:`RiskFlag` names the file, the line and a rule id from :data:`RULES`.

Only what runs on the way forward is flagged: Laravel ``down()``, Alembic ``downgrade()``,
Django ``reverse_sql`` / ``reverse_code`` and ``state_operations``, and SQL "down" sections
and rollback files are skipped (every ``CREATE TABLE`` has a ``DROP TABLE`` there).

``approval-bot scan-migrations`` is :func:`scan_command`.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import TextIO

from bot.risk_laravel import scan_laravel
from bot.risk_python import scan_python
from bot.risk_sql import (
    ALTER_TYPE,
    DELETE_ALL,
    DROP_COLUMN,
    DROP_TABLE,
    FINANCIAL,
    NOT_NULL,
    RULES,
    TRUNCATE,
    Finding,
    TableMatcher,
    forward_sql,
    is_rollback_file,
    scan_sql,
)

__all__ = [
    "ALTER_TYPE",
    "DEFAULT_CONFIG",
    "DEFAULT_FINANCIAL_TABLES",
    "DEFAULT_MIGRATION_PATHS",
    "DELETE_ALL",
    "DROP_COLUMN",
    "DROP_TABLE",
    "FINANCIAL",
    "NOT_NULL",
    "RULES",
    "TRUNCATE",
    "RiskFlag",
    "ScanConfig",
    "is_migration",
    "scan_command",
    "scan_paths",
    "scan_text",
]

DEFAULT_MIGRATION_PATHS = (
    "migrations/",
    "db/migrate/",
    "database/migrations/",
    "alembic/versions/",
)
DEFAULT_FINANCIAL_TABLES = ("transactions", "balances", "commissions", "withdrawals", "deposits")
SQL_SUFFIXES = frozenset({".sql", ".ddl"})
_SKIP_DIRS = frozenset({"__pycache__", "node_modules"})


@dataclass(frozen=True)
class RiskFlag:
    """One risky statement (or one risky aspect of it) in a migration file."""

    path: str
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: [{self.rule}] {self.message}"


@dataclass(frozen=True)
class ScanConfig:
    """Where migrations live (path fragments or globs) and which tables hold money."""

    migration_paths: tuple[str, ...] = DEFAULT_MIGRATION_PATHS
    financial_tables: tuple[str, ...] = DEFAULT_FINANCIAL_TABLES


DEFAULT_CONFIG = ScanConfig()


def is_migration(path: str | Path, config: ScanConfig = DEFAULT_CONFIG) -> bool:
    """Whether ``path`` lies under one of ``config.migration_paths``.

    A plain entry (``migrations/``) matches as whole directory names anywhere in the path
    (``app/payments/migrations/0002.py``, not ``my_migrations/x.sql``); an entry with ``*``,
    ``?`` or ``[`` is a glob matched against the whole (relative) path or any tail of it.
    """
    parts = [p for p in str(path).replace("\\", "/").split("/") if p not in ("", ".")]
    rel = "/".join(parts)
    for entry in config.migration_paths:
        pattern = entry.replace("\\", "/").strip("/")
        if not pattern:
            continue
        if any(c in pattern for c in "*?["):
            if fnmatchcase(rel, pattern) or fnmatchcase(rel, f"*/{pattern}"):
                return True
        elif f"/{pattern}/" in f"/{rel}":
            return True
    return False


def _kind(path: str) -> str | None:
    suffix = PurePosixPath(path.replace("\\", "/")).suffix.lower()
    if suffix in SQL_SUFFIXES:
        return "sql"
    return {".php": "php", ".py": "py"}.get(suffix)


def scan_text(path: str, text: str, config: ScanConfig = DEFAULT_CONFIG) -> list[RiskFlag]:
    """The risky statements of one file's ``text``, by its type; never raises.

    ``.sql`` / ``.ddl`` as SQL, ``.php`` as a Laravel migration, ``.py`` as a Django
    migration (if it imports ``django.db`` migrations) and/or an Alembic revision (if it
    imports from ``alembic``); anything else yields nothing.
    """
    matcher = TableMatcher(config.financial_tables)
    text = text.removeprefix("\ufeff")
    kind = _kind(path)
    findings: list[Finding] = []
    if kind == "sql" and not is_rollback_file(path):
        findings = scan_sql(forward_sql(text), matcher, path=path)
    elif kind == "php":
        findings = scan_laravel(text, matcher)
    elif kind == "py":
        findings = scan_python(path, text, matcher)
    return [RiskFlag(path, f.line, f.rule, f.message) for f in sorted(set(findings))]


def scan_paths(paths: Iterable[str | Path], config: ScanConfig = DEFAULT_CONFIG) -> list[RiskFlag]:
    """Scan files, and directories recursively (skipping hidden ones).

    Every file named, or found under a directory named, is scanned by its type whether or
    not it is under a migration path (filter with :func:`is_migration` first if needed).
    Raises :class:`FileNotFoundError` for a path that does not exist, :class:`OSError` for
    one that cannot be read.
    """
    flags: list[RiskFlag] = []
    for file in _files(paths):
        if _kind(file.as_posix()) is not None:
            text = file.read_bytes().decode("utf-8-sig", errors="replace")
            flags.extend(scan_text(file.as_posix(), text, config))
    return flags


def _files(paths: Iterable[str | Path]) -> Iterator[Path]:
    seen: set[Path] = set()
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = (
                p
                for p in path.rglob("*")
                if p.is_file()
                and not any(
                    part.startswith(".") or part in _SKIP_DIRS for part in p.relative_to(path).parts
                )
            )
            files = sorted(found)
        elif path.is_file():
            files = [path]
        elif path.exists():  # a socket, a FIFO: nothing to read
            files = []
        else:
            raise FileNotFoundError(errno.ENOENT, "no such file or directory", str(given))
        for file in files:
            if file not in seen:
                seen.add(file)
                yield file


def scan_command(paths: Sequence[str], out: TextIO, tables: Sequence[str] | None = None) -> int:
    """``approval-bot scan-migrations PATH…``: one line per flag, then a summary.

    Exit status 1 if anything was flagged, 0 if not, 2 (with a one-line error) if a path
    does not exist or cannot be read. ``tables`` replaces the default financial tables.
    """
    config = DEFAULT_CONFIG if tables is None else ScanConfig(financial_tables=tuple(tables))
    for given in paths:
        if not Path(given).exists():
            print(f"error: no such file or directory: {given}", file=out)
            return 2
    try:
        flags = scan_paths(paths, config)
    except OSError as exc:
        print(f"error: cannot read {exc.filename or ''}: {exc.strerror or exc}", file=out)
        return 2
    for flag in flags:
        print(flag, file=out)
    if not flags:
        print("no risky migration statements", file=out)
        return 0
    files = len({flag.path for flag in flags})
    print(f"{len(flags)} risky statement(s) in {files} file(s)", file=out)
    return 1
