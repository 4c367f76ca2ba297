"""`ledger verify`: walk the chain once, report the first record that does not hold.

What is checked, in one streamed pass (no ORM objects, flat memory):
- each record: contiguous sequence, link to the previous hash, its own hash over the stored
  canonical body, and the columns against the body;
- with the signing key: every record's signature. A record may be unsigned only when a later
  signed enrolment record (`ledger sign-existing`) vouches for it: its hash chains over
  every record before it;
- the chain head: it names the last record and its hash, and with the key its signature;
- checkpoints kept outside the database: the record at each checkpoint's sequence has the
  checkpoint's hash, and the chain is at least as long as every checkpoint.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import ledger
from bot.checkpoints import Checkpoint as Anchor
from bot.store.db import Database
from bot.store.models import LedgerHead, utcnow

log = logging.getLogger(__name__)


Problem = tuple[int, str]


@dataclass
class _Walk:
    """The state of one pass over the chain."""

    key: bytes | None  # the signing key (records are checked only with it)
    anchors: dict[int, list[Anchor]]
    allow_unsigned: bool
    checked: int = 0
    prev_hash: str = ledger.GENESIS_HASH
    unsigned_since: int | None = None  # the first unsigned record nothing vouched for yet
    unvouched: int = 0  # unsigned records since the last enrolment record

    def run(self, rows: Iterable[Any]) -> Problem | None:
        """The first problem, or None. One tight loop (a million rows are verified in a few
        seconds): each record is checked on a fast path, and `_check_entry` names what is
        wrong only when something is."""
        anchors, sha256, compare = self.anchors, hashlib.sha256, hmac.compare_digest
        mac = self._mac()
        kind_texts: dict[str, str] = {}
        prev_hash, expected = self.prev_hash, self.checked + 1
        try:
            for row in rows:
                sequence, kind, recorded_at, body, stored_prev, stored_hash, signature = row
                kind_text = kind_texts.get(kind) or kind_texts.setdefault(
                    kind, f'"kind":{json.dumps(kind)}'
                )
                if (
                    sequence != expected
                    or stored_prev != prev_hash
                    or sha256(f"{prev_hash}\n{body}".encode()).hexdigest() != stored_hash
                    or f'"sequence":{sequence},' not in body
                    or kind_text not in body
                    or f'"recorded_at":"{recorded_at}"' not in body
                ):
                    return _check_entry(row, expected, prev_hash)
                if mac is not None and (
                    type(signature) is not str
                    or kind == ledger.ENROLMENT_KIND
                    or not signature.isascii()  # forged: _check_signature says so
                    or not compare(signature, _signature(mac, stored_hash))
                ):
                    problem = self._check_signature(sequence, kind, stored_hash, signature)
                    if problem is not None:
                        return problem
                if anchors and sequence in anchors:
                    problem = _check_anchors(row, anchors[sequence])
                    if problem is not None:
                        return problem
                prev_hash = stored_hash
                expected += 1
            return None
        finally:
            self.prev_hash, self.checked = prev_hash, expected - 1

    def _mac(self) -> hmac.HMAC | None:
        """HMAC-SHA256 keyed once; each record's is a copy (cheaper than a new one)."""
        return hmac.new(self.key, digestmod=hashlib.sha256) if self.key is not None else None

    def _check_signature(
        self, sequence: int, kind: str, digest: str, signature: str | None
    ) -> Problem | None:
        if signature is None:
            self.unvouched += 1
            if self.unsigned_since is None and not self.allow_unsigned:
                self.unsigned_since = sequence
            return None
        mac = self._mac()
        assert mac is not None
        if not ledger.same_signature(signature, _signature(mac, digest)):
            return sequence, ledger.BAD_SIGNATURE
        if kind == ledger.ENROLMENT_KIND:
            self.unsigned_since = None  # its signature covers the whole chain before it
            self.unvouched = 0
        return None


def verify(
    session: Session,
    key: str | None = None,
    checkpoints: Iterable[Anchor] = (),
    *,
    allow_unsigned: bool = False,
) -> ledger.VerifyResult:
    """The first bad record, or how many records (and checkpoints) hold.

    `allow_unsigned` is for `ledger sign-existing`: unsigned records and an unsigned head
    pass (every signature present must still verify).
    """
    return _verify(session, key, checkpoints, allow_unsigned)[0]


def _verify(
    session: Session, key: str | None, checkpoints: Iterable[Anchor], allow_unsigned: bool
) -> tuple[ledger.VerifyResult, _Walk]:
    anchors: dict[int, list[Anchor]] = {}
    for anchor in checkpoints:
        anchors.setdefault(anchor.sequence, []).append(anchor)
    walk = _Walk(key.encode() if key else None, anchors, allow_unsigned)
    with contextlib.closing(ledger.stream(session)) as rows:  # its cursor closes here
        problem = walk.run(rows)
    if problem is not None:
        return ledger.VerifyResult(False, walk.checked, *problem), walk
    checked = walk.checked
    problem = (
        ((walk.unsigned_since, ledger.MISSING_SIGNATURE) if walk.unsigned_since else None)
        or _check_head(session, checked, walk.prev_hash, None if allow_unsigned else key)
        or _check_length(anchors, checked)
    )
    if problem is not None:
        return ledger.VerifyResult(False, checked, *problem), walk
    count = sum(len(found) for found in anchors.values())
    return ledger.VerifyResult(True, checked, anchors=count if anchors else None), walk


