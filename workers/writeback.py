"""GitLab write-back: the `compliance/sign-off` commit status follows the request, and a
note names the approvers once the gate is played. Runs as its own RQ job (retried), so a
GitLab hiccup never holds up an approval."""

from __future__ import annotations

import logging
from typing import Any

from bot.gitlab import GitLabError
from bot.outside_text import gitlab_status
from bot.runtime import Runtime
from bot.slack import SlackError
from bot.store import requests as store
from bot.store.models import ApprovalRequest, RequestState
from workers import queue as jobqueue
from workers.context import runtime

log = logging.getLogger(__name__)

STATES: dict[str, tuple[str, str]] = {
    RequestState.PENDING: ("pending", "Waiting for approval in Slack"),
    RequestState.APPROVED: ("running", "Approved; playing the gate"),
    RequestState.PLAYING: ("running", "Approved; playing the gate"),
    RequestState.PLAYED: ("success", "Signed off"),
    RequestState.REJECTED: ("failed", "Rejected"),
    RequestState.EXPIRED: ("canceled", "Expired without approval"),
    RequestState.SUPERSEDED: ("canceled", "Superseded by a newer pipeline"),
    RequestState.CLOSED: ("canceled", "Closed without approval"),
}
BYPASSED = ("failed", "Gate played without a sign-off (bypass)")


def schedule(rt: Runtime, request: ApprovalRequest, note: str | None = None) -> None:
    """Queue the write-back for a request's current state (best effort, logged)."""
    try:
        queue = jobqueue.make_queue(rt.redis)
        jobqueue.enqueue(queue, jobqueue.WRITEBACK, {"request_id": request.id, "note": note})
    except Exception as exc:  # Redis down: the status is cosmetic next to the ledger
        log.warning("GitLab write-back for %s not queued: %s", request.id, type(exc).__name__)


def update(payload: dict[str, Any]) -> str:
    rt = runtime()
    request = store.get(rt.db, payload["request_id"])
    if not request.sha:
        return "no-sha"
    state, description = status_of(request)
    try:
        rt.gitlab.set_commit_status(
            request.project_id,
            request.sha,
            state,
            description,
            _link(rt, request),
            request.pipeline_id,
        )
        if payload.get("note"):
            rt.gitlab.comment(
                request.project_id, request.sha, request.merge_request_iid, payload["note"]
            )
    except GitLabError as exc:
        log.warning("GitLab write-back for %s failed: %s", request.id, exc)
        raise  # RQ retries with backoff
    return state


def status_of(request: ApprovalRequest) -> tuple[str, str]:
    """The commit status (state, description) for a request; a reject reason is outside
    text, made safe for a status description."""
    state, description = BYPASSED if request.bypassed_at else STATES[request.state]
    if request.state == RequestState.REJECTED and request.reject_reason:
        description = gitlab_status(f"Rejected: {request.reject_reason}")
    return state, description


def _link(rt: Runtime, request: ApprovalRequest) -> str | None:
    """The Slack message, where the evidence is; else the pipeline."""
    if request.message_ts:
        try:
            return rt.slack.permalink(request.channel, request.message_ts)
        except SlackError:
            pass
    return request.pipeline_url
