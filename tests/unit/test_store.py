"""The request state machine and the ledger on real SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
import threading
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from bot import ledger
from bot.approvals import DenialCode, Denied, Granted
from bot.store import requests as store
from bot.store.db import Database
from bot.store.models import RequestState, utcnow


def request_fields(job_id: int = 9001, **overrides):
    now = utcnow()
    fields = {
        "project_id": 101,
        "project_path": "fintech/payments-api",
        "project_url": "https://gitlab.example.com/fintech/payments-api",
        "pipeline_id": 5001,
        "pipeline_url": "https://gitlab.example.com/fintech/payments-api/-/pipelines/5001",
        "job_id": job_id,
        "job_name": "compliance-gate",
        "ref": "main",
        "sha": "a" * 40,
        "environment": "production",
        "channel": "C0DEPLOYS",
        "policy_version": "v" * 64,
        "state": RequestState.PENDING,
        "created_at": now,
        "updated_at": now,
        "expires_at": now + timedelta(hours=24),
    }
    fields.update(overrides)
    return fields


def grant_all(counted):
    return Granted(assignment={}, missing={"x": 1})


def complete(counted):
    return Granted(assignment={}, missing={})


def test_one_request_per_gate_job(db: Database) -> None:
    first, created = store.create(db, request_fields())
    again, created_again = store.create(db, request_fields())
    assert created
    assert not created_again
    assert again.id == first.id


def test_double_click_counts_once(db: Database) -> None:
    req, _ = store.create(db, request_fields())
    a = store.record_approval(db, req.id, "U1", "Una", frozenset({"rm"}), "v1", grant_all)
    assert isinstance(a.decision, Granted)
    # The database itself refuses a second counted approval by the same person.
    with pytest.raises(IntegrityError), db.transaction() as session:
        session.execute(
            text(
                "INSERT INTO decisions (request_id, slack_user_id, action, outcome, roles,"
                " policy_version, decided_at) VALUES (:r, 'U1', 'approve', 'granted', '', 'v1',"
                " CURRENT_TIMESTAMP)"
            ),
            {"r": req.id},
        )


def test_only_one_claim_wins_the_play(db: Database) -> None:
    req, _ = store.create(db, request_fields())
    outcome = store.record_approval(db, req.id, "U1", None, frozenset(), "v1", complete)
    assert outcome.request.state == RequestState.APPROVED
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def claim() -> None:
        barrier.wait()
        results.append(store.claim_play(db, req.id))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1


def test_concurrent_approvals_both_count(db: Database) -> None:
    """Two approvals at the same moment: the row lock makes the second see the first."""
    req, _ = store.create(db, request_fields())
    seen: list[int] = []
    barrier = threading.Barrier(2)

    def decide_needing_two(counted):
        seen.append(len(counted))
        return Granted(assignment={}, missing={} if len(counted) == 1 else {"x": 1})

    def approve(uid: str) -> None:
        barrier.wait()
        store.record_approval(db, req.id, uid, None, frozenset(), "v1", decide_needing_two)

    threads = [threading.Thread(target=approve, args=(u,)) for u in ("U1", "U2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == [0, 1]
    assert store.get(db, req.id).state == RequestState.APPROVED


def test_denied_decisions_are_recorded_but_not_counted(db: Database) -> None:
    req, _ = store.create(db, request_fields())

    def deny(counted):
        return Denied(DenialCode.SELF_APPROVAL, "no")

    store.record_approval(db, req.id, "U1", None, frozenset(), "v1", deny)
    assert store.decisions(db, req.id) == []
    with db.transaction() as session:
        rows = session.execute(text("SELECT outcome, reason_code FROM decisions")).all()
    assert rows == [("denied", "self_approval")]


def test_played_request_writes_one_signoff(db: Database) -> None:
    req, _ = store.create(db, request_fields())
    store.record_approval(db, req.id, "U1", "Una", frozenset({"rm"}), "v1", complete)
    assert store.claim_play(db, req.id)
    approvers = [{"slack_user_id": "U1", "name": "Una", "role": "rm", "approved_at": "x"}]
    played, entry = store.finish_play(db, req.id, approvers)
    assert played.state == RequestState.PLAYED
    assert entry is not None
    _, again = store.finish_play(db, req.id, approvers)
    assert again is None
    with db.sessions() as session:
        records = list(ledger.records(session))
    assert len(records) == 1
    record = records[0]
    assert record["kind"] == "signoff"
    assert record["sequence"] == 1
    assert record["recorded_at"].endswith("Z")
    assert record["approvers"] == approvers
    assert record["environment"] == "production"
    assert record["policy_version"] == "v1"


def test_rejection_is_recorded_once(db: Database) -> None:
    req, _ = store.create(db, request_fields())
    rejected, entry = store.reject(db, req.id, "U2", "tests are red", "v1")
    assert rejected.state == RequestState.REJECTED
    assert entry is not None
    _, again = store.reject(db, req.id, "U2", "again", "v1")
    assert again is None
    assert store.claim_play(db, req.id) is False


def _fill_ledger(db: Database, n: int) -> None:
    for i in range(n):
        req, _ = store.create(db, request_fields(job_id=1000 + i))
        store.reject(db, req.id, "U2", f"reason {i}", "v1")


def test_verify_and_export(db: Database) -> None:
    _fill_ledger(db, 3)
    with db.sessions() as session:
        assert ledger.verify(session).ok
        out = io.StringIO()
        assert ledger.export_json(session, out) == 3
        data = json.loads(out.getvalue())
        assert [r["sequence"] for r in data] == [1, 2, 3]
        csv_out = io.StringIO()
        ledger.export_csv(session, csv_out)
    header = csv_out.getvalue().splitlines()[0].split(",")
    assert header[:3] == ["sequence", "kind", "recorded_at"]
    assert len(csv_out.getvalue().splitlines()) == 4


def test_database_refuses_update_and_delete_of_ledger(db: Database) -> None:
    _fill_ledger(db, 1)
    for statement in ("UPDATE ledger_entries SET kind = 'x'", "DELETE FROM ledger_entries"):
        with pytest.raises(DBAPIError), db.transaction() as session:
            session.execute(text(statement))


def _drop_triggers(db: Database) -> None:
    with db.transaction() as session:
        for name in ("update", "delete"):
            session.execute(
                text(
                    f"DROP TRIGGER ledger_entries_no_{name}"
                    + (" ON ledger_entries" if db.engine.dialect.name == "postgresql" else "")
                )
            )


@pytest.mark.parametrize(
    ("tamper", "bad", "reason"),
    [
        (
            "UPDATE ledger_entries SET body = replace(body, 'reason 1', 'reason X')"
            " WHERE sequence = 2",
            2,
            "modified",
        ),
        ("DELETE FROM ledger_entries WHERE sequence = 2", 2, "missing"),
        ("DELETE FROM ledger_entries WHERE sequence = 3", 3, "missing"),
    ],
)
def test_verify_names_the_first_bad_record(
    db: Database, tamper: str, bad: int, reason: str
) -> None:
    _fill_ledger(db, 3)
    _drop_triggers(db)
    with db.transaction() as session:
        session.execute(text(tamper))
    with db.sessions() as session:
        result = ledger.verify(session)
    assert not result.ok
    assert result.bad_sequence == bad
    assert reason in str(result)
    assert str(result).startswith(f"record {bad}: ")


def test_concurrent_ledger_writers_do_not_fork_the_chain(db: Database) -> None:
    reqs = [store.create(db, request_fields(job_id=2000 + i))[0] for i in range(6)]
    barrier = threading.Barrier(len(reqs))

    def reject(req_id: str) -> None:
        barrier.wait()
        store.reject(db, req_id, "U2", "no", "v1")

    threads = [threading.Thread(target=reject, args=(r.id,)) for r in reqs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db.sessions() as session:
        result = ledger.verify(session)
    assert result.ok
    assert result.checked == 6
