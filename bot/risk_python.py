"""Django migrations and Alembic revisions, read with :mod:`ast` (see :mod:`bot.risk`)."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath

from bot.risk_sql import (
    ALTER_TYPE,
    DELETE_ALL,
    DROP_COLUMN,
    DROP_TABLE,
    FINANCIAL,
    NOT_NULL,
    Finding,
    TableMatcher,
    name_parts,
    scan_sql,
)
from bot.sql_tokens import words

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


def scan_python(path: str, text: str, matcher: TableMatcher) -> list[Finding]:
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
        words(
            "AddField RemoveField AlterField RenameField AddIndex RemoveIndex RenameIndex "
            "AddConstraint RemoveConstraint AlterConstraint"
        ),
        _MODEL_NAME,
    ),
    **dict.fromkeys(
        words(
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
        words(
            "add_column drop_column alter_column drop_table create_table create_table_comment "
            "drop_table_comment"
        ),
        ((0, "table_name"),),
    ),
    **dict.fromkeys(
        words(
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
