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

import ast
import errno
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import NamedTuple, TextIO

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
    name_parts,
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


def _words(words: str) -> tuple[str, ...]:
    return tuple(words.split())


def _lowered(words: str) -> frozenset[str]:
    return frozenset(words.lower().split())


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
        findings = _scan_laravel(text, matcher)
    elif kind == "py":
        findings = _scan_python(path, text, matcher)
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


# --- Python: Django and Alembic -----------------------------------------------------------

_ALEMBIC_IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+alembic\b|import[ \t]+alembic\b)", re.M)
_DJANGO_IMPORT = re.compile(
    r"^[ \t]*(?:from[ \t]+django\.db[ \t]+import[ \t]+\(?[\w\s,]*\bmigrations\b"
    r"|from[ \t]+django\.db\.migrations\b|import[ \t]+django\.db\.migrations\b)",
    re.M,
)
_PY_FALLBACK = re.compile(
    r"\b(?:op\.(drop_table|drop_column|alter_column)"
    r"|migrations\.(DeleteModel|RemoveField|AlterField))\s*\("
)
_PY_FALLBACK_RULES = {
    "drop_table": DROP_TABLE,
    "DeleteModel": DROP_TABLE,
    "drop_column": DROP_COLUMN,
    "RemoveField": DROP_COLUMN,
    "alter_column": ALTER_TYPE,
    "AlterField": ALTER_TYPE,
}


def _scan_python(path: str, text: str, matcher: TableMatcher) -> list[Finding]:
    alembic, django = bool(_ALEMBIC_IMPORT.search(text)), bool(_DJANGO_IMPORT.search(text))
    if not (alembic or django):
        return []
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return [  # not valid Python: still say which dangerous calls it names
            Finding(
                text.count("\n", 0, m.start()) + 1,
                _PY_FALLBACK_RULES[m.group(1) or m.group(2)],
                f"{m.group(0).rstrip('( ')} (file does not parse; matched by name)",
            )
            for m in _PY_FALLBACK.finditer(text)
        ]
    py = _PyModule(tree, matcher)
    if alembic:
        py.alembic()
    if django:
        py.django(path)
    return py.findings


