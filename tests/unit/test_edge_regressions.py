"""Inputs that once made the edge answer 500: each must now be a clear 4xx."""

from __future__ import annotations

from pathlib import Path

from bot.simulators.slack_signing import sign
from bot.web.security import slack_signature_ok
from tests.unit.edge_support import WEBHOOK_SECRET, edge_app

SLACK_SECRET = "unit-slack-signing-secret"


def test_non_ascii_digits_in_the_slack_timestamp_are_refused() -> None:
    # "²" passes str.isdigit() but not int(): it used to raise, a 500.
    assert not slack_signature_ok(b"x", "17000000²", "v0=00", SLACK_SECRET)


def test_deeply_nested_json_is_a_400(tmp_path: Path, redis_url: str) -> None:
    nested = b"[" * 100_000 + b"]" * 100_000
    with edge_app(tmp_path, redis_url, MAX_BODY_BYTES=str(1 << 20)) as (app, _):
        client = app.test_client()
        hook = client.post(
            "/webhooks/gitlab", data=nested, headers={"X-Gitlab-Token": WEBHOOK_SECRET}
        )
        assert hook.status_code == 400
        form = b"payload=" + nested
        slack = client.post("/slack/interactions", data=form, headers=sign(SLACK_SECRET, form))
        assert slack.status_code == 400


def test_superscript_timestamp_on_the_endpoint_is_a_401(tmp_path: Path, redis_url: str) -> None:
    with edge_app(tmp_path, redis_url) as (app, _):
        answer = app.test_client().post(
            "/slack/commands",
            data=b"user_id=U1&text=help",
            headers={"X-Slack-Request-Timestamp": "1²", "X-Slack-Signature": "v0=00"},
        )
        assert answer.status_code == 401
