"""SQL text as tokens: words, quoted identifiers, strings, numbers and punctuation, with
comments dropped and a separator for every statement delimiter outside strings (``;``, or
the one MySQL's ``DELIMITER`` sets). Used by :mod:`bot.risk_sql`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal, NamedTuple

Dialect = Literal["generic", "mysql", "postgres"]


class Token(NamedTuple):
    kind: str  # "word", "ident" (quoted identifier), "string", "number", "punct", "sep"
    value: str  # identifiers unquoted; strings without their quotes
    key: str  # upper-cased value for words (keywords), "" otherwise
    line: int


def words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def lowered(text: str) -> frozenset[str]:
    return frozenset(text.lower().split())


# --- tokenizer ----------------------------------------------------------------------------

_WORD = re.compile(r"[^\W\d][\w$]*")
_NUMBER = re.compile(r"\d+(?:\.\d*)?(?:[eE][+-]?\d+)?")
_DOLLAR = re.compile(r"\$(?:[^\W\d]\w*)?\$")
_EXEC_COMMENT = re.compile(r"/\*M?!\d*")
_SPECIAL = {
    ("'", True): re.compile(r"['\\]"),
    ("'", False): re.compile(r"'"),
    ('"', True): re.compile(r'["\\]'),
    ('"', False): re.compile(r'"'),
    ("`", False): re.compile(r"`"),
}


def _quoted(text: str, start: int, quote: str, backslash: bool) -> tuple[int, str]:
    """End index and raw content of the quoted token opening at ``start`` (doubled quotes and,
    if ``backslash``, backslash escapes stay inside; an unterminated one runs to the end)."""
    special = _SPECIAL[quote, backslash]
    j = start + 1
    while (m := special.search(text, j)) is not None:
        k = m.start()
        if text[k] == "\\" or text.startswith(quote * 2, k):
            j = k + 2
        else:
            return k + 1, text[start + 1 : k]
    return len(text), text[start + 1 :]


def _line_start(text: str, i: int, after_semicolon: bool) -> bool:
    """Only blanks (or, with ``after_semicolon``, a ``;`` and blanks) before ``i`` on its line."""
    k = i - 1
    while k >= 0 and text[k] in " \t\r\f":
        k -= 1
    return k < 0 or text[k] == "\n" or (after_semicolon and text[k] == ";")


class _Lexer:
    """The state of one :func:`tokenize` run."""

    def __init__(self, text: str, dialect: Dialect, first_line: int) -> None:
        self.text = text
        self.mysql, self.postgres = dialect == "mysql", dialect == "postgres"
        self.generic = dialect == "generic"
        self.tokens: list[Token] = []
        self.line, self.counted = first_line, 0
        self.delimiter = ";"
        self.in_exec_comment = False

    def emit(self, kind: str, value: str, key: str, at: int) -> None:
        self.line += self.text.count("\n", self.counted, at)
        self.counted = at
        self.tokens.append(Token(kind, value, key, self.line))

    def run(self) -> list[Token]:
        text, i, n = self.text, 0, len(self.text)
        while i < n:
            c = text[i]
            if c.isspace():
                i += 1
            elif self.delimiter != ";" and text.startswith(self.delimiter, i):
                self.emit("sep", self.delimiter, "", i)
                i += len(self.delimiter)
            elif c in "-/#*" and (skipped := self.comment(i)) is not None:
                i = skipped
            elif c in "'\"`$":
                i = self.quoted(i)
            elif (m := _WORD.match(text, i)) is not None:
                i = self.word(i, m)
            elif (m := _NUMBER.match(text, i)) is not None:
                self.emit("number", m.group(), "", i)
                i = m.end()
            else:
                kind = "sep" if c == ";" and self.delimiter == ";" else "punct"
                self.emit(kind, c, "", i)
                i += 1
        return self.tokens

    def comment(self, i: int) -> int | None:
        """End of the comment (or comment marker) at ``i``; None if there is none."""
        text, n = self.text, len(self.text)
        if text.startswith("--", i) or (
            text[i] == "#" and (self.mysql or (self.generic and _line_start(text, i, True)))
        ):
            j = text.find("\n", i)
            return n if j < 0 else j
        if text.startswith("/*", i):
            m = None if self.postgres else _EXEC_COMMENT.match(text, i)
            if m is not None:  # MySQL executable comment /*!40101 … */: its content is SQL
                self.in_exec_comment = True
                return m.end()
            j = text.find("*/", i + 2)
            return n if j < 0 else j + 2
        if self.in_exec_comment and text.startswith("*/", i):
            self.in_exec_comment = False
            return i + 2
        return None

    def quoted(self, i: int) -> int:
        """A string, quoted identifier or dollar-quoted string at ``i``; the index after it."""
        text, c = self.text, self.text[i]
        if c == "$":
            m = None if self.mysql else _DOLLAR.match(text, i)
            if m is None:
                self.emit("punct", c, "", i)
                return i + 1
            j = text.find(m.group(), m.end())
            body_end = len(text) if j < 0 else j
            self.emit("string", text[m.end() : body_end], "", i)
            return len(text) if j < 0 else j + len(m.group())
        end, raw = _quoted(text, i, c, self.mysql and c != "`")
        if c == "'":
            self.emit("string", raw, "", i)
        else:
            self.emit("ident", raw.replace(c * 2, c), "", i)
        return end

    def word(self, i: int, m: re.Match[str]) -> int:
        text, word = self.text, m.group()
        key = word.upper()
        if key == "E" and text.startswith("'", m.end()):  # PostgreSQL E'…' escape string
            end, raw = _quoted(text, m.end(), "'", True)
            self.emit("string", raw, "", i)
            return end
        if key == "DELIMITER" and not self.postgres and _line_start(text, i, False):
            eol = text.find("\n", i)
            eol = len(text) if eol < 0 else eol
            rest = text[m.end() : eol].split()
            if rest:  # MySQL client: DELIMITER // … //
                self.emit("sep", self.delimiter, "", i)
                self.delimiter = rest[0]
                return eol
        self.emit("word", word, key, i)
        return m.end()


def tokenize(text: str, dialect: Dialect = "generic", first_line: int = 1) -> list[Token]:
    """Tokens of ``text``; never raises. Line numbers start at ``first_line``."""
    return _Lexer(text, dialect, first_line).run()


_PLPGSQL_BREAKS = frozenset({"BEGIN", "THEN", "ELSE", "LOOP", "DECLARE", "EXCEPTION"})


def split_statements(tokens: Iterable[Token], plpgsql: bool = False) -> list[list[Token]]:
    """Statements between separators. In PL/pgSQL bodies, block and control keywords (BEGIN,
    THEN, ELSE, LOOP, ...) also start a new statement, except inside CASE expressions."""
    statements: list[list[Token]] = []
    current: list[Token] = []
    case_depth = 0
    for tok in tokens:
        if tok.kind == "sep" or (plpgsql and not case_depth and tok.key in _PLPGSQL_BREAKS):
            if current:
                statements.append(current)
            current, case_depth = [], 0
            continue
        if plpgsql and tok.key == "CASE":
            case_depth += 1
        elif plpgsql and tok.key == "END" and case_depth:
            case_depth -= 1
        current.append(tok)
    if current:
        statements.append(current)
    return statements
