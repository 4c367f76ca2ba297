"""The audit-API outbox: messages written in the sign-off's transaction, delivered later.

A message is never lost (it commits with the ledger entry) and never sent twice for one
entry as far as the receiver can tell (its Idempotency-Key is derived from the entry's
hash, the same on every retry).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot import ledger
from bot.store.db import Database
from bot.store.models import ApprovalRequest, LedgerEntry, OutboxMessage, utcnow

if TYPE_CHECKING:
    from bot.checkpoints import Checkpoint

CLAIM_FOR = timedelta(seconds=60)
BATCH = 50


def add_deployment(
    session: Session, entry: LedgerEntry, request: ApprovalRequest, approvers: list[dict[str, Any]]
) -> None:
    approved_at = request.approved_at or request.played_at or utcnow()
    body = {
        "approved_by": [a["slack_user_id"] for a in approvers],
        "commit_sha": request.sha,
        "environment": request.environment,
        "pipeline_url": request.pipeline_url,
        "approved_at": ledger.iso_utc(approved_at),
        "project": request.project_path,
    }
    _add(session, entry, "deployments", body)


def add_rollback(
    session: Session, entry: LedgerEntry, request: ApprovalRequest, approvers: list[dict[str, Any]]
) -> None:
    """POST {AUDIT_API_URL}/rollbacks: who rolled which deployment back, and when."""
    body = {
        "rolled_back_by": [a["slack_user_id"] for a in approvers],
        "commit_sha": request.sha,
        "environment": request.environment,
        "pipeline_url": request.pipeline_url,
        "rolled_back_at": ledger.iso_utc(request.rolled_back_at or utcnow()),
        "rollback_job_id": request.rollback_job_id,
        "project": request.project_path,
    }
    _add(session, entry, "rollbacks", body)


def add_checkpoint(session: Session, checkpoint: Checkpoint) -> None:
    """POST {AUDIT_API_URL}/checkpoints: the chain head, anchored outside the database. The
    key derives from the head's hash, so the same head is sent once however often it is
    checkpointed (a second add fails on the unique key: the caller ignores that)."""
    session.add(
        OutboxMessage(
            ledger_sequence=checkpoint.sequence,
            endpoint="checkpoints",
            body=json.dumps(
                {
                    "sequence": checkpoint.sequence,
                    "hash": checkpoint.hash,
                    "recorded_at": checkpoint.recorded_at,
                    "signature": checkpoint.signature,
                },
                sort_keys=True,
            ),
            idempotency_key=f"approval-bot-checkpoint-{checkpoint.hash}",
            attempts=0,
            next_attempt_at=utcnow(),
            created_at=utcnow(),
        )
    )


def _add(session: Session, entry: LedgerEntry, endpoint: str, body: dict[str, Any]) -> None:
    # The key derives from the ledger entry, so every retry of this message carries it.
    body.update(ledger_sequence=entry.sequence, ledger_hash=entry.hash)
    session.add(
        OutboxMessage(
            ledger_sequence=entry.sequence,
            endpoint=endpoint,
            body=json.dumps(body, sort_keys=True),
            idempotency_key=f"approval-bot-{entry.hash}",
            attempts=0,
            next_attempt_at=utcnow(),
            created_at=utcnow(),
        )
    )


def claim_due(db: Database, now: datetime | None = None) -> list[OutboxMessage]:
    """Messages due for a delivery attempt, each claimed so no other sweep sends it now."""
    now = now or utcnow()
    with db.transaction() as session:
        due = list(
            session.execute(
                select(OutboxMessage)
                .where(OutboxMessage.delivered_at.is_(None), OutboxMessage.next_attempt_at <= now)
                .order_by(OutboxMessage.id)
                .limit(BATCH)
            ).scalars()
        )
    claimed = []
    for message in due:
        with db.transaction() as session:
            won = session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == message.id,
                    OutboxMessage.delivered_at.is_(None),
                    OutboxMessage.next_attempt_at == message.next_attempt_at,
                )
                .values(next_attempt_at=now + CLAIM_FOR)
            )
            if won.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(message)
    return claimed


def delivered(db: Database, message_id: int) -> None:
    with db.transaction() as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(delivered_at=utcnow(), attempts=OutboxMessage.attempts + 1, last_error=None)
        )


def failed(db: Database, message_id: int, attempts: int, error: str) -> datetime:
    """Schedule the next attempt with exponential backoff (capped at an hour, forever)."""
    delay = min(timedelta(hours=1), timedelta(seconds=5 * (1 << min(attempts, 12))))
    next_at = utcnow() + delay
    with db.transaction() as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(attempts=attempts + 1, next_attempt_at=next_at, last_error=error[:500])
        )
    return next_at


def pending_count(db: Database) -> int:
    with db.transaction() as session:
        count = session.execute(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.delivered_at.is_(None))
        ).scalar_one()
    return int(count)
