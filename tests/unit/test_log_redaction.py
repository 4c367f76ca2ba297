"""Logs: JSON lines, secrets redacted from every part of an event, request ids bound."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from redis import Redis
from rq import Queue
from rq.job import Job

from bot import logs
from bot.logs import REDACTED, redact, register_secrets
from bot.simulators.gitlab_events import pipeline_event
from bot.web.request_context import request_id_from
from tests.unit.edge_support import WEBHOOK_SECRET, body_of, edge_app
from workers.main import bind_job
from workers.queue import REQUEST_ID_META, enqueue, make_queue


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """bot.logs configured onto a buffer; the logging setup is restored afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    logs.configure()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    try:
        yield stream
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()
        logs.clear_secrets()


def events(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("token xoxb-1234-5678-abcdefABCDEF in a message", "xoxb-1234-5678-abcdefABCDEF"),
        ("user token xoxp-99-88-77-abc", "xoxp-99-88-77-abc"),
        ("app token xapp-1-A0-123-abc", "xapp-1-A0-123-abc"),
        ("gitlab glpat-AbCdEf_123-xyz.01 said no", "glpat-AbCdEf_123-xyz.01"),
        ("deploy token gldt-abcdef123", "gldt-abcdef123"),
        ("key whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw= here", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ("Authorization: Bearer abc.def-ghi_jkl", "abc.def-ghi_jkl"),
        ("{'PRIVATE-TOKEN': 'plainvalue123'}", "plainvalue123"),
        ("X-Gitlab-Token: plain-webhook-secret", "plain-webhook-secret"),
        ("redis://:s3cr3t-pass@redis:6379/0 is down", "s3cr3t-pass"),
        ("postgresql://bot:pg-pass@db:5432/bot", "pg-pass"),
        ("https://user:pw-in-url@example.com/x", "pw-in-url"),
        ("password=hunter2-long", "hunter2-long"),
    ],
)
def test_token_shapes_are_redacted(text: str, secret: str) -> None:
    cleaned = redact(text)
    assert secret not in cleaned
    assert REDACTED in cleaned


@pytest.mark.parametrize(
    "text",
    [
        "missing or invalid X-Gitlab-Token",
        "invalid or stale Slack signature",
        "Redis is not reachable at redis://***@redis:6379/0 (ConnectionError)",
        "http://127.0.0.1:8080/webhooks/gitlab answered 401",
        "approval request f56ad29f for fintech/payments-api job 100020 (new=True)",
        "Bearer",
    ],
)
def test_ordinary_messages_are_left_alone(text: str) -> None:
    assert redact(text) == text


def test_registered_secrets_are_redacted_whatever_their_shape() -> None:
    try:
        register_secrets(["plain-secret-value", "abc", None, ""])
        assert redact("x plain-secret-value y") == f"x {REDACTED} y"
        assert redact("abc is too short to be redacted") == "abc is too short to be redacted"
    finally:
        logs.clear_secrets()


def test_a_secret_containing_another_is_redacted_whole() -> None:
    try:
        register_secrets(["part-1234", "whole-part-1234-end"])
        assert redact("whole-part-1234-end") == REDACTED
    finally:
        logs.clear_secrets()


def test_every_part_of_a_log_line_is_redacted(log_lines: io.StringIO) -> None:
    register_secrets(["registered-secret-42"])
    log = logging.getLogger("test.redaction")
    log.warning("call failed: %s", "registered-secret-42 and xoxb-1-2-abc")
    try:
        raise RuntimeError("boom with glpat-secretsecret and registered-secret-42")
    except RuntimeError:
        log.exception("unexpected")
    structlog.get_logger("test.structlog").info(
        "native", token="registered-secret-42", nested={"list": ["xoxb-9-9-zz"]}
    )
    text = log_lines.getvalue()
    for secret in ("registered-secret-42", "xoxb-1-2-abc", "glpat-secretsecret", "xoxb-9-9-zz"):
        assert secret not in text
    lines = events(log_lines)
    assert [line["event"] for line in lines] == [
        f"call failed: {REDACTED} and {REDACTED}",
        "unexpected",
        "native",
    ]
    # The traceback is rendered (not a repr of the exc_info tuple), and redacted.
    assert "Traceback (most recent call last)" in lines[1]["exception"]
    assert "boom with [REDACTED] and [REDACTED]" in lines[1]["exception"]
    assert lines[2]["token"] == REDACTED
    assert lines[2]["nested"] == {"list": [REDACTED]}
    assert {line["level"] for line in lines} == {"warning", "error", "info"}


