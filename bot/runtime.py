"""Everything a process needs, built once at startup from the settings."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from redis import Redis

from bot.gitlab import GitLabClient
from bot.policy import LoadedPolicy, load_policy
from bot.settings import Settings
from bot.slack import SlackClient
from bot.store.db import Database

log = logging.getLogger(__name__)

REDIS_TIMEOUT_S = 2.0


class PolicyHolder:
    """The policy in force. A reload replaces it only with a valid one."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._loaded = load_policy(path)

    @property
    def current(self) -> LoadedPolicy:
        with self._lock:
            return self._loaded

    def reload(self) -> LoadedPolicy:
        """Load the file again; raises PolicyError and keeps the old policy if it is invalid."""
        loaded = load_policy(self.path)
        with self._lock:
            self._loaded = loaded
        return loaded


@dataclass
class Runtime:
    settings: Settings
    policy: PolicyHolder
    db: Database
    redis: Redis
    slack: SlackClient
    gitlab: GitLabClient


def make_redis(url: str) -> Redis:
    return Redis.from_url(
        url,
        socket_timeout=REDIS_TIMEOUT_S,
        socket_connect_timeout=REDIS_TIMEOUT_S,
        health_check_interval=30,
    )


def build_runtime(settings: Settings) -> Runtime:
    """Load the policy (raising PolicyError if invalid) and create the clients."""
    policy = PolicyHolder(str(settings.APPROVAL_POLICY))
    return Runtime(
        settings=settings,
        policy=policy,
        db=Database(settings.database_url),
        redis=make_redis(settings.REDIS_URL),
        slack=SlackClient(
            token=settings.SLACK_BOT_TOKEN.get_secret_value(),
            base_url=settings.slack_api_url,
            usergroup_ttl=settings.USERGROUP_CACHE_TTL,
        ),
        gitlab=GitLabClient(settings.GITLAB_URL, settings.GITLAB_TOKEN.get_secret_value()),
    )
