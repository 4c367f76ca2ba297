"""Block Kit for the rollback replies in a request's thread: the offer after a successful
deployment, the alert when the smoke test fails, and their final states.

The request message itself keeps its final form (no actions block, as the contract says);
the Roll back button lives in these replies.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from bot.approvals import describe_missing
from bot.blockkit_fit import clip_mrkdwn
from bot.blockkit_limits import SECTION_TEXT_LIMIT
from bot.blocks import ROLLBACK_ACTION, button
from bot.outside_text import mrkdwn_object, slack_code, slack_mrkdwn, slack_user
from bot.store.models import ApprovalRequest
from bot.store.rollbacks import RollbackState

Kind = Literal["offer", "alert"]

OFFER = (
    ":rocket: Deployed to *{environment}*. If something is wrong, *Roll back* plays "
    "{job} in pipeline #{pipeline}."
)
ALERT = (
    ":rotating_light: *Smoke test {smoke} failed* after the deployment to *{environment}* "
    "of pipeline #{pipeline}. Roll back now?"
)
WHO = "Who may roll back: {who}"
NOBODY = (
    "Who may roll back: nobody in the rollback roles can press it for this deployment "
    "(`approval-bot policy explain --rollback` tells why); roll back in GitLab."
)
VOTES = "Roll back approved so far by {voters}; still needed: {missing}."
ROLLING_BACK = ":gear: Rolling back: playing {job}…"
ROLLED_BACK = (
    ":leftwards_arrow_with_hook: *Rolled back* by {voters} at {at}: {job} was played{record}."
)
ROLLBACK_FAILED = (
    ":warning: Roll back failed: no {job} job is waiting in pipeline #{pipeline}; "
    "nothing was played. Roll back in GitLab."
)
WITHDRAWN = (
    ":no_entry_sign: Roll back withdrawn: production has moved on ({newer} was deployed "
    "after this one), so rolling this one back would undo the wrong release. Roll back from "
    "that pipeline's thread."
)
CONFIRM_TITLE = "Roll back this deployment?"
CONFIRM_TEXT = "This plays the rollback job now; your name is recorded in the ledger."


def _ts(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "?"


def _button(request_id: str) -> dict[str, Any]:
    return {
        "type": "actions",
        "block_id": "rollback",
        "elements": [
            button(
                ROLLBACK_ACTION,
                "Roll back",
                "danger",
                request_id,
                confirm=(CONFIRM_TITLE, CONFIRM_TEXT),
            )
        ],
    }


def _context(text: str) -> dict[str, Any]:
    # Whole mentions only: a long list of who may roll back is cut between two of them.
    return {"type": "context", "elements": [mrkdwn_object(clip_mrkdwn(text, SECTION_TEXT_LIMIT))]}


def rollback_message(
    request: ApprovalRequest,
    kind: Kind,
    facts: Mapping[str, str],
    voters: list[str],
    missing: Mapping[str, int],
) -> tuple[str, list[dict[str, Any]]]:
    """One rollback reply for the request's current rollback state.

    `facts` holds `job`, `smoke` (job names), `who` (mentions of who may roll back),
    `newer` (the pipeline deployed after this one, if any) and `record` (the ledger record,
    once played).
    """
    names = {
        "environment": slack_mrkdwn(request.environment) or "production",
        "pipeline": str(request.pipeline_id),
        "job": slack_code(facts.get("job", "rollback")),
        "smoke": slack_code(facts.get("smoke", "post-deploy")),
    }
    headline = (ALERT if kind == "alert" else OFFER).format(**names)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": mrkdwn_object(clip_mrkdwn(headline, SECTION_TEXT_LIMIT))}
    ]
    shown = " ".join(slack_user(v) for v in voters)
    state = request.rollback_state
    if state == RollbackState.OFFERED:
        if voters:
            blocks.append(_context(VOTES.format(voters=shown, missing=describe_missing(missing))))
        if "who" in facts:
            who = facts["who"]
            blocks.append(_context(WHO.format(who=who) if who else NOBODY))
        blocks.append(_button(request.id))
    elif state in (RollbackState.APPROVED, RollbackState.PLAYING):
        blocks.append(_context(ROLLING_BACK.format(**names)))
    elif state == RollbackState.PLAYED:
        record = f" (ledger record #{facts['record']})" if facts.get("record") else ""
        text = ROLLED_BACK.format(
            voters=shown or "an approver", at=_ts(request.rolled_back_at), record=record, **names
        )
        blocks.append(_context(text))
    elif state == RollbackState.FAILED:
        blocks.append(_context(ROLLBACK_FAILED.format(**names)))
    elif state == RollbackState.SUPERSEDED:
        newer = f"pipeline #{facts['newer']}" if facts.get("newer") else "a newer pipeline"
        blocks.append(_context(WITHDRAWN.format(newer=newer)))
    # The same text as the headline, whose outside parts are already escaped.
    return headline.replace("*", ""), blocks
