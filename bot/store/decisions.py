"""Decisions on a request: the approvals counted, their quorum, and those revoked since.

Every click decided (granted or denied) is a row with the policy version it was decided
under; an approval re-checked at the quorum that no longer stands is marked revoked, with
why, when and under which policy version, and stays visible.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.approvals import Counted, Decision, Denied, Granted, assign, missing_roles
from bot.authority import Review
from bot.policy import Gate
from bot.store.db import Database
from bot.store.models import Decision as DecisionRow
from bot.store.models import utcnow

# Re-checks the approvals counted so far (see bot.authority): what still counts, and why
# the rest no longer do.
Recheck = Callable[[list[Counted]], Review]
REVOKED = "revoked"


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


def rechecked(
    session: Session,
    request_id: str,
    action: str,
    recheck: Recheck | None,
    when: tuple[str, datetime],
) -> Review:
    """The approvals of `action` that still count; those that no longer do are marked
    revoked (with why, when and under which policy version), those narrowed keep only the
    roles still held."""
    rows = granted_approvals(session, request_id, action)
    checked = recheck(counted(rows)) if recheck is not None else Review(counted(rows))
    kept = {approval.slack_user_id: approval.roles for approval in checked.kept}
    policy_version, now = when
    for row in rows:
        reason = checked.revoked.get(row.slack_user_id)
        if reason is not None:
            row.outcome, row.reason_code, row.reason = REVOKED, REVOKED, reason
            row.revoked_at, row.revoked_policy_version = now, policy_version
        elif row.slack_user_id in kept:
            row.roles = ",".join(sorted(kept[row.slack_user_id]))
    return checked


def revoked_approvals(db: Database, request_id: str, action: str = "approve") -> list[DecisionRow]:
    """Approvals that were counted and no longer are (shown, struck, in the message)."""
    with db.transaction() as session:
        return list(
            session.execute(
                select(DecisionRow)
                .where(
                    DecisionRow.request_id == request_id,
                    DecisionRow.action == action,
                    DecisionRow.outcome == REVOKED,
                )
                .order_by(DecisionRow.id)
            ).scalars()
        )
