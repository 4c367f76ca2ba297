"""Authority re-checked when the quorum is decided: the live facts for bot.authority.review.

Read before the request's row is locked (Slack calls take time), for the approvals counted
so far; an approval counted in between keeps what it was granted at its own click.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.approvals import gate_roles, rollback_gate, rollback_roles
from bot.authority import Standing, review
from bot.directory import standings
from bot.policy import Gate, Policy
from bot.runtime import Runtime
from bot.slack_text import escape
from bot.store import requests as store
from bot.store.decisions import Recheck
from bot.store.rollbacks import votes

NO_LONGER_COUNTS = "<@{user}>'s approval no longer counts: {reason}."


def approvals_recheck(rt: Runtime, policy: Policy, gate: Gate, request_id: str) -> Recheck:
    """Re-check the request's counted approvals against the policy in force and Slack."""
    counted = [row.slack_user_id for row in store.decisions(rt.db, request_id)]
    now = standings(policy, rt.slack, counted)
    relevant = gate_roles(gate)
    return _recheck(now, relevant)


def rollback_recheck(rt: Runtime, policy: Policy, gate: Gate, request_id: str) -> Recheck:
    """The same for Roll back votes, under the gate's rollback policy."""
    counted = [row.slack_user_id for row in votes(rt.db, request_id)]
    now = {
        user: Standing(rollback_roles(gate, held.roles), held.deactivated)
        for user, held in standings(policy, rt.slack, counted).items()
    }
    return _recheck(now, gate_roles(rollback_gate(gate)))


def _recheck(now: Mapping[str, Standing], relevant: list[str]) -> Recheck:
    return lambda counted: review(counted, now, relevant)


def revoked_note(revoked: Mapping[str, str]) -> str:
    """What the clicker is told about approvals that stopped counting (empty if none)."""
    return "".join(
        " " + NO_LONGER_COUNTS.format(user=user, reason=escape(why))
        for user, why in sorted(revoked.items())
    )
