"""What GitLab and Slack see at the HTTP edge: authenticity, bad input, duplicates, health."""

from __future__ import annotations

import itertools
import json
import time

import pytest
import requests

from bot.simulators.slack_signing import block_actions_body, slash_command_body
from tests.integration.harness import FIXTURES, Bot, request_id_of

pytestmark = pytest.mark.integration
_ids = itertools.count(1)


def fresh_event(bot: Bot, **kwargs):
    n = next(_ids)
    return bot.pipeline(pipeline_id=70_000 + n, gate_job_id=300_000 + n * 10, **kwargs)


@pytest.mark.parametrize("token", ["", "wrong-token", "gitlab-webhook-secret-for-test"])
def test_wrong_or_missing_gitlab_token_is_401_and_nothing_happens(live: Bot, token: str) -> None:
    answer = live.webhook(fresh_event(live), token=token)
    assert answer.status_code == 401
    assert "error" in answer.json()
    assert live.jobs_of(answer) == {}  # queued before the answer, had it been queued at all
    assert live.slack.calls_to("chat.postMessage") == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"not json", 400),
        (b"[1, 2]", 400),
        (b'{"object_kind": 5}', 400),
        (b'{"no_kind": "pipeline"}', 400),
        (b'{"object_kind": "pipeline", "object_attributes": "nope"}', 400),
        (b"\xff\xfe\x00", 400),
        (b'{"object_kind": "push"}', 200),
    ],
)
def test_malformed_webhook_bodies(live: Bot, body: bytes, expected: int) -> None:
    answer = live.webhook(body)
    assert answer.status_code == expected
    data = answer.json()
    if expected == 400:
        assert data["error"]
    else:
        assert data["status"] == "ignored"


def test_oversized_bodies_are_413(live: Bot) -> None:
    big = json.dumps({"object_kind": "pipeline", "pad": "x" * 70_000}).encode()
    assert live.webhook(big).status_code == 413
    chunked = requests.post(
        f"{live.url}/webhooks/gitlab",
        data=iter([big[:40_000], big[40_000:]]),
        headers={"X-Gitlab-Token": "gitlab-webhook-secret-for-tests"},
        timeout=10,
    )
    assert chunked.status_code == 413
    slack = live.post_slack("/slack/interactions", b"payload=" + b"x" * 70_000)
    assert slack.status_code == 413


def test_event_outside_the_policy_is_ignored(live: Bot) -> None:
    answer = live.webhook(fresh_event(live, project_path="other/service"))
    assert answer.status_code == 200
    assert answer.json()["status"] == "ignored"
    assert "other/service" in answer.json()["reason"]


def test_gate_not_yet_manual_is_ignored(live: Bot) -> None:
    answer = live.webhook(fresh_event(live, gate_status="created", status="running"))
    assert answer.status_code == 200
    assert answer.json()["status"] == "ignored"


def test_duplicate_delivery_and_repeated_events_post_one_request(live: Bot) -> None:
    event = fresh_event(live)
    first = live.webhook(event, key="dup-1")
    assert first.status_code == 202
    again = live.webhook(event, key="dup-1")
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate"}
    other = live.webhook(event, key="dup-2")  # GitLab sends one event per status change
    assert other.status_code == 200
    assert other.json()["status"] == "duplicate"
    assert live.jobs_of(again) == live.jobs_of(other) == {}
    live.jobs_done(first)
    assert len(live.slack.calls_to("chat.postMessage")) == 1


# Newer GitLab shows `canceling` while a cancelled pipeline's jobs stop (issue #14 item 9).
@pytest.mark.parametrize("status", ["canceled", "canceling"])
def test_pipeline_cancelled_in_gitlab_closes_the_request(live: Bot, status: str) -> None:
    event = fresh_event(live)
    live.webhook(event)
    message = live.posted_request()
    event["object_attributes"]["status"] = status
    live.gitlab.pipeline(event["object_attributes"]["id"])["status"] = status
    answer = live.webhook(event)
    assert answer.status_code == 202

    live.message_update(status, 15)
    live.click("U0RM00001", "approve", request_id_of(message))
    assert "closed" in live.wait_response("U0RM00001-approve")


def test_forged_and_stale_slack_signatures_are_401(live: Bot) -> None:
    body = block_actions_body("U0RM00001", "approve", "0" * 32)
    forged = live.post_slack("/slack/interactions", body, secret="not-the-secret")
    stale = live.post_slack("/slack/interactions", body, timestamp=int(time.time()) - 301)
    future = live.post_slack("/slack/interactions", body, timestamp=int(time.time()) + 301)
    unsigned = requests.post(f"{live.url}/slack/interactions", data=body, timeout=5)
    command = slash_command_body("U0ADMIN01", "pending")
    unsigned_command = live.post_slack("/slack/commands", command, secret="nope")
    for answer in (forged, stale, future, unsigned, unsigned_command):
        assert answer.status_code == 401
        assert live.jobs_of(answer) == {}  # queued before the answer, had it been queued
    assert live.slack.responses == []


