"""Slack Block Kit for an approval request: one function per view, built from its state."""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.approvals import describe_missing
from bot.blockkit_fit import clip_mrkdwn, fit_items
from bot.blockkit_limits import FIELD_TEXT_LIMIT, SECTION_TEXT_LIMIT
from bot.evidence import Evidence
from bot.evidence_blocks import evidence_blocks
from bot.outside_text import (
    SLACK_MODAL_TITLE_LIMIT,
    mrkdwn_object,
    plain_object,
    slack_code,
    slack_fallback,
    slack_link,
    slack_mrkdwn,
    slack_user,
    slack_usergroup,
)
from bot.policy import Policy
from bot.store.models import ApprovalRequest, RequestState

APPROVE_ACTION = "approve"
REJECT_ACTION = "reject"
ROLLBACK_ACTION = "rollback"
REJECT_CALLBACK = "reject_reason"
REASON_BLOCK = "reason"
REASON_ACTION = "reason"
REASON_LIMIT = 2000

FINAL_HEADLINES: Mapping[str, str] = {
    RequestState.PLAYED: ":white_check_mark: *Approved* — the gate job was played.",
    RequestState.REJECTED: ":no_entry: *Rejected* — the gate job will not be played.",
    RequestState.EXPIRED: ":hourglass: *Expired* — this request can no longer be approved.",
    RequestState.SUPERSEDED: ":fast_forward: *Superseded* — a newer pipeline needs approval.",
    RequestState.CLOSED: ":heavy_minus_sign: *Closed* — nothing was played.",
    RequestState.PLAY_FAILED: ":x: *Play failed* — GitLab refused to play the gate job.",
}


@dataclass(frozen=True)
class ApprovalLine:
    slack_user_id: str
    role: str | None
    approved_at: datetime


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _link(url: str | None, label: str) -> str:
    """A link whose label is already mrkdwn (built from escaped parts)."""
    return slack_link(url, label, label_is_mrkdwn=True)


def _evidence_fields(request: ApprovalRequest) -> list[dict[str, Any]]:
    # Everything from GitLab goes through bot.outside_text: a `<` in a commit title must
    # not form a link, a backtick in a ref must not end its code span.
    sha = slack_code((request.sha or "")[:8])
    job_link = f"{request.project_url}/-/jobs/{request.job_id}" if request.project_url else None
    author = slack_mrkdwn(request.commit_author_name) or "unknown"
    if request.commit_author_email:
        author += f" ({slack_mrkdwn(request.commit_author_email)})"
    triggered = (
        slack_mrkdwn(request.triggered_by_name or request.triggered_by_username) or "unknown"
    )
    if request.triggered_by_username:
        triggered += f" (@{slack_mrkdwn(request.triggered_by_username)})"
    title = slack_mrkdwn(request.commit_title)
    fields = [
        f"*Project*\n{_link(request.project_url, slack_mrkdwn(request.project_path))}",
        f"*Ref*\n{slack_code(request.ref)}",
        f"*Pipeline*\n{_link(request.pipeline_url, f'#{request.pipeline_id}')}",
        f"*Job*\n{_link(job_link, slack_mrkdwn(request.job_name))}",
        f"*Commit*\n{_link(request.commit_url, sha)} {title}".rstrip(),
        f"*Author*\n{author}",
        f"*Triggered by*\n{triggered}",
        f"*Environment*\n{slack_mrkdwn(request.environment) or 'not stated'}",
    ]
    # Each value is clipped already, but escaping and long links can still pass 2,000.
    return [mrkdwn_object(clip_mrkdwn(text, FIELD_TEXT_LIMIT)) for text in fields]


def _approvals_context(approvals: Sequence[ApprovalLine]) -> dict[str, Any] | None:
    if not approvals:
        return None
    parts = [
        f":heavy_check_mark: {slack_user(a.slack_user_id)}"
        + (f" as {slack_mrkdwn(a.role)}" if a.role else "")
        + f" at {_ts(a.approved_at)}"
        for a in approvals
    ]
    return _list_context(parts)


def _list_context(parts: Sequence[str]) -> dict[str, Any]:
    """A context of whole items ("…and N more" when they do not all fit)."""
    text = fit_items(parts, SECTION_TEXT_LIMIT, separator="  ")
    return {"type": "context", "elements": [mrkdwn_object(text)]}


def _revoked_context(revoked: Sequence[tuple[str, str]]) -> dict[str, Any] | None:
    """Approvals that no longer count (authority re-checked at the quorum), and why."""
    if not revoked:
        return None
    parts = [
        f":heavy_minus_sign: {slack_user(user)}'s approval no longer counts: {slack_mrkdwn(reason)}"
        for user, reason in revoked
    ]
    return _list_context(parts)


def summary_text(request: ApprovalRequest) -> str:
    """The notification text (and the fallback for clients that cannot show blocks)."""
    return (
        f"Approval needed: {slack_fallback(request.project_path)} pipeline "
        f"#{request.pipeline_id} ({slack_fallback(request.ref)}, "
        f"{slack_fallback((request.sha or '')[:8])}) — {request.state}"
    )


