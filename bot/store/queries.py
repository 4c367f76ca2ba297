"""Read-only queries for the periodic sweep and the admin views."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update

from bot.store.db import Database
from bot.store.models import ApprovalRequest, RequestState, utcnow
from bot.store.plays import GATE_PLAY, Play
from bot.store.requests import PLAY_LEASE
from bot.store.rollbacks import ROLLBACK_PLAY, RollbackState

# An approved request not claimed within this long lost its worker (a claim takes ms).
APPROVED_GRACE = timedelta(seconds=20)
# A pending request still without a Slack message after this long lost its post.
UNPOSTED_GRACE = timedelta(seconds=30)


def _requests(db: Database, *conditions: Any) -> list[ApprovalRequest]:
    with db.transaction() as session:
        query = select(ApprovalRequest).where(*conditions)
        return list(session.execute(query).scalars())


def due_for_expiry(db: Database, now: datetime | None = None) -> list[ApprovalRequest]:
    now = now or utcnow()
    return _requests(
        db, ApprovalRequest.state == RequestState.PENDING, ApprovalRequest.expires_at <= now
    )


def stuck_plays(
    db: Database, lease: timedelta = PLAY_LEASE, now: datetime | None = None
) -> list[ApprovalRequest]:
    """Approved requests nobody is playing, and plays whose worker's lease ran out."""
    return _stuck(db, GATE_PLAY, lease, now)


def stuck_rollbacks(
    db: Database, lease: timedelta = PLAY_LEASE, now: datetime | None = None
) -> list[ApprovalRequest]:
    """Approved rollbacks nobody is playing, and rollback plays whose lease ran out."""
    return _stuck(db, ROLLBACK_PLAY, lease, now)


def _stuck(
    db: Database, play: Play, lease: timedelta, now: datetime | None
) -> list[ApprovalRequest]:
    now = now or utcnow()
    return _requests(
        db,
        or_(
            and_(play.state == play.ready, ApprovalRequest.updated_at < now - APPROVED_GRACE),
            and_(play.state == play.playing, play.claimed_at < now - lease),
        ),
    )


def newer_deployment(db: Database, request: ApprovalRequest) -> ApprovalRequest | None:
    """A gate of the same project and environment played after this one: production no
    longer runs this request's change, so its rollback would undo the wrong release."""
    played_at = request.played_at
    if played_at is None:
        return None
    found = _requests(
        db,
        ApprovalRequest.project_id == request.project_id,
        ApprovalRequest.environment == request.environment
        if request.environment is not None
        else ApprovalRequest.environment.is_(None),
        ApprovalRequest.state == RequestState.PLAYED,
        ApprovalRequest.played_at > played_at,
        ApprovalRequest.id != request.id,
    )
    return max(found, key=lambda r: r.played_at or played_at, default=None)


def offered_before(db: Database, newer: ApprovalRequest) -> list[ApprovalRequest]:
    """Rollbacks still offered for gates of the same project and environment played before
    `newer`: production has moved on from them."""
    played_at = newer.played_at
    if played_at is None:
        return []
    return _requests(
        db,
        ApprovalRequest.project_id == newer.project_id,
        ApprovalRequest.environment == newer.environment
        if newer.environment is not None
        else ApprovalRequest.environment.is_(None),
        ApprovalRequest.state == RequestState.PLAYED,
        ApprovalRequest.rollback_state == RollbackState.OFFERED,
        ApprovalRequest.played_at < played_at,
        ApprovalRequest.id != newer.id,
    )


def unposted(db: Database, now: datetime | None = None) -> list[ApprovalRequest]:
    now = now or utcnow()
    return _requests(
        db,
        ApprovalRequest.state == RequestState.PENDING,
        ApprovalRequest.message_ts.is_(None),
        ApprovalRequest.created_at < now - UNPOSTED_GRACE,
    )


@dataclass(frozen=True)
class SameRef:
    """The requests of other pipelines for a request's project, ref and gate job name."""

    newer: ApprovalRequest | None  # the latest of later pipelines, if any
    older_pending: list[ApprovalRequest]  # pending requests of earlier pipelines


def same_ref(db: Database, request: ApprovalRequest) -> SameRef:
    """A newer request for the ref, and the older pending ones, in one query.

    Read after the request's own commit, so of two racing pipelines at least the later
    reader sees the other."""
    rows = _requests(
        db,
        ApprovalRequest.project_id == request.project_id,
        ApprovalRequest.ref == request.ref,
        ApprovalRequest.job_name == request.job_name,
        or_(
            ApprovalRequest.pipeline_id > request.pipeline_id,
            and_(
                ApprovalRequest.pipeline_id < request.pipeline_id,
                ApprovalRequest.state == RequestState.PENDING,
            ),
        ),
    )
    newer = [r for r in rows if r.pipeline_id > request.pipeline_id]
    return SameRef(
        newer=max(newer, key=lambda r: r.pipeline_id) if newer else None,
        older_pending=[r for r in rows if r.pipeline_id < request.pipeline_id],
    )


def pending_posted(db: Database) -> list[ApprovalRequest]:
    """Pending requests that have a Slack message (candidates for reminders)."""
    return _requests(
        db,
        ApprovalRequest.state == RequestState.PENDING,
        ApprovalRequest.message_ts.is_not(None),
    )


def mark(db: Database, request_id: str, column: str, before: datetime | None) -> bool:
    """Set `reminded_at` / `escalated_at` to now if it still holds `before`: one sweep wins."""
    field = getattr(ApprovalRequest, column)
    condition = field.is_(None) if before is None else field == before
    with db.transaction() as session:
        result = session.execute(
            update(ApprovalRequest)
            .where(ApprovalRequest.id == request_id, condition)
            .values({column: utcnow()})
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]
