"""The sign-off ledger: append-only, hash-chained, verifiable and exportable.

Each entry's hash is SHA-256 over the previous entry's hash and the entry's canonical JSON
(sorted keys, no spaces, UTC timestamps), so editing, deleting, inserting or reordering any
entry breaks the chain at that point. Entries are written in the same transaction as the
state change they record.
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.store.models import LedgerEntry, LedgerHead

GENESIS_HASH = "0" * 64
HEAD_ROW_ID = 1
EXPORT_FIELDS = (
    "sequence",
    "kind",
    "recorded_at",
    "project",
    "environment",
    "ref",
    "sha",
    "triggered_by",
    "commit_author",
    "pipeline_id",
    "pipeline_url",
    "job_id",
    "job_url",
    "request_id",
    "requested_at",
    "approvers",
    "rejected_by",
    "reason",
    "risk_flags",
    "policy_version",
    "prev_hash",
    "hash",
)
VERIFY_BATCH = 5000


_signing_key: bytes | None = None


def set_signing_key(key: str | None) -> None:
    """Sign every entry this process appends (LEDGER_HMAC_KEY), so that someone with
    database access alone cannot rewrite the whole chain consistently."""
    global _signing_key  # noqa: PLW0603 - process-wide, set once at startup
    _signing_key = key.encode() if key else None


def sign(digest: str, key: bytes) -> str:
    return hmac.new(key, digest.encode(), hashlib.sha256).hexdigest()


class LedgerError(Exception):
    """The ledger cannot be appended to or read."""


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    bad_sequence: int | None = None
    reason: str | None = None

    def __str__(self) -> str:
        if self.ok:
            return f"ledger intact: {self.checked} records verified"
        return f"record {self.bad_sequence}: {self.reason}"


def iso_utc(moment: datetime) -> str:
    """UTC ISO 8601 with a Z, from the naive-UTC datetimes the store keeps."""
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def canonical(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, record: dict[str, Any]) -> str:
    return _text_hash(prev_hash, canonical(record))


def _text_hash(prev_hash: str, body: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


def append(
    session: Session, kind: str, fields: dict[str, Any], recorded_at: datetime
) -> LedgerEntry:
    """Append one entry inside the caller's transaction, locking the chain head first."""
    head = session.execute(
        select(LedgerHead).where(LedgerHead.id == HEAD_ROW_ID).with_for_update()
    ).scalar_one_or_none()
    if head is None:
        head = LedgerHead(id=HEAD_ROW_ID, sequence=0, hash=GENESIS_HASH)
        session.add(head)
        session.flush()
    sequence = head.sequence + 1
    record = {
        **{name: None for name in EXPORT_FIELDS if name not in ("prev_hash", "hash")},
        **fields,
        "sequence": sequence,
        "kind": kind,
        "recorded_at": iso_utc(recorded_at),
    }
    digest = chain_hash(head.hash, record)
    entry = LedgerEntry(
        sequence=sequence,
        kind=kind,
        recorded_at=record["recorded_at"],
        request_id=fields.get("request_id"),
        body=canonical(record),
        prev_hash=head.hash,
        hash=digest,
        signature=sign(digest, _signing_key) if _signing_key else None,
    )
    session.add(entry)
    head.sequence = sequence
    head.hash = digest
    session.flush()
    return entry


_COLUMNS = (
    LedgerEntry.sequence,
    LedgerEntry.kind,
    LedgerEntry.recorded_at,
    LedgerEntry.body,
    LedgerEntry.prev_hash,
    LedgerEntry.hash,
    LedgerEntry.signature,
)


def _stream(session: Session) -> Iterator[Any]:
    """Entries in sequence order as plain rows, streamed (a server-side cursor on
    PostgreSQL) in batches: memory stays flat and no ORM objects are built."""
    connection = session.connection().execution_options(stream_results=True, yield_per=VERIFY_BATCH)
    yield from connection.execute(select(*_COLUMNS).order_by(LedgerEntry.sequence))


