"""The audit-API outbox: written with the sign-off, retried until accepted, sent once."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import update

from bot.audit import deliver_due
from bot.simulators.audit import FakeAuditApi
from bot.store import outbox
from bot.store import requests as store
from bot.store.db import Database
from bot.store.models import OutboxMessage, utcnow
from tests.unit.test_store import complete, request_fields

APPROVERS = [{"slack_user_id": "U1", "name": "Una", "role": "rm", "approved_at": "x"}]


@pytest.fixture
def audit_api():
    with FakeAuditApi() as api:
        yield api


def signed_off(db: Database, audit: bool = True, job_id: int = 9001) -> None:
    req, _ = store.create(db, request_fields(job_id=job_id))
    store.record_approval(db, req.id, "U1", "Una", frozenset({"rm"}), "v1", complete)
    assert store.claim_play(db, req.id)
    store.finish_play(db, req.id, APPROVERS, audit=audit)


def make_due(db: Database) -> None:
    with db.transaction() as session:
        session.execute(
            update(OutboxMessage).values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )


def test_no_audit_api_means_nothing_queued(db: Database) -> None:
    signed_off(db, audit=False)
    assert outbox.pending_count(db) == 0


def test_delivered_once_with_the_contract_fields(db: Database, audit_api: FakeAuditApi) -> None:
    signed_off(db)
    assert deliver_due(db, audit_api.url) == 1
    assert deliver_due(db, audit_api.url) == 0
    (post,) = audit_api.posts
    assert post.path == "/deployments"
    assert post.body["approved_by"] == ["U1"]
    assert post.body["commit_sha"] == "a" * 40
    assert post.body["environment"] == "production"
    assert post.body["pipeline_url"].endswith("/pipelines/5001")
    assert post.body["approved_at"].endswith("Z")
    assert post.key is not None
    assert post.key.startswith("approval-bot-")


def test_failures_are_retried_with_the_same_key(db: Database, audit_api: FakeAuditApi) -> None:
    signed_off(db)
    audit_api.fail_next(503, times=2)
    assert deliver_due(db, audit_api.url) == 0
    assert deliver_due(db, audit_api.url) == 0  # not due yet: backoff
    make_due(db)
    assert deliver_due(db, audit_api.url) == 0
    make_due(db)
    assert deliver_due(db, audit_api.url) == 1
    assert len({p.key for p in audit_api.posts}) == 1
    assert [p.status for p in audit_api.posts] == [503, 503, 201]
    assert outbox.pending_count(db) == 0


def test_timeout_then_duplicate_answer_counts_as_delivered(
    db: Database, audit_api: FakeAuditApi
) -> None:
    """The first attempt times out but the API stored it; the retry gets 409: done."""
    signed_off(db)
    audit_api.fail_next(201, delay=1.0)
    assert deliver_due(db, audit_api.url, timeout=0.3) == 0
    time.sleep(1.0)  # the API finishes storing the first attempt
    make_due(db)
    assert deliver_due(db, audit_api.url) == 1
    assert [p.status for p in audit_api.posts] == [201, 409]
    assert len(audit_api.accepted) == 1


def test_unreachable_api_keeps_the_message(db: Database) -> None:
    signed_off(db)
    assert deliver_due(db, "http://127.0.0.1:1") == 0
    assert outbox.pending_count(db) == 1
    with db.transaction() as session:
        message = session.query(OutboxMessage).one()
        assert message.attempts == 1
        assert message.last_error


def test_each_signoff_gets_its_own_message(db: Database, audit_api: FakeAuditApi) -> None:
    signed_off(db, job_id=1)
    signed_off(db, job_id=2)
    assert deliver_due(db, audit_api.url) == 2
    assert len(audit_api.accepted) == 2
