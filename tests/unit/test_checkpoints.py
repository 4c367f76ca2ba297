"""Checkpoints outside the database: written when the chain crosses 100 records (after the
commit, never for a rolled-back append), appended whole by concurrent writers, and read
back from files and JSON arrays."""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot import checkpoints, ledger
from bot.store.db import Database
from bot.store.models import LedgerEntry, OutboxMessage, utcnow

KEY = b"checkpoint-key"


@pytest.fixture
def anchoring(db: Database, tmp_path: Path) -> Iterator[checkpoints.Anchoring]:
    """This process anchors as `web` and `worker` do (with an audit API configured)."""
    ledger.set_signing_key(KEY.decode())
    anchors = checkpoints.Anchoring(tmp_path / "var" / "checkpoints.jsonl", KEY, audit=True)
    checkpoints.install(db.sessions, anchors)
    try:
        yield anchors
    finally:
        ledger.set_checkpoint_hook(None)
        ledger.set_signing_key(None)


def append(db: Database, count: int) -> None:
    with db.transaction() as session:
        for _ in range(count):
            ledger.append(session, "policy_change", {"reason": "test"}, utcnow())


def append_then_fail(db: Database) -> None:
    with db.transaction() as session:
        ledger.append(session, "policy_change", {}, utcnow())
        raise RuntimeError("the state change that wanted the record failed")


def test_crossing_100_records_writes_a_signed_checkpoint_after_the_commit(
    db: Database, anchoring: checkpoints.Anchoring
) -> None:
    append(db, 99)
    assert not anchoring.path.exists()
    append(db, 3)
    lines = anchoring.path.read_text().splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert list(line) == ["sequence", "hash", "recorded_at", "signature"]
    with db.sessions() as session:
        stored = session.execute(select(LedgerEntry.hash).where(LedgerEntry.sequence == 100))
        assert line["hash"] == stored.scalar_one()
        sent = session.execute(select(OutboxMessage)).scalars().all()
    found = checkpoints.parse(lines[0])[0]
    assert found.sequence == 100
    assert checkpoints.signature_problem(found, KEY) is None
    assert checkpoints.signature_problem(found, b"another key") is not None
    assert [(m.endpoint, json.loads(m.body)) for m in sent] == [("checkpoints", line)]


def test_a_rolled_back_append_anchors_nothing(
    db: Database, anchoring: checkpoints.Anchoring
) -> None:
    append(db, 99)
    with pytest.raises(RuntimeError):
        append_then_fail(db)
    assert not anchoring.path.exists()
    append(db, 1)
    assert json.loads(anchoring.path.read_text())["sequence"] == 100


def _write_lines(path: str, writer: int, count: int) -> None:
    for number in range(count):
        checkpoint = checkpoints.make(writer * 1000 + number + 1, f"{number:064x}", KEY)
        checkpoints.append_to_file(Path(path), checkpoint)


def test_concurrent_writers_append_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.jsonl"
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_write_lines, args=(str(path), n, 200)) for n in range(1, 5)]
    for process in writers:
        process.start()
    for process in writers:
        process.join()
    found = checkpoints.read(str(path))
    assert len(found) == 800
    assert all(checkpoints.signature_problem(c, KEY) is None for c in found)


def test_reading_lines_arrays_and_a_torn_last_line(tmp_path: Path) -> None:
    first = checkpoints.make(1, "a" * 64, KEY)
    second = checkpoints.make(2, "b" * 64, None)
    as_array = json.dumps([json.loads(first.line()), json.loads(second.line())])
    assert checkpoints.parse(as_array) == [first, second]
    path = tmp_path / "checkpoints.jsonl"
    path.write_text(first.line() + second.line() + '{"sequence": 3, "ha')
    assert checkpoints.last_in_file(path, None) == second
    assert checkpoints.last_in_file(path, KEY) == first  # the unsigned one does not count
    with pytest.raises(checkpoints.CheckpointError, match="line 3: not JSON"):
        checkpoints.read(str(path))
    for bad, reason in [
        ({"sequence": True, "hash": "a" * 64, "recorded_at": "x"}, "sequence"),
        ({"sequence": 1, "hash": "A" * 64, "recorded_at": "x"}, "hash"),
        ({"sequence": 1, "hash": "a" * 64}, "recorded_at"),
    ]:
        with pytest.raises(checkpoints.CheckpointError, match=reason):
            checkpoints.parse(json.dumps(bad))
