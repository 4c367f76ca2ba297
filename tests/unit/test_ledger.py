"""Tamper evidence: every kind of change to the ledger is caught and named."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import text

from bot import ledger
from bot.store import requests as store
from bot.store.db import Database
from tests.unit.test_store import _drop_triggers, _fill_ledger, request_fields


def verify(db: Database, key: str | None = None) -> ledger.VerifyResult:
    with db.sessions() as session:
        return ledger.verify(session, key)


def tamper(db: Database, *statements: str | tuple[str, dict[str, object]]) -> None:
    _drop_triggers(db)
    with db.transaction() as session:
        for statement in statements:
            sql, params = statement if isinstance(statement, tuple) else (statement, {})
            session.execute(text(sql), params)


def copy_row(sequence: int, new_sequence: int) -> str:
    return (
        "INSERT INTO ledger_entries (sequence, kind, recorded_at, request_id, body, prev_hash,"
        f" hash, signature) SELECT {new_sequence}, kind, recorded_at, request_id, body, prev_hash,"
        f" substr('f' || hash, 1, 64), signature FROM ledger_entries WHERE sequence = {sequence}"
    )


@pytest.mark.parametrize(
    ("statements", "bad", "words"),
    [
        (["UPDATE ledger_entries SET kind = 'signoff' WHERE sequence = 2"], 2, "kind"),
        (["UPDATE ledger_entries SET prev_hash = hash WHERE sequence = 3"], 3, "link"),
        (["DELETE FROM ledger_entries WHERE sequence = 1"], 1, "missing"),
        # Insert a forged record in the middle: shift later ones up and put a copy in.
        (
            [
                "UPDATE ledger_entries SET sequence = sequence + 10 WHERE sequence >= 3",
                copy_row(2, 3),
            ],
            3,
            "sequence",
        ),
        # Swap two records.
        (
            [
                "UPDATE ledger_entries SET sequence = 100 WHERE sequence = 2",
                "UPDATE ledger_entries SET sequence = 2 WHERE sequence = 3",
                "UPDATE ledger_entries SET sequence = 3 WHERE sequence = 100",
            ],
            2,
            "sequence",
        ),
        # Truncate the tail: the chain head still remembers 4 records.
        (["DELETE FROM ledger_entries WHERE sequence >= 3"], 3, "missing"),
    ],
)
def test_each_kind_of_tampering_is_named(db: Database, statements, bad, words) -> None:
    _fill_ledger(db, 4)
    assert verify(db).ok
    tamper(db, *statements)
    result = verify(db)
    assert not result.ok
    assert result.bad_sequence == bad, str(result)
    assert words in str(result)


def test_rewriting_the_whole_chain_needs_the_signing_key(db: Database) -> None:
    ledger.set_signing_key("k" * 32)
    try:
        _fill_ledger(db, 3)
    finally:
        ledger.set_signing_key(None)
    assert verify(db, "k" * 32).ok
    # Someone with database access edits record 2 and recomputes every hash after it.
    with db.sessions() as session:
        rows = session.execute(
            text("SELECT sequence, body FROM ledger_entries ORDER BY sequence")
        ).all()
    prev = ledger.GENESIS_HASH
    statements = []
    for sequence, body in rows:
        record = json.loads(body)
        if sequence == 2:
            record["reason"] = "forged"
        digest = ledger.chain_hash(prev, record)
        statements.append(
            (
                "UPDATE ledger_entries SET body = :body, prev_hash = :prev, hash = :hash"
                " WHERE sequence = :sequence",
                {
                    "body": ledger.canonical(record),
                    "prev": prev,
                    "hash": digest,
                    "sequence": sequence,
                },
            )
        )
        prev = digest
    statements.append(f"UPDATE ledger_head SET hash = '{prev}'")
    tamper(db, *statements)
    assert verify(db).ok  # the chain alone is consistent again...
    result = verify(db, "k" * 32)  # ...but not its signatures
    assert not result.ok
    assert result.bad_sequence == 2
    assert "signature" in str(result)


def test_export_filters(db: Database) -> None:
    req, _ = store.create(db, request_fields(job_id=1, project_path="fintech/cards-api"))
    store.reject(db, req.id, "U2", "no", "v1")
    _fill_ledger(db, 2)
    with db.sessions() as session:
        everything = list(ledger.records(session))
        cards = list(ledger.records(session, ledger.ExportFilter(project="fintech/cards-*")))
        future = list(ledger.records(session, ledger.ExportFilter(since="2999-01-01T00:00:00Z")))
        past = list(ledger.records(session, ledger.ExportFilter(until="2000-01-01T00:00:00Z")))
        out = io.StringIO()
        ledger.export_csv(session, out, ledger.ExportFilter(project="fintech/payments-api"))
    assert len(everything) == 3
    assert [r["project"] for r in cards] == ["fintech/cards-api"]
    assert future == []
    assert past == []
    assert len(out.getvalue().splitlines()) == 3  # header + 2
