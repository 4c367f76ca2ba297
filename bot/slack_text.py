"""Kept for the modules that import `escape` from here: see bot.outside_text, where every
piece of outside text is made safe for where it lands."""

from __future__ import annotations

from bot.outside_text import slack_mrkdwn


def escape(text: str | None) -> str:
    """Outside text inside Slack mrkdwn (`&`, `<`, `>` escaped, invisibles removed)."""
    return slack_mrkdwn(text, limit=None)