def test_bound_request_ids_appear_on_every_line(log_lines: io.StringIO) -> None:
    log = logging.getLogger("test.context")
    logs.bind_request_id("req-123")
    log.info("one")
    structlog.get_logger().info("two")
    logs.clear_request_id()
    log.info("three")
    lines = events(log_lines)
    assert [line.get("request_id") for line in lines] == ["req-123", "req-123", None]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-Request-Id": "abc-123"}, "abc-123"),
        ({"X-Request-Id": "abc-123", "X-Gitlab-Event-UUID": "e-1"}, "abc-123"),
        ({"X-Gitlab-Event-UUID": "0f7e-uuid"}, "0f7e-uuid"),
        ({"X-Request-Id": "bad id\nwith newline", "X-Gitlab-Event-UUID": "e-2"}, "e-2"),
    ],
)
def test_request_id_sources(headers: dict[str, str], expected: str) -> None:
    assert request_id_from(headers) == expected


@pytest.mark.parametrize("value", ["", "x" * 200, "<script>", "a b"])
def test_unsafe_or_missing_request_ids_are_replaced(value: str) -> None:
    generated = request_id_from({"X-Request-Id": value})
    assert generated != value
    assert len(generated) == 32


def test_the_edge_logs_returns_and_queues_the_request_id(
    tmp_path: Path, redis_url: str, log_lines: io.StringIO
) -> None:
    event = pipeline_event(pipeline_id=881_001, gate_job_id=881_010)
    with edge_app(tmp_path, redis_url) as (app, runtime):
        app.add_url_rule("/boom", "boom", lambda: 1 / 0)
        client = app.test_client()
        answer = client.post(
            "/webhooks/gitlab",
            data=body_of(event),
            headers={
                "X-Gitlab-Token": WEBHOOK_SECRET,
                "X-Gitlab-Event-UUID": "gitlab-event-0001",
                "Content-Type": "application/json",
            },
        )
        assert answer.status_code == 202
        assert answer.headers["X-Request-Id"] == "gitlab-event-0001"
        [job_id] = answer.get_json()["jobs"]
        job = Job.fetch(
            job_id, connection=runtime.redis, serializer=make_queue(runtime.redis).serializer
        )
        assert job.meta[REQUEST_ID_META] == "gitlab-event-0001"
        assert job.description == "workers.jobs.open_request"  # no payload in RQ's listings

        refused = client.post("/webhooks/gitlab", data=b"{}", headers={"X-Request-Id": "mine-1"})
        assert refused.status_code == 401
        assert refused.headers["X-Request-Id"] == "mine-1"
        generated = client.get("/healthz").headers["X-Request-Id"]
        assert len(generated) == 32
        # An unhandled error is logged with the request's id, and answered as JSON.
        crash = client.get("/boom", headers={"X-Request-Id": "crash-1"})
        assert crash.status_code == 500
        assert crash.headers["X-Request-Id"] == "crash-1"
    lines = [line for line in events(log_lines) if line.get("request_id") == "crash-1"]
    assert lines
    assert "ZeroDivisionError" in lines[0]["exception"]
    assert structlog.contextvars.get_contextvars() == {}
    Redis.from_url(redis_url).flushdb()


def test_jobs_carry_the_request_id_being_logged(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    queue: Queue = make_queue(redis)
    try:
        logs.bind_request_id("from-request-7")
        job = enqueue(queue, "workers.jobs.notify", {"text": "x"})
        assert job.meta == {REQUEST_ID_META: "from-request-7"}
        logs.clear_request_id()
        assert enqueue(queue, "workers.jobs.notify", {"text": "y"}).meta == {}
        explicit = enqueue(queue, "workers.jobs.notify", {}, request_id="given-1")
        assert explicit.meta == {REQUEST_ID_META: "given-1"}

        # The worker binds the job's request id (else the job's own id) for its log lines.
        bind_job(job)
        assert structlog.contextvars.get_contextvars() == {
            "request_id": "from-request-7",
            "job_id": job.id,
        }
        # A job queued while a job runs inherits its request id.
        assert enqueue(queue, "workers.jobs.notify", {}).meta == {REQUEST_ID_META: "from-request-7"}
        logs.clear_request_id()
        bare = enqueue(queue, "workers.jobs.notify", {}, job_id="bare-job")
        bind_job(bare)
        assert structlog.contextvars.get_contextvars()["request_id"] == "job:bare-job"
    finally:
        logs.clear_request_id()
        redis.flushdb()