def _call_name(node: ast.expr) -> str:
    """``migrations.AddField`` -> ``AddField``; ``op.drop_table`` -> ``drop_table``."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def _arg(call: ast.Call, index: int, keyword: str) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg == keyword:
            return kw.value
    positional = call.args[
        : next((i for i, a in enumerate(call.args) if isinstance(a, ast.Starred)), None)
    ]
    return positional[index] if 0 <= index < len(positional) else None


def _kwargs(call: ast.Call) -> dict[str, ast.expr] | None:
    """Keyword arguments by name; None if ``**kwargs`` makes them unknowable."""
    if any(kw.arg is None for kw in call.keywords):
        return None
    return {kw.arg: kw.value for kw in call.keywords if kw.arg is not None}


def _const(node: ast.expr | None) -> object:
    return node.value if isinstance(node, ast.Constant) else ...


def _str(node: ast.expr | None) -> str | None:
    value = _const(node)
    return value if isinstance(value, str) else None


def _walk(root: ast.AST, skip: Callable[[ast.AST], bool]) -> Iterator[ast.AST]:
    stack = [root]
    while stack:
        node = stack.pop()
        if skip(node):
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


_MODEL_NAME, _NAME = ((0, "model_name"),), ((0, "name"),)
_DJANGO_MODEL_ARGS: dict[str, tuple[tuple[int, str], ...]] = {
    **dict.fromkeys(
        _words(
            "AddField RemoveField AlterField RenameField AddIndex RemoveIndex RenameIndex "
            "AddConstraint RemoveConstraint AlterConstraint"
        ),
        _MODEL_NAME,
    ),
    **dict.fromkeys(
        _words(
            "CreateModel DeleteModel AlterModelTable AlterUniqueTogether AlterIndexTogether "
            "AlterModelTableComment AlterOrderWithRespectTo"
        ),
        _NAME,
    ),
    "RenameModel": ((0, "old_name"), (1, "new_name")),
}
_DJANGO_NO_COLUMN = frozenset(
    {"ManyToManyField", "AutoField", "BigAutoField", "SmallAutoField", "GeneratedField"}
)
_DJANGO_EMPTY_STRING = frozenset(  # blank=True gives these an implicit '' default
    {"CharField", "TextField", "SlugField", "EmailField", "URLField", "FilePathField"}
    | {"FileField", "ImageField", "BinaryField"}
)
_ALEMBIC_TABLE_ARGS: dict[str, tuple[tuple[int, str], ...]] = {
    **dict.fromkeys(
        _words(
            "add_column drop_column alter_column drop_table create_table create_table_comment "
            "drop_table_comment"
        ),
        ((0, "table_name"),),
    ),
    **dict.fromkeys(
        _words(
            "create_index drop_index create_unique_constraint create_check_constraint "
            "create_primary_key drop_constraint create_exclude_constraint"
        ),
        ((1, "table_name"),),
    ),
    "create_foreign_key": ((1, "source_table"),),
    "rename_table": ((0, "old_table_name"), (1, "new_table_name")),
    "bulk_insert": ((0, "table"),),
}
_SQLA_WRITES = frozenset({"delete", "update", "insert"})


class _PyModule:
    """One parsed Python migration and the findings gathered from it."""

    def __init__(self, tree: ast.Module, matcher: TableMatcher) -> None:
        self.tree, self.matcher = tree, matcher
        self.findings: list[Finding] = []
        self.strings: dict[str, ast.expr] = {}  # NAME = "…" / NAME = sa.table("…")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                self.strings[node.targets[0].id] = node.value

    def flag(self, node: ast.AST, rule: str, message: str) -> None:
        self.findings.append(Finding(getattr(node, "lineno", 1), rule, message))

    def sql(self, node: ast.expr | None) -> None:
        """Scan the SQL text of ``node`` (a string, f-string, ``text("…")``, constant, …)."""
        got = self._sql_text(node, 0)
        if got is None:
            return
        text, first, last = got
        for f in scan_sql(text, self.matcher, first_line=first):
            self.findings.append(f._replace(line=min(max(f.line, first), last)))

    def _sql_text(self, node: ast.expr | None, depth: int) -> tuple[str, int, int] | None:
        if node is None or depth > 10:
            return None
        lines = getattr(node, "lineno", 1), getattr(node, "end_lineno", None) or 1
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value, lines[0], max(lines)
        if isinstance(node, ast.JoinedStr):
            parts = [_str(v) if isinstance(v, ast.Constant) else "_x_" for v in node.values]
            return "".join(p or "" for p in parts), lines[0], max(lines)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
            left = self._sql_text(node.left, depth + 1)
            right = self._sql_text(node.right, depth + 1) if isinstance(node.op, ast.Add) else None
            if left and right:
                return left[0] + right[0], left[1], max(left[2], right[2])
            return left
        if isinstance(node, ast.Name) and node.id in self.strings:
            return self._sql_text(self.strings[node.id], depth + 1)
        if isinstance(node, ast.Call) and _call_name(node) in ("text", "format"):
            inner = node.args[0] if _call_name(node) == "text" and node.args else None
            if isinstance(node.func, ast.Attribute) and _call_name(node) == "format":
                inner = node.func.value
            return self._sql_text(inner, depth + 1)
        return None

    def table(self, node: ast.expr | None, schema: ast.expr | None = None) -> str | None:
        """A table name from ``"name"``, ``sa.table("name", …)`` or a variable holding one."""
        for _ in range(5):
            if isinstance(node, ast.Name) and node.id in self.strings:
                node = self.strings[node.id]
            elif isinstance(node, ast.Call) and _call_name(node) in ("table", "Table"):
                schema = schema or _arg(node, -1, "schema")
                node = node.args[0] if node.args else None
            else:
                break
        name = _str(node)
        prefix = _str(schema)
        return f"{prefix}.{name}" if name and prefix else name

    def financial(self, node: ast.AST, table: str | None, what: str) -> None:
        if table and self.matcher.match(name_parts(table)):
            self.flag(node, FINANCIAL, f"{what} changes financial table {table}")

    # Alembic ----------------------------------------------------------------------------

    def alembic(self) -> None:
        batch: dict[int, str | None] = {}  # id(call) -> table of its batch_alter_table block
        for node in ast.walk(self.tree):
            if isinstance(node, ast.With | ast.AsyncWith):
                for item in node.items:
                    ctx, alias = item.context_expr, item.optional_vars
                    if (
                        isinstance(ctx, ast.Call)
                        and _call_name(ctx) == "batch_alter_table"
                        and isinstance(alias, ast.Name)
                    ):
                        table = self.table(_arg(ctx, 0, "table_name"), _arg(ctx, 1, "schema"))
                        for inner in ast.walk(node):
                            if (
                                isinstance(inner, ast.Call)
                                and isinstance(inner.func, ast.Attribute)
                                and isinstance(inner.func.value, ast.Name)
                                and inner.func.value.id == alias.id
                            ):
                                batch[id(inner)] = table

        def downgrade(node: ast.AST) -> bool:
            return isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (
                node.name.startswith("downgrade")
            )

        for node in _walk(self.tree, downgrade):
            if isinstance(node, ast.Call):
                self._alembic_call(node, id(node) in batch, batch.get(id(node)))

    def _alembic_call(self, call: ast.Call, in_batch: bool, batch_table: str | None) -> None:
        method = _call_name(call)
        if method in ("execute", "exec_driver_sql"):
            target = call.args[0] if call.args else _arg(call, 0, "sqltext")
            self.sql(target)
            if isinstance(target, ast.Call):
                self._sqlalchemy_write(call, target)
            return
        spec = _ALEMBIC_TABLE_ARGS.get(method)
        if spec is None or not (in_batch or _is_op(call.func)):
            return
        shift = 1 if in_batch else 0  # batch_op.drop_column("c"): the table is implicit
        schema = _arg(call, -1, "schema")
        tables = (
            [batch_table] if in_batch else [self.table(_arg(call, i, kw), schema) for i, kw in spec]
        )
        table = tables[0] or "?"
        if method == "drop_table":
            self.flag(call, DROP_TABLE, f"op.drop_table({table}) deletes the table and its rows")
        elif method == "drop_column":
            column = _str(_arg(call, 1 - shift, "column_name")) or "?"
            self.flag(call, DROP_COLUMN, f"op.drop_column {table}.{column} destroys its data")
        elif method == "alter_column":
            self._alter_column(call, table, _str(_arg(call, 1 - shift, "column_name")) or "?")
        elif method == "add_column":
            self._add_column(call, table, _arg(call, 1 - shift, "column"))
        for name in tables:
            self.financial(call, name, f"op.{method}")

    def _alter_column(self, call: ast.Call, table: str, column: str) -> None:
        kws = _kwargs(call) or {}
        what = []
        if "type_" in kws:
            what.append("changes the type (table rewrite)")
        if _const(kws.get("nullable")) is False:
            what.append("sets NOT NULL (fails on NULLs, scans the table)")
        if "new_column_name" in kws:
            what.append("renames it (breaks running code)")
        if what:
            self.flag(call, ALTER_TYPE, f"op.alter_column {table}.{column} {'; '.join(what)}")

    def _add_column(self, call: ast.Call, table: str, column: ast.expr | None) -> None:
        if not isinstance(column, ast.Call) or _call_name(column) != "Column":
            return
        kws = _kwargs(column)
        if kws is None or ("server_default" in kws and _const(kws["server_default"]) is not None):
            return
        not_null = _const(kws.get("nullable")) is False or _const(kws.get("primary_key")) is True
        filled = any(_call_name(a) in ("Computed", "Identity") for a in column.args)
        if not_null and not filled:
            name = _str(_arg(column, 0, "name")) or "?"
            self.flag(
                call,
                NOT_NULL,
                f"op.add_column {table}.{name} is nullable=False without server_default "
                "(fails on a non-empty table)",
            )

    def _sqlalchemy_write(self, call: ast.Call, expr: ast.Call) -> None:
        """``op.execute(table.delete())`` and friends: SQLAlchemy Core writes."""
        methods: list[str] = []
        node: ast.expr = expr
        while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            methods.append(node.func.attr)
            node = node.func.value
        writes = _SQLA_WRITES.intersection(methods)
        if not writes:
            return
        table = self.table(node) or "?"
        if "delete" in writes and "where" not in methods:
            self.flag(call, DELETE_ALL, f"{table}.delete() without .where() deletes every row")
        self.financial(call, table, f"{table}.{'/'.join(sorted(writes))}()")

    # Django -----------------------------------------------------------------------------

    def django(self, path: str) -> None:
        parts = PurePosixPath(path.replace("\\", "/")).parts
        app = parts[-3] if len(parts) >= 3 and parts[-2] == "migrations" else ""
        db_tables: dict[str, str] = {}
        reverse: set[str] = set()
        state_only: set[int] = set()
        for node in ast.walk(self.tree):
            if not isinstance(node, ast.Call):
                continue
            op = _call_name(node)
            if op == "CreateModel":
                options = _arg(node, 2, "options")
                if isinstance(options, ast.Dict):
                    for k, v in zip(options.keys, options.values, strict=True):
                        if _str(k) == "db_table" and _str(v):
                            db_tables[(_str(_arg(node, 0, "name")) or "").lower()] = str(_str(v))
            elif op == "AlterModelTable" and (table := _str(_arg(node, 1, "table"))):
                db_tables[(_str(_arg(node, 0, "name")) or "").lower()] = table
            elif op == "RunPython" and isinstance(code := _arg(node, 1, "reverse_code"), ast.Name):
                reverse.add(code.id)
            elif op == "SeparateDatabaseAndState" and (ops := _arg(node, 1, "state_operations")):
                state_only.add(id(ops))

        def skipped(node: ast.AST) -> bool:
            if id(node) in state_only:
                return True
            return isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in reverse

        def table_of(model: str) -> str | None:
            low = model.lower()
            if low in db_tables:
                candidates = [db_tables[low]]
            else:
                candidates = [low, f"{low}s", f"{app}_{low}"] if app else [low, f"{low}s"]
            return next((c for c in candidates if self.matcher.match(name_parts(c))), None)

        for node in _walk(self.tree, skipped):
            if isinstance(node, ast.Call):
                self._django_call(node, table_of)

    def _django_call(self, call: ast.Call, table_of: Callable[[str], str | None]) -> None:
        op = _call_name(call)
        if op in ("execute", "executescript") or op == "RunSQL":
            sql = _arg(call, 0, "sql")
            for item in sql.elts if isinstance(sql, ast.List | ast.Tuple) else [sql]:
                self.sql(_sql_item(item))
            return
        for index, keyword in _DJANGO_MODEL_ARGS.get(op, ()):
            model = _str(_arg(call, index, keyword))
            if model and (table := table_of(model)):
                self.flag(call, FINANCIAL, f"{op} on model {model} changes financial table {table}")
        model = _str(_arg(call, 0, "model_name")) or "?"
        field = _str(_arg(call, 1, "name")) or "?"
        if op == "AddField" and _django_not_null(_arg(call, 2, "field")):
            self.flag(
                call,
                NOT_NULL,
                f"AddField {model}.{field} is NOT NULL without a default "
                "(fails on a non-empty table)",
            )
        elif op == "RemoveField":
            self.flag(
                call, DROP_COLUMN, f"RemoveField {model}.{field} drops the column and its data"
            )
        elif op == "AlterField":
            self.flag(
                call,
                ALTER_TYPE,
                f"AlterField {model}.{field} redefines the column (type / NULL change, "
                "possible table rewrite)",
            )
        elif op == "DeleteModel":
            name = _str(_arg(call, 0, "name")) or "?"
            self.flag(call, DROP_TABLE, f"DeleteModel {name} drops the table and its rows")


def _sql_item(item: ast.expr | None) -> ast.expr | None:
    """A ``RunSQL`` list item: a statement, or a ``(statement, params)`` pair."""
    if isinstance(item, ast.List | ast.Tuple):
        return item.elts[0] if item.elts else None
    return item


def _is_op(func: ast.expr) -> bool:
    """``op.x`` / ``alembic.op.x``, the Alembic operations proxy."""
    return isinstance(func, ast.Attribute) and (
        (isinstance(func.value, ast.Name) and func.value.id == "op")
        or (isinstance(func.value, ast.Attribute) and func.value.attr == "op")
    )


def _django_not_null(field: ast.expr | None) -> bool:
    """A Django field that makes a NOT NULL column with no default (Django's own default is
    null=False; ``default``, ``db_default``, ``null=True``, ``auto_now(_add)``, and
    ``blank=True`` on string fields each give existing rows a value)."""
    if not isinstance(field, ast.Call):
        return False
    cls, kws = _call_name(field), _kwargs(field)
    if kws is None or cls in _DJANGO_NO_COLUMN or "default" in kws or "db_default" in kws:
        return False
    if _const(kws.get("null", ast.Constant(False))) is not False:
        return False
    if any(_const(kws.get(k)) is True for k in ("auto_now", "auto_now_add")):
        return False
    return not (_const(kws.get("blank")) is True and cls in _DJANGO_EMPTY_STRING)


# --- PHP: Laravel -------------------------------------------------------------------------


class _PhpToken(NamedTuple):
    kind: str  # "var", "name", "string", "number", "op", "punct"
    value: str  # strings unescaped (roughly); names as written
    line: int
    end_line: int


_PHP = re.compile(
    r"""(?P<ws>\s+)
    |(?P<comment>//[^\n]*|\#(?!\[)[^\n]*|/\*.*?(?:\*/|\Z))
    |(?P<doc><<<[ \t]*(?P<q>['"]?)(?P<id>[A-Za-z_]\w*)(?P=q)[^\n]*\n)
    |(?P<sq>'(?:[^'\\]|\\.)*(?:'|\Z))
    |(?P<dq>"(?:[^"\\]|\\.)*(?:"|\Z))
    |(?P<var>\$[A-Za-z_]\w*)
    |(?P<name>[A-Za-z_]\w*)
    |(?P<number>\d[\w.]*)
    |(?P<op>::|\??->|=>)
    |(?P<punct>.)""",
    re.S | re.X,
)
_PHP_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "$": "$"}


_PHP_INTERPOLATION = re.compile(r"\{\$[^}\n]*\}|\$[A-Za-z_]\w*(?:->\w+|\[[^\]\n]*\])?")


def _php_unescape(body: str, quote: str) -> str:
    """The value of a PHP string body; interpolated ``$vars`` become ``_x_``."""
    if quote == "'":
        return re.sub(r"\\([\\'])", r"\1", body)
    body = _PHP_INTERPOLATION.sub("_x_", body)
    return re.sub(r"\\(.)", lambda m: _PHP_ESCAPES.get(m.group(1), m.group(0)), body, flags=re.S)


def _php_tokens(text: str) -> list[_PhpToken]:
    tokens: list[_PhpToken] = []
    pos, line = 0, 1
    while pos < len(text):
        m = _PHP.match(text, pos)
        if m is None:  # pragma: no cover - the last alternative matches any character
            break
        kind, end = m.lastgroup or "punct", m.end()
        if kind in ("q", "id"):
            kind = "doc"
        if kind == "doc":
            close = re.compile(rf"^[ \t]*{m.group('id')}\b", re.M).search(text, end)
            body_end = len(text) if close is None else close.start()
            body = text[end : max(end, body_end - 1)]
            body = body if m.group("q") == "'" else _PHP_INTERPOLATION.sub("_x_", body)
            last = line + text.count("\n", pos, body_end)
            tokens.append(_PhpToken("string", body, line + 1, last))
            end = len(text) if close is None else close.end()
        elif kind in ("sq", "dq"):
            raw = m.group()
            body = raw[1:-1] if len(raw) > 1 and raw[-1] == raw[0] else raw[1:]
            last = line + raw.count("\n")
            tokens.append(_PhpToken("string", _php_unescape(body, raw[0]), line, last))
        elif kind not in ("ws", "comment"):
            tokens.append(_PhpToken(kind, m.group(), line, line))
        line += text.count("\n", pos, end)
        pos = end
    return tokens


def _php_matches(toks: Sequence[_PhpToken]) -> list[int]:
    """For each ``(``, ``[`` and ``{``, the index of its closing bracket (``len(toks)`` if
    unclosed); -1 for every other token. One pass, so the Laravel scan stays linear."""
    match = [-1] * len(toks)
    stacks: dict[str, list[int]] = {"(": [], "[": [], "{": []}
    closers = {")": "(", "]": "[", "}": "{"}
    for i, tok in enumerate(toks):
        if tok.kind != "punct":
            continue
        if tok.value in stacks:
            stacks[tok.value].append(i)
            match[i] = len(toks)
        elif tok.value in closers and stacks[closers[tok.value]]:
            match[stacks[closers[tok.value]].pop()] = i
    return match


def _php_forward(toks: list[_PhpToken]) -> list[_PhpToken]:
    """The tokens without ``function down(…) {…}`` (the rollback)."""
    match = _php_matches(toks)
    out: list[_PhpToken] = []
    i = 0
    while i < len(toks):
        if (
            toks[i].kind == "name"
            and toks[i].value.lower() == "function"
            and i + 2 < len(toks)
            and toks[i + 1].kind == "name"
            and toks[i + 1].value.lower() == "down"
            and toks[i + 2].value == "("
        ):
            after = match[i + 2] + 1  # skip an optional ": void" before the body
            brace = next(
                (k for k in range(after, min(after + 4, len(toks))) if toks[k].value == "{"), None
            )
            if brace is not None:
                i = match[brace] + 1
                continue
        out.append(toks[i])
        i += 1
    return out


_LARAVEL_COLUMNS = _lowered(  # Blueprint column types (NOT NULL unless ->nullable())
    "bigInteger binary boolean char dateTimeTz dateTime date decimal double enum float "
    "foreignId foreignIdFor foreignUlid foreignUuid geography geometry integer ipAddress "
    "json jsonb longText macAddress mediumInteger mediumText morphs set smallInteger "
    "string text timeTz time timestampTz timestamp tinyInteger tinyText unsignedBigInteger "
    "unsignedDecimal unsignedInteger unsignedMediumInteger unsignedSmallInteger "
    "unsignedTinyInteger ulidMorphs uuidMorphs ulid uuid year vector"
)
_LARAVEL_FILLED = frozenset(  # modifiers that give existing rows a value
    {"default", "usecurrent", "storedas", "virtualas", "autoincrement", "generatedas"}
)
_LARAVEL_DROPS = _lowered(
    "dropColumn dropColumns dropTimestamps dropTimestampsTz dropSoftDeletes dropSoftDeletesTz "
    "dropRememberToken dropMorphs dropConstrainedForeignId dropConstrainedForeignIdFor"
)
_DB_SQL = frozenset({"statement", "unprepared", "update", "delete", "insert", "affectingstatement"})
_DB_WRITES = frozenset(
    {"delete", "truncate", "update", "insert", "insertorignore", "insertgetid", "insertusing"}
    | {"upsert", "updateorinsert", "increment", "decrement", "incrementeach", "decrementeach"}
)


_MAX_ARG_TOKENS = 200


class _PhpLink(NamedTuple):
    method: str
    open: int  # index of its "("
    line: int


class _Laravel:
    """One pass over a Laravel migration's tokens (``down()`` removed)."""

    def __init__(self, text: str, matcher: TableMatcher) -> None:
        self.toks = _php_forward(_php_tokens(text))
        self.match = _php_matches(self.toks)
        self.matcher = matcher
        self.findings: list[Finding] = []

    def flag(self, line: int, rule: str, message: str) -> None:
        self.findings.append(Finding(line, rule, message))

    def financial(self, line: int, table: str | None, what: str) -> None:
        if table and self.matcher.match(name_parts(table)):
            self.flag(line, FINANCIAL, f"{what} changes financial table {table}")

    def is_(self, i: int, value: str) -> bool:
        return (
            i < len(self.toks)
            and self.toks[i].kind in ("op", "punct")
            and (self.toks[i].value == value)
        )

    def args(self, open_: int) -> list[tuple[int, int]]:
        """The (start, end) token ranges of the arguments of the call opening at ``open_``."""
        toks, end = self.toks, min(self.match[open_], len(self.toks))
        ranges: list[tuple[int, int]] = []
        start = j = open_ + 1
        while j < end:
            tok = toks[j]
            if tok.kind == "punct" and tok.value in "([{":
                j = self.match[j] + 1
                continue
            if tok.kind == "punct" and tok.value == ",":
                ranges.append((start, j))
                start = j + 1
            j += 1
        if start < end:
            ranges.append((start, end))
        return ranges

    def string(self, arg: tuple[int, int] | None) -> str | None:
        if arg is None or arg[1] - arg[0] != 1 or self.toks[arg[0]].kind != "string":
            return None
        return self.toks[arg[0]].value

    def strings(self, args: Sequence[tuple[int, int]]) -> list[str]:
        """``'a', 'b'`` or ``['a', 'b']`` -> ``['a', 'b']``."""
        toks = self.toks
        return [
            t.value
            for s, e in args
            for t in toks[s : min(e, s + _MAX_ARG_TOKENS)]
            if t.kind == "string"
        ]

    def chain(self, i: int) -> list[_PhpLink]:
        """The ``->m(…)->n(…)`` calls following index ``i``."""
        toks, links = self.toks, []
        j = i + 1
        while (
            self.is_(j, "->")
            and j + 2 < len(toks)
            and toks[j + 1].kind == "name"
            and self.is_(j + 2, "(")
        ):
            links.append(_PhpLink(toks[j + 1].value, j + 2, toks[j + 1].line))
            j = self.match[j + 2] + 1
        return links

    def run(self) -> list[Finding]:
        toks = self.toks
        blueprints: list[tuple[str, str, int]] = []  # ($var, table, end of Schema::table(…))
        for i, tok in enumerate(toks):
            while blueprints and blueprints[-1][2] < i:
                blueprints.pop()
            if tok.kind == "name" and tok.value in ("Schema", "DB") and self.is_(i + 1, "::"):
                j = i + 2
                while (  # Schema::connection('x')->table(…)
                    j + 1 < len(toks)
                    and toks[j].value == "connection"
                    and self.is_(j + 1, "(")
                    and self.is_(self.match[j + 1] + 1, "->")
                ):
                    j = self.match[j + 1] + 2
                if j + 1 < len(toks) and toks[j].kind == "name" and self.is_(j + 1, "("):
                    if tok.value == "DB":
                        self.db(toks[j].value, j + 1, tok.line)
                    elif (blueprint := self.schema(toks[j].value, j + 1, tok.line)) is not None:
                        blueprints.append(blueprint)
            elif tok.kind == "var" and blueprints and self.is_(i + 1, "->"):
                table = next((t for v, t, _ in reversed(blueprints) if v == tok.value), None)
                links = self.chain(i) if table is not None else []
                if table is not None and links:
                    self.column(links, table)
        return self.findings

    def schema(self, method: str, open_: int, line: int) -> tuple[str, str, int] | None:
        """A ``Schema::method(…)`` call; for ``Schema::table`` the blueprint it opens."""
        args = self.args(open_)
        table = self.string(args[0]) if args else None
        what = f"Schema::{method}('{table or '?'}')"
        low = method.lower()
        blueprint = None
        if low in ("drop", "dropifexists"):
            self.flag(line, DROP_TABLE, f"{what} deletes the table and its rows")
        elif low == "dropcolumns":
            columns = ", ".join(self.strings(args[1:])) or "?"
            self.flag(line, DROP_COLUMN, f"{what} drops {columns} and their data")
        elif low == "rename" and len(args) > 1:
            self.financial(line, self.string(args[1]), what)
        elif low == "table" and len(args) > 1:
            var = self._closure_var(args[1])
            blueprint = None if var is None else (var, table or "?", self.match[open_])
        elif low != "create":
            return None
        self.financial(line, table, what)
        return blueprint

    def _closure_var(self, arg: tuple[int, int]) -> str | None:
        """``$table`` in ``function (Blueprint $table) {…}`` / ``fn ($table) => …``."""
        toks = self.toks
        for k in range(arg[0], min(arg[1], arg[0] + 3)):
            if toks[k].value in ("function", "fn") and self.is_(k + 1, "("):
                params = toks[k + 2 : min(self.match[k + 1], k + 2 + _MAX_ARG_TOKENS)]
                return next((t.value for t in params if t.kind == "var"), None)
        return None

    def column(self, links: list[_PhpLink], table: str) -> None:
        first = links[0]
        low = first.method.lower()
        mods = {link.method.lower(): link for link in links[1:]}
        args = self.args(first.open)
        name = self.string(args[0]) if args else None
        call = f"$table->{first.method}('{name or '?'}')"
        if "change" in mods:
            self.flag(first.line, ALTER_TYPE, f"{call}->change() redefines {table}.{name}")
        elif low in _LARAVEL_DROPS:
            columns = ", ".join(self.strings(args)) or first.method
            self.flag(first.line, DROP_COLUMN, f"{first.method} on {table} drops {columns}")
        elif low in ("drop", "dropifexists"):
            self.flag(first.line, DROP_TABLE, f"$table->{first.method}() deletes {table}")
        elif low in _LARAVEL_COLUMNS and not _LARAVEL_FILLED.intersection(mods):
            nullable = mods.get("nullable")
            if nullable is None or self._is_false(self.args(nullable.open)):
                self.flag(
                    first.line,
                    NOT_NULL,
                    f"{call} on {table} is NOT NULL without ->default() or ->nullable() "
                    "(fails on a non-empty table)",
                )

    def _is_false(self, args: list[tuple[int, int]]) -> bool:
        return (
            len(args) == 1
            and args[0][1] - args[0][0] == 1
            and (self.toks[args[0][0]].value.lower() == "false")
        )

    def db(self, method: str, open_: int, line: int) -> None:
        """``DB::statement('SQL')`` and friends; ``DB::table('t')->…->delete()``."""
        low, args = method.lower(), self.args(open_)
        if low in _DB_SQL and args and self.toks[args[0][0]].kind == "string":
            # 'ALTER TABLE ' . $name . ' DROP COLUMN x': the literal parts, placeholders between
            start, end = args[0][0], min(args[0][1], args[0][0] + _MAX_ARG_TOKENS)
            parts = self.toks[start:end]
            text = "".join(
                t.value if t.kind == "string" else "" if t.value == "." else "_x_" for t in parts
            )
            first, last = parts[0].line, parts[-1].end_line
            for f in scan_sql(text, self.matcher, first_line=first):
                self.findings.append(f._replace(line=min(max(f.line, first), last)))
        elif low == "table":
            table = self.string(args[0]) if args else None
            methods = [link.method.lower() for link in self.chain(self.match[open_])]
            shown = f"DB::table('{table or '?'}')"
            if "delete" in methods and not any(
                m.startswith("where") or m == "find" for m in methods
            ):
                self.flag(
                    line, DELETE_ALL, f"{shown}->delete() without ->where() deletes every row"
                )
            if "truncate" in methods:
                self.flag(line, TRUNCATE, f"{shown}->truncate() deletes every row")
            writes = [m for m in methods if m in _DB_WRITES]
            if writes:
                self.financial(line, table, f"{shown}->{writes[0]}()")


def _scan_laravel(text: str, matcher: TableMatcher) -> list[Finding]:
    return _Laravel(text, matcher).run()
