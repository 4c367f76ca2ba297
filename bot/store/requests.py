"""The request state machine. Each transition is one function and one transaction.

pending ──(quorum)──▶ approved ──(claim)──▶ playing ──▶ played
   ├─(reject)──▶ rejected          (a claim is a conditional UPDATE only one
   ├─(expire_after)──▶ expired      transaction can win: no double play)
   └─(pipeline ended / job gone)──▶ closed
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import ledger
from bot.approvals import Counted, Decision, Denied, Granted
from bot.evidence import Evidence
from bot.store import outbox
from bot.store.db import Database
from bot.store.decisions import (
    REVOKED,
    Recheck,
    counted,
    decision_row,
    decisions,
    granted_approvals,
    progress,
    rechecked,
    revoked_approvals,
)
from bot.store.models import (
    OPEN_STATES,
    ApprovalRequest,
    LedgerEntry,
    RequestState,
    utcnow,
)
from bot.store.models import (
    Decision as DecisionRow,
)
from bot.store.plays import GATE_PLAY, claim_lease, release_lease

__all__ = [
    "REVOKED",
    "Recheck",
    "counted",
    "decision_row",
    "decisions",
    "granted_approvals",
    "progress",
    "revoked_approvals",
]

PLAY_LEASE = timedelta(seconds=90)  # default of the PLAY_LEASE_SECONDS setting


class RequestNotFound(Exception):
    """No approval request has this id."""


@dataclass(frozen=True)
class ApprovalOutcome:
    """A decided click: the decision (None when the request was not open for it), the
    state before, the approvals it found no longer count (approver -> why), and whether
    it found the request expired (and closed it)."""

    request: ApprovalRequest
    decision: Decision | None
    state_before: str
    revoked: Mapping[str, str] = field(default_factory=dict)
    expired: bool = False


def new_request_id() -> str:
    return secrets.token_hex(16)


def create(db: Database, fields: dict[str, Any]) -> tuple[ApprovalRequest, bool]:
    """Insert the request for a gate job, or return the one that exists (created=False)."""
    try:
        with db.transaction() as session:
            request = ApprovalRequest(id=new_request_id(), **fields)
            session.add(request)
        return request, True
    except IntegrityError:
        with db.transaction() as session:
            existing = session.execute(
                select(ApprovalRequest).where(
                    ApprovalRequest.project_id == fields["project_id"],
                    ApprovalRequest.job_id == fields["job_id"],
                )
            ).scalar_one()
        return existing, False


REQUEST_ID = re.compile(r"[0-9a-f]{32}")


def get(db: Database, request_id: str) -> ApprovalRequest:
    # Ids are ours (token_hex(16)): anything else is unknown, and never reaches the database.
    if not isinstance(request_id, str) or not REQUEST_ID.fullmatch(request_id):
        raise RequestNotFound(request_id)
    with db.transaction() as session:
        request = session.get(ApprovalRequest, request_id)
    if request is None:
        raise RequestNotFound(request_id)
    return request


def find_for_job(db: Database, project_id: int, job_id: int) -> ApprovalRequest | None:
    with db.transaction() as session:
        return session.execute(
            select(ApprovalRequest).where(
                ApprovalRequest.project_id == project_id, ApprovalRequest.job_id == job_id
            )
        ).scalar_one_or_none()


def set_message(db: Database, request_id: str, channel: str, ts: str) -> None:
    with db.transaction() as session:
        session.execute(
            update(ApprovalRequest)
            .where(ApprovalRequest.id == request_id)
            .values(channel=channel, message_ts=ts)
        )


def lock(session: Session, request_id: str) -> ApprovalRequest:
    request = session.execute(
        select(ApprovalRequest).where(ApprovalRequest.id == request_id).with_for_update()
    ).scalar_one_or_none()
    if request is None:
        raise RequestNotFound(request_id)
    return request


def record_approval(
    db: Database,
    request_id: str,
    slack_user_id: str,
    slack_user_name: str | None,
    roles: frozenset[str],
    policy_version: str,
    decide: Callable[[list[Counted]], Decision],
    recheck: Recheck | None = None,
) -> ApprovalOutcome:
    """Decide one Approve click against the approvals already counted, under a row lock.

    The lock serializes concurrent clicks on one request, so the quorum is computed from
    every earlier approval; the partial unique index backs it up against double clicks.
    Expiry is decided here too, with the time read under the lock: an expired request is
    closed and nothing is recorded. `recheck` drops approvals that no longer stand (marked
    revoked, kept visible) before the click is decided.
    """
    with db.transaction() as session:
        request = lock(session, request_id)
        state_before = request.state
        if request.state != RequestState.PENDING:
            return ApprovalOutcome(request, None, state_before)
        now = utcnow()
        if now >= request.expires_at:
            close_in(session, request, RequestState.EXPIRED, expiry_reason(request), now)
            return ApprovalOutcome(request, None, state_before, expired=True)
        checked = rechecked(session, request_id, "approve", recheck, (policy_version, now))
        decision = decide(checked.kept)
        session.add(
            decision_row(
                request_id,
                "approve",
                (slack_user_id, slack_user_name, roles),
                decision,
                policy_version,
            )
        )
        if isinstance(decision, Granted) and decision.quorum_met:
            request.state = RequestState.APPROVED
            request.approved_at = now
            request.policy_version = policy_version
        session.flush()
        return ApprovalOutcome(request, decision, state_before, checked.revoked)


def record_denied_rejection(
    db: Database, request_id: str, slack_user_id: str, denied: Denied, policy_version: str
) -> None:
    with db.transaction() as session:
        session.add(
            DecisionRow(
                request_id=request_id,
                slack_user_id=slack_user_id,
                action="reject",
                outcome="denied",
                reason_code=denied.code,
                reason=denied.message,
                policy_version=policy_version,
            )
        )


def reject(
    db: Database, request_id: str, slack_user_id: str, reason: str, policy_version: str
) -> tuple[ApprovalRequest, LedgerEntry | None]:
    """pending → rejected with its ledger entry; a request already decided is left alone."""
    with db.transaction() as session:
        request = lock(session, request_id)
        if request.state != RequestState.PENDING:
            return request, None
        now = utcnow()
        request.state = RequestState.REJECTED
        request.rejected_by = slack_user_id
        request.reject_reason = reason
        request.closed_at = now
        session.add(
            DecisionRow(
                request_id=request_id,
                slack_user_id=slack_user_id,
                action="reject",
                outcome="granted",
                reason=reason,
                policy_version=policy_version,
                decided_at=now,
            )
        )
        fields = evidence(request, approvers=[], policy_version=policy_version)
        fields.update(rejected_by=slack_user_id, reason=reason)
        entry = ledger.append(session, "rejection", fields, now)
        return request, entry


def claim_play(db: Database, request_id: str, lease: timedelta = PLAY_LEASE) -> bool:
    return claim_lease(db, request_id, GATE_PLAY, lease)


def finish_play(
    db: Database, request_id: str, approvers: list[dict[str, Any]], audit: bool = False
) -> tuple[ApprovalRequest, LedgerEntry | None]:
    """playing → played, writing the sign-off (and its audit-API outbox message, when an
    audit API is configured) in the same transaction."""
    with db.transaction() as session:
        request = lock(session, request_id)
        if request.state != RequestState.PLAYING:
            return request, None
        now = utcnow()
        request.state = RequestState.PLAYED
        request.played_at = now
        fields = evidence(request, approvers=approvers, policy_version=request.policy_version)
        found = Evidence.from_json(request.evidence)
        fields["risk_flags"] = found.flag_lines() if found is not None else []
        entry = ledger.append(session, "signoff", fields, now)
        if audit:
            outbox.add_deployment(session, entry, request, approvers)
        return request, entry


BYPASS_REASON = "The gate job was started in GitLab without a sign-off (job status: {status})."

# Ledger kinds of the ways a request ends without a sign-off or rejection.
CLOSING_KINDS = {
    RequestState.EXPIRED: "expiry",
    RequestState.SUPERSEDED: "supersession",
    RequestState.CLOSED: "closure",
}


def close(
    db: Database,
    request_id: str,
    state: RequestState,
    reason: str,
    states: Sequence[str] = OPEN_STATES,
) -> ApprovalRequest | None:
    """Close an open request (expired, superseded, or the job or pipeline moved on).

    The ledger records it too, so the evidence shows every request and how it ended.
    """
    with db.transaction() as session:
        request = lock(session, request_id)
        if request.state not in states:
            return None
        close_in(session, request, state, reason, utcnow())
        return request


def close_in(
    session: Session, request: ApprovalRequest, state: RequestState, reason: str, now: datetime
) -> LedgerEntry:
    """The closing transition and its ledger entry, inside the caller's locked transaction."""
    request.state = state
    request.state_reason = reason
    request.closed_at = now
    fields = evidence(request, approvers=[], policy_version=request.policy_version)
    fields["reason"] = reason
    return ledger.append(session, CLOSING_KINDS[state], fields, now)


