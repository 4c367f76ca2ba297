"""The external audit API client: POST {AUDIT_API_URL}/deployments from the outbox."""

from __future__ import annotations

import logging

import requests

from bot.store import outbox
from bot.store.db import Database

log = logging.getLogger(__name__)

AUDIT_TIMEOUT_S = 10


def deliver_due(
    db: Database,
    base_url: str,
    timeout: float = AUDIT_TIMEOUT_S,
    session: requests.Session | None = None,
) -> int:
    """Send every due outbox message once; returns how many were accepted."""
    http = session or requests.Session()
    accepted = 0
    for message in outbox.claim_due(db):
        url = f"{base_url.rstrip('/')}/{message.endpoint}"
        try:
            answer = http.post(
                url,
                data=message.body,
                headers={
                    "Content-Type": "application/json",
                    "Idempotency-Key": message.idempotency_key,
                },
                timeout=timeout,
            )
            # 409: the receiver already has it under this key, which is what we want.
            if 200 <= answer.status_code < 300 or answer.status_code == 409:
                outbox.delivered(db, message.id)
                accepted += 1
                continue
            error = f"HTTP {answer.status_code}"
        except requests.RequestException as exc:
            error = type(exc).__name__
        next_at = outbox.failed(db, message.id, message.attempts, error)
        log.warning(
            "audit API did not accept ledger record %s (%s); next attempt at %s",
            message.ledger_sequence,
            error,
            next_at.isoformat(timespec="seconds"),
        )
    return accepted