def verify(session: Session, key: str | None = None) -> VerifyResult:
    """Walk the chain from the first entry; report the first entry that does not hold.

    With the signing key, every entry from the first signed one on must carry a valid
    signature: a chain recomputed without the key fails there.
    """
    expected_sequence = 1
    prev_hash = GENESIS_HASH
    checked = 0
    signed_since: int | None = None
    secret = key.encode() if key else None
    for entry in _stream(session):
        problem = _check_entry(entry, expected_sequence, prev_hash)
        if problem is None and secret is not None:
            problem = _check_signature(entry, secret, signed_since)
            if entry[6] and signed_since is None:
                signed_since = entry[0]
        if problem is not None:
            bad, reason = problem
            return VerifyResult(False, checked, bad, reason)
        prev_hash = entry[5]
        expected_sequence += 1
        checked += 1
    head = session.get(LedgerHead, HEAD_ROW_ID)
    if head is not None and head.sequence >= expected_sequence:
        reason = f"missing (the chain head says {head.sequence} records were written)"
        return VerifyResult(False, checked, expected_sequence, reason)
    if head is not None and head.sequence == checked and head.hash != prev_hash:
        return VerifyResult(False, checked, checked, "hash does not match the chain head")
    return VerifyResult(True, checked)


def _check_entry(entry: Any, expected: int, prev_hash: str) -> tuple[int, str] | None:
    sequence, kind, recorded_at, body, stored_prev, stored_hash = entry[:6]
    if sequence != expected:
        return expected, f"missing (next record found is {sequence})"
    # The columns must say what the body says. Canonical JSON (sorted keys, no spaces,
    # quotes inside strings escaped) lets a substring test stand in for parsing.
    if f'"sequence":{sequence},' not in body:
        return expected, "sequence in the body does not match the record (moved or inserted)"
    if stored_prev != prev_hash:
        return expected, "previous-hash link broken (a record before it was changed or removed)"
    # The stored body is the exact text that was hashed: no need to re-serialize it.
    if _text_hash(prev_hash, body) != stored_hash:
        return expected, "hash mismatch (the record was modified)"
    if f'"kind":{json.dumps(kind)}' not in body or f'"recorded_at":"{recorded_at}"' not in body:
        return expected, "kind or recorded_at differs from the hashed body"
    return None


def _check_signature(entry: Any, key: bytes, signed_since: int | None) -> tuple[int, str] | None:
    sequence, digest, signature = entry[0], entry[5], entry[6]
    if signature is None:
        if signed_since is not None:
            return sequence, f"signature missing (records are signed since {signed_since})"
        return None
    if not hmac.compare_digest(signature, sign(digest, key)):
        return sequence, "signature does not match (rewritten without the signing key?)"
    return None


@dataclass(frozen=True)
class ExportFilter:
    """Which records to export: recorded since/until (ISO 8601, UTC) and a project glob."""

    since: str | None = None
    until: str | None = None
    project: str | None = None

    def accepts(self, record: dict[str, Any]) -> bool:
        recorded = str(record.get("recorded_at") or "")
        if self.since and recorded < self.since:
            return False
        if self.until and recorded >= self.until:
            return False
        if self.project:
            project = str(record.get("project") or "")
            return fnmatch.fnmatchcase(project.lower(), self.project.lower())
        return True


def records(session: Session, only: ExportFilter | None = None) -> Iterator[dict[str, Any]]:
    """Export rows: the hashed body plus the chain fields."""
    for entry in _stream(session):
        record = json.loads(entry[3])
        if only is not None and not only.accepts(record):
            continue
        record["prev_hash"] = entry[4]
        record["hash"] = entry[5]
        yield {name: record.get(name) for name in EXPORT_FIELDS}


def export_json(session: Session, out: IO[str], only: ExportFilter | None = None) -> int:
    """A JSON array, written record by record so large ledgers do not fill memory."""
    count = 0
    out.write("[")
    for record in records(session, only):
        out.write(",\n" if count else "\n")
        out.write(json.dumps(record, ensure_ascii=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def export_csv(session: Session, out: IO[str], only: ExportFilter | None = None) -> int:
    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    count = 0
    for record in records(session, only):
        approvers = record.get("approvers") or []
        row = dict(record)
        row["approvers"] = ";".join(f"{a['slack_user_id']}:{a['role']}" for a in approvers)
        row["risk_flags"] = ";".join(record.get("risk_flags") or [])
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
        count += 1
    return count
