"""Slack requests are answered inside Slack's 3 seconds even when Slack itself is slow or
rate-limiting: the edge never retries or waits on Slack past its budget (issue #14 item 6)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.slack_edge import GROUP_MEMBER, Edge, slack_edge

# The ack must reach Slack well inside its 3 seconds: the edge's Slack budget is 2 s.
ACK_LIMIT_S = 2.5


@pytest.fixture
def edge(tmp_path: Path, redis_url: str) -> Iterator[Edge]:
    with slack_edge(tmp_path, redis_url) as edge:
        yield edge


@pytest.mark.parametrize("method", ["usergroups.users.list", "views.open"])
def test_rate_limited_reject_is_answered_at_once_and_says_when_to_click_again(
    edge: Edge, method: str
) -> None:
    edge.slack.fail_next(method, 429, retry_after=4, times=None)

    assert edge.reject_click() < ACK_LIMIT_S
    assert edge.told() == "Slack is rate-limiting us, click Reject again in 4 s."
    assert len(edge.slack.calls_to(method)) == 1  # no retry inside the ack
    assert not edge.slack.views


def test_slow_slack_is_given_up_on_within_the_budget(edge: Edge) -> None:
    edge.slack.delay("views.open", 5)

    assert edge.reject_click() < ACK_LIMIT_S
    assert "Slack did not answer in time" in edge.told()


def test_reject_still_opens_the_form_when_slack_answers(edge: Edge) -> None:
    assert edge.reject_click() < ACK_LIMIT_S
    edge.slack.wait_for("views.open")
    assert edge.slack.views[-1]["view"]["callback_id"] == "reject_reason"


def test_rate_limited_slash_command_is_answered_at_once(edge: Edge) -> None:
    edge.slack.fail_next("usergroups.users.list", 429, retry_after=7, times=None)

    text, elapsed = edge.command(GROUP_MEMBER, "whoami")

    assert elapsed < ACK_LIMIT_S
    assert text == "Slack is rate-limiting us, please try `/approvals whoami` again in 7 s."


def test_ack_p99_with_a_slow_slack_stays_inside_the_budget(edge: Edge) -> None:
    """Every Slack call the edge makes answers after 3 s: each click still answers in time."""
    edge.slack.delay("usergroups.users.list", 3)
    edge.slack.delay("views.open", 3)
    timings = sorted(edge.reject_click() for _ in range(5))
    assert timings[-1] < ACK_LIMIT_S
