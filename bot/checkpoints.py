"""Checkpoints: the chain head (sequence, hash, time) anchored outside the database.

A checkpoint is one JSON object, one line in an append-only file:

    {"sequence": 1200, "hash": "<sha256 hex>", "recorded_at": "2026-12-01T10:00:00.000000Z",
     "signature": "<hex>"}

`signature` is HMAC-SHA256 with LEDGER_HMAC_KEY over `checkpoint:{sequence}:{hash}:{recorded_at}`
(null without a key: the checkpoint still anchors the hash). Someone who can rewrite the
database cannot rewrite what was already written elsewhere, so `ledger verify --checkpoints`
catches a chain that is shorter than, or differs from, any checkpoint.

The file is only ever appended to (O_APPEND, one write per line, fsync), so several
processes may write it at once; a line written twice is harmless.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from bot import ledger
from bot.store.models import utcnow

log = logging.getLogger(__name__)

FETCH_TIMEOUT_S = 30
TAIL_BYTES = 64 * 1024
FILE_MODE = 0o640
_PENDING = "approval-bot:checkpoints"
_HEX64 = re.compile(r"[0-9a-f]{64}")


class CheckpointError(Exception):
    """Checkpoints that cannot be read or parsed; str() is one line for the operator."""


@dataclass(frozen=True)
class Checkpoint:
    sequence: int
    hash: str
    recorded_at: str
    signature: str | None

    def line(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":")) + "\n"


def signature_of(sequence: int, digest: str, recorded_at: str, key: bytes) -> str:
    text = f"checkpoint:{sequence}:{digest}:{recorded_at}"
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def make(sequence: int, digest: str, key: bytes | None, at: datetime | None = None) -> Checkpoint:
    recorded_at = ledger.iso_utc(at or utcnow())
    signature = signature_of(sequence, digest, recorded_at, key) if key else None
    return Checkpoint(sequence, digest, recorded_at, signature)


def signature_problem(checkpoint: Checkpoint, key: bytes) -> str | None:
    """Why a checkpoint was not written with this key (None when it was)."""
    if checkpoint.signature is None:
        return "missing signature"
    expected = signature_of(checkpoint.sequence, checkpoint.hash, checkpoint.recorded_at, key)
    if not ledger.same_signature(checkpoint.signature, expected):
        return "signature does not verify with LEDGER_HMAC_KEY (not written by this bot?)"
    return None


# --- reading ---------------------------------------------------------------------------------


def parse(text: str) -> list[Checkpoint]:
    """Checkpoint lines (JSON Lines), or a JSON array of checkpoint objects."""
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except ValueError as exc:
            raise CheckpointError(f"not a JSON array of checkpoints: {exc}") from None
        return [_checkpoint(item, f"item {number}") for number, item in enumerate(items, 1)]
    found = []
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except ValueError:
            raise CheckpointError(f"line {number}: not JSON") from None
        found.append(_checkpoint(item, f"line {number}"))
    return found


def _checkpoint(item: Any, where: str) -> Checkpoint:
    if not isinstance(item, dict):
        raise CheckpointError(f"{where}: not a checkpoint object")
    sequence, digest = item.get("sequence"), item.get("hash")
    recorded_at, signature = item.get("recorded_at"), item.get("signature")
    if type(sequence) is not int or sequence < 1:
        raise CheckpointError(f"{where}: sequence must be a positive integer")
    if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
        raise CheckpointError(f"{where}: hash must be 64 hexadecimal digits")
    if not isinstance(recorded_at, str):
        raise CheckpointError(f"{where}: recorded_at must be a string")
    if signature is not None and not isinstance(signature, str):
        raise CheckpointError(f"{where}: signature must be a string or null")
    return Checkpoint(sequence, digest, recorded_at, signature)


def read(source: str, timeout: float = FETCH_TIMEOUT_S) -> list[Checkpoint]:
    """Checkpoints from a file, or from an http(s) URL answering lines or a JSON array."""
    if source.startswith(("http://", "https://")):
        try:
            answer = requests.get(source, timeout=timeout)
        except requests.RequestException as exc:
            raise CheckpointError(f"cannot fetch {source}: {type(exc).__name__}") from None
        if answer.status_code != 200:
            raise CheckpointError(f"cannot fetch {source}: HTTP {answer.status_code}")
        text = answer.text
    else:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise CheckpointError(f"cannot read {source}: {reason}") from None
    try:
        return parse(text)
    except CheckpointError as exc:
        raise CheckpointError(f"{source}: {exc}") from None


def last_in_file(path: Path, key: bytes | None) -> Checkpoint | None:
    """The newest checkpoint at the end of the file that parses (and, with the key, verifies).
    Reads only the file's tail."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - TAIL_BYTES))
            tail = handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return None
    for raw in reversed(tail.splitlines()):
        try:
            found = _checkpoint(json.loads(raw), "line")
        except (ValueError, CheckpointError):
            continue
        if key is None or signature_problem(found, key) is None:
            return found
    return None


# --- writing ---------------------------------------------------------------------------------


def append_to_file(path: Path, checkpoint: Checkpoint) -> None:
    """One line, one write, with O_APPEND (concurrent writers never interleave within a
    line), flushed to disk before returning. Never rewrites what is there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = checkpoint.line().encode()
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
    try:
        written = os.write(descriptor, data)
        if written != len(data):
            raise OSError(f"short write to {path} ({written} of {len(data)} bytes)")
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@dataclass
class Anchoring:
    """Where this process anchors checkpoints, set once at startup (`install`)."""

    path: Path
    key: bytes | None
    audit: bool
    last_written: Checkpoint | None = None

    def stage(self, session: Session, sequence: int, digest: str) -> None:
        """Every CHECKPOINT_EVERY records, inside the appending transaction: the audit-API
        copy joins the transaction; the file line is written once it commits."""
        checkpoint = make(sequence, digest, self.key)
        if self.audit:
            from bot.store import outbox

            outbox.add_checkpoint(session, checkpoint)
        session.info.setdefault(_PENDING, []).append(checkpoint)

    def write(self, checkpoint: Checkpoint) -> None:
        append_to_file(self.path, checkpoint)
        self.last_written = checkpoint

    def after_commit(self, session: Session) -> None:
        for checkpoint in session.info.pop(_PENDING, []):
            try:
                self.write(checkpoint)
            except OSError as exc:  # committed already: the sweep writes the next one
                log.error("cannot write ledger checkpoint to %s: %s", self.path, exc)


_installed: Anchoring | None = None


def install(sessions: sessionmaker[Session], anchoring: Anchoring) -> None:
    """Anchor every CHECKPOINT_EVERY records as they are appended through `sessions`; the
    sweep (workers.anchoring) writes the others through the same Anchoring."""
    global _installed  # noqa: PLW0603 - process-wide, set once at startup
    _installed = anchoring
    ledger.set_checkpoint_hook(anchoring.stage)
    event.listen(sessions, "after_commit", anchoring.after_commit)
    event.listen(sessions, "after_rollback", lambda session: session.info.pop(_PENDING, None))


def installed() -> Anchoring | None:
    """This process's Anchoring (None before `install`)."""
    return _installed
