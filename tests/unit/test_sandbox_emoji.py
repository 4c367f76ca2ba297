"""The sandbox page renders every emoji shortcode the bot writes into Slack text (issue #17:
`:leftwards_arrow_with_hook:` showed raw)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from bot.sandbox.mrkdwn import EMOJI, mrkdwn

ROOT = Path(__file__).resolve().parents[2]
# A :shortcode: standing alone in a string (not `approval-bot:metrics:…`, not a time).
SHORTCODE = re.compile(r"(?<![\w:/-]):([a-z][a-z0-9_+-]*):(?![\w:/-])")
NOT_EMOJI = {"memory"}  # SQLite's ":memory:"
SKIPPED = ("sandbox", "simulators")  # the page and the fakes, not the bot's messages


def shortcodes_in_the_bot() -> set[str]:
    found: set[str] = set()
    for package in ("bot", "workers"):
        for path in (ROOT / package).rglob("*.py"):
            if not set(SKIPPED) & set(path.parts):
                found |= _shortcodes(path)
    return found - NOT_EMOJI


def _shortcodes(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    return {
        code
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        for code in SHORTCODE.findall(node.value)
    }


FOUND = sorted(shortcodes_in_the_bot())


def test_the_bot_writes_emoji_shortcodes() -> None:
    assert {"white_check_mark", "rotating_light", "leftwards_arrow_with_hook"} <= set(FOUND)


@pytest.mark.parametrize("code", FOUND)
def test_each_shortcode_the_bot_writes_renders_as_an_emoji(code: str) -> None:
    html = mrkdwn(f":{code}: *Rolled back*", lambda user: user)
    assert f":{code}:" not in html
    assert html.startswith(EMOJI[code])
