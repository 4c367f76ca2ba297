"""POST /slack/interactions and /slack/commands: verify signature → parse → enqueue → 200."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs

from flask import Blueprint, Response, request
from prometheus_client import Counter
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError

from bot import approvals, blocks
from bot.click_origin import from_request_message, not_its_message
from bot.directory import roles_of
from bot.evidence import gate_for_request
from bot.slack import NO_PARSING, SlackClient, SlackError, SlackRateLimited, SlackUnavailable
from bot.store import requests as store
from bot.store import slack_guard
from bot.store.models import ApprovalRequest, RequestState
from bot.web import commands, slack_origin
from bot.web.security import SLACK_MAX_AGE_S, slack_signature_ok
from bot.web.slack_payloads import BadPayload, BlockActions, ViewSubmission, parse_interaction
from bot.web.support import BodyTooLarge, Edge, answer, edge, error, parse_json, read_body
from workers import queue as jobs

log = logging.getLogger(__name__)
blueprint = Blueprint("slack", __name__)

INTERACTIONS = Counter(
    "approval_bot_slack_requests_total", "Slack requests by kind and outcome", ["kind", "outcome"]
)
REASON_REQUIRED = "Please say why you reject this deployment."
UNKNOWN_REQUEST = "This approval request is unknown to the bot."
NO_GATE = "No gate in the current policy covers this job."
NOT_PENDING = "This request is already {state}; it can no longer be rejected."
MODAL_FAILED = "Slack did not open the rejection form ({error}); please click Reject again."
RATE_LIMITED = "Slack is rate-limiting us, click Reject again in {seconds} s."
SLACK_SLOW = "Slack did not answer in time ({error}); please click Reject again."
# Every Slack call made while answering a Slack request, together, ends within this budget
# (no retries): the answer must reach Slack inside its 3 seconds, and a trigger_id dies then.
SLACK_BUDGET_S = 2.0
NOT_OUR_FORM = (
    "This rejection form was not opened by approval-bot for you on this request; close it "
    "and click Reject on the request's message."
)


class Unverified(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _verified_form(ctx: Edge) -> dict[str, str]:
    """Check size, signature, freshness and replay; then (only then) parse the form body."""
    settings = ctx.runtime.settings
    try:
        body = read_body(settings.MAX_BODY_BYTES)
    except BodyTooLarge:
        raise Unverified(413, f"body larger than {settings.MAX_BODY_BYTES} bytes") from None
    signature = request.headers.get("X-Slack-Signature")
    timestamp = request.headers.get("X-Slack-Request-Timestamp")
    if not slack_signature_ok(
        body, timestamp, signature, settings.SLACK_SIGNING_SECRET.get_secret_value()
    ):
        raise Unverified(401, "invalid or stale Slack signature")
    assert signature is not None
    assert timestamp is not None
    # Remembered in the database, not Redis: a flushed or restarted Redis must not make a
    # captured request count again. Kept until the signature check would refuse it anyway.
    try:
        first_time = slack_guard.first_sighting(
            ctx.runtime.db, signature, int(timestamp) + SLACK_MAX_AGE_S
        )
    except DBAPIError:
        raise Unverified(503, "not ready: the database is unavailable") from None
    if not first_time:
        raise Unverified(401, "replayed Slack request")
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=False)
    except UnicodeDecodeError:
        raise Unverified(400, "body is not UTF-8 form data") from None
    return {key: values[0] for key, values in form.items() if values}


@blueprint.post("/slack/interactions")
def interactions() -> tuple[Response, int] | Response:
    ctx = edge()
    try:
        form = _verified_form(ctx)
        payload = parse_json(form.get("payload", ""))
        if not isinstance(payload, dict):
            raise ValueError
    except Unverified as exc:
        log.info("Slack interaction refused (%d): %s", exc.status, exc)
        INTERACTIONS.labels("interaction", "refused").inc()
        return error(exc.status, str(exc))
    except ValueError:
        INTERACTIONS.labels("interaction", "bad_request").inc()
        return error(400, "payload must be a JSON object")
    foreign = slack_origin.foreign(ctx.runtime.settings, slack_origin.of_interaction(payload))
    if foreign is not None:
        log.warning("Slack interaction refused (401): %s", foreign)
        INTERACTIONS.labels("interaction", "foreign").inc()
        return error(401, foreign)
    try:
        interaction = parse_interaction(payload)
        if isinstance(interaction, BlockActions):
            return _block_actions(ctx, interaction)
        if isinstance(interaction, ViewSubmission):
            return _view_submission(ctx, interaction)
    except BadPayload as exc:
        INTERACTIONS.labels("interaction", "bad_request").inc()
        return error(400, str(exc))
    except RedisError:
        return error(503, "queue unavailable, please try again")
    INTERACTIONS.labels("other", "ignored").inc()
    kind = payload.get("type")
    return answer(200, status="ignored", reason=f"interaction type {kind!r} needs no action")


def _block_actions(ctx: Edge, payload: BlockActions) -> Response:
    action = payload.actions[0]
    if action.action_id not in (
        blocks.APPROVE_ACTION,
        blocks.REJECT_ACTION,
        blocks.ROLLBACK_ACTION,
    ):
        INTERACTIONS.labels("block_actions", "ignored").inc()
        return Response(status=200)
    channel, message_ts = payload.message_origin
    click = {
        "request_id": action.value,
        "user_id": payload.user.id,
        "user_name": payload.user.display,
        "response_url": payload.response_url,
        "channel_id": payload.channel_id,
        # Where the clicked button is: a click counts only on the request's own message.
        "message_channel": channel,
        "message_ts": message_ts,
    }
    if action.action_id in (blocks.APPROVE_ACTION, blocks.ROLLBACK_ACTION):
        job = jobs.APPROVE if action.action_id == blocks.APPROVE_ACTION else jobs.ROLLBACK
        jobs.enqueue(ctx.queue, job, click)
        INTERACTIONS.labels(action.action_id, "queued").inc()
        return Response(status=200)
    return _open_reject_modal(ctx, click, payload.trigger_id)


def _open_reject_modal(ctx: Edge, click: dict[str, Any], trigger_id: str) -> Response:
    """Reject needs a reason, so the modal opens now: a trigger_id lives only 3 seconds."""
    try:
        request_row: ApprovalRequest | None = store.get(ctx.runtime.db, click["request_id"])
    except store.RequestNotFound:
        request_row = None
    slack = ctx.runtime.slack.within(SLACK_BUDGET_S)
    try:
        refusal = _reject_refusal(ctx, slack, click, request_row)
        if refusal is None and request_row is not None:
            _open_modal(ctx, slack, click, request_row, trigger_id)
            INTERACTIONS.labels("reject", "modal").inc()
            return Response(status=200)
    except SlackRateLimited as exc:
        refusal = RATE_LIMITED.format(seconds=exc.retry_after)
    except SlackUnavailable as exc:
        refusal = SLACK_SLOW.format(error=exc.error)
    except SlackError as exc:
        refusal = MODAL_FAILED.format(error=exc.error)
    jobs.enqueue(ctx.queue, jobs.NOTIFY, {**click, "text": refusal})
    INTERACTIONS.labels("reject", "refused").inc()
    return Response(status=200)


def _open_modal(
    ctx: Edge,
    slack: SlackClient,
    click: dict[str, Any],
    request_row: ApprovalRequest,
    trigger_id: str,
) -> None:
    view = blocks.reject_modal(request_row.id, request_row.project_path, request_row.pipeline_id)
    view_id = slack.open_view(trigger_id, view)
    # The submission carries no message: it counts only for the form opened here.
    if view_id:
        slack_guard.record_view(ctx.runtime.db, view_id, request_row.id, click["user_id"])


def _reject_refusal(
    ctx: Edge, slack: SlackClient, click: dict[str, Any], request_row: ApprovalRequest | None
) -> str | None:
    """Why this user may not reject now (None: they may). The worker checks again. A user
    group Slack cannot read now raises SlackUnavailable: the user is asked to click again."""
    if request_row is None:
        return UNKNOWN_REQUEST
    if not from_request_message(click, request_row):
        return not_its_message(request_row)
    if request_row.state != RequestState.PENDING:
        return NOT_PENDING.format(state=request_row.state)
    policy = ctx.runtime.policy.current.policy
    gate = gate_for_request(policy, request_row)
    if gate is None:
        return NO_GATE
    clicker = approvals.Clicker(
        slack_user_id=click["user_id"],
        email=None,
        roles=roles_of(policy, slack, click["user_id"], unsure_raises=True),
        is_admin=policy.is_admin(click["user_id"]),
    )
    denied = approvals.decide_rejection(gate, clicker)
    return denied.message if denied else None


def _view_submission(ctx: Edge, payload: ViewSubmission) -> tuple[Response, int] | Response:
    view = payload.view
    if view.callback_id != blocks.REJECT_CALLBACK:
        return Response(status=200)
    reason = view.input(blocks.REASON_BLOCK, blocks.REASON_ACTION)
    if reason is None or not reason.strip():
        errors = {blocks.REASON_BLOCK: REASON_REQUIRED}
        return answer(200, response_action="errors", errors=errors)
    if not slack_guard.view_opened_for(
        ctx.runtime.db, view.id, view.private_metadata, payload.user.id
    ):
        log.warning("rejection form %r not opened by the bot for this request", view.id)
        INTERACTIONS.labels("reject", "foreign_view").inc()
        return answer(200, response_action="errors", errors={blocks.REASON_BLOCK: NOT_OUR_FORM})
    submission = {
        "request_id": view.private_metadata,
        "user_id": payload.user.id,
        "user_name": payload.user.display,
        "reason": reason.strip(),
    }
    jobs.enqueue(ctx.queue, jobs.REJECT, submission)
    INTERACTIONS.labels("reject", "queued").inc()
    return Response(status=200)


@blueprint.post("/slack/commands")
def slash_commands() -> tuple[Response, int]:
    ctx = edge()
    try:
        form = _verified_form(ctx)
    except Unverified as exc:
        log.info("Slack command refused (%d): %s", exc.status, exc)
        INTERACTIONS.labels("command", "refused").inc()
        return error(exc.status, str(exc))
    foreign = slack_origin.foreign(ctx.runtime.settings, slack_origin.of_command(form))
    if foreign is not None:
        log.warning("Slack command refused (401): %s", foreign)
        INTERACTIONS.labels("command", "foreign").inc()
        return error(401, foreign)
    user_id = form.get("user_id", "")
    if not user_id:
        return error(400, "user_id missing")
    bounded = replace(ctx.runtime, slack=ctx.runtime.slack.within(SLACK_BUDGET_S))
    text = commands.answer(bounded, user_id, form.get("text", ""))
    INTERACTIONS.labels("command", "answered").inc()
    return answer(200, response_type="ephemeral", text=text, parse=NO_PARSING)
