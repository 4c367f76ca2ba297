"""The edge's Redis work per webhook: one script claims the delivery, gate and deployment keys
atomically, one pipeline queues the jobs (issue #15 item 2)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from redis.connection import Connection

from bot.events import GATE_KEY, gate_status
from bot.simulators.gitlab_events import pipeline_event
from bot.web.edge_claims import Claim, ClaimKind, ClaimScript, DeliverySeen
from bot.web.gitlab_hooks import NOT_READY_KEPT
from tests.unit.edge_support import WEBHOOK_SECRET, body_of, edge_app
from workers.queue import QUEUE_NAME

NO_ENQUEUE_USER = "approval-bot-test-no-enqueue"


class CountingConnection(Connection):
    """Counts the requests sent to Redis, not the liveness PINGs."""

    sent: list[bytes] = []

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        packed = command if isinstance(command, bytes) else b"".join(command)
        if not packed.startswith(b"*1\r\n$4\r\nPING"):
            CountingConnection.sent.append(packed)
        super().send_packed_command(command, check_health)


def post(client: Any, event: dict[str, Any], key: str) -> Any:
    headers = {"X-Gitlab-Token": WEBHOOK_SECRET, "Idempotency-Key": key}
    return client.post("/webhooks/gitlab", data=body_of(event), headers=headers)


def test_a_queued_webhook_costs_two_redis_round_trips(tmp_path: Path, redis_url: str) -> None:
    with edge_app(tmp_path, redis_url) as (app, runtime):
        client = app.test_client()
        pool = runtime.redis.connection_pool
        pool.connection_class = CountingConnection
        pool.reset()
        # The first webhook opens the connection and loads the claim script.
        assert post(client, pipeline_event(pipeline_id=1), "warm-up").status_code == 202
        CountingConnection.sent.clear()

        answer = post(client, pipeline_event(pipeline_id=2, gate_job_id=9002), "second")

        assert answer.status_code == 202
        assert answer.get_json()["status"] == "queued"
        assert len(CountingConnection.sent) == 2, CountingConnection.sent
        assert runtime.redis.llen(f"rq:queue:{QUEUE_NAME}") == 2


def test_the_claim_script_sets_a_status_once_and_reports_the_one_before(
    redis_url: str,
) -> None:
    client = redis.Redis.from_url(redis_url)
    script = ClaimScript(client)
    gate = Claim("approval-bot:test-gate", ClaimKind.ANY, "manual")

    first = script.claim("approval-bot:test-delivery:1", [gate], 60, 60)
    again = script.claim("approval-bot:test-delivery:2", [gate], 60, 60)
    cancelled = Claim(gate.key, ClaimKind.EXISTING, "canceled")
    changed = script.claim(None, [cancelled], 60, 60)

    assert (first[0].taken, first[0].previous) == (True, None)
    assert again[0].duplicate
    assert not again[0].taken
    assert (changed[0].taken, changed[0].previous) == (True, "manual")
    assert client.get(gate.key) == b"canceled"
    with pytest.raises(DeliverySeen):
        script.claim("approval-bot:test-delivery:1", [Claim("other", ClaimKind.ANY, "x")], 60, 60)
    assert client.exists("other") == 0  # a seen delivery claims nothing else


def test_a_status_change_of_an_unknown_gate_is_not_remembered(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    script = ClaimScript(client)

    found = script.claim(
        None, [Claim("approval-bot:unseen", ClaimKind.EXISTING, "canceled")], 60, 60
    )

    assert found[0].absent
    assert not found[0].taken
    assert client.exists("approval-bot:unseen") == 0


@pytest.fixture
def no_enqueue_url(redis_url: str) -> Iterator[str]:
    """A Redis user that may claim keys but not queue jobs (RQ's SADD and HSET refused)."""
    admin = redis.Redis.from_url(redis_url)
    admin.acl_setuser(
        NO_ENQUEUE_USER,
        enabled=True,
        nopass=True,
        keys=["*"],
        channels=["*"],
        commands=["+@all", "-sadd", "-hset"],
    )
    parts = urlsplit(redis_url)
    netloc = f"{NO_ENQUEUE_USER}:unused@{parts.hostname}:{parts.port or 6379}"
    try:
        yield urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    finally:
        admin.acl_deluser(NO_ENQUEUE_USER)
        admin.close()


def test_a_delivery_whose_jobs_cannot_be_queued_is_forgotten(
    tmp_path: Path, redis_url: str, no_enqueue_url: str
) -> None:
    event = pipeline_event(pipeline_id=7, gate_job_id=9007)
    admin = redis.Redis.from_url(redis_url)
    with edge_app(tmp_path, no_enqueue_url) as (app, _runtime):
        client = app.test_client()
        refused = post(client, event, "delivery-7")
        assert refused.status_code == 503  # CONTRACT: not remembered, and kept in the spool
        assert refused.get_json() == {"error": NOT_READY_KEPT, "kept": True}
        assert admin.exists("approval-bot:delivery:delivery-7") == 0
        assert len(list((tmp_path / "spool").glob("*.json"))) == 1

        admin.acl_setuser(NO_ENQUEUE_USER, commands=["+sadd", "+hset"])
        redelivered = post(client, event, "delivery-7")

    assert redelivered.status_code == 202
    assert redelivered.get_json()["status"] == "queued"
    assert admin.llen(f"rq:queue:{QUEUE_NAME}") == 1
    gates = admin.keys(GATE_KEY.format(101, 9007, "*"))
    assert [admin.get(key) for key in gates] == [gate_status("manual", "manual").encode()]
