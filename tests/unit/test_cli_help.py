"""`approval-bot --help` and each command's help, as printed (issue #17, item 5)."""

from __future__ import annotations

import argparse

import pytest

from bot.cli import build_parser, main


def help_of(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def command_lines(parser: argparse.ArgumentParser, path: list[str]) -> list[list[str]]:
    """Every runnable command line (`db upgrade`, `ledger export`, …) of the parser."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [path]
    return [
        line
        for name, child in subs[0].choices.items()
        for line in command_lines(child, [*path, name])
    ]


COMMANDS = command_lines(build_parser(), [])


def test_the_top_level_help_lists_every_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_of(capsys)
    for expected in (
        "web",
        "worker",
        "db upgrade",
        "config check",
        "reconcile",
        "policy explain",
        "scan-migrations",
        "sandbox",
        "ledger verify",
        "ledger export",
    ):
        assert f"  approval-bot {expected} " in text, expected
    for path in COMMANDS:
        assert f"  approval-bot {' '.join(path)} " in text


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_option_has_help_and_shows_its_default(
    capsys: pytest.CaptureFixture[str], path: list[str]
) -> None:
    text = " ".join(help_of(capsys, *path).split())  # argparse wraps lines
    assert text.startswith(f"usage: approval-bot {' '.join(path)} ")
    parser = _parser_of(path)
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = action.option_strings[-1] if action.option_strings else action.dest
        assert action.help, f"{' '.join(path)} {name} has no help text"
        if action.option_strings and action.default not in (None, False):
            assert f"default: {action.default}" in text, f"{name} does not show its default"


@pytest.mark.parametrize(
    ("path", "usage"),
    [
        (["db", "upgrade"], "usage: approval-bot db upgrade [-h]\n"),
        (["config", "check"], "usage: approval-bot config check [-h] [--policy POLICY]\n"),
    ],
)
def test_db_upgrade_and_config_check_show_their_own_usage(
    capsys: pytest.CaptureFixture[str], path: list[str], usage: str
) -> None:
    assert help_of(capsys, *path).startswith(usage)


def _parser_of(path: list[str]) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser
