"""A request Slack refuses for good (invalid_blocks, msg_too_long…) still reaches its
channel in a short form, and the admins are told once (issue #14 item 5). Driven through
the Slack simulator with the job functions called in-process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.runtime import Runtime
from bot.simulators.slack import FakeSlack, dm_channel_for
from bot.slack import SlackError
from bot.store import requests as store
from bot.store.models import ApprovalRequest, RequestState
from tests.fixtures.messages import CHANNEL, Outside, request_of
from tests.unit.edge_support import edge_app
from workers import jobs, maintenance
from workers.support import refresh_message

ADMIN = "U0ADMIN01"


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def rt(tmp_path: Path, redis_url: str, slack: FakeSlack) -> Iterator[Runtime]:
    extra = {"SLACK_API_URL": slack.api_url, "SLACK_BOT_TOKEN": slack.token}
    with edge_app(tmp_path, redis_url, **extra) as (_, runtime):
        yield runtime


def new_request(rt: Runtime) -> ApprovalRequest:
    template = request_of(Outside())
    fields = {
        column.name: getattr(template, column.name)
        for column in ApprovalRequest.__table__.columns
        if column.name not in ("id", "message_ts") and getattr(template, column.name) is not None
    }
    request, created = store.create(rt.db, fields)
    assert created
    return request


def channel_posts(slack: FakeSlack) -> list[dict[str, Any]]:
    return [
        c.params
        for c in slack.calls_to("chat.postMessage")
        if c.params.get("channel") == CHANNEL and not c.faulted
    ]


def admin_messages(slack: FakeSlack) -> list[str]:
    admin_channel = dm_channel_for(ADMIN)
    return [
        str(c.params["text"])
        for c in slack.calls_to("chat.postMessage")
        if c.params.get("channel") == admin_channel
    ]


def test_refused_blocks_post_the_short_form_with_buttons_and_tell_admins_once(
    rt: Runtime, slack: FakeSlack
) -> None:
    slack.refuse_blocks(lambda blocks: len(blocks) > 2)  # the full request, not the short one
    request = new_request(rt)
    jobs.post_request(rt, request)

    refused = [c for c in slack.calls_to("chat.postMessage") if c.faulted]
    assert [c.response["error"] for c in refused] == ["invalid_blocks"]
    [posted] = channel_posts(slack)
    assert "fintech/payments-api" in posted["text"]
    short, actions = posted["blocks"]
    line = short["text"]["text"]
    assert "<https://gitlab.example.com/fintech/payments-api/-/pipelines/5001|#5001>" in line
    assert "*fintech/payments-api* (`main`, commit `3f5c0a9d`)" in line
    assert {e["action_id"]: e["value"] for e in actions["elements"]} == {
        "approve": request.id,
        "reject": request.id,
    }
    # It is the request's message now: clicks on it count, and the sweep does not re-post.
    assert store.get(rt.db, request.id).message_ts is not None
    assert maintenance.repost(rt) == 0
    [told] = admin_messages(slack)
    assert "invalid_blocks" in told
    assert "#5001" in told

    closed = store.close(
        rt.db, request.id, RequestState.EXPIRED, "Expired.", (RequestState.PENDING,)
    )
    assert closed is not None
    refresh_message(rt, closed, None)
    [update] = [c.params for c in slack.calls_to("chat.update") if not c.faulted]
    assert [b["type"] for b in update["blocks"]] == ["section"]
    assert "*Expired*" in update["blocks"][0]["text"]["text"]
    assert len(admin_messages(slack)) == 1  # told once per request


def test_when_every_block_is_refused_the_request_goes_out_as_plain_text(
    rt: Runtime, slack: FakeSlack
) -> None:
    slack.refuse_blocks(lambda blocks: True, error="msg_too_long")
    request = new_request(rt)
    jobs.post_request(rt, request)
    [posted] = channel_posts(slack)
    assert "blocks" not in posted
    assert "Deployment approval needed" in posted["text"]
    assert "/-/pipelines/5001|#5001>" in posted["text"]
    assert "/approvals pending" in posted["text"]
    assert store.get(rt.db, request.id).message_ts is not None
    assert len(admin_messages(slack)) == 1


def test_a_passing_error_is_still_retried_not_replaced(rt: Runtime, slack: FakeSlack) -> None:
    slack.fail_next("chat.postMessage", error="fatal_error")
    request = new_request(rt)
    with pytest.raises(SlackError, match="fatal_error"):
        jobs.post_request(rt, request)
    assert channel_posts(slack) == []
    assert store.get(rt.db, request.id).message_ts is None
    assert admin_messages(slack) == []


def test_the_simulator_refuses_what_breaks_block_kit_limits(rt: Runtime, slack: FakeSlack) -> None:
    slack.refuse_blocks()
    with pytest.raises(SlackError, match="invalid_blocks"):
        rt.slack.post_message(CHANNEL, "fine", [{"type": "divider"}] * 51)
    assert rt.slack.post_message(CHANNEL, "fine", [{"type": "divider"}])


def test_text_only_notices_send_no_empty_blocks(rt: Runtime, slack: FakeSlack) -> None:
    rt.slack.post_message(CHANNEL, "A notice")
    rt.slack.post_message(CHANNEL, "Another notice", [])
    assert [("blocks" in params) for params in channel_posts(slack)] == [False, False]
