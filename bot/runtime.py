"""Everything a process needs, built once at startup from the settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property

from redis import Redis

from bot import checkpoints, ledger
from bot.gitlab import GitLabClient
from bot.identity_lookup import IdentityLookups
from bot.policy_watch import PolicyHolder
from bot.settings import Settings
from bot.slack import SlackClient
from bot.store.db import Database

log = logging.getLogger(__name__)

REDIS_TIMEOUT_S = 2.0
REDIS_HEALTH_CHECK_S = 30


@dataclass
class Runtime:
    settings: Settings
    policy: PolicyHolder
    db: Database
    redis: Redis
    slack: SlackClient
    gitlab: GitLabClient

    @cached_property
    def identity_lookups(self) -> IdentityLookups:
        """Who is behind a change, as GitLab and Slack tie them (cached in the process)."""
        return IdentityLookups(self.gitlab, self.slack)


def make_redis(url: str) -> Redis:
    return Redis.from_url(
        url,
        socket_timeout=REDIS_TIMEOUT_S,
        socket_connect_timeout=REDIS_TIMEOUT_S,
        health_check_interval=REDIS_HEALTH_CHECK_S,
    )


def build_runtime(settings: Settings) -> Runtime:
    """Load the policy (raising PolicyError if invalid) and create the clients."""
    policy = PolicyHolder(str(settings.APPROVAL_POLICY))
    key = settings.LEDGER_HMAC_KEY
    ledger.set_signing_key(key.get_secret_value() if key else None)
    db = Database(settings.database_url)
    anchoring = checkpoints.Anchoring(
        settings.LEDGER_CHECKPOINT_PATH,
        key.get_secret_value().encode() if key else None,
        audit=bool(settings.AUDIT_API_URL),
    )
    checkpoints.install(db.sessions, anchoring)  # the sweep finds it with installed()
    return Runtime(
        settings=settings,
        policy=policy,
        db=db,
        redis=make_redis(settings.REDIS_URL),
        slack=SlackClient(
            token=settings.SLACK_BOT_TOKEN.get_secret_value(),
            base_url=settings.slack_api_url,
            usergroup_ttl=settings.USERGROUP_CACHE_TTL,
        ),
        gitlab=GitLabClient(settings.GITLAB_URL, settings.GITLAB_TOKEN.get_secret_value()),
    )
