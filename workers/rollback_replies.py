"""The rollback replies in a request's thread: what they show (who may press Roll back for
this deployment), keeping them in line with the rollback's state, and withdrawing an
offer once a newer deployment of the same project and environment is out."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from sqlalchemy.exc import SQLAlchemyError

from bot import approvals
from bot.approvals import Counted, Denied
from bot.directory import identify_clicker
from bot.evidence import gate_for_request
from bot.identity import ChangePerson
from bot.outside_text import slack_user, slack_usergroup
from bot.policy import Gate, Policy
from bot.rollback_blocks import Kind, rollback_message
from bot.runtime import Runtime
from bot.slack import SlackError
from bot.store import queries, rollbacks
from bot.store.decisions import counted
from bot.store.models import ApprovalRequest
from workers.support import change_people

log = logging.getLogger(__name__)

MESSAGE_COLUMNS: dict[Kind, rollbacks.MessageColumn] = {
    "offer": "rollback_offer_ts",
    "alert": "rollback_alert_ts",
}
ReplyParts = tuple[dict[str, str], list[str], dict[str, int]]


def reply_parts(
    rt: Runtime, request: ApprovalRequest, gate: Gate | None, record: int | None = None
) -> ReplyParts:
    """What the rollback replies show, whatever their kind: job names, who may roll back,
    the newer pipeline and the ledger record (`facts`), who voted so far, what is missing."""
    rows = rollbacks.votes(rt.db, request.id)
    votes = counted(rows)
    missing: dict[str, int] = {}
    facts = {"record": str(record) if record else ""}
    newer = queries.newer_deployment(rt.db, request)
    if newer is not None:
        facts["newer"] = str(newer.pipeline_id)
    if gate is not None:
        rules = approvals.rollback_gate(gate).require
        missing = approvals.missing_roles(rules, approvals.assign(rules, votes))
        may = gate.rollback.require
        roles = [r.role for r in may] if may else approvals.gate_roles(gate)
        allowed = may_press(rt, request, gate, votes)
        facts.update(
            job=gate.rollback.job,
            smoke=gate.rollback.smoke_job,
            who=mentions(rt.policy.current.policy, roles, allowed),
        )
    return facts, [r.slack_user_id for r in rows], missing


def mentions(policy: Policy, roles: Sequence[str], allowed: Callable[[str], bool]) -> str:
    """Slack mentions of the roles' members who may press Roll back, and their user groups
    (whose members the click itself judges)."""
    found: list[str] = []
    for role in sorted(roles):
        definition = policy.roles.get(role)
        if definition is None:
            continue
        found += [slack_user(m) for m in definition.members if allowed(m)]
        found += [slack_usergroup(g) for g in definition.usergroups]
    return " ".join(dict.fromkeys(found))


def may_press(
    rt: Runtime, request: ApprovalRequest, gate: Gate, votes: list[Counted]
) -> Callable[[str], bool]:
    """Would the rollback policy grant this person's click now, as the click is judged (roles,
    separation of duties against the people behind this deployment, votes so far)?"""
    policy = rt.policy.current.policy
    identities = policy.identities
    duties = approvals.rollback_gate(gate).duties
    people: list[ChangePerson] = rt.identity_lookups.resolve(
        change_people(request), duties, identities
    )
    voted = {vote.slack_user_id for vote in votes}

    def allowed(slack_user_id: str) -> bool:
        if slack_user_id in voted:
            return False
        try:
            clicker, _ = identify_clicker(policy, rt.slack, slack_user_id)
        except SlackError as exc:
            # Shown, not judged: the click itself is refused if it must be.
            log.warning("cannot look up %s for the rollback reply: %s", slack_user_id, exc.error)
            return True
        decision = approvals.decide_rollback(gate, identities, clicker, people, votes)
        return not isinstance(decision, Denied)

    return allowed


def refresh(
    rt: Runtime, request: ApprovalRequest, gate: Gate | None, record: int | None = None
) -> None:
    """Bring the rollback replies in line with the rollback's state (best effort)."""
    posted = [
        (kind, ts)
        for kind, column in MESSAGE_COLUMNS.items()
        if (ts := getattr(request, column)) is not None
    ]
    if not posted:
        return
    parts = reply_parts(rt, request, gate, record)  # once for both replies
    for kind, ts in posted:
        text, blocks = rollback_message(request, kind, *parts)
        try:
            rt.slack.update_message(request.channel, ts, text, blocks)
        except SlackError as exc:
            log.warning("cannot update the rollback reply of %s: %s", request.id, exc.error)


def withdraw(rt: Runtime, request: ApprovalRequest) -> None:
    """Production moved on from this deployment: take Roll back off its replies."""
    withdrawn = rollbacks.withdraw(rt.db, request.id)
    if withdrawn is not None:
        gate = gate_for_request(rt.policy.current.policy, withdrawn)
        refresh(rt, withdrawn, gate)


def withdraw_older(rt: Runtime, newer: ApprovalRequest) -> None:
    """A gate was played: withdraw the Roll back offers of the deployments it replaces. Best
    effort: a click on an offer left behind is refused and withdraws it then."""
    try:
        for older in queries.offered_before(rt.db, newer):
            withdraw(rt, older)
    except SQLAlchemyError as exc:
        log.warning("cannot withdraw older rollback offers: %s", type(exc).__name__)