def test_replayed_slack_request_is_refused(live: Bot) -> None:
    body = slash_command_body("U0ADMIN01", "whoami")
    ts = int(time.time())
    assert live.post_slack("/slack/commands", body, timestamp=ts).status_code == 200
    assert live.post_slack("/slack/commands", body, timestamp=ts).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        b"payload=not-json",
        b"payload=%5B1%5D",
        b"nothing=here",
        b'payload={"type":"block_actions"}',
        b'payload={"type":"block_actions","actions":[],"user":{"id":"U1"}}',
        b'payload={"type":"view_submission","view":{"callback_id":"reject_reason"}}',
    ],
)
def test_malformed_slack_payloads_are_400(live: Bot, body: bytes) -> None:
    assert live.post_slack("/slack/interactions", body).status_code == 400


def test_interactions_answer_fast(live: Bot) -> None:
    live.slack.delay("users.info", 2.0)
    started = time.monotonic()
    answer = live.click("U0RM00001", "approve", "0" * 32)
    assert answer.status_code == 200
    assert time.monotonic() - started < 1.0


def test_slash_command_whoami_and_pending(live: Bot) -> None:
    who = live.command("U0RM00001", "whoami")
    assert who.status_code == 200
    assert who.json()["response_type"] == "ephemeral"
    assert "release-manager" in who.json()["text"]
    live.webhook(fresh_event(live))
    live.posted_request()
    pending = live.command("U0ADMIN01", "pending").json()["text"]
    assert "fintech/payments-api" in pending
    assert "compliance-officer" in pending
    refused = live.command("U0OUTSIDE", "pending")
    assert refused.status_code == 200
    assert "Only" in refused.json()["text"]
    assert "/approvals" in live.command("U0OUTSIDE", "help").json()["text"]


def test_health_readiness_and_metrics(live: Bot) -> None:
    assert requests.get(f"{live.url}/healthz", timeout=5).status_code == 200
    ready = requests.get(f"{live.url}/readyz", timeout=5)
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"redis": True, "database": True}
    metrics = requests.get(f"{live.url}/metrics", timeout=5)
    assert metrics.status_code == 200
    assert "approval_bot_webhooks_total" in metrics.text


def test_unknown_paths_and_methods_are_json_4xx(live: Bot) -> None:
    assert requests.get(f"{live.url}/nope", timeout=5).status_code == 404
    assert requests.get(f"{live.url}/webhooks/gitlab", timeout=5).status_code == 405


def old_job_hook(event: dict, status: str) -> dict:
    """GitLab's documented Job Hook without `project` (tests/fixtures/gitlab), for the gate
    job of `event`."""
    hook = json.loads((FIXTURES / "gitlab" / "job_hook_without_project.json").read_text())
    gate = next(b for b in event["builds"] if b["name"] == "compliance-gate")
    hook.update(
        build_id=gate["id"],
        build_name=gate["name"],
        build_status=status,
        pipeline_id=event["object_attributes"]["id"],
        project_id=event["project"]["id"],
        ref=event["object_attributes"]["ref"],
        sha=event["object_attributes"]["sha"],
    )
    hook["commit"].update(
        id=event["object_attributes"]["id"], sha=event["object_attributes"]["sha"]
    )
    return hook


def test_a_job_hook_without_project_closes_the_request_once_gitlab_confirms(live: Bot) -> None:
    # Older GitLab's Job Hook names no project path (issue #14 item 1): the worker reads it.
    event = fresh_event(live)
    live.webhook(event)
    live.posted_request()
    gate_id = next(b["id"] for b in event["builds"] if b["name"] == "compliance-gate")
    live.gitlab.job(gate_id)["status"] = "canceled"
    answer = live.webhook(old_job_hook(event, "canceled"), **{"X-Gitlab-Event": "Job Hook"})
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "queued"
    live.message_update("no longer waiting", 15)


def test_a_project_path_as_long_as_gitlab_allows_gets_its_request(live: Bot) -> None:
    # 20 nested levels of 255 characters (issue #14 item 2), under a gate's `fintech/cards-*`.
    deepest = "fintech/cards-" + "c" * 241 + "".join(f"/{n:02d}" + "g" * 253 for n in range(18))
    deepest += "/" + "p" * 255
    assert len(deepest) == 5119
    event = fresh_event(live, project_id=4242, project_path=deepest)
    answer = live.webhook(event)
    assert answer.status_code == 202, answer.text
    message = live.posted_request("C0CARDS")
    assert "#" + str(event["object_attributes"]["id"]) in str(message.get("blocks"))


def test_a_job_hook_without_project_for_a_project_no_gate_covers_changes_nothing(
    live: Bot,
) -> None:
    # The job's name is a gate's, but GitLab says its project is one no gate covers.
    event = fresh_event(live, project_id=5151, project_path="elsewhere/tools")
    answer = live.webhook(old_job_hook(event, "success"), **{"X-Gitlab-Event": "Job Hook"})
    assert answer.status_code == 202, answer.text
    live.jobs_done(answer)  # the worker read the project from GitLab and acted on nothing
    assert live.slack.calls_to("chat.postMessage") == []
    assert live.gitlab.calls_to("POST", r"/play") == []
