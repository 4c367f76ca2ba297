"""The sweep's ledger step: check the chain head, and anchor it outside the database.

Each sweep reads the head (one row) and:
- with LEDGER_HMAC_KEY, checks its signature: a head that does not verify is never
  checkpointed (nor signed on: `ledger.append` refuses it), and the admins are told once;
- checks the chain still holds the last checkpoint written (one indexed read): a chain cut
  or rewritten behind it is reported to the admins at once, not at the next audit;
- when the chain moved, and 100 records or LEDGER_CHECKPOINT_INTERVAL_SECONDS passed since
  the last checkpoint, writes a signed checkpoint to LEDGER_CHECKPOINT_PATH and to the audit
  API (`POST {AUDIT_API_URL}/checkpoints`, through the outbox);
- posts the newest checkpoint to LEDGER_AUDIT_CHANNEL when the head moved since the last
  post, at most every LEDGER_PUBLISH_INTERVAL_SECONDS (a fresh checkpoint, written to the
  file and the audit API too, when the last one is older than the head).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime

from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot import checkpoints, ledger
from bot.admins import tell_admins_once
from bot.checkpoints import Anchoring, Checkpoint
from bot.runtime import Runtime
from bot.slack import SlackError
from bot.store import outbox
from bot.store.models import LedgerEntry, LedgerHead, utcnow

log = logging.getLogger(__name__)

PUBLISHED_KEY = "approval-bot:ledger-checkpoint-published"
HEAD_NOT_VERIFIED = (
    ":rotating_light: The ledger's chain head (record {sequence}) does not verify with "
    "LEDGER_HMAC_KEY: {problem}. Someone changed the ledger in the database. The bot refuses "
    "to sign on top of it, so sign-offs and rejections fail until it is restored: run "
    "`approval-bot ledger verify --checkpoints {path}` and restore the database from a backup."
)
HEAD_NOT_SIGNED = (
    ":rotating_light: The ledger's chain head (record {sequence}) is not signed, though "
    "LEDGER_HMAC_KEY is set. The bot refuses to sign on top of it, so sign-offs and "
    "rejections fail until it is. If the key was just set or approval-bot was just upgraded, "
    "run `approval-bot ledger sign-existing` once (it verifies the ledger first). Otherwise "
    "someone changed the ledger in the database: run `approval-bot ledger verify "
    "--checkpoints {path}` and restore the database from a backup."
)
CHECKPOINT_BROKEN = (
    ":rotating_light: The ledger no longer matches checkpoint {sequence} written at "
    "{recorded_at}: {problem}. Someone truncated or rewrote the ledger in the database: run "
    "`approval-bot ledger verify --checkpoints {path}` and restore the database from a backup."
)
CANNOT_WRITE = (
    ":warning: approval-bot cannot append ledger checkpoints to `{path}` ({error}): the "
    "ledger is not anchored in that file until it can. Check the path and its permissions."
)
PUBLISHED_TEXT = (
    ":link: Ledger checkpoint: record #{sequence}, hash `{hash}` at {recorded_at}. A ledger "
    "shorter than this, or with another hash at record {sequence}, was truncated or "
    "rewritten: `approval-bot ledger verify --checkpoints FILE` with these lines in FILE.\n"
    "```{line}```"
)


@dataclass(frozen=True)
class Head:
    sequence: int
    hash: str
    signature: str | None


def anchor(rt: Runtime) -> int:
    """One pass; returns 1 when a checkpoint was written."""
    anchoring = checkpoints.installed()
    if anchoring is None:
        return 0
    head = _head(rt)
    if head is None or head.sequence == 0 or not _trusted(rt, anchoring, head):
        return 0
    last = _last_checkpoint(anchoring)
    if last is not None and not _chain_holds(rt, anchoring, head, last):
        return 0
    publish = _publish_due(rt, head)
    current = last is not None and (last.sequence, last.hash) == (head.sequence, head.hash)
    written = 0
    if _due(rt, head, last, utcnow()) or (publish and not current):
        last = checkpoints.make(head.sequence, head.hash, anchoring.key)
        _to_file(rt, anchoring, last)
        _to_audit_api(rt, last)
        written = 1
    if publish and last is not None:
        _to_slack(rt, last)
    return written


def _head(rt: Runtime) -> Head | None:
    with rt.db.sessions() as session:
        row = session.execute(
            select(LedgerHead.sequence, LedgerHead.hash, LedgerHead.signature).where(
                LedgerHead.id == ledger.HEAD_ROW_ID
            )
        ).one_or_none()
    return Head(*row) if row is not None else None


def _trusted(rt: Runtime, anchoring: Anchoring, head: Head) -> bool:
    if anchoring.key is None:
        return True
    problem = ledger.head_problem(head.sequence, head.hash, head.signature, anchoring.key)
    if problem is None:
        return True
    template = HEAD_NOT_SIGNED if problem == ledger.HEAD_NOT_SIGNED else HEAD_NOT_VERIFIED
    text = template.format(sequence=head.sequence, problem=problem, path=anchoring.path)
    tell_admins_once(rt, f"ledger-head:{head.sequence}:{head.hash}", text)
    return False


def _last_checkpoint(anchoring: Anchoring) -> Checkpoint | None:
    """The newest checkpoint in the file, or the newest this process wrote (when the file
    is another worker's, or cannot be read)."""
    try:
        found = checkpoints.last_in_file(anchoring.path, anchoring.key)
    except OSError as exc:
        log.warning("cannot read ledger checkpoints in %s: %s", anchoring.path, exc)
        found = None
    candidates = [c for c in (found, anchoring.last_written) if c is not None]
    return max(candidates, key=lambda c: c.sequence) if candidates else None


def _chain_holds(rt: Runtime, anchoring: Anchoring, head: Head, last: Checkpoint) -> bool:
    """The record at the last checkpoint's sequence still has its hash."""
    if last.sequence > head.sequence:
        problem = f"the chain head is at record {head.sequence} (truncated)"
    else:
        with rt.db.sessions() as session:
            stored = session.execute(
                select(LedgerEntry.hash).where(LedgerEntry.sequence == last.sequence)
            ).scalar_one_or_none()
        if stored == last.hash:
            return True
        problem = f"record {last.sequence} is {'missing' if stored is None else 'different'}"
    text = CHECKPOINT_BROKEN.format(
        sequence=last.sequence, recorded_at=last.recorded_at, problem=problem, path=anchoring.path
    )
    tell_admins_once(rt, f"ledger-checkpoint:{last.sequence}:{last.hash}:{head.hash}", text)
    return False


def _due(rt: Runtime, head: Head, last: Checkpoint | None, now: datetime) -> bool:
    """The chain moved, and 100 records or the interval passed (less one sweep, so the
    interval is a bound, not a minimum)."""
    if last is None:
        return True
    if (last.sequence, last.hash) == (head.sequence, head.hash):
        return False
    if head.sequence - last.sequence >= ledger.CHECKPOINT_EVERY:
        return True
    try:
        written = datetime.fromisoformat(last.recorded_at.removesuffix("Z"))
    except ValueError:
        return True
    settings = rt.settings
    every = settings.LEDGER_CHECKPOINT_INTERVAL_SECONDS - settings.SWEEP_INTERVAL_SECONDS
    return (now - written).total_seconds() >= every


def _to_file(rt: Runtime, anchoring: Anchoring, checkpoint: Checkpoint) -> None:
    try:
        anchoring.write(checkpoint)
    except OSError as exc:
        error = exc.strerror or str(exc)
        log.error("cannot write ledger checkpoint to %s: %s", anchoring.path, error)
        text = CANNOT_WRITE.format(path=anchoring.path, error=error)
        tell_admins_once(rt, f"ledger-checkpoint-file:{anchoring.path}", text)
        anchoring.last_written = checkpoint  # the other destinations still got it


def _to_audit_api(rt: Runtime, checkpoint: Checkpoint) -> None:
    if not rt.settings.AUDIT_API_URL:
        return
    # The same head may already be queued (by the append that crossed 100 records).
    with contextlib.suppress(IntegrityError), rt.db.transaction() as session:
        outbox.add_checkpoint(session, checkpoint)


def _publish_due(rt: Runtime, head: Head) -> bool:
    """LEDGER_AUDIT_CHANNEL gets the head when it moved since the last post, at most once
    every LEDGER_PUBLISH_INTERVAL_SECONDS (across workers)."""
    if not rt.settings.LEDGER_AUDIT_CHANNEL:
        return False
    marker = f"{head.sequence}:{head.hash}"
    try:
        if rt.redis.get(PUBLISHED_KEY) in (marker, marker.encode()):
            return False
        every = rt.settings.LEDGER_PUBLISH_INTERVAL_SECONDS
        return bool(rt.redis.set(PUBLISHED_KEY + ":lock", "1", nx=True, ex=every))
    except RedisError:
        return False


def _to_slack(rt: Runtime, checkpoint: Checkpoint) -> None:
    channel = rt.settings.LEDGER_AUDIT_CHANNEL
    assert channel
    text = PUBLISHED_TEXT.format(
        sequence=checkpoint.sequence,
        hash=checkpoint.hash,
        recorded_at=checkpoint.recorded_at,
        line=checkpoint.line().strip(),
    )
    try:
        rt.slack.post_message(channel, text)
    except SlackError as exc:
        log.error("cannot publish the ledger checkpoint to %s: %s", channel, exc.error)
        return
    with contextlib.suppress(RedisError):
        rt.redis.set(PUBLISHED_KEY, f"{checkpoint.sequence}:{checkpoint.hash}")
