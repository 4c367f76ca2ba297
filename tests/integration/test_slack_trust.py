"""What a signed Slack request may do, tried as an attacker would against the running bot:
replay a captured click after Redis lost its data, click from another workspace, app,
Grid org, channel or message, submit a rejection form the bot never opened, and read
other teams' pending requests with `/approvals pending`."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import redis
import requests

from bot.policy import load_policy
from bot.simulators.slack_signing import block_actions_payload, signed_headers
from tests.fixtures.live_markup import (
    block_problems,
    gitlab_problems,
    slack_problems,
    status_problems,
)
from tests.integration.conftest import running_bot
from tests.integration.harness import SIGNING_SECRET, Bot, request_id_of, wait_until

pytestmark = pytest.mark.integration

RM, CO, ADMIN, DBA = "U0RM00001", "U0CO00001", "U0ADMIN01", "U0DBA0001"
GROUP_MEMBER, OUTSIDER = "U0GROUP01", "U0OUTSIDE"
TEAM, APP, GRID = "T0TEAM001", "A0APPROVAL1", "E0GRID0001"
NOT_COUNTED = "not on the approval request's own message"
_pipelines = itertools.count(61_000)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def bot(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    settings = {"SLACK_TEAM_ID": TEAM, "SLACK_APP_ID": APP, "SLACK_ENTERPRISE_ID": GRID}
    with running_bot(request, tmp_path_factory, request.param, settings) as running:
        running.payload_extra = {"enterprise": {"id": GRID, "name": "Grid"}}
        running.command_extra = {"enterprise_id": GRID}
        yield running


def open_request(live: Bot, **kwargs: Any) -> tuple[str, dict[str, Any]]:
    pipeline = next(_pipelines)
    kwargs.setdefault("project_path", "fintech/payments-api")
    channel = kwargs.pop("channel", "C0DEPLOYS")
    event = live.pipeline(pipeline_id=pipeline, gate_job_id=pipeline * 10, **kwargs)
    assert live.webhook(event).status_code == 202
    message = wait_until(
        lambda: next(
            (
                c.params
                for c in live.slack.calls_to("chat.postMessage")
                if f"#{pipeline}" in json.dumps(c.params.get("blocks"))
            ),
            None,
        ),
        15,
        f"the request of pipeline {pipeline}",
    )
    assert message["channel"] == channel
    return request_id_of(message), message


def signed_click(live: Bot, user: str, request_id: str, reply: str) -> tuple[bytes, dict[str, str]]:
    """A click as captured on the wire: body and headers, to be sent again unchanged."""
    channel, ts = live.message_with_button("approve", request_id) or ("", "")
    payload = block_actions_payload(
        user,
        "approve",
        request_id,
        channel_id=channel,
        message_ts=ts,
        response_url=live.slack.response_url(reply),
    )
    body = urlencode({"payload": json.dumps({**payload, **live.payload_extra})}).encode()
    return body, signed_headers(SIGNING_SECRET, body, int(time.time()))


def post(live: Bot, body: bytes, headers: dict[str, str]) -> requests.Response:
    return requests.post(f"{live.url}/slack/interactions", data=body, headers=headers, timeout=10)


# --- item 8: replays after Redis loses its data -------------------------------------------


def test_a_replayed_click_is_refused_after_redis_was_flushed(live: Bot) -> None:
    request_id, _ = open_request(live)
    body, headers = signed_click(live, RM, request_id, "captured")
    assert post(live, body, headers).status_code == 200
    assert "Your approval is recorded" in live.wait_response("captured")

    redis.Redis.from_url(live.env["REDIS_URL"]).flushdb()
    replayed = post(live, body, headers)
    assert replayed.status_code == 401, replayed.text
    assert "replayed" in replayed.json()["error"]

    # The queue is worked in order: once a later click is answered, a replay that had been
    # queued would have been answered too.
    assert live.click(CO, "approve", request_id, response_url=live.slack.response_url("co"))
    assert "completed the quorum" in live.wait_response("co")
    assert len(live.responses_to("captured")) == 1


# --- item 9: clicks from elsewhere ---------------------------------------------------------


FOREIGN = {
    "team": {"team": {"id": "T0OTHER01", "domain": "other"}},
    "app": {"api_app_id": "A0OTHERAPP"},
    "enterprise": {"enterprise": {"id": "E0OTHER01", "name": "Other"}},
    "no enterprise": {"enterprise": None},
}


@pytest.mark.parametrize("field", sorted(FOREIGN))
def test_a_click_from_another_workspace_app_or_org_is_refused(live: Bot, field: str) -> None:
    request_id, _ = open_request(live)
    channel, ts = live.message_with_button("approve", request_id) or ("", "")
    payload = block_actions_payload(
        RM, "approve", request_id, channel_id=channel, message_ts=ts,
        response_url=live.slack.response_url(f"foreign-{field}"),
    )  # fmt: skip
    body = urlencode(
        {"payload": json.dumps({**payload, **live.payload_extra, **FOREIGN[field]})}
    ).encode()
    answer = post(live, body, signed_headers(SIGNING_SECRET, body))
    assert answer.status_code == 401, answer.text

    # The same person on the request's own message still counts once: nothing was recorded.
    assert live.click(RM, "approve", request_id, response_url=live.slack.response_url("own"))
    assert "Your approval is recorded" in live.wait_response("own")
    assert live.responses_to(f"foreign-{field}") == []


def test_a_form_or_command_from_another_workspace_is_refused(live: Bot) -> None:
    request_id, _ = open_request(live)
    live.click(RM, "reject", request_id)
    live.slack.wait_for("views.open")
    live.payload_extra = {**live.payload_extra, "team": {"id": "T0OTHER01"}}
    live.command_extra = {**live.command_extra, "team_id": "T0OTHER01"}
    try:
        assert live.submit_reason(RM, request_id, "from elsewhere").status_code == 401
        assert live.command(ADMIN, "pending").status_code == 401
    finally:
        live.payload_extra = {"enterprise": {"id": GRID, "name": "Grid"}}
        live.command_extra = {"enterprise_id": GRID}
    answer = live.command(ADMIN, "pending")
    assert answer.status_code == 200
    assert "fintech/payments-api" in answer.json()["text"]
    assert live.click(RM, "approve", request_id, response_url=live.slack.response_url("after"))
    assert "Your approval is recorded" in live.wait_response("after")  # not rejected


@pytest.mark.parametrize("where", ["channel", "message"])
def test_a_click_on_another_message_is_told_why_and_not_counted(live: Bot, where: str) -> None:
    request_id, message = open_request(live)
    channel, ts = live.message_with_button("approve", request_id) or ("", "")
    elsewhere = {"channel_id": "C0ELSEWHERE"} if where == "channel" else {"message_ts": "1.000001"}
    reply = live.slack.response_url(f"elsewhere-{where}")
    click = {"channel_id": channel, "message_ts": ts, "response_url": reply, **elsewhere}
    assert live.click(RM, "approve", request_id, **click).status_code == 200
    assert NOT_COUNTED in live.wait_response(f"elsewhere-{where}")

    assert live.click(RM, "approve", request_id, response_url=live.slack.response_url("here"))
    assert "Your approval is recorded" in live.wait_response("here")
    assert message["channel"] == channel


def test_a_reject_from_another_message_opens_no_form(live: Bot) -> None:
    request_id, _ = open_request(live)
    reply = live.slack.response_url("reject-elsewhere")
    assert live.click(RM, "reject", request_id, channel_id="C0ELSEWHERE", response_url=reply)
    assert NOT_COUNTED in live.wait_response("reject-elsewhere")
    assert live.slack.calls_to("views.open") == []


def test_a_rejection_counts_only_through_the_form_the_bot_opened(live: Bot) -> None:
    request_id, _ = open_request(live)
    live.click(RM, "reject", request_id)
    opened = live.slack.wait_for("views.open")[-1].response["view"]["id"]

    forged = live.submit_reason(RM, request_id, "forged", view_id="V9999999999")
    assert forged.json()["response_action"] == "errors"
    someone_else = live.submit_reason(CO, request_id, "not mine", view_id=opened)
    assert someone_else.json()["response_action"] == "errors"

    assert live.click(RM, "approve", request_id, response_url=live.slack.response_url("still"))
    assert "Your approval is recorded" in live.wait_response("still")  # still pending

    assert live.submit_reason(RM, request_id, "not today", view_id=opened).status_code == 200
    update = live.message_update("not today")
    assert "Rejected" in json.dumps(update["blocks"])
    assert "forged" not in json.dumps(live.slack.message_log)


# --- item 10: who sees what ----------------------------------------------------------------


def test_pending_lists_only_the_gates_the_asker_may_approve(live: Bot) -> None:
    payments, _ = open_request(live)
    wallet, _ = open_request(
        live, project_id=401, project_path="fintech/wallet-app", channel="C0WALLET"
    )

    def pending(user: str) -> str:
        answer = live.command(user, "pending")
        assert answer.status_code == 200
        return str(answer.json()["text"])

    officer = pending(CO)  # compliance-officer: payments-api needs one, wallet-app does not
    assert "fintech/payments-api" in officer
    assert "fintech/wallet-app" not in officer
    dba = pending(DBA)  # wallet-app's risk rules call for a dba (its migrations are unchecked)
    assert "fintech/wallet-app" in dba
    assert "fintech/payments-api" not in dba
    for user in (GROUP_MEMBER, ADMIN):  # a release manager through the live user group; admin
        both = pending(user)
        assert "fintech/payments-api" in both
        assert "fintech/wallet-app" in both
    assert "Only policy admins and approvers" in pending(OUTSIDER)
    assert payments != wallet


# --- item 7: outside text is text ------------------------------------------------------------

HOSTILE_NAME = "@all see [SSO login](https://evil.example) <!here>"
HOSTILE_REASON = "<!channel> `` @all `` ![x](https://evil.example/p.png)\n\n@here"


def known(live: Bot) -> dict[str, Any]:
    policy = load_policy(live.workdir / "approvers.yml").policy
    return {
        "users": {*policy.admins, *(m for r in policy.roles.values() for m in r.members)},
        "channels": {g.channel for g in policy.gates},
        "groups": {g for r in policy.roles.values() for g in r.usergroups},
        "url_prefixes": (live.gitlab.url,),
    }


def test_a_ref_named_channel_mentions_nobody(live: Bot) -> None:
    request_id, message = open_request(
        live, ref="<!channel>", commit_title="<!here> see <http://evil.example|this>"
    )
    assert slack_problems(message["text"], **known(live)) == []
    assert block_problems(message["blocks"], **known(live)) == []
    assert "&lt;!channel&gt;" in message["text"]
    assert message["parse"] == "none"  # no auto-linked URLs, no @here/#channel parsing

    answer = live.command(ADMIN, "pending").json()
    assert request_id
    assert "&lt;!channel&gt;" in answer["text"]
    assert slack_problems(answer["text"], **known(live)) == []


def test_a_hostile_display_name_reaches_gitlab_as_plain_text(live: Bot) -> None:
    hostile = "U0RM00002"
    live.slack.add_user(hostile, "ravi", "ravi@example.com", real_name=HOSTILE_NAME)
    request_id, _ = open_request(live, sha="c0ffee" + "0" * 34)
    assert live.click(hostile, "approve", request_id)
    assert live.click(CO, "approve", request_id, response_url=live.slack.response_url("q"))
    assert "completed the quorum" in live.wait_response("q")
    note = wait_until(
        lambda: [n for n in live.gitlab.notes if n["target"].startswith("c0ffee")], 15, "note"
    )[-1]["text"]
    assert "SSO login" in note
    assert gitlab_problems(note) == []

    rejected_id, _ = open_request(live, sha="decade" + "0" * 34)
    live.click(hostile, "reject", rejected_id)
    live.slack.wait_for("views.open")
    assert live.submit_reason(hostile, rejected_id, HOSTILE_REASON).status_code == 200
    note = wait_until(
        lambda: [n for n in live.gitlab.notes if n["target"].startswith("decade")], 15, "note"
    )[-1]["text"]
    assert "SSO login" in note
    assert gitlab_problems(note) == []
    status = wait_until(
        lambda: [
            s
            for s in live.gitlab.statuses
            if s["sha"].startswith("decade") and s["state"] == "failed"
        ],
        15,
        "the failed status",
    )[-1]
    assert status_problems(status["description"]) == []
    thread = wait_until(
        lambda: [
            c.params
            for c in live.slack.calls_to("chat.postMessage")
            if "Rejected by" in str(c.params.get("text")) and "thread_ts" in c.params
        ],
        15,
        "the rejection in the thread",
    )[-1]
    assert "&lt;!channel&gt;" in thread["text"]
    assert slack_problems(thread["text"], **known(live)) == []
