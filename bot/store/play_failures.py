"""Plays GitLab refused for good (400 while the job still reads `manual`): the request waits
in `play_failed`, with nothing played and nothing signed off, until an admin retries it."""

from __future__ import annotations

from sqlalchemy import select

from bot.store.db import Database
from bot.store.models import ApprovalRequest, RequestState
from bot.store.requests import lock

# A pipeline id fits a 64-bit column: longer digit strings can only be request ids.
MAX_ID_DIGITS = 18


def fail_play(db: Database, request_id: str, reason: str) -> ApprovalRequest | None:
    """playing → play_failed (None when another worker moved it first). No play of ours took
    effect (the job still read `manual` when GitLab refused), so the claim is cleared: a retry
    starts from scratch."""
    with db.transaction() as session:
        request = lock(session, request_id)
        if request.state != RequestState.PLAYING:
            return None
        request.state = RequestState.PLAY_FAILED
        request.state_reason = reason
        request.play_claimed_at = None
        return request


def reopen_for_retry(db: Database, request_id: str) -> ApprovalRequest | None:
    """play_failed → approved, ready for the exactly-once play (None when not play_failed)."""
    with db.transaction() as session:
        request = lock(session, request_id)
        if request.state != RequestState.PLAY_FAILED:
            return None
        request.state = RequestState.APPROVED
        request.state_reason = None
        return request


def find_failed_play(db: Database, request_or_pipeline: str) -> ApprovalRequest | None:
    """The play_failed request with this id, or of this pipeline id."""
    with db.sessions() as session:
        query = select(ApprovalRequest).where(ApprovalRequest.state == RequestState.PLAY_FAILED)
        if request_or_pipeline.isdigit() and len(request_or_pipeline) <= MAX_ID_DIGITS:
            query = query.where(
                (ApprovalRequest.id == request_or_pipeline)
                | (ApprovalRequest.pipeline_id == int(request_or_pipeline))
            )
        else:
            query = query.where(ApprovalRequest.id == request_or_pipeline)
        return session.execute(query.limit(1)).scalar_one_or_none()


def failed_plays(db: Database, limit: int) -> list[ApprovalRequest]:
    """Requests whose play GitLab refused, newest first."""
    with db.sessions() as session:
        query = (
            select(ApprovalRequest)
            .where(ApprovalRequest.state == RequestState.PLAY_FAILED)
            .order_by(ApprovalRequest.updated_at.desc())
            .limit(limit)
        )
        return list(session.execute(query).scalars())
