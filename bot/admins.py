"""Telling the policy's admins about problems only they can fix, by Slack direct message."""

from __future__ import annotations

import logging

from redis.exceptions import RedisError

from bot.runtime import Runtime
from bot.slack import SlackError

log = logging.getLogger(__name__)

NOTICE_TTL_S = 24 * 3600


def message_admins(rt: Runtime, text: str) -> None:
    """A direct message to each admin (a failure for one is logged, the others still go)."""
    for admin in rt.policy.current.policy.admins:
        try:
            rt.slack.direct_message(admin, text)
        except SlackError as exc:
            log.error("cannot message admin %s: %s", admin, exc.error)


def tell_admins_once(rt: Runtime, key: str, text: str) -> None:
    """A problem an admin must fix: one DM per admin per problem per day, shared across
    processes through Redis (told twice rather than never when Redis is down)."""
    try:
        first = rt.redis.set(f"approval-bot:admin-notice:{key}", "1", nx=True, ex=NOTICE_TTL_S)
    except RedisError:
        first = True
    if not first:
        return
    log.error("admins notified: %s", text)
    message_admins(rt, text)
