"""SQL half of the migration risk detector: a small tokenizer and a statement analyzer.

:func:`tokenize` turns SQL text into words, quoted identifiers, strings, numbers and
punctuation, dropping comments (``-- …``, ``/* … */``, ``#`` in MySQL) and emitting a separator
for every statement delimiter outside strings (``;``, or the one set by MySQL's ``DELIMITER``).
:func:`scan_sql` splits the tokens into statements and looks at each one by its leading
keyword, so a ``'DROP TABLE x'`` inside a string literal or a comment is never a statement, a
statement may span several lines, and several may share a line.

Only forward SQL is analysed: goose / sql-migrate / dbmate "down" sections and rollback files
(``*.down.sql``, diesel's ``down.sql``, Flyway ``U1__*.sql``) are skipped, as are the bodies
of ``CREATE FUNCTION`` / ``PROCEDURE`` / ``TRIGGER`` (they run later, not in the migration).
The bodies of PostgreSQL ``DO`` blocks do run, so they are analysed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import pairwise
from pathlib import PurePosixPath
from typing import NamedTuple

from bot.sql_tokens import Dialect, Token, split_statements, tokenize

NOT_NULL = "not-null-without-default"
DROP_COLUMN = "drop-column"
ALTER_TYPE = "alter-column-type"
DROP_TABLE = "drop-table"
TRUNCATE = "truncate"
DELETE_ALL = "delete-without-where"
FINANCIAL = "financial-table"
RULES = (NOT_NULL, DROP_COLUMN, ALTER_TYPE, DROP_TABLE, TRUNCATE, DELETE_ALL, FINANCIAL)

_MAX_DEPTH = 8  # nesting of CTEs and DO blocks we follow


class Finding(NamedTuple):
    """One risky spot in a text: line number (1-based), rule id, explanation."""

    line: int
    rule: str
    message: str


def name_parts(name: str) -> tuple[str, ...]:
    """``'public."Transactions"'`` -> ``('public', 'Transactions')``."""
    parts = (p.strip().strip('"`[]').strip() for p in name.split("."))
    return tuple(p for p in parts if p)


class TableMatcher:
    """Case-insensitive matching of (possibly schema-qualified) table names.

    A configured ``transactions`` matches ``transactions``, ``"public"."transactions"`` and
    ``` `TRANSACTIONS` ```, not ``transactions_archive``; a configured ``ledger.transactions``
    only matches names qualified with that schema.
    """

    def __init__(self, tables: Iterable[str]) -> None:
        names = (tuple(p.lower() for p in name_parts(t)) for t in tables)
        self._names = tuple(n for n in names if n)

    def match(self, parts: Sequence[str]) -> bool:
        low = tuple(p.lower() for p in parts)
        return any(len(low) >= len(n) and low[-len(n) :] == n for n in self._names)


# --- token-list helpers -------------------------------------------------------------------

_NAME_KINDS = ("word", "ident")


def _key(s: Sequence[Token], i: int) -> str:
    return s[i].key if i < len(s) else ""


def _is(s: Sequence[Token], i: int, punct: str) -> bool:
    return i < len(s) and s[i].kind == "punct" and s[i].value == punct


def _opt(s: Sequence[Token], i: int, *words: str) -> int:
    """Index after the optional keyword sequence ``words`` at ``i``."""
    if all(_key(s, i + k) == w for k, w in enumerate(words)):
        return i + len(words)
    return i


def _name(s: Sequence[Token], i: int) -> tuple[tuple[str, ...], int] | None:
    """A dotted name at ``i`` (``a``, ``"a"."b"``, `` `a`.`b` ``) and the index after it."""
    if i >= len(s) or s[i].kind not in _NAME_KINDS:
        return None
    parts = [s[i].value]
    j = i + 1
    while _is(s, j, ".") and j + 1 < len(s) and s[j + 1].kind in _NAME_KINDS:
        parts.append(s[j + 1].value)
        j += 2
    return tuple(parts), j


def _names(s: Sequence[Token], i: int) -> list[tuple[str, ...]]:
    """A comma-separated list of names (each optionally followed by ``*``)."""
    out: list[tuple[str, ...]] = []
    while (got := _name(s, i)) is not None:
        out.append(got[0])
        i = got[1] + (1 if _is(s, got[1], "*") else 0)
        if not _is(s, i, ","):
            break
        i += 1
    return out


def _top(s: Sequence[Token]) -> Iterator[tuple[int, Token]]:
    """(index, token) of the tokens outside parentheses (the parentheses excluded)."""
    depth = 0
    for i, tok in enumerate(s):
        if tok.kind == "punct" and tok.value == "(":
            depth += 1
        elif tok.kind == "punct" and tok.value == ")":
            depth = max(0, depth - 1)
        elif depth == 0:
            yield i, tok


def _split_top(s: Sequence[Token]) -> list[list[Token]]:
    """``s`` split at the commas outside parentheses."""
    parts: list[list[Token]] = [[]]
    depth = 0
    for tok in s:
        if tok.kind == "punct" and tok.value in "()":
            depth = depth + 1 if tok.value == "(" else max(0, depth - 1)
        elif tok.kind == "punct" and tok.value == "," and depth == 0:
            parts.append([])
            continue
        parts[-1].append(tok)
    return [p for p in parts if p]


def _close(s: Sequence[Token], i: int) -> int:
    """Index of the ``)`` matching the ``(`` at ``i`` (``len(s)`` if unbalanced)."""
    depth = 0
    for j in range(i, len(s)):
        if s[j].kind == "punct" and s[j].value == "(":
            depth += 1
        elif s[j].kind == "punct" and s[j].value == ")":
            depth -= 1
            if depth == 0:
                return j
    return len(s)


def _first_top(s: Sequence[Token], key: str, start: int = 0) -> int | None:
    return next((i for i, tok in _top(s) if i >= start and tok.key == key), None)


def _show(parts: Sequence[str]) -> str:
    return ".".join(parts)


def _column(s: Sequence[Token], i: int) -> str:
    got = _name(s, i)
    return _show(got[0]) if got else "?"


# --- statement analysis -------------------------------------------------------------------

_ADD_NOT_COLUMN = frozenset(
    {"CONSTRAINT", "PRIMARY", "UNIQUE", "INDEX", "KEY", "FOREIGN", "CHECK", "FULLTEXT"}
    | {"SPATIAL", "PARTITION", "PERIOD", "SYSTEM", "EXCLUDE"}
)
_DROP_NOT_COLUMN = frozenset(
    {"CONSTRAINT", "INDEX", "KEY", "PRIMARY", "FOREIGN", "CHECK", "PERIOD", "SYSTEM"}
)
_ALTER_NOT_COLUMN = frozenset({"CONSTRAINT", "INDEX", "CHECK"})
_FILLED = frozenset(  # a new column whose values the database fills in itself
    {"AUTO_INCREMENT", "AUTOINCREMENT", "SERIAL", "BIGSERIAL", "SMALLSERIAL", "SERIAL2"}
    | {"SERIAL4", "SERIAL8", "IDENTITY", "GENERATED", "AS"}
)
_CREATE_TARGETS = frozenset({"TABLE", "INDEX", "TRIGGER", "POLICY"})
_CREATE_OTHER = frozenset(
    {"VIEW", "FUNCTION", "PROCEDURE", "SEQUENCE", "SCHEMA", "DATABASE", "TYPE", "EXTENSION"}
    | {"MATERIALIZED", "DOMAIN", "ROLE", "USER", "EVENT", "RULE", "AGGREGATE", "OPERATOR"}
)
_TRIVIAL_WHERE = frozenset({"TRUE", "1", "1=1"})


class _Analyzer:
    def __init__(self, matcher: TableMatcher) -> None:
        self.matcher = matcher
        self.findings: list[Finding] = []
        self.depth = 0
        self.handlers: dict[str, Callable[[list[Token]], None]] = {
            "ALTER": self._alter,
            "DROP": self._drop,
            "TRUNCATE": self._truncate,
            "DELETE": self._delete,
            "UPDATE": self._update,
            "INSERT": self._insert,
            "REPLACE": self._insert,
            "UPSERT": self._insert,
            "MERGE": self._insert,
            "CREATE": self._create,
            "RENAME": self._rename,
            "COPY": self._copy,
            "LOAD": self._load,
            "WITH": self._with,
            "DO": self._do,
        }

    def run(self, tokens: Iterable[Token], plpgsql: bool, depth: int) -> None:
        for statement in split_statements(tokens, plpgsql):
            self.statement(statement, depth)

    def statement(self, s: list[Token], depth: int) -> None:
        if not s or depth > _MAX_DEPTH:
            return
        if s[0].key == "BEGIN" and _key(s, 1) in self.handlers:  # "BEGIN DELETE …" (no ';')
            s = s[1:]
        handler = self.handlers.get(s[0].key)
        if handler is not None:
            outer, self.depth = self.depth, depth
            try:
                handler(s)
            finally:
                self.depth = outer

    def flag(self, line: int, rule: str, message: str) -> None:
        self.findings.append(Finding(line, rule, message))

    def financial(self, parts: Sequence[str] | None, line: int, what: str) -> None:
        if parts and self.matcher.match(parts):
            self.flag(line, FINANCIAL, f"{what} changes financial table {_show(parts)}")

    # ALTER TABLE -------------------------------------------------------------------------

    def _alter(self, s: list[Token]) -> None:
        i = 1
        while _key(s, i) in ("ONLINE", "OFFLINE", "IGNORE"):
            i += 1
        if _key(s, i) != "TABLE":
            return
        i = _opt(s, _opt(s, i + 1, "IF", "EXISTS"), "ONLY")
        got = _name(s, i)
        if got is None:
            return
        table, i = got
        i += 1 if _is(s, i, "*") else 0
        self.financial(table, s[0].line, "ALTER TABLE")
        for action in _split_top(s[i:]):
            self._alter_action(action, _show(table))

    def _alter_action(self, a: list[Token], table: str) -> None:
        verb, line = a[0].key, a[0].line
        explicit = _key(a, 1) == "COLUMN"
        at = 2 if explicit else 1  # the column name
        if verb == "ADD":
            self._alter_add(a, table, explicit)
        elif verb == "DROP" and _key(a, 1) == "PARTITION":
            self.flag(line, DROP_TABLE, f"DROP PARTITION on {table} deletes its rows")
        elif verb == "DROP" and (explicit or _key(a, 1) not in _DROP_NOT_COLUMN):
            column = _column(a, _opt(a, at, "IF", "EXISTS"))
            self.flag(line, DROP_COLUMN, f"DROP COLUMN {table}.{column} destroys its data")
        elif verb in ("MODIFY", "CHANGE"):
            self.flag(
                line,
                ALTER_TYPE,
                f"{verb} COLUMN {table}.{_column(a, at)} redefines the column (table rewrite, "
                "possible truncation or NOT NULL failure)",
            )
        elif verb == "ALTER" and (explicit or _key(a, 1) not in _ALTER_NOT_COLUMN):
            self._alter_column(a, table, at)
        elif verb == "TRUNCATE" and _key(a, 1) == "PARTITION":
            self.flag(line, TRUNCATE, f"TRUNCATE PARTITION on {table} deletes its rows")
        elif verb == "RENAME" and _key(a, 1) in ("TO", "AS"):
            new = _name(a, 2)
            self.financial(new[0] if new else None, line, "ALTER TABLE … RENAME TO")

    def _alter_add(self, a: list[Token], table: str, explicit: bool) -> None:
        j = _opt(a, 2 if explicit else 1, "IF", "NOT", "EXISTS")
        if not explicit and _key(a, j) in _ADD_NOT_COLUMN:
            return
        if _is(a, j, "("):  # MySQL: ADD (c1 …, c2 …)
            for column in _split_top(a[j + 1 : _close(a, j)]):
                self._new_column(column, table, column[0].line)
        else:
            self._new_column(a[j:], table, a[0].line)

    def _alter_column(self, a: list[Token], table: str, at: int) -> None:
        got = _name(a, at)
        if got is None:
            return
        k = got[1]
        if _key(a, k) == "TYPE" or _opt(a, k, "SET", "DATA", "TYPE") > k:
            what = "changes the type (table rewrite under an exclusive lock)"
        elif _opt(a, k, "SET", "NOT", "NULL") > k:
            what = "SET NOT NULL scans the table under an exclusive lock and fails on NULLs"
        else:
            return
        self.flag(a[0].line, ALTER_TYPE, f"ALTER COLUMN {table}.{_show(got[0])} {what}")

    def _new_column(self, d: list[Token], table: str, line: int) -> None:
        if not d:
            return
        keys = [tok.key for _, tok in _top(d)]
        pairs = set(pairwise(keys))
        not_null = ("NOT", "NULL") in pairs or ("PRIMARY", "KEY") in pairs
        if not_null and "DEFAULT" not in keys and not _FILLED.intersection(keys):
            self.flag(
                line,
                NOT_NULL,
                f"ADD COLUMN {table}.{d[0].value} is NOT NULL without a DEFAULT "
                "(fails on a non-empty table)",
            )

    # other statements --------------------------------------------------------------------

    def _drop(self, s: list[Token]) -> None:
        kind, line = _key(s, 1), s[0].line
        if kind in ("TABLE", "SCHEMA", "DATABASE"):
            names = _names(s, _opt(s, 2, "IF", "EXISTS"))
            shown = ", ".join(_show(n) for n in names) or "?"
            if kind == "TABLE":
                self.flag(line, DROP_TABLE, f"DROP TABLE {shown} deletes the table and its rows")
            else:
                self.flag(line, DROP_TABLE, f"DROP {kind} {shown} deletes every table in it")
            for name in names:
                self.financial(name, line, f"DROP {kind}")
        elif kind in ("INDEX", "TRIGGER", "POLICY", "RULE"):
            on = _first_top(s, "ON")
            if on is not None and (got := _name(s, _opt(s, on + 1, "ONLY"))) is not None:
                self.financial(got[0], line, f"DROP {kind}")

    def _truncate(self, s: list[Token]) -> None:
        names = _names(s, _opt(s, _opt(s, 1, "TABLE"), "ONLY"))
        shown = ", ".join(_show(n) for n in names) or "?"
        self.flag(s[0].line, TRUNCATE, f"TRUNCATE {shown} deletes every row")
        for name in names:
            self.financial(name, s[0].line, "TRUNCATE")

    def _delete(self, s: list[Token]) -> None:
        i = 1
        while _key(s, i) in ("LOW_PRIORITY", "QUICK", "IGNORE"):
            i += 1
        if _key(s, i) == "FROM":
            targets = _names(s, _opt(s, i + 1, "ONLY"))
        else:  # MySQL multi-table DELETE t1, t2 FROM …: the rows of the tables named first
            targets = _names(s, i)
            frm = _first_top(s, "FROM", i)
            if frm is not None:
                targets += _names(s, frm + 1)[:1]
        shown = ", ".join(_show(t) for t in targets) or "?"
        where = _first_top(s, "WHERE")
        if where is None:
            self.flag(s[0].line, DELETE_ALL, f"DELETE without WHERE deletes every row of {shown}")
        elif self._trivial(s, where + 1):
            self.flag(
                s[0].line,
                DELETE_ALL,
                f"DELETE with an always-true WHERE empties {shown}",
            )
        for target in targets:
            self.financial(target, s[0].line, "DELETE")

    @staticmethod
    def _trivial(s: list[Token], start: int) -> bool:
        text = []
        for tok in s[start:]:
            if tok.key in ("RETURNING", "ORDER", "LIMIT"):
                break
            if tok.kind != "punct" or tok.value not in "()":
                text.append(tok.value.upper())
        return "".join(text) in _TRIVIAL_WHERE

    def _update(self, s: list[Token]) -> None:
        i = 1
        while _key(s, i) in ("LOW_PRIORITY", "IGNORE", "ONLY"):
            i += 1
        first = _name(s, i)
        targets = [first[0]] if first else []
        for k, tok in _top(s):  # MySQL multi-table UPDATE a, b / a JOIN b … SET
            if tok.key == "SET":
                break
            if k > i and (tok.key == "JOIN" or (tok.kind == "punct" and tok.value == ",")):
                got = _name(s, k + 1)
                targets += [got[0]] if got else []
        for target in targets:
            self.financial(target, s[0].line, "UPDATE")

    def _insert(self, s: list[Token]) -> None:
        i = 1
        while _key(s, i) in ("LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY", "IGNORE", "OR"):
            i += 2 if _key(s, i) == "OR" else 1  # SQLite INSERT OR REPLACE
        got = _name(s, _opt(s, i, "INTO"))
        if got is not None:
            self.financial(got[0], s[0].line, s[0].key)

    def _create(self, s: list[Token]) -> None:
        i = 1
        while i < min(len(s), 16) and s[i].key not in _CREATE_TARGETS:
            if s[i].key in ("TEMP", "TEMPORARY") or s[i].key in _CREATE_OTHER:
                return
            i += 1
        kind = _key(s, i)
        if kind not in _CREATE_TARGETS:
            return
        if kind == "TABLE":
            got = _name(s, _opt(s, i + 1, "IF", "NOT", "EXISTS"))
        else:
            on = _first_top(s, "ON", i)
            got = None if on is None else _name(s, _opt(s, on + 1, "ONLY"))
        if got is not None:
            self.financial(got[0], s[0].line, f"CREATE {kind}")

    def _rename(self, s: list[Token]) -> None:
        if _key(s, 1) != "TABLE":
            return
        for pair in _split_top(s[2:]):
            old = _name(pair, 0)
            new = _name(pair, _opt(pair, old[1], "TO")) if old else None
            for got in (old, new):
                self.financial(got[0] if got else None, s[0].line, "RENAME TABLE")

    def _copy(self, s: list[Token]) -> None:
        got = _name(s, 1)
        if got is not None and _first_top(s, "FROM") is not None:
            self.financial(got[0], s[0].line, "COPY … FROM")

    def _load(self, s: list[Token]) -> None:
        into = _first_top(s, "INTO")
        if into is not None and _key(s, into + 1) == "TABLE":
            got = _name(s, into + 2)
            self.financial(got[0] if got else None, s[0].line, "LOAD DATA")

    def _with(self, s: list[Token]) -> None:
        """``WITH a AS (…), b AS (…) <statement>``: each CTE body, then the statement."""
        i = _opt(s, 1, "RECURSIVE")
        while _name(s, i) is not None:
            i += 1
            if _is(s, i, "("):  # column list
                i = _close(s, i) + 1
            if _key(s, i) != "AS":
                return
            i = _opt(s, _opt(s, i + 1, "NOT"), "MATERIALIZED")
            if not _is(s, i, "("):
                return
            end = _close(s, i)
            self.statement(s[i + 1 : end], self.depth + 1)
            i = end + 1
            if not _is(s, i, ","):
                break
            i += 1
        self.statement(s[i:], self.depth + 1)

    def _do(self, s: list[Token]) -> None:
        """PostgreSQL ``DO $$ … $$``: the body runs now, so analyse it as PL/pgSQL."""
        for tok in s:
            if tok.kind == "string":
                body = tokenize(tok.value.replace("''", "'"), "postgres", tok.line)
                self.run(body, True, self.depth + 1)


# --- entry points -------------------------------------------------------------------------

_MYSQL_STRONG = re.compile(r"`|^\s*DELIMITER\s", re.IGNORECASE | re.MULTILINE)
_POSTGRES = re.compile(r"\$\$|::|\bE'|\b(?:BIG)?SERIAL\b|\bJSONB\b|\bplpgsql\b", re.IGNORECASE)
_MYSQL_WEAK = re.compile(r"\bENGINE\s*=|\bAUTO_INCREMENT\b|\bUNSIGNED\b", re.IGNORECASE)


def guess_dialect(text: str, path: str = "") -> Dialect:
    """MySQL, PostgreSQL or generic, from hints in the path and telltale syntax in the text.

    It matters for ``#`` (a comment only in MySQL), backslash escapes in strings (MySQL) and
    ``$$`` dollar quoting (PostgreSQL)."""
    low = path.lower()
    if "mysql" in low or "mariadb" in low:
        return "mysql"
    if "postgres" in low or "pgsql" in low:
        return "postgres"
    if _MYSQL_STRONG.search(text):
        return "mysql"
    if _POSTGRES.search(text):
        return "postgres"
    return "mysql" if _MYSQL_WEAK.search(text) else "generic"


def scan_sql(
    text: str,
    tables: TableMatcher | Iterable[str],
    *,
    first_line: int = 1,
    dialect: Dialect | None = None,
    path: str = "",
) -> list[Finding]:
    """The risky statements of a SQL text, sorted by line; never raises."""
    matcher = tables if isinstance(tables, TableMatcher) else TableMatcher(tables)
    analyzer = _Analyzer(matcher)
    analyzer.run(tokenize(text, dialect or guess_dialect(text, path), first_line), False, 0)
    return sorted(set(analyzer.findings))


_SECTION = re.compile(
    r"^[ \t]*--[ \t]*(?:\+goose[ \t]+|\+migrate[ \t]+|migrate:)(up|down)\b",
    re.IGNORECASE | re.MULTILINE,
)
_FLYWAY_UNDO = re.compile(r"u\d[\w.]*__", re.IGNORECASE)


def forward_sql(text: str) -> str:
    """``text`` with goose / sql-migrate / dbmate "down" sections blanked (lines kept)."""
    out, pos, keep = [], 0, True
    for m in _SECTION.finditer(text):
        chunk = text[pos : m.start()]
        out.append(chunk if keep else re.sub(r"[^\n]", " ", chunk))
        keep, pos = m.group(1).lower() == "up", m.start()
    chunk = text[pos:]
    out.append(chunk if keep else re.sub(r"[^\n]", " ", chunk))
    return "".join(out)


def is_rollback_file(path: str) -> bool:
    """Rollback-only SQL files: ``*.down.sql``, diesel's ``down.sql``, Flyway ``U1__*.sql``."""
    name = PurePosixPath(path.replace("\\", "/")).name.lower()
    return name.endswith(".down.sql") or name == "down.sql" or bool(_FLYWAY_UNDO.match(name))
