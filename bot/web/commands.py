"""The /approvals slash command: short ephemeral answers computed from the database."""

from __future__ import annotations

from datetime import datetime

from bot import approvals
from bot.directory import roles_of
from bot.evidence import gate_for_request
from bot.outside_text import (
    slack_channel,
    slack_code,
    slack_link,
    slack_mrkdwn,
    slack_user,
    slack_usergroup,
)
from bot.policy import Gate, Policy
from bot.runtime import Runtime
from bot.slack import SlackRateLimited, SlackUnavailable
from bot.store import requests as store
from bot.store.models import ApprovalRequest, RequestState, utcnow
from bot.web import failed_jobs

HELP = (
    "*/approvals* — compliance approvals\n"
    "• `/approvals pending` — open approval requests you may approve (admins: all)\n"
    "• `/approvals whoami` — your roles in the approver policy and the gates you may approve\n"
    "• `/approvals policy [project]` — who may approve each gate, or only the gates of a "
    "project (admins)\n"
    "• `/approvals failed` / `/approvals retry <job>` — jobs the bot gave up on (admins)\n"
    "• `/approvals retry <request or pipeline id>` — play again a gate GitLab refused to "
    "play, once GitLab allows it (admins)\n"
    "• `/approvals help` — this text"
)
NOT_ALLOWED = "Only policy admins and approvers may list pending approvals."
NONE_PENDING = "No approval requests are waiting."
NONE_PENDING_FOR_YOU = "No approval requests are waiting for a role you hold."
POLICY_NOT_ALLOWED = (
    "Only policy admins may view the approver policy here ({admins}); "
    "ask one of them, or read the policy file in the bot's configuration."
)
NO_ADMINS = "the policy names no admins"
NO_GATE_FOR = "No gate of the policy (version `{version}`) covers project {project}."
# Slack shows at most 3000 characters in a section: every answer stays below that.
MAX_TEXT = 3000
MAX_MEMBERS_SHOWN = 25
RATE_LIMITED = "Slack is rate-limiting us, please try `/approvals {command}` again in {seconds} s."
SLACK_SLOW = "Slack did not answer in time ({error}); please try `/approvals {command}` again."
ON_REJECT = {"cancel_pipeline": "cancel the pipeline", "leave": "leave the pipeline waiting"}


def answer(rt: Runtime, user_id: str, text: str) -> str:
    words = text.strip().split()
    command = words[0].lower() if words else "help"
    try:
        return _dispatch(rt, user_id, command, words[1:])
    except SlackRateLimited as exc:
        return RATE_LIMITED.format(command=command, seconds=exc.retry_after)
    except SlackUnavailable as exc:
        return SLACK_SLOW.format(command=command, error=exc.error)


def _dispatch(rt: Runtime, user_id: str, command: str, args: list[str]) -> str:
    if command == "whoami":
        return whoami(rt, user_id)
    if command == "pending":
        return pending(rt, user_id)
    if command == "policy":
        return policy_view(rt, user_id, args[0] if args else None)
    if command == "failed":
        return failed_jobs.failed(rt, user_id)
    if command == "retry":
        return failed_jobs.retry(rt, user_id, args[0] if args else None)
    return HELP


def whoami(rt: Runtime, user_id: str) -> str:
    policy = rt.policy.current.policy
    roles = roles_of(policy, rt.slack, user_id, unsure_raises=True)
    admin = " You are a policy admin." if policy.is_admin(user_id) else ""
    held = ", ".join(sorted(roles)) if roles else "no approver role"
    head = f"You are {slack_user(user_id)}: {held}.{admin}"
    approvable = [
        f"• {slack_code(gate.project)} job {slack_code(gate.job)} as {' or '.join(sorted(mine))}"
        for gate in policy.gates
        if (mine := roles & set(approvals.gate_roles(gate)))
    ]
    if approvable:
        head += "\nYou may approve (and reject) these gates:"
    else:
        head += "\nYou may approve no gate."
    foot = "As a policy admin you may reject any gate." if policy.is_admin(user_id) else ""
    return _fit(head, approvable, foot)


