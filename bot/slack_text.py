"""Text from GitLab and people, made safe to put into Slack mrkdwn.

Slack reads `<…>` as links and mentions and `&` as the start of an entity, so a commit
title like `Fix <b> & co` would be mangled (or form a link) unless escaped. Slack asks for
exactly these three replacements: https://api.slack.com/reference/surfaces/formatting
"""

from __future__ import annotations


def escape(text: str | None) -> str:
    if not text:
        return ""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