def expiry_reason(request: ApprovalRequest) -> str:
    at = request.expires_at.strftime("%Y-%m-%d %H:%M")
    return f"Expired at {at} UTC without the required approvals."


def record_bypass(
    db: Database, request_id: str, job_status: str
) -> tuple[ApprovalRequest, LedgerEntry | None]:
    """The gate job ran without the bot's sign-off: record it once, closing a pending request."""
    with db.transaction() as session:
        request = lock(session, request_id)
        if request.bypassed_at is not None or request.state in (
            RequestState.APPROVED,
            RequestState.PLAYING,
            RequestState.PLAYED,
        ):
            return request, None
        now = utcnow()
        reason = BYPASS_REASON.format(status=job_status)
        request.bypassed_at = now
        if request.state == RequestState.PENDING:
            request.state = RequestState.CLOSED
            request.state_reason = reason
            request.closed_at = now
        fields = evidence(request, approvers=[], policy_version=request.policy_version)
        fields["reason"] = reason
        return request, ledger.append(session, "bypass", fields, now)


def open_requests(db: Database, older_than: datetime | None = None) -> list[ApprovalRequest]:
    with db.transaction() as session:
        query = select(ApprovalRequest).where(ApprovalRequest.state.in_(OPEN_STATES))
        if older_than is not None:
            query = query.where(ApprovalRequest.updated_at < older_than)
        return list(session.execute(query.order_by(ApprovalRequest.created_at)).scalars())


def evidence(
    request: ApprovalRequest, approvers: list[dict[str, Any]], policy_version: str
) -> dict[str, Any]:
    """The ledger fields describing what was (or was not) signed off."""
    return {
        "request_id": request.id,
        "project": request.project_path,
        "project_id": request.project_id,
        "environment": request.environment,
        "ref": request.ref,
        "sha": request.sha,
        "pipeline_id": request.pipeline_id,
        "pipeline_url": request.pipeline_url,
        "job_id": request.job_id,
        "job_url": job_url(request),
        "requested_at": ledger.iso_utc(request.created_at),
        "triggered_by": request.triggered_by_username,
        "commit_author": request.commit_author_email or request.commit_author_name,
        "approvers": approvers,
        "rejected_by": None,
        "reason": None,
        "policy_version": policy_version,
    }


def job_url(request: ApprovalRequest) -> str | None:
    if not request.project_url:
        return None
    return f"{request.project_url.rstrip('/')}/-/jobs/{request.job_id}"


def release_play(db: Database, request_id: str) -> None:
    release_lease(db, request_id, GATE_PLAY)