def _signature(keyed: hmac.HMAC, digest: str) -> str:
    """ledger.sign(digest, key), from an HMAC already keyed."""
    mac = keyed.copy()
    mac.update(digest.encode())
    return mac.hexdigest()


def _check_entry(entry: Any, expected: int, prev_hash: str) -> Problem:
    """What is wrong with a record the fast path refused."""
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
    if hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest() != stored_hash:
        return expected, "hash mismatch (the record was modified)"
    if f'"kind":{json.dumps(kind)}' not in body or f'"recorded_at":"{recorded_at}"' not in body:
        return expected, "kind or recorded_at differs from the hashed body"
    return expected, "does not match its hashed body"


def _check_anchors(entry: Any, found: list[Anchor] | None) -> Problem | None:
    for anchor in found or ():
        if anchor.hash != entry[5]:
            return entry[0], (
                f"hash differs from checkpoint {anchor.sequence} recorded {anchor.recorded_at}"
                " (rewritten after it was anchored)"
            )
    return None


def _check_head(session: Session, checked: int, last_hash: str, key: str | None) -> Problem | None:
    row = session.execute(
        select(LedgerHead.sequence, LedgerHead.hash, LedgerHead.signature).where(
            LedgerHead.id == ledger.HEAD_ROW_ID
        )
    ).one_or_none()
    if row is None:
        return None
    sequence, digest, signature = row
    if sequence > checked:
        return checked + 1, f"missing (the chain head says {sequence} records were written)"
    if sequence < checked:
        return sequence + 1, (
            f"beyond the chain head, which says {sequence} records were written (head moved back)"
        )
    if digest != last_hash:
        return checked, "hash does not match the chain head"
    if key is not None:
        problem = ledger.head_problem(sequence, digest, signature, key.encode())
        if problem is not None:
            return sequence, problem
    return None


def _check_length(anchors: dict[int, list[Anchor]], checked: int) -> Problem | None:
    """The chain must reach every checkpoint (it only ever grows)."""
    beyond = [a for sequence, found in anchors.items() if sequence > checked for a in found]
    if not beyond:
        return None
    last = max(beyond, key=lambda anchor: anchor.sequence)
    return checked + 1, (
        f"missing (checkpoint {last.sequence} recorded {last.recorded_at} says the chain "
        f"reached record {last.sequence}: truncated)"
    )


# --- `ledger sign-existing`: the one explicit step that brings older records under the key ---

NOTHING_EMPTY = "nothing to sign: the ledger is empty"
NOTHING_TO_SIGN = "nothing to sign: every record and the chain head are signed"
LEDGER_MOVED = "the ledger moved while it was being checked: run the command again"
ENROLMENT_REASON = (
    "LEDGER_HMAC_KEY enrolled by `approval-bot ledger sign-existing`: this signed record "
    "vouches for records 1-{last} as verified then ({unsigned} of them written unsigned)"
)
ENROLLED = (
    "signed: record {sequence} vouches for records 1-{last} ({unsigned} records written "
    "before the key); the chain head is signed"
)


class EnrolmentRefused(Exception):
    """The ledger does not verify (or moved): nothing was signed. str() is one line."""


def sign_existing(db: Database, key: str, checkpoints: Iterable[Anchor] = ()) -> str:
    """Verify the chain (every signature present must hold, and the given checkpoints),
    then append one signed enrolment record vouching for every record before it."""
    with db.sessions() as session:
        result, walk = _verify(session, key, checkpoints, allow_unsigned=True)
        if not result.ok:
            raise EnrolmentRefused(str(result))
        unsigned = walk.unvouched
        head = session.execute(
            select(LedgerHead.sequence, LedgerHead.hash, LedgerHead.signature)
        ).one()
    if result.checked == 0:
        return NOTHING_EMPTY
    head_problem = ledger.head_problem(*head, key.encode())
    if head_problem == ledger.BAD_HEAD_SIGNATURE:  # signed before, with this key: tampered
        raise EnrolmentRefused(f"record {head[0]}: {head_problem}")
    if unsigned == 0 and head_problem is None:
        return NOTHING_TO_SIGN
    reason = ENROLMENT_REASON.format(last=result.checked, unsigned=unsigned)
    ledger.set_signing_key(key)  # this process signs the record and the new head
    with db.transaction() as session:
        locked = ledger.lock_head(session)
        if (locked.sequence, locked.hash) != (head[0], head[1]):
            raise EnrolmentRefused(LEDGER_MOVED)
        entry = ledger.append(
            session, ledger.ENROLMENT_KIND, {"reason": reason}, utcnow(), trust_head=True
        )
    log.warning("ledger enrolment: record %s signed, vouching for %s", entry.sequence, reason)
    return ENROLLED.format(sequence=entry.sequence, last=result.checked, unsigned=unsigned)
