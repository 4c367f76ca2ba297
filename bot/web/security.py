"""Authenticity checks, run before anything in a request is parsed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

SLACK_MAX_AGE_S = 5 * 60
WEBHOOK_MAX_AGE_S = 5 * 60
# Standard Webhooks headers, as GitLab sends them with a signing token.
WEBHOOK_ID = "webhook-id"
WEBHOOK_TIMESTAMP = "webhook-timestamp"
WEBHOOK_SIGNATURE = "webhook-signature"
_MAX_SIGNATURE_HEADER = 4096


def gitlab_token_ok(received: str | None, secret: str) -> bool:
    """Constant-time comparison of GitLab's X-Gitlab-Token with our secret."""
    if not received:
        return False
    return hmac.compare_digest(received.encode(), secret.encode())


def webhook_signature(key: bytes, webhook_id: str, timestamp: str, body: bytes) -> str:
    """One `v1,<base64>` entry: HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}`."""
    signed = f"{webhook_id}.{timestamp}.".encode("latin-1") + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def gitlab_signature_ok(
    body: bytes,
    webhook_id: str | None,
    timestamp: str | None,
    signatures: str | None,
    key: bytes,
    now: float | None = None,
) -> bool:
    """GitLab's signed webhooks (Standard Webhooks): a `v1,<base64>` entry of the
    space-separated `webhook-signature` header must match, compared in constant time, and
    `webhook-timestamp` (Unix seconds) must be within 5 minutes of now."""
    if not webhook_id or not timestamp or not signatures:
        return False
    if len(signatures) > _MAX_SIGNATURE_HEADER or not (timestamp.isascii() and timestamp.isdigit()):
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > WEBHOOK_MAX_AGE_S:
        return False
    try:
        expected = webhook_signature(key, webhook_id, timestamp, body).encode()
    except UnicodeEncodeError:  # header values arrive latin-1 decoded; anything else is forged
        return False
    matched = False
    for entry in signatures.split():
        if not entry.startswith("v1,") or not entry.isascii():
            continue
        # No early exit: every entry is compared, so timing says nothing about which matched.
        matched |= hmac.compare_digest(expected, entry.encode())
    return matched


def slack_signature_ok(
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    signing_secret: str,
    now: float | None = None,
) -> bool:
    """Slack's v0 signature: HMAC-SHA256 of `v0:{timestamp}:{body}`, within 5 minutes."""
    if not timestamp or not signature or not (timestamp.isascii() and timestamp.isdigit()):
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > SLACK_MAX_AGE_S:
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode())
