"""The /approvals slash command: short ephemeral answers computed from the database."""

from __future__ import annotations

from bot import approvals
from bot.directory import roles_of
from bot.runtime import Runtime
from bot.store import requests as store
from bot.store.models import RequestState, utcnow

HELP = (
    "*/approvals* — compliance approvals\n"
    "• `/approvals pending` — open approval requests (admins and approvers)\n"
    "• `/approvals whoami` — your roles in the approver policy\n"
    "• `/approvals help` — this text"
)
NOT_ALLOWED = "Only policy admins and approvers may list pending approvals."
NONE_PENDING = "No approval requests are waiting."


def answer(rt: Runtime, user_id: str, text: str) -> str:
    words = text.strip().split()
    command = words[0].lower() if words else "help"
    if command == "whoami":
        return whoami(rt, user_id)
    if command == "pending":
        return pending(rt, user_id)
    return HELP


def whoami(rt: Runtime, user_id: str) -> str:
    policy = rt.policy.current.policy
    roles = sorted(roles_of(policy, rt.slack, user_id))
    admin = " You are a policy admin." if policy.is_admin(user_id) else ""
    held = ", ".join(roles) if roles else "no approver role"
    return f"You are <@{user_id}>: {held}.{admin}"


def pending(rt: Runtime, user_id: str) -> str:
    loaded = rt.policy.current
    policy = loaded.policy
    if not policy.is_admin(user_id) and not roles_of(policy, rt.slack, user_id):
        return NOT_ALLOWED
    rows = [r for r in store.open_requests(rt.db) if r.state == RequestState.PENDING]
    if not rows:
        return NONE_PENDING
    now = utcnow()
    lines = [f"*{len(rows)} pending approval request(s):*"]
    for row in rows[:20]:
        gate = policy.gate_for(row.project_path, row.job_name)
        missing = "?"
        if gate is not None:
            counted = [
                approvals.Counted(d.slack_user_id, frozenset(filter(None, d.roles.split(","))))
                for d in store.decisions(rt.db, row.id)
            ]
            missing = approvals.describe_missing(
                approvals.missing_roles(gate.require, approvals.assign(gate.require, counted))
            )
        age_min = int((now - row.created_at).total_seconds() // 60)
        link = (
            f"<{row.pipeline_url}|#{row.pipeline_id}>"
            if row.pipeline_url
            else f"#{row.pipeline_id}"
        )
        lines.append(
            f"• {row.project_path} {link} (`{row.ref}`), {age_min} min old — needs {missing}"
        )
    return "\n".join(lines)
