"""What `approval-bot --help` shows: every command line, and every option with its default."""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Iterator

PROG = "approval-bot"
COMMANDS_HEADING = "commands (`approval-bot COMMAND --help` for one):"
DEFAULT_SUFFIX = " (default: %(default)s)"
LINE_WIDTH = 79
# Defaults not worth printing: "no value" and store_true's False.
_UNSHOWN_DEFAULTS = (None, False, argparse.SUPPRESS)


class DefaultsFormatter(argparse.RawDescriptionHelpFormatter):
    """Appends "(default: …)" to an option's help unless its text already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in _UNSHOWN_DEFAULTS or "default" in text or not action.option_strings:
            return text
        return text + DEFAULT_SUFFIX


def finish(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Give every (sub)parser the defaults formatter; list every command line in the epilog."""
    for each in _all_parsers(parser):
        each.formatter_class = DefaultsFormatter
    found = commands(parser)
    width = max(len(_head(path)) for path, _text in found) + 2
    lines = [_command_line(_head(path), text, width) for path, text in found]
    parser.epilog = "\n".join([COMMANDS_HEADING, *lines])
    return parser


def _head(path: list[str]) -> str:
    return f"  {PROG} {' '.join(path)}"


def _command_line(head: str, text: str, width: int) -> str:
    return textwrap.fill(
        text or "-", LINE_WIDTH, initial_indent=head.ljust(width), subsequent_indent=" " * width
    )


def commands(parser: argparse.ArgumentParser) -> list[tuple[list[str], str]]:
    """Every runnable command line (`db upgrade`, `ledger export`, …) with its help text."""
    found: list[tuple[list[str], str]] = []
    _walk(parser, [], "", found)
    return found


def _walk(
    parser: argparse.ArgumentParser,
    path: list[str],
    text: str,
    found: list[tuple[list[str], str]],
) -> None:
    choices = _subcommands(parser)
    if not choices:
        found.append((path, text))
        return
    for name, (child, help_text) in choices.items():
        _walk(child, [*path, name], help_text, found)


def _subcommands(
    parser: argparse.ArgumentParser,
) -> dict[str, tuple[argparse.ArgumentParser, str]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            return {name: (child, helps.get(name, "")) for name, child in action.choices.items()}
    return {}


def _all_parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for child, _text in _subcommands(parser).values():
        yield from _all_parsers(child)
