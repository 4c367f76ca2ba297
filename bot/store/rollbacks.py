"""The rollback that may follow a played gate. Each transition is one transaction.

(played gate) ─(deployed / smoke test failed)─▶ offered ─(rollback quorum)─▶ approved
    ─(claim)─▶ playing ─▶ played (ledger `rollback` entry, audit-API outbox message)
                      └─▶ failed (no rollback job waiting: nothing was played)
offered ─(a newer gate of the project and environment played)─▶ superseded (offer withdrawn)

The claim is a conditional UPDATE only one transaction can win, with a lease so a worker
that died mid-play is taken over, exactly as for the gate itself.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from enum import StrEnum
from typing import Any, Literal

from sqlalchemy import select, update

from bot import ledger
from bot.approvals import Decision, Granted
from bot.store import outbox
from bot.store.db import Database
from bot.store.decisions import Recheck, decision_row, granted_approvals, rechecked
from bot.store.models import ApprovalRequest, LedgerEntry, RequestState, utcnow
from bot.store.models import Decision as DecisionRow
from bot.store.plays import Play, claim_lease, release_lease
from bot.store.requests import ApprovalOutcome, evidence, lock

ROLLBACK_ACTION = "rollback"
MessageColumn = Literal["rollback_offer_ts", "rollback_alert_ts"]


class RollbackState(StrEnum):
    OFFERED = "offered"
    APPROVED = "approved"
    PLAYING = "playing"
    PLAYED = "played"
    FAILED = "failed"
    # A newer deployment is out: rolling this one back would undo the wrong release.
    SUPERSEDED = "superseded"


def played_request(db: Database, project_id: int, pipeline_id: int) -> ApprovalRequest | None:
    """The played gate request of a pipeline, if any."""
    with db.transaction() as session:
        return session.execute(
            select(ApprovalRequest)
            .where(
                ApprovalRequest.project_id == project_id,
                ApprovalRequest.pipeline_id == pipeline_id,
                ApprovalRequest.state == RequestState.PLAYED,
            )
            .order_by(ApprovalRequest.created_at.desc())
            .limit(1)
        ).scalar_one_or_none()


def note_deployment(
    db: Database, request_id: str, fact: Literal["deployed", "smoke_failed"]
) -> ApprovalRequest | None:
    """Remember when the deployment succeeded or its smoke test failed (the first time) and
    offer the rollback; None unless the gate was played. The caller posts the reply unless
    its message is already recorded, so a post lost to an error or a crash is redone."""
    with db.transaction() as session:
        request = lock(session, request_id)
        if request.state != RequestState.PLAYED:
            return None
        column = "deployed_at" if fact == "deployed" else "smoke_failed_at"
        if getattr(request, column) is None:
            setattr(request, column, utcnow())
        if request.rollback_state is None:
            request.rollback_state = RollbackState.OFFERED
        return request


def withdraw(db: Database, request_id: str) -> ApprovalRequest | None:
    """offered → superseded (a newer deployment is out); None when it was not offered."""
    with db.transaction() as session:
        request = lock(session, request_id)
        if request.rollback_state != RollbackState.OFFERED:
            return None
        request.rollback_state = RollbackState.SUPERSEDED
        return request


def set_message(db: Database, request_id: str, column: MessageColumn, ts: str) -> None:
    with db.transaction() as session:
        session.execute(
            update(ApprovalRequest).where(ApprovalRequest.id == request_id).values({column: ts})
        )


def votes(db: Database, request_id: str) -> list[DecisionRow]:
    with db.transaction() as session:
        return granted_approvals(session, request_id, ROLLBACK_ACTION)


def record_vote(
    db: Database,
    request_id: str,
    slack_user_id: str,
    slack_user_name: str | None,
    roles: frozenset[str],
    policy_version: str,
    decide: Callable[[list[Any]], Decision],
    recheck: Recheck | None = None,
) -> ApprovalOutcome:
    """Decide one Roll back click under a row lock (as approvals are decided): votes that
    no longer stand (`recheck`) are marked revoked first."""
    with db.transaction() as session:
        request = lock(session, request_id)
        state_before = request.rollback_state or "not offered"
        if request.rollback_state != RollbackState.OFFERED:
            return ApprovalOutcome(request, None, state_before)
        when = (policy_version, utcnow())
        checked = rechecked(session, request_id, ROLLBACK_ACTION, recheck, when)
        decision = decide(checked.kept)
        who = (slack_user_id, slack_user_name, roles)
        session.add(decision_row(request_id, ROLLBACK_ACTION, who, decision, policy_version))
        if isinstance(decision, Granted) and decision.quorum_met:
            request.rollback_state = RollbackState.APPROVED
        session.flush()
        return ApprovalOutcome(request, decision, state_before, checked.revoked)


ROLLBACK_PLAY = Play(
    ApprovalRequest.rollback_state,
    ApprovalRequest.rollback_claimed_at,
    RollbackState.APPROVED,
    RollbackState.PLAYING,
)


def claim(db: Database, request_id: str, lease: timedelta) -> bool:
    """approved → playing, or take over a rollback play whose worker died."""
    return claim_lease(db, request_id, ROLLBACK_PLAY, lease)


def release(db: Database, request_id: str) -> None:
    release_lease(db, request_id, ROLLBACK_PLAY)


def finish(
    db: Database,
    request_id: str,
    job: tuple[int, str | None],
    approvers: list[dict[str, Any]],
    audit: bool = False,
) -> tuple[ApprovalRequest, LedgerEntry | None]:
    """playing → played with the `rollback` ledger entry (and its audit message) at once.

    `job` is the rollback job's id and URL."""
    with db.transaction() as session:
        request = lock(session, request_id)
        if request.rollback_state != RollbackState.PLAYING:
            return request, None
        now = utcnow()
        request.rollback_state = RollbackState.PLAYED
        request.rollback_job_id = job[0]
        request.rolled_back_at = now
        fields = evidence(request, approvers=approvers, policy_version=request.policy_version)
        fields.update(
            job_id=job[0],
            job_url=job[1],
            gate_job_id=request.job_id,
            reason="smoke test failed" if request.smoke_failed_at else "rolled back from Slack",
        )
        entry = ledger.append(session, "rollback", fields, now)
        if audit:
            outbox.add_rollback(session, entry, request, approvers)
        return request, entry


def fail(db: Database, request_id: str) -> ApprovalRequest | None:
    """playing → failed: no rollback job was waiting, nothing was played."""
    with db.transaction() as session:
        request = lock(session, request_id)
        if request.rollback_state != RollbackState.PLAYING:
            return None
        request.rollback_state = RollbackState.FAILED
        return request
