"""The request state machine. Each transition is one function and one transaction.

pending ──(quorum)──▶ approved ──(claim)──▶ playing ──▶ played
   ├─(reject)──▶ rejected          (a claim is a conditional UPDATE only one
   ├─(expire_after)──▶ expired      transaction can win: no double play)
   └─(pipeline ended / job gone)──▶ closed
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import ledger
from bot.approvals import Counted, Decision, Denied, Granted, assign, missing_roles
from bot.evidence import Evidence
from bot.policy import Gate
from bot.store import outbox
from bot.store.db import Database
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

PLAY_LEASE = timedelta(seconds=90)  # default of the PLAY_LEASE_SECONDS setting


class RequestNotFound(Exception):
    """No approval request has this id."""


@dataclass(frozen=True)
class ApprovalOutcome:
    request: ApprovalRequest
    decision: Decision | None
    state_before: str


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


def granted_approvals(
    session: Session, request_id: str, action: str = "approve"
) -> list[DecisionRow]:
    return list(
        session.execute(
            select(DecisionRow)
            .where(
                DecisionRow.request_id == request_id,
                DecisionRow.action == action,
                DecisionRow.outcome == "granted",
            )
            .order_by(DecisionRow.id)
        ).scalars()
    )


def decisions(db: Database, request_id: str) -> list[DecisionRow]:
    with db.transaction() as session:
        return granted_approvals(session, request_id)


def counted(rows: Sequence[DecisionRow]) -> list[Counted]:
    """Granted approvals as the decision function sees them: who, holding which roles."""
    return [Counted(r.slack_user_id, frozenset(filter(None, r.roles.split(",")))) for r in rows]


def progress(
    db: Database, request_id: str, gate: Gate | None
) -> tuple[list[DecisionRow], dict[str, str], dict[str, int]]:
    """The approvals so far, the role each fills, and what each role still needs."""
    rows = decisions(db, request_id)
    if gate is None:
        return rows, {}, {}
    assignment = assign(gate.require, counted(rows))
    return rows, assignment, missing_roles(gate.require, assignment)


def lock(session: Session, request_id: str) -> ApprovalRequest:
    request = session.execute(
        select(ApprovalRequest).where(ApprovalRequest.id == request_id).with_for_update()
    ).scalar_one_or_none()
    if request is None:
        raise RequestNotFound(request_id)
    return request


def decision_row(
    request_id: str,
    action: str,
    who: tuple[str, str | None, frozenset[str]],
    decision: Decision,
    policy_version: str,
) -> DecisionRow:
    """One decided click (`who` is the Slack user id, name and roles), granted or denied."""
    slack_user_id, slack_user_name, roles = who
    return DecisionRow(
        request_id=request_id,
        slack_user_id=slack_user_id,
        slack_user_name=slack_user_name,
        action=action,
        outcome="granted" if isinstance(decision, Granted) else "denied",
        reason_code=decision.code if isinstance(decision, Denied) else None,
        reason=decision.message if isinstance(decision, Denied) else None,
        roles=",".join(sorted(roles)),
        policy_version=policy_version,
        decided_at=utcnow(),
    )


def record_approval(
    db: Database,
    request_id: str,
    slack_user_id: str,
    slack_user_name: str | None,
    roles: frozenset[str],
    policy_version: str,
    decide: Callable[[list[Counted]], Decision],
) -> ApprovalOutcome:
    """Decide one Approve click against the approvals already counted, under a row lock.

    The lock serializes concurrent clicks on one request, so the quorum is computed from
    every earlier approval; the partial unique index backs it up against double clicks.
    """
    with db.transaction() as session:
        request = lock(session, request_id)
        state_before = request.state
        if request.state != RequestState.PENDING:
            return ApprovalOutcome(request, None, state_before)
        decision = decide(counted(granted_approvals(session, request_id)))
        now = utcnow()
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
        return ApprovalOutcome(request, decision, state_before)


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
        now = utcnow()
        request.state = state
        request.state_reason = reason
        request.closed_at = now
        fields = evidence(request, approvers=[], policy_version=request.policy_version)
        fields["reason"] = reason
        ledger.append(session, CLOSING_KINDS[state], fields, now)
        return request


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
