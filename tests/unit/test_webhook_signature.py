"""GitLab's signed webhooks (Standard Webhooks) on top of X-Gitlab-Token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from pathlib import Path

import pytest
from redis import Redis

from bot.simulators.gitlab_events import pipeline_event
from bot.web.security import gitlab_signature_ok, webhook_signature
from tests.unit.edge_support import (
    SIGNING_KEY,
    SIGNING_TOKEN,
    WEBHOOK_SECRET,
    body_of,
    edge_app,
    sign,
)

BODY = b'{"object_kind": "push"}'
NOW = 1_800_000_000


def header(body: bytes = BODY, webhook_id: str = "msg_1", ts: int = NOW, key: bytes = SIGNING_KEY):
    return sign(body, webhook_id, ts, key)


def ok(headers: dict[str, str], body: bytes = BODY, now: float = NOW) -> bool:
    return gitlab_signature_ok(
        body,
        headers.get("webhook-id"),
        headers.get("webhook-timestamp"),
        headers.get("webhook-signature"),
        SIGNING_KEY,
        now=now,
    )


def test_the_standard_webhooks_test_vector() -> None:
    """The example of the Standard Webhooks specification (and its reference libraries)."""
    key = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert webhook_signature(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", body) == expected
    assert gitlab_signature_ok(
        body, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", expected, key, now=1614265330
    )


def test_a_valid_signature_passes() -> None:
    assert ok(header())


def test_any_one_of_several_signatures_may_match() -> None:
    good = header()["webhook-signature"]
    signatures = f"v1,{base64.b64encode(b'x' * 32).decode()} {good} v2,whatever"
    assert ok({**header(), "webhook-signature": signatures})


@pytest.mark.parametrize(
    "change",
    [
        {"webhook-signature": None},
        {"webhook-id": None},
        {"webhook-timestamp": None},
        {"webhook-signature": ""},
        {"webhook-id": "msg_2"},
        {"webhook-timestamp": str(NOW + 1)},
        {"webhook-timestamp": "١٨٠٠٠٠٠٠٠٠"},  # Arabic-Indic digits: isdigit(), not ASCII
        {"webhook-timestamp": "1.8e9"},
    ],
)
def test_missing_or_altered_headers_fail(change: dict[str, str | None]) -> None:
    headers = header()
    for name, value in change.items():
        if value is None:
            headers.pop(name)
        else:
            headers[name] = value
    assert not ok(headers)


def test_a_tampered_body_fails() -> None:
    assert not ok(header(), body=BODY + b" ")


def test_a_wrong_key_fails() -> None:
    assert not ok(header(key=b"another key of thirty-two bytes!"))


def test_a_signature_without_the_v1_prefix_fails() -> None:
    bare = header()["webhook-signature"].removeprefix("v1,")
    assert not ok({**header(), "webhook-signature": bare})
    assert not ok({**header(), "webhook-signature": "v2," + bare})


@pytest.mark.parametrize("skew", [-301, 301, -10_000])
def test_timestamps_outside_five_minutes_fail(skew: int) -> None:
    assert not ok(header(), now=NOW + skew)


@pytest.mark.parametrize("skew", [-300, 0, 300])
def test_timestamps_within_five_minutes_pass(skew: int) -> None:
    assert ok(header(), now=NOW + skew)


def test_non_latin1_header_values_fail_cleanly() -> None:
    assert not ok({**header(), "webhook-id": "msg_\u2603"})
    assert not ok({**header(), "webhook-signature": "v1,\u2603"})


def test_the_signature_is_hmac_sha256_of_id_timestamp_body() -> None:
    digest = hmac.new(SIGNING_KEY, b"id-1.42." + BODY, hashlib.sha256).digest()
    assert webhook_signature(SIGNING_KEY, "id-1", "42", BODY) == (
        "v1," + base64.b64encode(digest).decode()
    )


# ------------------------------------------------------------------ the endpoint itself


def post(client, body: bytes, token: str | None = WEBHOOK_SECRET, **headers: str):
    sent = {"Content-Type": "application/json", **headers}
    if token is not None:
        sent["X-Gitlab-Token"] = token
    return client.post("/webhooks/gitlab", data=body, headers=sent)


def test_with_a_signing_key_the_webhook_needs_both_token_and_signature(
    tmp_path: Path, redis_url: str
) -> None:
    with edge_app(tmp_path, redis_url, GITLAB_WEBHOOK_SIGNING_KEY=SIGNING_TOKEN) as (app, _):
        client = app.test_client()
        delivery = str(uuid.uuid4())
        signed = sign(BODY, delivery)
        answer = post(client, BODY, **signed)
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json()["status"] == "ignored"

        # The token is still checked first: a good signature does not replace it.
        assert post(client, BODY, token="wrong", **signed).status_code == 401
        assert post(client, BODY, token=None, **signed).status_code == 401

        unsigned = post(client, BODY)
        assert unsigned.status_code == 401
        assert "webhook-signature" in unsigned.get_json()["error"]
        assert post(client, BODY + b" ", **signed).status_code == 401
        stale = sign(BODY, delivery, int(time.time()) - 600)
        assert post(client, BODY, **stale).status_code == 401
        forged = sign(BODY, delivery, key=b"k" * 32)
        assert post(client, BODY, **forged).status_code == 401

        # The size limit is checked before the signature, JSON only after it.
        big = b"{" + b" " * 5000 + b"}"
        assert post(client, big, **sign(big, delivery)).status_code == 413
        assert post(client, b"not json", **sign(b"not json", delivery)).status_code == 400
        assert post(client, b"not json").status_code == 401


def test_a_signed_delivery_without_idempotency_key_is_deduplicated_by_webhook_id(
    tmp_path: Path, redis_url: str
) -> None:
    event = pipeline_event(pipeline_id=880_001, gate_job_id=880_010)
    body = body_of(event)
    with edge_app(tmp_path, redis_url, GITLAB_WEBHOOK_SIGNING_KEY=SIGNING_TOKEN) as (app, _):
        client = app.test_client()
        signed = sign(body, "delivery-880")
        first = post(client, body, **signed)
        assert first.status_code == 202, first.get_json()
        again = post(client, body, **signed)
        assert again.status_code == 200
        assert again.get_json() == {"status": "duplicate"}
    Redis.from_url(redis_url).flushdb()


def test_without_a_signing_key_nothing_changes(tmp_path: Path, redis_url: str) -> None:
    with edge_app(tmp_path, redis_url) as (app, runtime):
        assert runtime.settings.webhook_signing_key is None
        client = app.test_client()
        assert post(client, BODY).status_code == 200
        assert post(client, BODY, token="wrong").status_code == 401
