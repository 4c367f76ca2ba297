"""The policy in force, and live reload: a changed file (also one replaced by a rename, or a
changed webhook secret file it names) is in force within seconds; SIGHUP forces a reload;
an invalid file is refused, the old policy stays, and the listeners (admins in Slack, the
log) are told why."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from bot.logs import register_secrets
from bot.policy import LoadedPolicy, PolicyError, load_policy, parse_policy

log = logging.getLogger(__name__)

WATCH_EVERY_S = 2.0
Signature = tuple[tuple[int, int, int] | None, ...]


@dataclass(frozen=True)
class Change:
    old: LoadedPolicy
    new: LoadedPolicy
    old_text: str
    new_text: str


ChangeListener = Callable[[Change], None]
# (a key naming the refused content, the reason in plain lines)
InvalidListener = Callable[[str, str], None]


def _stat(path: str | os.PathLike[str]) -> tuple[int, int, int]:
    stat = os.stat(path)
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


def _signature(path: str, loaded: LoadedPolicy) -> Signature:
    """The policy file's identity, then its webhook secret files' (None: unreadable)."""
    files: list[tuple[int, int, int] | None] = []
    for secret in loaded.webhook_keys.files:
        try:
            files.append(_stat(secret))
        except OSError:
            files.append(None)
    return (_stat(path), *files)


class PolicyHolder:
    """The policy in force. Only a valid file ever replaces it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._loaded = load_policy(path)  # raises PolicyError: refuse to start
        register_secrets(self._loaded.webhook_keys.values())
        self._text = self._loaded.path.read_text(encoding="utf-8", errors="replace")
        self._signature = _signature(path, self._loaded)
        self._refused: str | None = None
        self.reload_requested = threading.Event()
        self.on_change: list[ChangeListener] = []
        self.on_invalid: list[InvalidListener] = []

    @property
    def current(self) -> LoadedPolicy:
        with self._lock:
            return self._loaded

    @property
    def text(self) -> str:
        with self._lock:
            return self._text

    def request_reload(self) -> None:
        """Re-read the file at the next check even if it looks unchanged (SIGHUP)."""
        self.reload_requested.set()

    def check_for_changes(self) -> LoadedPolicy | None:
        """Reload when the file changed or a reload was requested; the new policy or None."""
        forced = self.reload_requested.is_set()
        self.reload_requested.clear()
        try:
            signature = _signature(self.path, self.current)
            if signature == self._signature and not forced:
                return None
            with open(self.path, "rb") as handle:
                raw = handle.read()
        except OSError as exc:
            self._refuse(f"unreadable:{exc.errno}", f"{self.path}: cannot be read ({exc.strerror})")
            return None
        self._signature = signature
        try:
            loaded = parse_policy(raw, self.path)
        except PolicyError as exc:
            # Keyed by content and secret files: a fixed secret file is a new attempt.
            refused = hashlib.sha256(raw + repr(signature).encode()).hexdigest()
            self._refuse(refused, str(exc))
            return None
        register_secrets(loaded.webhook_keys.values())
        with self._lock:
            old, old_text = self._loaded, self._text
            self._refused = None
            if loaded.version == old.version and loaded.webhook_keys == old.webhook_keys:
                return None
            self._loaded = loaded
            self._signature = _signature(self.path, loaded)
            self._text = raw.decode("utf-8", errors="replace")
        log.info("policy reloaded: version %s (was %s)", loaded.version[:12], old.version[:12])
        change = Change(old, loaded, old_text, self.text)
        for listener in self.on_change:
            _safely(listener, change)
        return loaded

    def _refuse(self, key: str, reason: str) -> None:
        if self._refused == key:
            return  # already said for this content
        self._refused = key
        log.error("policy file refused; the previous policy stays in force:\n%s", reason)
        for listener in self.on_invalid:
            _safely(listener, key, reason)


def _safely(listener: Callable[..., None], *args: object) -> None:
    try:
        listener(*args)
    except Exception:  # a failing listener (Slack down) must not stop reloads
        log.exception("policy listener failed")


class PolicyWatcher(threading.Thread):
    """Checks the policy file every couple of seconds, or at once when asked (SIGHUP)."""

    def __init__(self, holder: PolicyHolder, every: float = WATCH_EVERY_S) -> None:
        super().__init__(name="approval-bot-policy-watch", daemon=True)
        self.holder = holder
        self.every = every
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.holder.check_for_changes()
            self.holder.reload_requested.wait(self.every)

    def stop(self) -> None:
        self.stopping.set()
        self.holder.reload_requested.set()
