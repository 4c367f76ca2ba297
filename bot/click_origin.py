"""Did a click come from the bot's own message for the request? (pure, no I/O)

A button's value names a request, but anyone able to get a signed click to the bot (a
copied button, another channel, a message edited by another app) could name any request:
a click counts only when its channel and message are the request's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from bot.outside_text import slack_channel

NOT_ITS_MESSAGE = (
    "This button is not on the approval request's own message, so the click was not "
    "counted. Use the buttons on the request's message in {channel}."
)


class _PostedRequest(Protocol):
    channel: str
    message_ts: str | None
    rollback_offer_ts: str | None
    rollback_alert_ts: str | None


def not_its_message(request: _PostedRequest) -> str:
    return NOT_ITS_MESSAGE.format(channel=slack_channel(request.channel))


def from_message(click: Mapping[str, Any], channel: str, message_ts: Iterable[str | None]) -> bool:
    """The click's channel is `channel` and its message one of `message_ts`."""
    allowed = {ts for ts in message_ts if ts}
    return bool(
        allowed and click.get("message_channel") == channel and click.get("message_ts") in allowed
    )


def from_request_message(click: Mapping[str, Any], request: _PostedRequest) -> bool:
    return from_message(click, request.channel, [request.message_ts])


def from_rollback_message(click: Mapping[str, Any], request: _PostedRequest) -> bool:
    """Roll back lives on the rollback replies in the request's thread."""
    return from_message(
        click, request.channel, [request.rollback_offer_ts, request.rollback_alert_ts]
    )
