"""Authenticity checks, run before anything in a request is parsed."""

from __future__ import annotations

import hashlib
import hmac
import time

SLACK_MAX_AGE_S = 5 * 60


def gitlab_token_ok(received: str | None, secret: str) -> bool:
    """Constant-time comparison of GitLab's X-Gitlab-Token with our secret."""
    if not received:
        return False
    return hmac.compare_digest(received.encode(), secret.encode())


def slack_signature_ok(
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    signing_secret: str,
    now: float | None = None,
) -> bool:
    """Slack's v0 signature: HMAC-SHA256 of `v0:{timestamp}:{body}`, within 5 minutes."""
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > SLACK_MAX_AGE_S:
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode())


def replay_key(signature: str) -> str:
    """Redis key remembering a Slack request already accepted (replays are refused)."""
    return "approval-bot:slack-seen:" + hashlib.sha256(signature.encode()).hexdigest()
