"""Tables: approval requests (a state machine), every decision, and the ledger."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bot.store.limits import FULL_PATH_MAX, URL_MAX


def utcnow() -> datetime:
    """Naive UTC: stored the same on SQLite and PostgreSQL."""
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class RequestState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    PLAYING = "playing"
    PLAYED = "played"
    REJECTED = "rejected"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"
    CLOSED = "closed"
    # GitLab refused the play for good (still manual): no sign-off; an admin may retry it.
    PLAY_FAILED = "play_failed"


OPEN_STATES = (RequestState.PENDING, RequestState.APPROVED, RequestState.PLAYING)


class ApprovalRequest(Base):
    """One request per gate job; its state only moves forward (see bot.store.requests)."""

    __tablename__ = "approval_requests"
    __table_args__ = (UniqueConstraint("project_id", "job_id", name="uq_request_gate_job"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[int] = mapped_column(BigInteger)
    project_path: Mapped[str] = mapped_column(String(FULL_PATH_MAX))
    project_url: Mapped[str | None] = mapped_column(String(URL_MAX))
    pipeline_id: Mapped[int] = mapped_column(BigInteger)
    pipeline_url: Mapped[str | None] = mapped_column(String(URL_MAX))
    job_id: Mapped[int] = mapped_column(BigInteger)
    job_name: Mapped[str] = mapped_column(String(255))
    ref: Mapped[str | None] = mapped_column(String(255))
    sha: Mapped[str | None] = mapped_column(String(64))
    commit_title: Mapped[str | None] = mapped_column(Text)
    commit_url: Mapped[str | None] = mapped_column(String(URL_MAX))
    commit_author_name: Mapped[str | None] = mapped_column(String(255))
    commit_author_email: Mapped[str | None] = mapped_column(String(255))
    triggered_by_username: Mapped[str | None] = mapped_column(String(255))
    triggered_by_name: Mapped[str | None] = mapped_column(String(255))
    triggered_by_email: Mapped[str | None] = mapped_column(String(255))
    environment: Mapped[str | None] = mapped_column(String(255))
    channel: Mapped[str] = mapped_column(String(32))
    message_ts: Mapped[str | None] = mapped_column(String(32))
    policy_version: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default=RequestState.PENDING, index=True)
    state_reason: Mapped[str | None] = mapped_column(Text)
    rejected_by: Mapped[str | None] = mapped_column(String(32))
    reject_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    approved_at: Mapped[datetime | None] = mapped_column(DateTime)
    play_claimed_at: Mapped[datetime | None] = mapped_column(DateTime)
    played_at: Mapped[datetime | None] = mapped_column(DateTime)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    bypassed_at: Mapped[datetime | None] = mapped_column(DateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime)
    merge_request_iid: Mapped[int | None] = mapped_column(BigInteger)
    merge_request_url: Mapped[str | None] = mapped_column(String(URL_MAX))
    merge_request_author_username: Mapped[str | None] = mapped_column(String(255))
    merged_by_username: Mapped[str | None] = mapped_column(String(255))
    # JSON of bot.evidence.Evidence: what the worker gathered when the request opened.
    evidence: Mapped[str | None] = mapped_column(Text)
    deployed_at: Mapped[datetime | None] = mapped_column(DateTime)
    smoke_failed_at: Mapped[datetime | None] = mapped_column(DateTime)
    # None (nothing offered yet), offered, playing, played, failed: see bot.store.rollbacks.
    rollback_state: Mapped[str | None] = mapped_column(String(16))
    rollback_job_id: Mapped[int | None] = mapped_column(BigInteger)
    rollback_claimed_at: Mapped[datetime | None] = mapped_column(DateTime)
    rolled_back_at: Mapped[datetime | None] = mapped_column(DateTime)
    rollback_offer_ts: Mapped[str | None] = mapped_column(String(32))
    rollback_alert_ts: Mapped[str | None] = mapped_column(String(32))


class Decision(Base):
    """Every click decided, granted or denied (or granted, then revoked), with the reason
    and the policy version."""

    __tablename__ = "decisions"
    __table_args__ = (
        # One counted approval per person per request, whatever races happen above.
        Index(
            "uq_decision_counted_once",
            "request_id",
            "slack_user_id",
            unique=True,
            sqlite_where=text("action = 'approve' AND outcome = 'granted'"),
            postgresql_where=text("action = 'approve' AND outcome = 'granted'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("approval_requests.id"), index=True)
    slack_user_id: Mapped[str] = mapped_column(String(32))
    slack_user_name: Mapped[str | None] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(16))
    reason_code: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    roles: Mapped[str] = mapped_column(String(1024), default="")
    policy_version: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # An approval that no longer counted when the quorum was re-checked (outcome "revoked",
    # the reason in `reason`): when, and under which policy version.
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_policy_version: Mapped[str | None] = mapped_column(String(64))


class LedgerEntry(Base):
    """Append-only, hash-chained evidence. Triggers refuse UPDATE and DELETE."""

    __tablename__ = "ledger_entries"

    sequence: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(32))
    recorded_at: Mapped[str] = mapped_column(String(32))
    request_id: Mapped[str | None] = mapped_column(String(32), index=True)
    body: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    # HMAC-SHA256 of `hash` with LEDGER_HMAC_KEY, when one is configured.
    signature: Mapped[str | None] = mapped_column(String(64))


class LedgerHead(Base):
    """A single row locked by each appender, so concurrent writers cannot fork the chain."""

    __tablename__ = "ledger_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64))
    # HMAC-SHA256 of `head:{sequence}:{hash}` with LEDGER_HMAC_KEY, when one is configured:
    # the bot refuses to append on a head whose signature does not verify.
    signature: Mapped[str | None] = mapped_column(String(64))


class PolicyVersion(Base):
    """Every policy that was in force: its hash, content and the diff from the one before."""

    __tablename__ = "policy_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version: Mapped[str] = mapped_column(String(64), index=True)
    previous_version: Mapped[str | None] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(1024))
    content: Mapped[str] = mapped_column(Text)
    diff: Mapped[str | None] = mapped_column(Text)
    loaded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class OutboxMessage(Base):
    """A call to the external audit API, written with the ledger entry it reports."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ledger_sequence: Mapped[int] = mapped_column(BigInteger)
    endpoint: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
