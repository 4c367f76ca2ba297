"""What happens around a policy reload: record each version in force, tell admins of a
refused file. Wired to the PolicyHolder's listeners by `start_policy_watch`."""

from __future__ import annotations

import logging

from redis.exceptions import RedisError

from bot.policy_watch import PolicyWatcher
from bot.runtime import Runtime
from bot.slack import SlackError
from bot.store import policies

log = logging.getLogger(__name__)

REFUSED_TEXT = (
    ":warning: The approver policy `{path}` was changed but is invalid, so it was *not* "
    "loaded; the previous policy (version `{version}`) stays in force.\n```\n{reason}\n```"
)
NOTIFIED_TTL_S = 24 * 3600


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
        try:
            if not self.rt.redis.set(
                f"approval-bot:policy-refused:{key}", "1", nx=True, ex=NOTIFIED_TTL_S
            ):
                return
        except RedisError:
            log.warning("Redis unavailable: admins may be told twice about the refused policy")
        loaded = self.holder.current
        text = REFUSED_TEXT.format(path=loaded.path, version=loaded.version[:12], reason=reason)
        for admin in loaded.policy.admins:
            try:
                self.rt.slack.direct_message(admin, text)
            except SlackError as exc:
                log.error("cannot tell admin %s about the refused policy: %s", admin, exc.error)


def start_policy_watch(rt: Runtime) -> AuditedWatcher:
    watcher = AuditedWatcher(rt)
    watcher.start()
    return watcher
