"""The rollback state machine on real SQLite and PostgreSQL: offered once, one counted vote
per person, exactly one claim of the play, one `rollback` ledger entry and audit message."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

from sqlalchemy import select

from bot import ledger
from bot.approvals import Granted
from bot.store import requests as store
from bot.store import rollbacks
from bot.store.db import Database
from bot.store.models import OutboxMessage, RequestState
from bot.store.rollbacks import RollbackState
from tests.unit.test_store import complete, request_fields

APPROVER = [{"slack_user_id": "U1", "name": "Una", "role": "rm", "approved_at": "x"}]


def played(db: Database) -> str:
    req, _ = store.create(db, request_fields())
    store.record_approval(db, req.id, "U1", "Una", frozenset({"rm"}), "v1", complete)
    assert store.claim_play(db, req.id)
    store.finish_play(db, req.id, APPROVER)
    return req.id


def test_nothing_is_offered_before_the_gate_is_played(db: Database) -> None:
    req, _ = store.create(db, request_fields())
    assert rollbacks.note_deployment(db, req.id, "deployed") is None
    assert rollbacks.played_request(db, 101, 5001) is None


def test_each_deployment_fact_is_recorded_once(db: Database) -> None:
    request_id = played(db)
    assert rollbacks.played_request(db, 101, 5001).id == request_id  # type: ignore[union-attr]
    first = rollbacks.note_deployment(db, request_id, "deployed")
    assert first is not None
    assert first.rollback_state == RollbackState.OFFERED
    again = rollbacks.note_deployment(db, request_id, "deployed")
    assert again is not None
    assert again.deployed_at == first.deployed_at  # the first time is kept
    assert again.rollback_offer_ts is None  # not posted yet: the caller (re)posts it
    smoke = rollbacks.note_deployment(db, request_id, "smoke_failed")
    assert smoke is not None
    assert smoke.smoke_failed_at is not None


def test_votes_count_only_while_offered(db: Database) -> None:
    request_id = played(db)
    early = rollbacks.record_vote(db, request_id, "U2", None, frozenset(), "v1", complete)
    assert early.decision is None
    assert early.state_before == "not offered"
    rollbacks.note_deployment(db, request_id, "deployed")

    def need_two(votes: list) -> Granted:
        return Granted(assignment={}, missing={} if votes else {"rm": 1})

    first = rollbacks.record_vote(db, request_id, "U2", "Two", frozenset({"rm"}), "v1", need_two)
    assert first.request.rollback_state == RollbackState.OFFERED
    second = rollbacks.record_vote(db, request_id, "U3", "Three", frozenset({"rm"}), "v1", need_two)
    assert second.request.rollback_state == RollbackState.APPROVED
    assert [v.slack_user_id for v in rollbacks.votes(db, request_id)] == ["U2", "U3"]
    assert store.decisions(db, request_id)[0].slack_user_id == "U1"  # approvals kept apart


def test_only_one_claim_wins_the_rollback(db: Database) -> None:
    request_id = played(db)
    rollbacks.note_deployment(db, request_id, "smoke_failed")
    rollbacks.record_vote(db, request_id, "U2", None, frozenset(), "v1", complete)
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def claim() -> None:
        barrier.wait()
        results.append(rollbacks.claim(db, request_id, timedelta(seconds=90)))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 1
    # A dead worker's claim is taken over only after its lease.
    assert not rollbacks.claim(db, request_id, timedelta(seconds=90))
    assert rollbacks.claim(db, request_id, timedelta(seconds=-1))
    rollbacks.release(db, request_id)
    assert store.get(db, request_id).rollback_state == RollbackState.APPROVED


def test_finishing_writes_one_entry_and_one_audit_message(db: Database) -> None:
    request_id = played(db)
    rollbacks.note_deployment(db, request_id, "smoke_failed")
    rollbacks.record_vote(db, request_id, "U2", "Two", frozenset({"rm"}), "v1", complete)
    assert rollbacks.claim(db, request_id, timedelta(seconds=90))
    voter = [{"slack_user_id": "U2", "name": "Two", "role": "rm", "approved_at": "y"}]
    done, entry = rollbacks.finish(db, request_id, (9999, "https://g/j/9999"), voter, audit=True)
    assert entry is not None
    assert done.rollback_state == RollbackState.PLAYED
    assert done.state == RequestState.PLAYED
    _, again = rollbacks.finish(db, request_id, (9999, None), voter, audit=True)
    assert again is None
    with db.sessions() as session:
        records = list(ledger.records(session))
        outbox = list(session.execute(select(OutboxMessage)).scalars())
    assert [r["kind"] for r in records] == ["signoff", "rollback"]
    assert records[1]["job_id"] == 9999
    assert records[1]["approvers"] == voter
    assert records[1]["reason"] == "smoke test failed"
    assert [m.endpoint for m in outbox] == ["rollbacks"]
    body = json.loads(outbox[0].body)
    assert body["rolled_back_by"] == ["U2"]
    assert body["rollback_job_id"] == 9999
    assert body["ledger_hash"] == entry.hash


def test_a_missing_rollback_job_fails_without_an_entry(db: Database) -> None:
    request_id = played(db)
    rollbacks.note_deployment(db, request_id, "deployed")
    rollbacks.record_vote(db, request_id, "U2", None, frozenset(), "v1", complete)
    assert rollbacks.fail(db, request_id) is None  # not claimed: nothing to fail
    assert rollbacks.claim(db, request_id, timedelta(seconds=90))
    failed = rollbacks.fail(db, request_id)
    assert failed is not None
    assert failed.rollback_state == RollbackState.FAILED
    with db.sessions() as session:
        assert [r["kind"] for r in ledger.records(session)] == ["signoff"]


def test_only_an_offered_rollback_is_withdrawn_and_a_withdrawn_one_takes_no_votes(
    db: Database,
) -> None:
    request_id = played(db)
    assert rollbacks.withdraw(db, request_id) is None  # nothing offered yet
    rollbacks.note_deployment(db, request_id, "deployed")
    withdrawn = rollbacks.withdraw(db, request_id)
    assert withdrawn is not None
    assert withdrawn.rollback_state == RollbackState.SUPERSEDED
    assert rollbacks.withdraw(db, request_id) is None
    vote = rollbacks.record_vote(db, request_id, "U2", None, frozenset(), "v1", complete)
    assert vote.decision is None
    assert vote.state_before == RollbackState.SUPERSEDED
