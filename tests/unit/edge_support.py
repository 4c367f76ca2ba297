"""The real Flask app on a test client, for the hardening unit tests (Redis db 13, SQLite)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask

from bot.logs import clear_secrets
from bot.runtime import Runtime, build_runtime
from bot.settings import load_settings
from bot.store.migrate import upgrade
from bot.web.app import create_app

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "tests" / "fixtures" / "approvers.yml"
WEBHOOK_SECRET = "unit-webhook-secret-0123"
SIGNING_KEY = bytes(range(32))
SIGNING_TOKEN = "whsec_" + base64.b64encode(SIGNING_KEY).decode()


def env_for(tmp: Path, redis_url: str, **extra: str) -> dict[str, str]:
    return {
        "GITLAB_URL": "http://127.0.0.1:9",
        "GITLAB_TOKEN": "glpat-unit-token-0123",
        "GITLAB_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "SLACK_BOT_TOKEN": "xoxb-unit-token-0123",
        "SLACK_SIGNING_SECRET": "unit-slack-signing-secret",
        "SLACK_API_URL": "http://127.0.0.1:9/api/",
        "DATABASE_URL": f"sqlite:///{tmp}/approvals.db",
        "REDIS_URL": redis_url,
        "APPROVAL_POLICY": str(POLICY),
        "MAX_BODY_BYTES": "4096",
        "WEBHOOK_SPOOL_DIR": f"{tmp}/spool",  # not the checkout's var/spool
        **extra,
    }


@contextmanager
def edge_app(tmp: Path, redis_url: str, **extra: str) -> Iterator[tuple[Flask, Runtime]]:
    runtime = build_runtime(load_settings(env_for(tmp, redis_url, **extra)))
    upgrade(runtime.db)  # the Slack replay guard lives in the database
    try:
        yield create_app(runtime), runtime
    finally:
        runtime.db.dispose()
        runtime.redis.close()
        clear_secrets()


def sign(
    body: bytes, webhook_id: str, timestamp: int | None = None, key: bytes = SIGNING_KEY
) -> dict[str, str]:
    """The Standard Webhooks headers GitLab adds with a signing token."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(key, f"{webhook_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": ts,
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


def body_of(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()
