"""GitLab write-back: the `compliance/sign-off` commit status follows the request, and a
note names the approvers once the gate is played. Each runs as its own RQ job (retried), so
a GitLab hiccup never holds up an approval, and a refused status never holds up the note."""

from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import RedisError

from bot.gitlab import GitLabError, StatusTransitionRefused
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
    RequestState.PLAY_FAILED: ("failed", "Approved, but GitLab refused to play the gate"),
}
BYPASSED = ("failed", "Gate played without a sign-off (bypass)")
# The state last posted for a request: GitLab answers 400 to pending or running again, so a
# repeat is not sent (and a refusal that says it is already there counts as done).
POSTED_KEY = "approval-bot:commit-status:{request_id}"
POSTED_TTL_S = 30 * 24 * 3600
# GitLab refuses these: the same open state again, or back from running to pending.
NOT_AFTER = {"pending": ("pending", "running"), "running": ("running",)}


def schedule(rt: Runtime, request: ApprovalRequest, note: str | None = None) -> None:
    """Queue the write-back for a request's current state, and the note as its own job
    (best effort, logged)."""
    try:
        queue = jobqueue.make_queue(rt.redis)
        jobqueue.enqueue(queue, jobqueue.WRITEBACK, {"request_id": request.id})
        if note:
            jobqueue.enqueue(
                queue, jobqueue.WRITEBACK_NOTE, {"request_id": request.id, "note": note}
            )
    except Exception as exc:  # Redis down: the status is cosmetic next to the ledger
        log.warning("GitLab write-back for %s not queued: %s", request.id, type(exc).__name__)


def update(payload: dict[str, Any]) -> str:
    """The commit status for the request's current state (GitLab errors: RQ retries)."""
    rt = runtime()
    request = store.get(rt.db, payload["request_id"])
    if payload.get("note"):  # queued by an older version with the note in the same job
        queue = jobqueue.make_queue(rt.redis)
        jobqueue.enqueue(queue, jobqueue.WRITEBACK_NOTE, {**payload, "request_id": request.id})
    if not request.sha:
        return "no-sha"
    state, description = status_of(request)
    key = POSTED_KEY.format(request_id=request.id)
    if _posted(rt, key) in NOT_AFTER.get(state, ()):
        return "unchanged"
    try:
        rt.gitlab.set_commit_status(
            request.project_id,
            request.sha,
            state,
            description,
            _link(rt, request),
            request.pipeline_id,
        )
    except StatusTransitionRefused as exc:
        log.info("commit status of %s already %s or past it: %s", request.id, state, exc)
    except GitLabError as exc:
        log.warning("GitLab commit status for %s failed: %s", request.id, exc)
        raise  # RQ retries with backoff
    _remember(rt, key, state)
    return state


def note(payload: dict[str, Any]) -> str:
    """The note naming the approvers, on the merge request (else the commit)."""
    rt = runtime()
    request = store.get(rt.db, payload["request_id"])
    if not request.sha:
        return "no-sha"
    try:
        rt.gitlab.comment(
            request.project_id, request.sha, request.merge_request_iid, payload["note"]
        )
    except GitLabError as exc:
        log.warning("GitLab note for %s failed: %s", request.id, exc)
        raise  # RQ retries with backoff
    return "noted"


def _posted(rt: Runtime, key: str) -> str | None:
    try:
        value = rt.redis.get(key)
    except RedisError:  # Redis hiccup: post anyway, GitLab's answer decides
        return None
    return value.decode() if isinstance(value, bytes) else None


def _remember(rt: Runtime, key: str, state: str) -> None:
    try:
        rt.redis.set(key, state, ex=POSTED_TTL_S)
    except RedisError as exc:
        log.info("commit status memo not kept: %s", type(exc).__name__)


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
