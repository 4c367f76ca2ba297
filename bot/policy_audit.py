"""What happens around a policy reload: record each version in force, tell admins of a
refused file. Wired to the PolicyHolder's listeners by `start_policy_watch`."""

from __future__ import annotations

import logging

from bot.admins import tell_admins_once
from bot.outside_text import slack_code, slack_preformatted
from bot.policy_watch import PolicyWatcher
from bot.runtime import Runtime
from bot.store import policies

log = logging.getLogger(__name__)

REFUSED_TEXT = (
    ":warning: The approver policy {path} was changed but is invalid, so it was *not* "
    "loaded; the previous policy (version `{version}`) stays in force.\n{reason}"
)


class AuditedWatcher(PolicyWatcher):
    """Also records the policy in force in the database (retrying while it is down)."""

    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt.policy)
        self.rt = rt
        self.recorded: str | None = None
        rt.policy.on_invalid.append(self.tell_admins)

    def run(self) -> None:
        while not self.stopping.is_set():
            self.holder.check_for_changes()
            self.record_current()
            self.holder.reload_requested.wait(self.every)

    def record_current(self) -> None:
        loaded = self.holder.current
        if loaded.version == self.recorded:
            return
        try:
            policies.record(self.rt.db, loaded.version, str(loaded.path), self.holder.text)
            self.recorded = loaded.version
        except Exception as exc:  # the database may be down: try again next round
            log.warning("cannot record the policy version yet: %s", type(exc).__name__)

    def tell_admins(self, key: str, reason: str) -> None:
        """A direct message to each admin, once per refused content across all processes."""
        loaded = self.holder.current
        text = refused_text(str(loaded.path), loaded.version, reason)
        tell_admins_once(self.rt, f"policy-refused:{key}", text)


def refused_text(path: str, version: str, reason: str) -> str:
    """The admins' message about a refused policy file (the reason quotes the file)."""
    return REFUSED_TEXT.format(
        path=slack_code(path), version=version[:12], reason=slack_preformatted(reason, limit=2000)
    )


def start_policy_watch(rt: Runtime) -> AuditedWatcher:
    watcher = AuditedWatcher(rt)
    watcher.start()
    return watcher
