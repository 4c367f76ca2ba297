"""Hardening, end to end: secrets from files, signed GitLab webhooks, no secret in any log,
one request id from the webhook through the worker, metrics, and `/approvals policy`.

The bot here reads GITLAB_TOKEN and the webhook signing key from files (as Docker and
Kubernetes secrets are mounted), so every webhook must carry GitLab's Standard Webhooks
signature besides X-Gitlab-Token. It runs on its own Redis database (14), so it never
clashes with the shared `running_bot` stacks of the other modules.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import requests

from bot.simulators.gitlab import FakeGitLab
from bot.simulators.slack import FakeSlack
from tests.conftest import redis_db_url
from tests.integration.harness import (
    GITLAB_TOKEN,
    SIGNING_SECRET,
    SLACK_TOKEN,
    WEBHOOK_SECRET,
    Bot,
    bot_env,
    request_id_of,
    seed_users,
    wait_until,
)

pytestmark = pytest.mark.integration

REDIS_URL = redis_db_url(14)
SIGNING_KEY = hashlib.sha256(b"approval-bot hardening test key").digest()
SIGNING_TOKEN = "whsec_" + base64.b64encode(SIGNING_KEY).decode()
RM, CO, ADMIN = "U0RM00001", "U0CO00001", "U0ADMIN01"
_ids = itertools.count(1)


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    """Overrides conftest's `bot` (so `live` uses this one): SQLite, Redis db 14, and two
    secrets read from files."""
    workdir = tmp_path_factory.mktemp("bot-hardening")
    secrets = workdir / "secrets"
    secrets.mkdir()
    (secrets / "gitlab_token").write_text(GITLAB_TOKEN + "\n")
    (secrets / "signing_key").write_text(SIGNING_TOKEN + "\n")
    redis.Redis.from_url(REDIS_URL).flushdb()
    slack, gitlab = FakeSlack().start(), FakeGitLab().start()
    seed_users(slack, gitlab)
    env = bot_env(workdir, slack, gitlab, f"sqlite:///{workdir}/approvals.db", REDIS_URL)
    del env["GITLAB_TOKEN"]
    env["GITLAB_TOKEN_FILE"] = str(secrets / "gitlab_token")
    env["GITLAB_WEBHOOK_SIGNING_KEY_FILE"] = str(secrets / "signing_key")
    running = Bot(workdir, env, slack, gitlab)
    try:
        running.start_all()
        yield running
        codes = running.stop_all()
        assert set(codes.values()) <= {0}, codes
    finally:
        running.stop_all()
        slack.stop()
        gitlab.stop()
        redis.Redis.from_url(REDIS_URL).flushdb()


def signed(body: bytes, webhook_id: str, key: bytes = SIGNING_KEY, age: int = 0) -> dict[str, str]:
    timestamp = str(int(time.time()) - age)
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


def send(live: Bot, event: dict[str, Any], delivery: str, **headers: str) -> requests.Response:
    """A webhook as GitLab sends it with a signing token (the body as `live.webhook` sends it)."""
    body = json.dumps(event).encode()
    return live.webhook(event, key=delivery, **{**signed(body, delivery), **headers})


def log_lines(live: Bot, name: str) -> list[dict[str, Any]]:
    lines = []
    for raw in live.log(name).splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            pytest.fail(f"a {name} log line is not JSON: {raw[:300]}")
    return lines


def fresh_event(live: Bot) -> dict[str, Any]:
    n = next(_ids)
    return live.pipeline(pipeline_id=140_000 + n, gate_job_id=1_400_000 + n * 10)


def test_an_approval_flow_logs_no_secret_and_one_request_id_throughout(live: Bot) -> None:
    event = fresh_event(live)
    job_id = next(b["id"] for b in event["builds"] if b["name"] == "compliance-gate")
    answer = send(live, event, "hardening-1", **{"X-Request-Id": "req-open-0001"})
    assert answer.status_code == 202, answer.text
    assert answer.headers["X-Request-Id"] == "req-open-0001"
    request_id = request_id_of(live.posted_request())

    first = live.click(RM, "approve", request_id)
    click_id = first.headers["X-Request-Id"]
    assert "recorded" in live.wait_response(f"{RM}-approve")
    live.click(CO, "approve", request_id)
    live.gitlab.wait_for("POST", rf"/jobs/{job_id}/play", timeout=15)
    live.message_update("Approved", 15)

    # Refused requests: bad token, bad, stale and missing signatures, a bad Slack signature.
    body = json.dumps(event).encode()
    refusals = [
        live.webhook(event, token="not-the-secret", **signed(body, "h-2")),
        live.webhook(
            event, **signed(body, "h-3", key=b"x" * 32), **{"X-Request-Id": "req-bad-sig"}
        ),
        live.webhook(event, **signed(body, "h-4", age=301)),
        live.webhook(event),
        live.post_slack("/slack/commands", b"user_id=U0RM00001&text=whoami", secret="wrong"),
    ]
    assert [r.status_code for r in refusals] == [401] * 5
    assert "webhook-signature" in refusals[1].json()["error"]

    # The request id follows the webhook into the worker: every line of its job carries it.
    open_job = answer.json()["jobs"][0]  # the id the 202 names
    assert open_job.startswith(f"open-{event['project']['id']}-{job_id}-")
    wait_until(
        lambda: any(
            open_job in line["event"] and "Job OK" in line["event"]
            for line in log_lines(live, "worker")
        ),
        10,
        "the open job's completion in the worker log",
    )
    worker = log_lines(live, "worker")
    about_open = [line for line in worker if line.get("job_id") == open_job]
    assert about_open, "no worker line carries the open job's id"
    assert {line["request_id"] for line in about_open} == {"req-open-0001"}
    mentions = [line for line in worker if open_job in line["event"]]
    assert mentions
    assert all(line.get("request_id") == "req-open-0001" for line in mentions), mentions
    assert any(
        request_id in line["event"] and line.get("request_id") == "req-open-0001" for line in worker
    ), "the job's own log line lacks the request id"
    # ... and the click's generated id into the approve job.
    assert any(line.get("request_id") == click_id for line in worker)

    web = log_lines(live, "web")
    refused = [line for line in web if line.get("request_id") == "req-bad-sig"]
    assert [line["event"] for line in refused] == [
        "webhook refused: missing, invalid or stale webhook-signature"
    ]

    # No secret anywhere in either log (file-held ones included).
    secrets = {
        name: live.env[name]
        for name in ("GITLAB_WEBHOOK_SECRET", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET")
    }
    secrets |= {
        "GITLAB_TOKEN": GITLAB_TOKEN,
        "GITLAB_WEBHOOK_SIGNING_KEY": SIGNING_TOKEN,
        "signing key (base64)": SIGNING_TOKEN.removeprefix("whsec_"),
    }
    assert secrets["SLACK_BOT_TOKEN"] == SLACK_TOKEN
    assert secrets["SLACK_SIGNING_SECRET"] == SIGNING_SECRET
    assert secrets["GITLAB_WEBHOOK_SECRET"] == WEBHOOK_SECRET
    for process in ("web", "worker"):
        text = live.log(process)
        assert text
        for name, value in secrets.items():
            assert value not in text, f"{name} appears in the {process} log"


def test_webhooks_need_both_the_token_and_a_fresh_signature(live: Bot) -> None:
    push = {"object_kind": "push"}
    body = json.dumps(push).encode()
    good = live.webhook(push, **signed(body, "push-1"))
    assert good.status_code == 200
    assert good.json()["status"] == "ignored"
    refused = [
        live.webhook(push, token="", **signed(body, "push-2")),
        live.webhook(push, **signed(body, "push-3", age=400)),
        live.webhook(push, **signed(body + b" ", "push-4")),
    ]
    for answer in refused:
        assert answer.status_code == 401
        assert live.jobs_of(answer) == {}  # queued before the answer, had it been queued
    assert live.slack.calls_to("chat.postMessage") == []


def test_metrics_show_latency_queue_readiness_and_refusals(live: Bot) -> None:
    live.webhook({"object_kind": "push"})  # unsigned: refused
    text = requests.get(f"{live.url}/metrics", timeout=5).text
    assert "approval_bot_ready 1.0" in text
    assert "approval_bot_queue_depth " in text
    assert "approval_bot_failed_jobs " in text
    assert 'approval_bot_webhooks_total{outcome="bad_signature"}' in text
    assert 'approval_bot_http_request_duration_seconds_bucket{endpoint="/webhooks/gitlab"' in text
    assert "# TYPE approval_bot_plays_total counter" in text
    assert "# TYPE approval_bot_decisions_total counter" in text


def test_policy_command_is_for_admins(live: Bot) -> None:
    full = live.command(ADMIN, "policy")
    assert full.status_code == 200
    assert full.json()["response_type"] == "ephemeral"
    text = full.json()["text"]
    assert "*Approver policy* version `" in text
    assert "*`fintech/payments-api`* job `compliance-gate` → <#C0DEPLOYS>" in text
    assert "<@U0RM00001>, <@U0RM00002>, <!subteam^S0RELEASE>" in text
    assert "on_reject: cancel_pipeline" in text
    assert len(text) < 3000

    one = live.command(ADMIN, "policy fintech/ledger-core").json()["text"]
    assert "fintech/ledger-*" in one
    assert "payments-api" not in one

    refused = live.command(RM, "policy")
    assert refused.status_code == 200
    assert "Only policy admins" in refused.json()["text"]

    who = live.command(RM, "whoami").json()["text"]
    assert "release-manager" in who
    assert "`fintech/payments-api` job `compliance-gate`" in who
