"""What the jobs share: new request columns and the Slack side of a request."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, ParamSpec

from bot import metrics
from bot.approvals import ChangePerson, Clicker, missing_roles
from bot.blocks import ApprovalLine, request_message
from bot.click_origin import from_request_message, from_rollback_message, not_its_message
from bot.directory import identify_clicker
from bot.events import GateEvent
from bot.evidence import facts_of, gate_for_request, risk_reasons
from bot.ledger import iso_utc
from bot.outside_text import gitlab_markdown
from bot.policy import Gate, LoadedPolicy
from bot.runtime import Runtime
from bot.slack import SlackError, SlackUser
from bot.store import requests as store
from bot.store.models import ApprovalRequest, LedgerEntry, RequestState, utcnow
from bot.store.models import Decision as DecisionRow
from workers import pacing
from workers.post_fallback import update_request_message

log = logging.getLogger(__name__)
P = ParamSpec("P")


def request_fields(
    event: GateEvent, gate: Gate, policy_version: str, state: RequestState
) -> dict[str, Any]:
    """The columns of a new request for a gate job seen in an event."""
    now = utcnow()
    fields: dict[str, Any] = {
        key: value for key, value in event.items() if key not in ("pipeline_status", "job_status")
    }
    fields.update(
        channel=gate.channel,
        policy_version=policy_version,
        state=state,
        created_at=now,
        updated_at=now,
        expires_at=now + gate.expire_after,
    )
    return fields


def change_people(request: ApprovalRequest) -> list[ChangePerson]:
    """Everyone GitLab names behind the change; each gate's duties pick whom to exclude."""
    people = [
        ChangePerson(
            "triggerer",
            username=request.triggered_by_username,
            email=request.triggered_by_email,
            name=request.triggered_by_name,
        ),
        ChangePerson(
            "commit_author", email=request.commit_author_email, name=request.commit_author_name
        ),
    ]
    for username in (request.merge_request_author_username or "").split(","):
        if username:
            people.append(ChangePerson("merge_request_author", username=username))
    for username in (request.merged_by_username or "").split(","):
        if username:
            people.append(ChangePerson("merged_by", username=username))
    return people


def approver_records(
    rt: Runtime, request: ApprovalRequest, gate: Gate | None
) -> list[dict[str, Any]]:
    rows, assignment, _ = store.progress(rt.db, request.id, gate)
    return approver_dicts(rows, assignment)


