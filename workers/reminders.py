"""Reminders in a request's thread and escalation after a while (gate keys remind_every,
escalate_after, escalate_channel). Run by the sweep; each is sent once per due time."""

from __future__ import annotations

import logging

from bot import approvals
from bot.blocks import role_mentions
from bot.evidence import gate_for_request
from bot.outside_text import slack_link, slack_mrkdwn, slack_user
from bot.policy import Gate, Policy
from bot.runtime import Runtime
from bot.slack import SlackError
from bot.store import queries
from bot.store import requests as store
from bot.store.models import ApprovalRequest, utcnow

log = logging.getLogger(__name__)

REMINDER = ":bell: Still waiting for approval: {missing}. {who}"
ESCALATION = (
    ":rotating_light: Approval for *{project}* pipeline {pipeline} has been pending for "
    "{age}. Still needed: {missing}. {who}"
)


def remind_and_escalate(rt: Runtime) -> int:
    sent = 0
    policy = rt.policy.current.policy
    now = utcnow()
    for request in queries.pending_posted(rt.db):
        gate = gate_for_request(policy, request)
        if gate is None:
            continue
        last = request.reminded_at or request.created_at
        if (
            gate.remind_every
            and now - last >= gate.remind_every
            and queries.mark(rt.db, request.id, "reminded_at", request.reminded_at)
        ):
            sent += _post(rt, request, REMINDER.format(**_facts(rt, policy, gate, request)))
        if (
            gate.escalate_after
            and request.escalated_at is None
            and now - request.created_at >= gate.escalate_after
            and queries.mark(rt.db, request.id, "escalated_at", None)
        ):
            sent += _escalate(rt, policy, gate, request)
    return sent


def _facts(rt: Runtime, policy: Policy, gate: Gate, request: ApprovalRequest) -> dict[str, str]:
    rows, _, missing = store.progress(rt.db, request.id, gate)
    done = {r.slack_user_id for r in rows}
    mentions = role_mentions(policy, missing, done)
    who = f"Can approve: {mentions}" if mentions else ""
    return {"missing": approvals.describe_missing(missing), "who": who}


def escalation_text(
    request: ApprovalRequest, facts: dict[str, str], hours: float, admins: list[str]
) -> str:
    """The escalation (thread or escalation channel), its GitLab facts escaped."""
    mentions = " ".join(slack_user(a) for a in admins)
    return ESCALATION.format(
        project=slack_mrkdwn(request.project_path),
        pipeline=slack_link(request.pipeline_url, f"#{request.pipeline_id}"),
        age=f"{hours:.1f} h",
        missing=facts["missing"],
        who=f"{facts['who']} {mentions}".strip(),
    )


def _escalate(rt: Runtime, policy: Policy, gate: Gate, request: ApprovalRequest) -> int:
    facts = _facts(rt, policy, gate, request)
    hours = (utcnow() - request.created_at).total_seconds() / 3600
    text = escalation_text(request, facts, hours, list(policy.admins))
    if gate.escalate_channel:
        try:
            rt.slack.post_message(gate.escalate_channel, text)
            return 1
        except SlackError as exc:
            log.error("cannot escalate %s to %s: %s", request.id, gate.escalate_channel, exc.error)
            return 0
    return _post(rt, request, text)


def _post(rt: Runtime, request: ApprovalRequest, text: str) -> int:
    if request.message_ts is None:
        return 0
    try:
        rt.slack.post_thread(request.channel, request.message_ts, text)
    except SlackError as exc:
        log.error("cannot post in the thread of %s: %s", request.id, exc.error)
        return 0
    return 1
