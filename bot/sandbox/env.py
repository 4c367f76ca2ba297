"""The environment `approval-bot web` and `worker` run with against simulated GitLab and Slack.

Shared by `approval-bot sandbox` and the integration tests' harness, so both start the
real processes the same way.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# Settings a developer may have exported for a real bot; never let them leak into one
# that talks to the simulators (a real token, a real audit API, a ledger channel).
_FOREIGN_SETTINGS = ("SLACK_", "GITLAB_", "AUDIT_API_URL", "LEDGER_")


@dataclass(frozen=True)
class Credentials:
    """What the bot and its simulated callers must agree on; fresh random values by default."""

    webhook_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    signing_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    slack_token: str = field(default_factory=lambda: "xoxb-sandbox-" + secrets.token_hex(12))
    gitlab_token: str = field(default_factory=lambda: "glpat-sandbox-" + secrets.token_hex(10))


def bot_env(
    *,
    database_url: str,
    redis_url: str,
    gitlab_url: str,
    slack_api_url: str,
    policy: Path,
    credentials: Credentials,
    extra: Mapping[str, str] | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """`base` (default: this process's environment) without foreign bot settings, plus ours."""
    source = os.environ if base is None else base
    env = {k: v for k, v in source.items() if not k.startswith(_FOREIGN_SETTINGS)}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        GITLAB_URL=gitlab_url,
        GITLAB_TOKEN=credentials.gitlab_token,
        GITLAB_WEBHOOK_SECRET=credentials.webhook_secret,
        SLACK_BOT_TOKEN=credentials.slack_token,
        SLACK_SIGNING_SECRET=credentials.signing_secret,
        SLACK_API_URL=slack_api_url,
        APPROVAL_POLICY=str(policy),
    )
    env.update(extra or {})
    return env
