"""Bypass detection: a gate job that ran without the bot's sign-off is evidence too."""

from __future__ import annotations

import logging

from bot.admins import message_admins
from bot.blockkit_fit import clip_mrkdwn
from bot.blockkit_limits import MESSAGE_TEXT_LIMIT
from bot.events import GateEvent
from bot.outside_text import slack_code, slack_link, slack_mrkdwn
from bot.runtime import Runtime
from bot.slack import SlackError
from bot.store import requests as store
from bot.store.models import ApprovalRequest, RequestState
from workers.support import announce, request_fields

log = logging.getLogger(__name__)

OURS = (RequestState.APPROVED, RequestState.PLAYING, RequestState.PLAYED)
ALERT = (
    ":rotating_light: *Gate bypassed*: the {job} job of {project} pipeline {pipeline} "
    "was started in GitLab without a sign-off from approval-bot (job status: {status}). "
    "It is recorded in the ledger as a bypass."
)


def check(rt: Runtime, status: str, request: ApprovalRequest) -> str:
    """GitLab shows the gate job played (`status`: pending, running, success …)."""
    if request.state in OURS:
        return "played-by-us"
    # The status lands in the request's state reason, shown as mrkdwn.
    recorded, entry = store.record_bypass(rt.db, request.id, slack_mrkdwn(status))
    if entry is None:
        return "bypass-known"
    log.error(
        "gate bypassed: %s pipeline %s job %s (%s); ledger record %s",
        recorded.project_path,
        recorded.pipeline_id,
        recorded.job_id,
        status,
        entry.sequence,
    )
    announce(rt, recorded, None)
    _alert(rt, recorded, status)
    return "bypass"


def check_unseen(rt: Runtime, facts: GateEvent) -> str:
    """A gate GitLab shows played before the bot ever saw it waiting (`facts`: GitLab's):
    keep a (closed) request for it, and record the bypass."""
    loaded = rt.policy.current
    gate = loaded.policy.gate_for(facts["project_path"], facts["job_name"])
    if gate is None:
        return "no-gate"
    fields = request_fields(facts, gate, loaded.version, RequestState.CLOSED)
    request, _ = store.create(rt.db, fields)
    return check(rt, facts["job_status"], request)


def alert_text(request: ApprovalRequest, status: str) -> str:
    """The bypass alert (channel and admins), its GitLab facts escaped."""
    text = ALERT.format(
        job=slack_code(request.job_name),
        project=slack_mrkdwn(request.project_path),
        pipeline=slack_link(request.pipeline_url, f"#{request.pipeline_id}"),
        status=slack_mrkdwn(status),
    )
    return clip_mrkdwn(text, MESSAGE_TEXT_LIMIT)


def _alert(rt: Runtime, request: ApprovalRequest, status: str) -> None:
    text = alert_text(request, status)
    try:
        rt.slack.post_message(request.channel, text)
    except SlackError as exc:
        log.error("cannot alert %s of a bypass: %s", request.channel, exc.error)
    message_admins(rt, text)
