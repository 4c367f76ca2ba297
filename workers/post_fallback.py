"""A request's message in short form, when Slack refuses its full form for good.

`chat.postMessage` answers some errors that no retry can fix (`invalid_blocks`,
`msg_too_long`, …): re-posting the same blocks every sweep would leave the request
invisible forever. Instead the request goes out in a short form that Slack accepts: one
line naming the project, ref, commit and pipeline (linked), with the Approve and Reject buttons
while it is pending; and as plain text if even that is refused. The admins are told once.
A message the bot's own check (bot.blockkit_limits) finds over Slack's limits goes out in
the short form at once.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.admins import tell_admins_once
from bot.blockkit_fit import clip_mrkdwn
from bot.blockkit_limits import SECTION_TEXT_LIMIT, message_problems
from bot.blocks import FINAL_HEADLINES, decision_actions, summary_text
from bot.outside_text import (
    mrkdwn_object,
    slack_channel,
    slack_code,
    slack_link,
    slack_mrkdwn,
)
from bot.runtime import Runtime
from bot.slack import SlackError
from bot.store.models import ApprovalRequest, RequestState
from workers import pacing

log = logging.getLogger(__name__)

# Errors Slack answers to the message itself: the same message is refused every time.
REFUSED_MESSAGE_ERRORS = frozenset(
    {
        "invalid_blocks",
        "invalid_blocks_format",
        "invalid_arguments",
        "invalid_attachments",
        "msg_too_long",
        "msg_blocks_too_long",
        "too_many_attachments",
        "no_text",
        "markdown_text_conflict",
    }
)
CHECKED_BEFORE_POSTING = "over_block_kit_limits"
SHORT_PENDING = (
    ":lock: *Deployment approval needed* for {project} ({ref}, commit {sha}), "
    "pipeline {pipeline}. "
    "Slack could not show the full request; its details are in GitLab and in "
    "`/approvals pending`."
)
SHORT_APPROVED = ":gear: *Approved* — playing the gate job of {project} pipeline {pipeline}…"
SHORT_FINAL = "{headline} ({project}, pipeline {pipeline})"
ADMINS_TOLD = (
    ":warning: Slack refused the approval request for {project} pipeline {pipeline} in "
    "{channel} ({error}). A short form without the evidence was posted instead; "
    "approvers can still decide on it."
)


def short_text(request: ApprovalRequest) -> str:
    """One line of mrkdwn for the request's state, its GitLab facts escaped."""
    names = {
        "project": f"*{slack_mrkdwn(request.project_path)}*",
        "ref": slack_code(request.ref),
        "sha": slack_code((request.sha or "")[:8]),
        "pipeline": slack_link(request.pipeline_url, f"#{request.pipeline_id}"),
    }
    if request.state == RequestState.PENDING:
        text = SHORT_PENDING.format(**names)
    elif request.state in FINAL_HEADLINES:
        text = SHORT_FINAL.format(headline=FINAL_HEADLINES[request.state], **names)
    else:
        text = SHORT_APPROVED.format(**names)
    return clip_mrkdwn(text, SECTION_TEXT_LIMIT)


def short_blocks(request: ApprovalRequest) -> list[dict[str, Any]]:
    """The short form: the line, and the buttons while the request is pending (the
    contract's actions block, so a click on it is a click on the request's message)."""
    blocks: list[dict[str, Any]] = [
        {"type": "section", "block_id": "short", "text": mrkdwn_object(short_text(request))}
    ]
    if request.state == RequestState.PENDING:
        blocks.append(decision_actions(request.id))
    return blocks


def post_request_message(
    rt: Runtime, request: ApprovalRequest, text: str, blocks: list[dict[str, Any]]
) -> str:
    """Post the request's message; its short form if Slack refuses it for good. The ts.
    A 429 raises at once (paced calls: the caller defers the post, see workers.pacing)."""
    slack = pacing.client(rt)
    refused = _refused_before_posting(request, text, blocks)
    if refused is None:
        try:
            return slack.post_message(request.channel, text, blocks)
        except SlackError as exc:
            if exc.error not in REFUSED_MESSAGE_ERRORS:
                raise
            refused = exc.error
    _tell_admins(rt, request, refused)
    try:
        return slack.post_message(request.channel, summary_text(request), short_blocks(request))
    except SlackError as exc:
        if exc.error not in REFUSED_MESSAGE_ERRORS:
            raise
    return slack.post_message(request.channel, short_text(request))


def update_request_message(
    rt: Runtime, request: ApprovalRequest, text: str, blocks: list[dict[str, Any]]
) -> None:
    """Update the request's message; to its short form if Slack refuses the full one."""
    slack = pacing.client(rt)
    ts = request.message_ts
    if ts is None:
        return
    refused = _refused_before_posting(request, text, blocks)
    if refused is None:
        try:
            slack.update_message(request.channel, ts, text, blocks)
            return
        except SlackError as exc:
            if exc.error not in REFUSED_MESSAGE_ERRORS:
                raise
            refused = exc.error
    _tell_admins(rt, request, refused)
    slack.update_message(request.channel, ts, summary_text(request), short_blocks(request))


def _refused_before_posting(
    request: ApprovalRequest, text: str, blocks: list[dict[str, Any]]
) -> str | None:
    problems = message_problems(text, blocks)
    if not problems:
        return None
    log.error("the message of %s is over Slack's limits: %s", request.id, "; ".join(problems))
    return CHECKED_BEFORE_POSTING


def _tell_admins(rt: Runtime, request: ApprovalRequest, error: str) -> None:
    log.error("Slack refused the message of %s (%s): posting its short form", request.id, error)
    text = ADMINS_TOLD.format(
        project=f"*{slack_mrkdwn(request.project_path)}*",
        pipeline=slack_link(request.pipeline_url, f"#{request.pipeline_id}"),
        channel=slack_channel(request.channel),
        error=slack_code(error),
    )
    tell_admins_once(rt, f"message-refused:{request.id}", text)
