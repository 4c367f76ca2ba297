"""YAML → plain Python for the approval policy, remembering the line of every key and item
(plus small helpers that phrase YAML locations and values for error messages).

PyYAML's ``safe_load`` loses line numbers and silently keeps the last of two duplicate
keys, so the policy loader composes the node graph itself and converts it here.

Deliberate differences from ``yaml.safe_load`` (YAML 1.1):

* mapping keys are always the key's text (``123:`` gives the key ``"123"``);
* only ``true``/``false`` (any case) are booleans; ``yes``/``no``/``on``/``off`` stay text,
  so that a ``"yes"`` never sneaks in as a boolean;
* duplicate keys, merge keys (``<<``), recursive aliases and tags other than the standard
  ones are reported as problems.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Loc = tuple[str | int, ...]

_MAX_NODES = 100_000
_MAX_DEPTH = 64
_BOOL_TAG = "tag:yaml.org,2002:bool"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_COLLECTION_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


def format_loc(loc: Loc) -> str:
    """``("gates", 0, "require", 1, "role")`` → ``gates[0].require[1].role``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def shown_value(value: Any) -> str:
    """Quote text, show plain numbers as is, describe anything else."""
    if isinstance(value, str):
        return repr(value)
    return str(value) if type(value) is int else describe_value(value)


def describe_value(value: Any) -> str:
    """A YAML-flavoured description of a bad value, for messages."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"{type(value).__name__} {str(value)[:40]!r}"


@dataclass
class ParsedYaml:
    """Result of :func:`parse_yaml`. ``data`` is ``None`` when the document could not be read."""

    data: Any = None
    lines: dict[Loc, int] = field(default_factory=dict)  # 1-based line of each key / item
    problems: list[tuple[int | None, str]] = field(default_factory=list)  # (line, reason)
    broken: set[Loc] = field(default_factory=set)  # values already reported as unreadable

    def is_broken(self, loc: Loc) -> bool:
        return any(loc[:end] in self.broken for end in range(len(loc) + 1))

    def line_of(self, loc: Loc) -> int | None:
        """Line of ``loc`` or, failing that, of its nearest ancestor that has one."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(loc[:end])
            if line is not None:
                return line
        return None


class _TooLarge(Exception):
    pass


class _Converter:
    def __init__(self, result: ParsedYaml) -> None:
        self.result = result
        self.count = 0
        self.active: set[int] = set()  # ids of collection nodes being converted (cycle check)
        self.ctor = SafeConstructor()

    def problem(self, node: Node, loc: Loc, reason: str, *, broken: bool = False) -> None:
        prefix = f"{format_loc(loc)}: " if loc else ""
        self.result.problems.append((node.start_mark.line + 1, prefix + reason))
        if broken:  # the value at loc became None: don't also complain about its type
            self.result.broken.add(loc)

    def convert(self, node: Node, loc: Loc) -> Any:
        self.count += 1
        if self.count > _MAX_NODES:
            raise _TooLarge(f"the file is too large (more than {_MAX_NODES} values)")
        if len(loc) > _MAX_DEPTH:
            raise _TooLarge(f"the file is nested too deeply (more than {_MAX_DEPTH} levels)")
        if isinstance(node, ScalarNode):
            return self.scalar(node, loc)
        if id(node) in self.active:
            self.problem(node, loc, "an alias refers to itself (recursive anchor)", broken=True)
            return None
        if node.tag not in _COLLECTION_TAGS:
            self.problem(node, loc, f"unsupported YAML tag {node.tag}", broken=True)
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                items = []
                for i, item in enumerate(node.value):
                    self.result.lines[(*loc, i)] = item.start_mark.line + 1
                    items.append(self.convert(item, (*loc, i)))
                return items
            assert isinstance(node, MappingNode)
            return self.mapping(node, loc)
        finally:
            self.active.discard(id(node))

    def mapping(self, node: MappingNode, loc: Loc) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == _MERGE_TAG:
                reason = "merge keys ('<<') are not supported; write the keys out"
                self.problem(key_node, loc, reason, broken=True)
                continue
            if not isinstance(key_node, ScalarNode):
                self.problem(key_node, loc, "a key must be plain text, not a list or mapping")
                continue
            key = str(key_node.value)
            if key in first_line:
                self.problem(
                    key_node, loc, f"duplicate key '{key}' (first on line {first_line[key]})"
                )
            else:
                first_line[key] = line
            self.result.lines[(*loc, key)] = line
            out[key] = self.convert(value_node, (*loc, key))
        return out

    def scalar(self, node: ScalarNode, loc: Loc) -> Any:
        if node.tag == _BOOL_TAG and str(node.value).lower() not in ("true", "false"):
            return str(node.value)  # YAML 1.2: yes/no/on/off are text
        try:
            return self.ctor.construct_object(node)
        except yaml.constructor.ConstructorError:
            self.problem(node, loc, f"unsupported YAML tag {node.tag}", broken=True)
        except Exception as exc:  # e.g. a date like 2024-13-45, an int with 5000 digits
            reason = f"cannot read value {str(node.value)[:40]!r}: {str(exc)[:80]}"
            self.problem(node, loc, reason, broken=True)
        return None


def _yaml_error_reason(exc: yaml.MarkedYAMLError) -> str:
    if "another document" in str(exc.problem):
        return "the file must hold a single YAML document (found another after '---')"
    reason = f"invalid YAML: {exc.problem or exc.context or 'syntax error'}"
    if exc.problem and exc.context:
        where = f" on line {exc.context_mark.line + 1}" if exc.context_mark else ""
        reason += f" ({exc.context}{where})"
    return reason


def parse_yaml(raw: bytes) -> ParsedYaml:
    """Compose ``raw`` with PyYAML's safe loader and convert it, collecting problems."""
    result = ParsedYaml()
    try:
        root = yaml.compose(raw, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        result.problems.append((mark.line + 1 if mark else None, _yaml_error_reason(exc)))
        return result
    except yaml.reader.ReaderError as exc:
        what = f"is not valid {exc.encoding} text" if exc.encoding else "cannot be read"
        result.problems.append((None, f"the file {what}: {exc.reason} (at byte {exc.position})"))
        return result
    except yaml.YAMLError as exc:
        result.problems.append((None, f"invalid YAML: {exc}"))
        return result
    except RecursionError:
        result.problems.append((None, "the file is nested too deeply"))
        return result
    if root is None:
        result.problems.append((None, "the file is empty (expected version, roles and gates)"))
        return result
    result.lines[()] = root.start_mark.line + 1
    try:
        result.data = _Converter(result).convert(root, ())
    except _TooLarge as exc:
        result.problems.append((None, str(exc)))
        result.data = None
    return result
