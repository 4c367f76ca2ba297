"""The worker under Slack's rate limit (issue #15 item 1): a channel answering 429 does not
hold up another channel's posts, and every request is still posted exactly once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.simulators.slack import Call
from tests.integration.conftest import running_bot
from tests.integration.harness import Bot, request_id_of, wait_until

pytestmark = pytest.mark.integration

LIMITED, FREE = "C0DEPLOYS", "C0CARDS"


@pytest.fixture(scope="module")
def bot(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    with running_bot(request, tmp_path_factory, "sqlite") as running:
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
