"""Verified webhook events the edge could not hand to Redis, kept on local disk until it can.

GitLab does not retry a webhook answered 5xx (and disables a hook that keeps failing), yet the
contract has the edge answer 503 while Redis or the database is down. So the edge answers 503
*and* writes the event here. A drainer thread in every web process hands each spooled event to
the normal webhook path once both have answered for GRACE_S without a break; the gate key (not
the delivery id) makes it a no-op when the event was redelivered meanwhile. One file per event,
written to a temporary name, fsynced, then renamed: a crash leaves either the whole event or
nothing. Processes (and containers sharing the volume)
take turns on a file with flock, so each event is re-submitted by one drainer at a time.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, current_app

log = logging.getLogger(__name__)

SPOOL_KEY = "approval_bot_spool"
SUFFIX = ".json"
BAD_SUFFIX = ".bad"
# A bound on the disk an outage may use: beyond it the edge answers 503 again.
MAX_SPOOLED = 10_000
DRAIN_EVERY_S = 1.0
# How long Redis and the database must answer without a break before spooled events go.
# The contract says a delivery answered 503 is not remembered and its redelivery is processed
# (202): a redelivery made right after recovery (GitLab's "Resend request", a test, an
# operator) must find nothing taken yet, so it is the one that opens the request and the
# spooled copy, drained later, finds the gate key and is a no-op duplicate.
GRACE_S = 5.0


class SpoolFull(Exception):
    """MAX_SPOOLED events are already waiting."""


@dataclass(frozen=True)
class Spooled:
    """A verified event, as the webhook handler had it once the token was checked."""

    payload: dict[str, Any]
    scope: dict[str, Any]  # bot.policy_secrets.Scope.to_json(): never the secret itself
    key: str | None  # the delivery's Idempotency-Key (or signed webhook-id)
    spooled_at: float

    def to_json(self) -> bytes:
        data = {
            "payload": self.payload,
            "scope": self.scope,
            "key": self.key,
            "spooled_at": self.spooled_at,
        }
        return json.dumps(data).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Spooled:
        data = json.loads(raw)
        if not isinstance(data, dict) or not isinstance(data.get("payload"), dict):
            raise ValueError("not a spooled event")
        key = data.get("key")
        scope = data.get("scope")
        return cls(
            payload=data["payload"],
            scope=scope if isinstance(scope, dict) else {},
            key=key if isinstance(key, str) else None,
            spooled_at=float(data.get("spooled_at") or 0.0),
        )


class Spool:
    """The directory of spooled events (one file each, oldest first by name)."""

    def __init__(self, directory: Path, limit: int = MAX_SPOOLED) -> None:
        self.directory = directory
        self.limit = limit

    def keep(self, event: Spooled) -> Path:
        """Write the event durably; raises SpoolFull or OSError (then the caller answers 5xx)."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if len(self.pending()) >= self.limit:
            raise SpoolFull(f"{self.limit} events are already spooled")
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex}{SUFFIX}"
        temporary = self.directory / f".{name}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, event.to_json())
            os.fsync(fd)
        finally:
            os.close(fd)
        final = self.directory / name
        os.replace(temporary, final)
        _fsync_directory(self.directory)
        return final

    def pending(self) -> list[Path]:
        """Spooled events, oldest first."""
        try:
            return sorted(self.directory.glob(f"[0-9]*{SUFFIX}"))
        except FileNotFoundError:
            return []

    def newest_at(self) -> float | None:
        """When the newest spooled event was kept (wall clock, from its file name)."""
        pending = self.pending()
        if not pending:
            return None
        try:
            return int(pending[-1].name.split("-", 1)[0]) / 1e9
        except ValueError:
            return None

    @contextmanager
    def claim(self, path: Path) -> Iterator[Spooled | None]:
        """The event in `path` while this process holds it (None: another drainer has it, it
        is gone, or it cannot be read; an unreadable file is set aside as `*.bad`).
        Leaving the block without an exception removes the file; an exception keeps it."""
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            yield None
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield None
                return
            if os.fstat(fd).st_nlink == 0:  # re-submitted and removed while we waited
                yield None
                return
            try:
                event = Spooled.from_json(_read_all(fd))
            except (ValueError, UnicodeDecodeError):
                log.error("spooled webhook %s cannot be read; set aside", path.name)
                os.replace(path, path.with_suffix(BAD_SUFFIX))
                yield None
                return
            yield event
            path.unlink()
            _fsync_directory(self.directory)
        finally:
            os.close(fd)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def _fsync_directory(directory: Path) -> None:
    """The rename (or removal) itself survives a power cut only once its directory is synced."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# Hands a spooled event to the normal webhook path: True once it was taken (queued, found a
# duplicate, or needs no action), False while Redis or the database is still unreachable.
Submit = Callable[[Spooled], bool]
# Do Redis and the database answer right now (not a cached answer)?
Ready = Callable[[], bool]


class SpoolDrainer(threading.Thread):
    """Re-submits spooled events, oldest first, once the dependencies have been back GRACE_S."""

    def __init__(
        self,
        spool: Spool,
        submit: Submit,
        ready: Ready,
        *,
        grace: float = GRACE_S,
        every: float = DRAIN_EVERY_S,
        # Wall clock: file names carry the time an event was kept (Spool.newest_at).
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name="webhook-spool-drainer", daemon=True)
        self.spool = spool
        self.submit = submit
        self.ready = ready
        self.grace = grace
        self.every = every
        self.clock = clock
        self.up_since: float | None = None  # when both last started answering without a break
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.drain_once()
            self.stopping.wait(self.every)

    def drain_once(self) -> int:
        """Re-submit what is spooled, oldest first, if the dependencies have answered for the
        grace period; how many events were taken."""
        if not self._settled():
            return 0
        taken = 0
        try:
            for path in self.spool.pending():
                taken += self._drain(path)
        except _StillDown:
            self.up_since = None  # the file stays; the grace period starts over
        return taken

    def _settled(self) -> bool:
        """Have Redis and the database answered continuously for `grace` seconds?

        Counted from the later of "first seen answering" and "the newest event was kept": an
        outage shorter than DRAIN_EVERY_S can pass between two checks unseen, yet the event it
        left was answered 503 and its redelivery must still find nothing taken."""
        newest = self.spool.newest_at()
        if newest is None or not self.ready():  # nothing waits: no need to watch
            self.up_since = None
            return False
        now = self.clock()
        if self.up_since is None:
            self.up_since = now
        return now - max(self.up_since, newest) >= self.grace

    def _drain(self, path: Path) -> int:
        try:
            with self.spool.claim(path) as event:
                if event is None:
                    return 0
                if not self.submit(event):
                    raise _StillDown
        except _StillDown:
            raise
        except Exception as exc:  # kept for the next round; the others still go
            log.warning("spooled webhook %s not taken: %s", path.name, type(exc).__name__)
            return 0
        log.info("spooled webhook taken after %.1f s", max(0.0, time.time() - event.spooled_at))
        return 1


class _StillDown(Exception):
    """Redis or the database is still unreachable: stop this round, keep the file."""


def install(app: Flask, spool: Spool) -> None:
    app.extensions[SPOOL_KEY] = spool


def current_spool() -> Spool:
    value = current_app.extensions[SPOOL_KEY]
    assert isinstance(value, Spool)
    return value


def spool_of(app: Flask) -> Spool:
    value = app.extensions[SPOOL_KEY]
    assert isinstance(value, Spool)
    return value
