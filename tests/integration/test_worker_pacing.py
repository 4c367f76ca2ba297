"""The worker under Slack's rate limit and at rest (issue #15 items 1 and 5): a channel
answering 429 does not hold up another channel's posts, every request is still posted
exactly once, and an idle worker logs nothing at WARNING or above."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import redis

from bot.simulators.slack import Call
from tests.integration.conftest import running_bot
from tests.integration.harness import Bot, request_id_of, wait_until

pytestmark = pytest.mark.integration

LIMITED, FREE = "C0DEPLOYS", "C0CARDS"
RM = "U0RM00001"
# RQ's blocking dequeue used to be cut by the 2 s socket timeout every few seconds.
IDLE_WINDOW_S = 8.0


@pytest.fixture(scope="module")
def bot(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    # No sweep in the idle window: the worker waits on its blocking dequeue all along, far
    # past the client's old 2 s socket timeout (the sweep's own lines: tests/unit).
    env = {"SWEEP_INTERVAL_SECONDS": "60"}
    with running_bot(request, tmp_path_factory, "sqlite", env) as running:
        yield running


def accepted_posts(bot: Bot, channel: str) -> list[Call]:
    """Top-level chat.postMessage calls the fake Slack accepted in `channel`."""
    return [
        c
        for c in bot.slack.calls_to("chat.postMessage")
        if c.params.get("channel") == channel
        and "thread_ts" not in c.params
        and c.status == 200
        and isinstance(c.response, dict)
        and c.response.get("ok")
    ]


def refused_posts(bot: Bot, channel: str) -> list[Call]:
    return [
        c
        for c in bot.slack.calls_to("chat.postMessage")
        if c.params.get("channel") == channel and c.status == 429
    ]


def send(bot: Bot, n: int, project_id: int, project_path: str) -> None:
    event = bot.pipeline(
        project_id=project_id,
        project_path=project_path,
        pipeline_id=81_000 + n,
        gate_job_id=810_000 + n * 10,
        ref=f"release/{n}",  # each its own ref: no pipeline supersedes another
    )
    answer = bot.webhook(event, key=f"pacing-{n}")
    assert answer.status_code == 202, answer.text


def test_an_idle_worker_logs_nothing(live: Bot) -> None:
    # First in the module: nothing was sent yet, so a sweep has nothing to do or report.
    client = redis.Redis.from_url(live.env["REDIS_URL"])
    wait_until(lambda: client.smembers("rq:workers"), 15, "the worker to register")
    seen = len(live.log("worker"))  # its start-up lines
    time.sleep(IDLE_WINDOW_S)  # idle, past the old 2 s socket timeout several times
    idle = live.log("worker")[seen:]
    # The worker was taking jobs all along: a request sent now is posted.
    send(live, 9, 409, "fintech/cards-9")
    wait_until(lambda: accepted_posts(live, FREE), 15, "the post after the idle window")
    assert not idle.strip(), idle[-2000:]
    lines = live.log("worker")[seen:].splitlines()
    assert not [line for line in lines if is_warning_or_worse(line)]


def test_a_rate_limited_channel_does_not_delay_another(live: Bot) -> None:
    live.slack.rate_limit_per_channel = 1.0  # 429 + Retry-After: 1 within a second
    live.slack.rate_limited_channels = {LIMITED}
    try:
        for n in range(4):  # queued first: before the fix the worker slept on their 429s
            send(live, n, 101, "fintech/payments-api")
        for n in range(4, 6):
            send(live, n, 400 + n, f"fintech/cards-{n}")
        limited = wait_until(
            lambda: len(accepted_posts(live, LIMITED)) >= 4 and accepted_posts(live, LIMITED),
            30,
            "the four rate-limited posts",
        )
        free = wait_until(
            lambda: len(accepted_posts(live, FREE)) >= 2 and accepted_posts(live, FREE)
        )
    finally:
        live.slack.rate_limit_per_channel = None
        live.slack.rate_limited_channels = None
    assert refused_posts(live, LIMITED), "the limited channel never answered 429"
    assert not refused_posts(live, FREE)
    # The free channel's posts went out while the limited one was still cooling down.
    assert max(c.at for c in free) < max(c.at for c in limited)
    # Each request posted exactly once, also after its slot came (and the sweep ran).
    ids = [request_id_of(c.params) for c in limited]
    assert len(ids) == len(set(ids)) == 4
    assert len({request_id_of(c.params) for c in free}) == 2


def test_a_rate_limited_message_update_waits_for_retry_after_then_shows_the_state(
    live: Bot,
) -> None:
    send(live, 20, 420, "fintech/cards-20")
    message = wait_until(lambda: accepted_posts(live, FREE), 15, "the request's post")[-1]
    live.slack.fail_next("chat.update", 429, retry_after=1)
    live.click(RM, "approve", request_id_of(message.params))  # the quorum: played, updated

    def updates(status: int) -> list[Call]:
        return [c for c in live.slack.calls_to("chat.update") if c.status == status]

    refused = wait_until(lambda: updates(429), 15, "the refused update")
    shown = wait_until(
        lambda: [c for c in updates(200) if "Approved" in str(c.params.get("blocks"))],
        20,
        "the update after Retry-After",
    )
    assert shown[0].at - refused[0].at >= 1.0  # it waited for its slot, in no job's sleep


def is_warning_or_worse(line: str) -> bool:
    """A worker log line at WARNING or above (or not a structured line: a traceback)."""
    try:
        record = json.loads(line)
    except ValueError:
        return bool(line.strip())
    return str(record.get("level", "")).lower() in {"warning", "error", "critical", "exception"}
