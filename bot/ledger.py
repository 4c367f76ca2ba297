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
import logging
from collections.abc import Callable, Generator, Iterator
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


CHECKPOINT_EVERY = 100
# The kind of the record `approval-bot ledger sign-existing` appends: signed, it vouches for
# every record before it, including those written before LEDGER_HMAC_KEY was set.
ENROLMENT_KIND = "signing_started"

MISSING_SIGNATURE = "missing signature"
BAD_SIGNATURE = "signature does not match (rewritten without the signing key?)"
HEAD_NOT_SIGNED = "chain head not signed"
BAD_HEAD_SIGNATURE = "chain head signature does not match (moved without the signing key?)"

log = logging.getLogger(__name__)

_signing_key: bytes | None = None
_on_checkpoint: Callable[[Session, int, str], None] | None = None


def set_signing_key(key: str | None) -> None:
    """Sign every entry this process appends, and the chain head (LEDGER_HMAC_KEY), so that
    someone with database access alone cannot rewrite the chain consistently."""
    global _signing_key  # noqa: PLW0603 - process-wide, set once at startup
    _signing_key = key.encode() if key else None


def set_checkpoint_hook(hook: Callable[[Session, int, str], None] | None) -> None:
    """Called inside the appending transaction every CHECKPOINT_EVERY records with the new
    head's sequence and hash (bot.checkpoints anchors it outside the database)."""
    global _on_checkpoint  # noqa: PLW0603 - process-wide, set once at startup
    _on_checkpoint = hook


def sign(digest: str, key: bytes) -> str:
    """An entry's signature: HMAC-SHA256 of its hash."""
    return hmac.new(key, digest.encode(), hashlib.sha256).hexdigest()


def sign_head(sequence: int, digest: str, key: bytes) -> str:
    """The chain head's signature: HMAC-SHA256 of `head:{sequence}:{hash}`."""
    return hmac.new(key, f"head:{sequence}:{digest}".encode(), hashlib.sha256).hexdigest()


def same_signature(given: object, expected: str) -> bool:
    """Constant-time comparison of a stored signature with the one expected. What the
    database or a checkpoint file holds may be anything (non-ASCII text, bytes): that is a
    signature that does not verify, never an error."""
    if not isinstance(given, str):
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def head_problem(sequence: int, digest: str, signature: str | None, key: bytes) -> str | None:
    """Why the head does not verify with the key (the empty chain's head needs no signature)."""
    if sequence == 0 and digest == GENESIS_HASH:
        return None
    if signature is None:
        return HEAD_NOT_SIGNED
    if not same_signature(signature, sign_head(sequence, digest, key)):
        return BAD_HEAD_SIGNATURE
    return None


class LedgerError(Exception):
    """The ledger cannot be appended to or read."""


class HeadNotVerified(LedgerError):
    """The chain head does not verify with the signing key: appending would sign a forgery."""


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    bad_sequence: int | None = None
    reason: str | None = None
    anchors: int | None = None  # checkpoints compared, when some were given

    def __str__(self) -> str:
        if not self.ok:
            return f"record {self.bad_sequence}: {self.reason}"
        matched = f" ({self.anchors} checkpoints matched)" if self.anchors is not None else ""
        return f"ledger intact: {self.checked} records verified{matched}"


def iso_utc(moment: datetime) -> str:
    """UTC ISO 8601 with a Z, from the naive-UTC datetimes the store keeps."""
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def canonical(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, record: dict[str, Any]) -> str:
    return _text_hash(prev_hash, canonical(record))


def _text_hash(prev_hash: str, body: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


def lock_head(session: Session) -> LedgerHead:
    """The chain head, locked for this transaction (created on a database without it)."""
    head = session.execute(
        select(LedgerHead).where(LedgerHead.id == HEAD_ROW_ID).with_for_update()
    ).scalar_one_or_none()
    if head is None:
        head = LedgerHead(id=HEAD_ROW_ID, sequence=0, hash=GENESIS_HASH)
        session.add(head)
        session.flush()
    return head


def require_verified_head(session: Session, action: str) -> None:
    """Raise HeadNotVerified when, with a signing key, the chain head does not verify: for
    work that must not start unless its ledger record can be written (playing a gate)."""
    key = _signing_key
    if key is None:
        return
    head = session.execute(
        select(LedgerHead.sequence, LedgerHead.hash, LedgerHead.signature).where(
            LedgerHead.id == HEAD_ROW_ID
        )
    ).one_or_none()
    if head is None:
        return
    problem = head_problem(head.sequence, head.hash, head.signature, key)
    if problem is not None:
        log.error("refusing to %s: the ledger's record %s: %s", action, head.sequence, problem)
        raise HeadNotVerified(f"record {head.sequence}: {problem}")


def append(
    session: Session,
    kind: str,
    fields: dict[str, Any],
    recorded_at: datetime,
    *,
    trust_head: bool = False,
) -> LedgerEntry:
    """Append one entry inside the caller's transaction, locking the chain head first.

    With a signing key, a head whose signature does not verify is refused (HeadNotVerified):
    the caller's state change fails with it rather than extending a forged chain.
    `trust_head` is for `ledger sign-existing` only, after it verified the chain.
    """
    head = lock_head(session)
    key = _signing_key
    if key is not None and not trust_head:
        problem = head_problem(head.sequence, head.hash, head.signature, key)
        if problem is not None:
            log.error("refusing to append to the ledger: record %s: %s", head.sequence, problem)
            raise HeadNotVerified(f"record {head.sequence}: {problem}")
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
        signature=sign(digest, key) if key else None,
    )
    session.add(entry)
    head.sequence = sequence
    head.hash = digest
    head.signature = sign_head(sequence, digest, key) if key else None
    session.flush()
    if sequence % CHECKPOINT_EVERY == 0 and _on_checkpoint is not None:
        _on_checkpoint(session, sequence, digest)
    return entry


STREAM_QUERY = (
    "SELECT sequence, kind, recorded_at, body, prev_hash, hash, signature"
    " FROM ledger_entries ORDER BY sequence"
)


def stream(session: Session) -> Generator[tuple[Any, ...], None, None]:
    """Entries in sequence order as plain tuples, streamed in batches straight from the
    driver (a server-side cursor on PostgreSQL): memory stays flat, and no ORM objects or
    SQLAlchemy rows are built (they cost as much as the verification itself)."""
    connection = session.connection()
    raw = connection.connection.driver_connection
    if raw is None:
        raise LedgerError("the database connection is closed")
    if connection.dialect.name == "postgresql":
        cursor = raw.cursor(name="approval_bot_ledger_stream")
        cursor.itersize = VERIFY_BATCH
    else:
        cursor = raw.cursor()
    try:
        cursor.execute(STREAM_QUERY)
        while batch := cursor.fetchmany(VERIFY_BATCH):
            yield from batch
    finally:
        cursor.close()


def verify(session: Session, key: str | None = None) -> VerifyResult:
    """The chain, its signatures (with the key) and its head: see bot.ledger_verify."""
    from bot.ledger_verify import verify as verify_chain  # it builds on this module

    return verify_chain(session, key)


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
    for entry in stream(session):
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
        writer.writerow({k: csv_cell(v) for k, v in row.items()})
        count += 1
    return count


# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A CSV cell that opens as text: reasons and branch names come from people, so one
    starting like a formula gets a leading `'` (OWASP's CSV injection advice)."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