def request_message(
    request: ApprovalRequest,
    approvals: Sequence[ApprovalLine],
    missing: Mapping[str, int],
    reasons: Sequence[str] = (),
    revoked: Sequence[tuple[str, str]] = (),
) -> tuple[str, list[dict[str, Any]]]:
    """The message for any state: pending ones carry the buttons, final ones do not.

    `reasons` say why the change needs more than the gate's base rules (risk rules);
    `revoked` are (Slack user, why) of approvals that no longer count.
    """
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "block_id": "headline",
            "text": mrkdwn_object(clip_mrkdwn(_headline(request), SECTION_TEXT_LIMIT)),
        },
        {"type": "section", "block_id": "evidence", "fields": _evidence_fields(request)},
        *evidence_blocks(Evidence.from_json(request.evidence), reasons),
    ]
    context = _approvals_context(approvals)
    if context is not None:
        blocks.append(context)
    no_longer = _revoked_context(revoked)
    if no_longer is not None:
        blocks.append(no_longer)
    if request.state == RequestState.PENDING:
        blocks.append(
            _status_context(
                f"Still needed: {describe_missing(missing)} · expires {_ts(request.expires_at)}"
            )
        )
        blocks.append(decision_actions(request.id))
    elif request.state in (RequestState.APPROVED, RequestState.PLAYING):
        blocks.append(_status_context(":gear: Approved — playing the gate job…"))
    else:
        blocks.append(_status_context(_final_detail(request)))
    return summary_text(request), blocks


def _headline(request: ApprovalRequest) -> str:
    if request.state in FINAL_HEADLINES:
        return FINAL_HEADLINES[request.state]
    return (
        f":lock: *Deployment approval needed* for *{slack_mrkdwn(request.project_path)}* "
        f"({slack_code(request.ref)})"
    )


def _final_detail(request: ApprovalRequest) -> str:
    if request.state == RequestState.PLAYED and request.played_at:
        return f"Gate job played at {_ts(request.played_at)}."
    if request.state == RequestState.REJECTED:
        return (
            f"Rejected by {slack_user(request.rejected_by)}: {reject_reason(request.reject_reason)}"
        )
    # State reasons are stored as mrkdwn, their outside parts escaped when they were made.
    return request.state_reason or str(request.state)


def reject_reason(reason: str | None) -> str:
    """A reject reason (typed by a person) inside mrkdwn: kept on its lines, at most
    2,000 characters once escaped (`&` alone becomes `&amp;`)."""
    return clip_mrkdwn(slack_mrkdwn(reason, multiline=True, limit=2000), REASON_LIMIT)


def _status_context(text: str) -> dict[str, Any]:
    shown = clip_mrkdwn(text, SECTION_TEXT_LIMIT)
    return {"type": "context", "block_id": "status", "elements": [mrkdwn_object(shown)]}


def decision_actions(request_id: str) -> dict[str, Any]:
    return {
        "type": "actions",
        "block_id": "decision",
        "elements": [
            button(
                APPROVE_ACTION,
                "Approve",
                "primary",
                request_id,
                confirm=(
                    "Approve this deployment?",
                    "Your approval is recorded in the sign-off ledger with your name.",
                ),
            ),
            {
                "type": "button",
                "action_id": REJECT_ACTION,
                "text": plain_object("Reject"),
                "style": "danger",
                "value": request_id,
            },
        ],
    }


def button(
    action_id: str,
    label: str,
    style: str,
    value: str,
    confirm: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """A button; with `confirm` (title, text) Slack asks before sending the click."""
    element: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "text": plain_object(label),
        "style": style,
        "value": value,
    }
    if confirm is not None:
        element["confirm"] = {
            "title": plain_object(confirm[0], limit=100),
            "text": mrkdwn_object(confirm[1]),
            "confirm": plain_object(label, limit=30),
            "deny": plain_object("Cancel", limit=30),
        }
    return element


def reject_modal(request_id: str, project_path: str, pipeline_id: int) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": REJECT_CALLBACK,
        "private_metadata": request_id,
        "title": plain_object("Reject deployment", limit=SLACK_MODAL_TITLE_LIMIT),
        "submit": plain_object("Reject", limit=SLACK_MODAL_TITLE_LIMIT),
        "close": plain_object("Cancel", limit=SLACK_MODAL_TITLE_LIMIT),
        "blocks": [
            {
                "type": "section",
                "text": mrkdwn_object(
                    f"Reject *{slack_mrkdwn(project_path)}* pipeline #{pipeline_id}?"
                ),
            },
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": plain_object("Reason (recorded in the ledger)", limit=2000),
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_ACTION,
                    "multiline": True,
                    "max_length": 2000,
                },
            },
        ],
    }


def role_mentions(policy: Policy, roles: Iterable[str], done: Container[str] = ()) -> str:
    """Slack mentions of who holds these roles (members not in `done`, and user groups)."""
    mentions: list[str] = []
    for role in sorted(roles):
        definition = policy.roles.get(role)
        if definition is None:
            continue
        mentions += [slack_user(m) for m in definition.members if m not in done]
        mentions += [slack_usergroup(g) for g in definition.usergroups]
    return " ".join(dict.fromkeys(mentions))
