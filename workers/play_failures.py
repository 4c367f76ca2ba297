"""A play GitLab refused for good (400 while the job still reads `manual`: a protected
environment, a permission the bot lacks): the request's message says so, its channel and
the admins are told once, nothing is signed off, and an admin may retry the play."""

from __future__ import annotations

import logging
from typing import Any

from bot.admins import tell_admins_once
from bot.gitlab import JobUnplayable
from bot.outside_text import slack_format
from bot.runtime import Runtime
from bot.store.models import ApprovalRequest
from bot.store.play_failures import fail_play
from workers.context import runtime
from workers.support import announce, notify_thread

log = logging.getLogger(__name__)

PLAY_FAILED = (
    "GitLab refused to play the gate job ({error}). Nothing was played or signed off; "
    "once GitLab allows the play, an admin can run `/approvals retry {request}`."
)
PLAY_FAILED_CHANNEL = (
    ":x: The approved gate of {project} pipeline #{pipeline} was not played: GitLab refused "
    "({error}). An admin can retry with `/approvals retry {request}` once GitLab allows it."
)
PLAY_FAILED_ADMIN = (
    ":warning: GitLab refused to play the approved gate of {project} pipeline #{pipeline} "
    "({error}). Give the bot's GitLab user permission to run the gate job (protected "
    "environment?), then run `/approvals retry {request}`."
)


def play_refused(rt: Runtime, request: ApprovalRequest, exc: JobUnplayable) -> str:
    """Record the refusal once and tell everyone who needs to know, once."""
    facts: dict[str, Any] = {
        "project": request.project_path,
        "pipeline": request.pipeline_id,
        "error": str(exc),
        "request": request.id,
    }
    failed = fail_play(rt.db, request.id, slack_format(PLAY_FAILED, **facts))
    if failed is None:
        return "play-claimed-elsewhere"
    log.error("play of %s refused for good: %s", request.id, exc)
    announce(rt, failed, None)
    notify_thread(rt, failed, slack_format(PLAY_FAILED_CHANNEL, **facts))
    tell_admins_once(rt, f"play-failed:{request.id}", slack_format(PLAY_FAILED_ADMIN, **facts))
    return "play-failed"


def retry_play(payload: dict[str, Any]) -> str:
    """An admin's `/approvals retry`: the same exactly-once play as after the quorum."""
    from workers.jobs import finish_approved  # jobs imports this module

    return finish_approved(runtime(), payload["request_id"])