def approver_dicts(
    rows: Sequence[DecisionRow], assignment: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Counted decisions as the ledger and the audit API record them."""
    return [
        {
            "slack_user_id": row.slack_user_id,
            "name": row.slack_user_name,
            "role": assignment.get(row.slack_user_id),
            "approved_at": iso_utc(row.decided_at),
        }
        for row in rows
    ]


def render(
    rt: Runtime, request: ApprovalRequest, gate: Gate | None, undecided: bool = False
) -> tuple[str, list[Any]]:
    """The request's message; `undecided`: it was just created, so no decision to read yet."""
    reasons = risk_reasons(gate, facts_of(request.evidence)) if gate is not None else []
    if undecided:
        missing = missing_roles(gate.require, {}) if gate is not None else {}
        return request_message(request, [], missing, reasons, [])
    rows, assignment, missing = store.progress(rt.db, request.id, gate)
    lines = [
        ApprovalLine(r.slack_user_id, assignment.get(r.slack_user_id), r.decided_at) for r in rows
    ]
    revoked = [
        (r.slack_user_id, r.reason or "") for r in store.revoked_approvals(rt.db, request.id)
    ]
    return request_message(request, lines, missing, reasons, revoked)


def counted(counter: str, label: str) -> Callable[[Callable[P, str]], Callable[P, str]]:
    """Count each run of a job in a Redis counter (exposed by the web's /metrics), labelled
    with what the job returned ("granted", "denied:self_approval", "played", …)."""

    def wrap(job: Callable[P, str]) -> Callable[P, str]:
        @functools.wraps(job)
        def run(*args: P.args, **kwargs: P.kwargs) -> str:
            result = job(*args, **kwargs)
            rt = args[0] if args and isinstance(args[0], Runtime) else None
            from workers.context import runtime

            metrics.incr((rt or runtime()).redis, counter, {label: result})
            return result

        return run

    return wrap


def announce(
    rt: Runtime, request: ApprovalRequest, gate: Gate | None, note: str | None = None
) -> None:
    """A request changed state: update its Slack message and GitLab's commit status."""
    from workers import writeback

    refresh_message(rt, request, gate)
    writeback.schedule(rt, request, note)


def signoff_note(
    request: ApprovalRequest, approvers: list[dict[str, Any]], entry: LedgerEntry | None
) -> str:
    # Names are what Slack profiles say: literal text (code spans), never mentions or links.
    # "pipeline 5001", not "#5001": GitLab would link that to issue 5001.
    names = ", ".join(
        f"{gitlab_markdown(a.get('name') or a['slack_user_id'])} ({a.get('role') or 'approver'})"
        for a in approvers
    )
    record = f" Ledger record {entry.sequence}, hash `{entry.hash[:16]}…`." if entry else ""
    return (
        f":white_check_mark: **compliance/sign-off**: pipeline {request.pipeline_id} "
        f"({gitlab_markdown((request.sha or '')[:8])}) was approved in Slack by {names} and "
        f"the gate job was played by approval-bot.{record}"
    )


def refresh_message(
    rt: Runtime, request: ApprovalRequest, gate: Gate | None, slotted: bool = False
) -> None:
    """Bring the Slack message in line with the request's state (best effort, logged).
    While the message cools down after a 429 the update waits for a slot (workers.pacing);
    `slotted`: this is that slot."""
    if request.message_ts is None:
        return
    target = pacing.update_target(request.channel, request.message_ts)
    if pacing.defer_if_cooling(rt, pacing.REFRESH, request, target, slotted):
        return
    if gate is None:
        gate = gate_for_request(rt.policy.current.policy, request)
    text, blocks = render(rt, request, gate)
    try:
        update_request_message(rt, request, text, blocks)
    except SlackError as exc:
        pacing.answered(rt, target, slotted)
        if pacing.defer_if_rate_limited(rt, pacing.REFRESH, request, target, exc):
            return
        log.error("cannot update the Slack message of %s: %s", request.id, exc.error)
        return
    pacing.answered(rt, target, slotted)


def notify_thread(rt: Runtime, request: ApprovalRequest, text: str) -> None:
    if request.message_ts is None:
        return
    try:
        rt.slack.post_thread(request.channel, request.message_ts, text)
    except SlackError as exc:
        log.error("cannot post in the thread of %s: %s", request.id, exc.error)


UNKNOWN_REQUEST = "This approval request is unknown to the bot (it may belong to another install)."


NO_GATE = "No gate in the current policy covers this job, so nobody can approve it."


@dataclass(frozen=True)
class Judging:
    """What deciding a click on a request needs: the policy in force, the request's gate
    (with its risk rules), who clicked as the bot establishes it, and who is behind the
    change."""

    loaded: LoadedPolicy
    gate: Gate
    clicker: Clicker
    user: SlackUser
    people: list[ChangePerson]


def judging(rt: Runtime, click: dict[str, Any], request: ApprovalRequest) -> Judging | None:
    """Everything a click is judged by; None (the clicker is told) when no gate covers it."""
    loaded = rt.policy.current
    gate = gate_for_request(loaded.policy, request)
    if gate is None:
        tell(rt, click, NO_GATE)
        return None
    clicker, user = identify_clicker(loaded.policy, rt.slack, click["user_id"])
    return Judging(loaded, gate, clicker, user, change_people(request))


def clicked_request(
    rt: Runtime, click: dict[str, Any], buttons: Literal["request", "rollback"] = "request"
) -> ApprovalRequest | None:
    """The request a button click names, when the click came from that request's own
    message (`buttons`: the request message, or its rollback replies); otherwise the
    clicker is told why and nothing more happens."""
    try:
        request = store.get(rt.db, click["request_id"])
    except store.RequestNotFound:
        tell(rt, click, UNKNOWN_REQUEST)
        return None
    came_from = from_request_message if buttons == "request" else from_rollback_message
    if not came_from(click, request):
        log.warning(
            "click on %s by %s from another message (%s %s) not counted",
            request.id,
            click.get("user_id"),
            click.get("message_channel"),
            click.get("message_ts"),
        )
        tell(rt, click, not_its_message(request))
        return None
    return request


def tell(rt: Runtime, target: dict[str, Any], text: str) -> None:
    """An ephemeral answer to one user: through the response_url, else chat.postEphemeral."""
    try:
        if target.get("response_url"):
            rt.slack.respond(target["response_url"], text)
        elif target.get("channel_id") and target.get("user_id"):
            rt.slack.post_ephemeral(target["channel_id"], target["user_id"], text)
    except SlackError as exc:
        log.warning("cannot tell %s: %s", target.get("user_id"), exc.error)