def pending(rt: Runtime, user_id: str) -> str:
    """Pending requests of the gates this person may approve (roles from the policy and
    live user groups); admins see every one."""
    loaded = rt.policy.current
    policy = loaded.policy
    admin = policy.is_admin(user_id)
    roles = roles_of(policy, rt.slack, user_id, unsure_raises=True)
    if not admin and not roles:
        return NOT_ALLOWED
    rows = []
    for row in store.open_requests(rt.db):
        if row.state != RequestState.PENDING:
            continue
        gate = gate_for_request(policy, row)
        if admin or (gate is not None and roles & set(approvals.gate_roles(gate))):
            rows.append((row, gate))
    if not rows:
        return NONE_PENDING if admin else NONE_PENDING_FOR_YOU
    now = utcnow()
    lines = [f"*{len(rows)} pending approval request(s):*"]
    for row, gate in rows[:20]:
        missing = "?"
        if gate is not None:
            missing = approvals.describe_missing(store.progress(rt.db, row.id, gate)[2])
        lines.append(pending_line(row, missing, now))
    return _clip("\n".join(lines))


def pending_line(row: ApprovalRequest, missing: str, now: datetime) -> str:
    """One pending request in `/approvals pending`, its GitLab facts escaped."""
    age_min = int((now - row.created_at).total_seconds() // 60)
    link = slack_link(row.pipeline_url, f"#{row.pipeline_id}")
    return (
        f"• {slack_mrkdwn(row.project_path)} {link} ({slack_code(row.ref)}), "
        f"{age_min} min old — needs {missing}"
    )


def policy_view(rt: Runtime, user_id: str, project: str | None) -> str:
    """The policy in force, gate by gate (admins only), optionally for one project."""
    loaded = rt.policy.current
    policy = loaded.policy
    if not policy.is_admin(user_id):
        admins = ", ".join(slack_user(a) for a in policy.admins[:10]) or NO_ADMINS
        return POLICY_NOT_ALLOWED.format(admins=admins)
    version = loaded.version[:12]
    gates = list(policy.gates) if project is None else policy.gates_for_project(project)
    if not gates:
        return NO_GATE_FOR.format(version=version, project=slack_code(project))
    scope = "" if project is None else f" for {slack_code(project)}"
    header = f"*Approver policy* version `{version}`: {len(gates)} gate(s){scope}"
    return _fit(header, [describe_gate(policy, gate) for gate in gates])


def describe_gate(policy: Policy, gate: Gate) -> str:
    lines = [
        f"*{slack_code(gate.project)}* job {slack_code(gate.job)} → {slack_channel(gate.channel)}"
    ]
    for rule in gate.require:
        lines.append(f"  • {rule.count} × {rule.role}: {_holders(policy, rule.role)}")  # noqa: RUF001
    duties = getattr(gate, "duties", None)
    if duties is None:
        duties = ("triggerer", "commit_author") if gate.forbid_self_approval else ()
    if duties:
        excluded = ", ".join(str(d).replace("_", " ") for d in duties)
        separation = f"forbid_self_approval: true (may not approve: {excluded})"
    else:
        separation = "forbid_self_approval: false"
    lines.append(
        f"  {separation} · unknown_identity: {gate.unknown_identity}"
        f" · expire_after: {gate.expire_after_text}"
        f" · on_reject: {gate.on_reject} ({ON_REJECT.get(gate.on_reject, gate.on_reject)})"
    )
    return "\n".join(lines)


def _holders(policy: Policy, role_name: str) -> str:
    role = policy.roles.get(role_name)
    if role is None:
        return "(unknown role)"
    shown = [slack_user(m) for m in role.members] + [slack_usergroup(g) for g in role.usergroups]
    if len(shown) > MAX_MEMBERS_SHOWN:
        more = len(shown) - MAX_MEMBERS_SHOWN
        shown = [*shown[:MAX_MEMBERS_SHOWN], f"…and {more} more"]
    return ", ".join(shown) or "nobody"


def _fit(head: str, items: list[str], foot: str = "") -> str:
    """`head`, as many whole `items` as fit in MAX_TEXT with "…and N more gate(s)", `foot`."""
    text = head
    tail = f"\n{foot}" if foot else ""
    for index, item in enumerate(items):
        left_after = len(items) - index - 1
        reserve = len(_more(left_after)) + 1 if left_after else 0
        if len(text) + 1 + len(item) + reserve + len(tail) > MAX_TEXT:
            return _clip(f"{text}\n{_more(len(items) - index)}{tail}")
        text = f"{text}\n{item}"
    return _clip(text + tail)


def _more(count: int) -> str:
    return f"…and {count} more gate" + ("s" if count != 1 else "")


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"
