"""Laravel migrations: a small PHP tokenizer and the Schema / DB calls (see :mod:`bot.risk`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from bot.risk_sql import (
    ALTER_TYPE,
    DELETE_ALL,
    DROP_COLUMN,
    DROP_TABLE,
    FINANCIAL,
    NOT_NULL,
    TRUNCATE,
    Finding,
    TableMatcher,
    name_parts,
    scan_sql,
)
from bot.sql_tokens import lowered

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


_LARAVEL_COLUMNS = lowered(  # Blueprint column types (NOT NULL unless ->nullable())
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
_LARAVEL_DROPS = lowered(
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


def scan_laravel(text: str, matcher: TableMatcher) -> list[Finding]:
    return _Laravel(text, matcher).run()
