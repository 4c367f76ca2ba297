"""Build signed inbound Slack requests exactly as Slack sends them.

Slack posts interactivity payloads and slash commands to the app as
`application/x-www-form-urlencoded` bodies and signs them with
`X-Slack-Signature: v0=hex(HMAC-SHA256(secret, "v0:{ts}:{raw body}"))`.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from typing import Any
from urllib.parse import urlencode

TEAM_ID = "T0TEAM001"
TEAM_DOMAIN = "approval-bot-test"
API_APP_ID = "A0APPROVAL1"
BOT_ID = "B0BOT0001"
BOT_USER_ID = "U0BOT0001"
# Legacy verification token; Slack still includes it in every payload.
VERIFICATION_TOKEN = "verification-token-test"
DEFAULT_CHANNEL = "C0APPROVALS"
DEFAULT_TRIGGER_ID = "1700000000.1234567890.0123456789abcdef0123456789abcdef"
_TRIGGERS = itertools.count(1)
DEFAULT_RESPONSE_URL = "https://hooks.slack.com/actions/T0TEAM001/1700000000/abcdefABCDEF"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def sign(signing_secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Headers Slack adds to a request: timestamp + v0 signature.

    Pass an old `timestamp` to test replay protection (Slack apps should
    reject requests more than five minutes old).
    """
    ts = int(time.time()) if timestamp is None else timestamp
    base = b"v0:" + str(ts).encode() + b":" + body
    digest = hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": f"v0={digest}",
    }


def signed_headers(
    signing_secret: str, body: bytes, timestamp: int | None = None
) -> dict[str, str]:
    """`sign()` plus the Content-Type Slack uses for these bodies."""
    return {"Content-Type": FORM_CONTENT_TYPE, **sign(signing_secret, body, timestamp)}


def _user(user_id: str, user_name: str | None) -> dict[str, str]:
    name = user_name or user_id.lower()
    return {"id": user_id, "username": name, "name": name, "team_id": TEAM_ID}


def _payload_body(payload: dict[str, Any]) -> bytes:
    # Slack sends a single form field `payload` holding compact JSON.
    return urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode()


def block_actions_payload(
    user_id: str,
    action_id: str,
    value: str,
    *,
    trigger_id: str = DEFAULT_TRIGGER_ID,
    response_url: str = DEFAULT_RESPONSE_URL,
    channel_id: str = DEFAULT_CHANNEL,
    channel_name: str = "approvals",
    message_ts: str = "1700000000.000100",
    user_name: str | None = None,
    block_id: str = "approval_actions",
    message: dict[str, Any] | None = None,
    action_ts: str | None = None,
) -> dict[str, Any]:
    """The decoded `payload` of a button click on a message."""
    msg = {
        "type": "message",
        "subtype": "bot_message",
        "text": "Approval requested",
        "ts": message_ts,
        "bot_id": BOT_ID,
        "user": BOT_USER_ID,
        "blocks": [],
    }
    if message:
        msg.update(message)
    return {
        "type": "block_actions",
        "user": _user(user_id, user_name),
        "api_app_id": API_APP_ID,
        "token": VERIFICATION_TOKEN,
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": False,
        },
        "trigger_id": trigger_id,
        "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel_name},
        "message": msg,
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "text": {"type": "plain_text", "text": action_id, "emoji": True},
                "value": value,
                "type": "button",
                "action_ts": action_ts or f"{time.time():.6f}",
            }
        ],
    }


def block_actions_body(
    user_id: str,
    action_id: str,
    value: str,
    *,
    trigger_id: str = DEFAULT_TRIGGER_ID,
    response_url: str = DEFAULT_RESPONSE_URL,
    channel_id: str = DEFAULT_CHANNEL,
    channel_name: str = "approvals",
    message_ts: str = "1700000000.000100",
    user_name: str | None = None,
    block_id: str = "approval_actions",
    message: dict[str, Any] | None = None,
) -> bytes:
    """Form-encoded `payload=<json>` body of a `block_actions` interaction."""
    return _payload_body(
        block_actions_payload(
            user_id,
            action_id,
            value,
            trigger_id=trigger_id,
            response_url=response_url,
            channel_id=channel_id,
            channel_name=channel_name,
            message_ts=message_ts,
            user_name=user_name,
            block_id=block_id,
            message=message,
        )
    )


def view_submission_payload(
    user_id: str,
    request_id: str,
    reason: str,
    callback_id: str = "reject_reason",
    *,
    view_id: str = "V0000000001",
    user_name: str | None = None,
    trigger_id: str = DEFAULT_TRIGGER_ID,
) -> dict[str, Any]:
    """The decoded `payload` of a modal submit with one `reason` input."""
    return {
        "type": "view_submission",
        "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
        "user": _user(user_id, user_name),
        "api_app_id": API_APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id,
        "view": {
            "id": view_id,
            "team_id": TEAM_ID,
            "type": "modal",
            "blocks": [],
            "private_metadata": request_id,
            "callback_id": callback_id,
            "state": {
                "values": {
                    # block_id -> action_id -> element state
                    "reason": {"reason": {"type": "plain_text_input", "value": reason}}
                }
            },
            "hash": "1700000000.abcdefgh",
            "title": {"type": "plain_text", "text": "Reject", "emoji": True},
            "clear_on_close": False,
            "notify_on_close": False,
            "close": {"type": "plain_text", "text": "Cancel", "emoji": True},
            "submit": {"type": "plain_text", "text": "Reject", "emoji": True},
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": API_APP_ID,
            "external_id": "",
            "app_installed_team_id": TEAM_ID,
            "bot_id": BOT_ID,
        },
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def view_submission_body(
    user_id: str,
    request_id: str,
    reason: str,
    callback_id: str = "reject_reason",
    *,
    view_id: str = "V0000000001",
    user_name: str | None = None,
) -> bytes:
    """Form-encoded `payload=<json>` body of a `view_submission`."""
    return _payload_body(
        view_submission_payload(
            user_id, request_id, reason, callback_id, view_id=view_id, user_name=user_name
        )
    )


def slash_command_body(
    user_id: str,
    text: str,
    command: str = "/approvals",
    response_url: str = "https://hooks.slack.com/commands/T0TEAM001/1700000000/abcdefABCDEF",
    *,
    user_name: str | None = None,
    channel_id: str = DEFAULT_CHANNEL,
    channel_name: str = "approvals",
    trigger_id: str | None = None,
) -> bytes:
    """Form-encoded slash command body (flat fields, no JSON payload)."""
    return urlencode(
        {
            "token": VERIFICATION_TOKEN,
            "team_id": TEAM_ID,
            "team_domain": TEAM_DOMAIN,
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": user_name or user_id.lower(),
            "command": command,
            "text": text,
            "api_app_id": API_APP_ID,
            "is_enterprise_install": "false",
            "response_url": response_url,
            # Slack gives every invocation its own trigger_id, so no two bodies are equal.
            "trigger_id": trigger_id or f"{time.time():.6f}.{next(_TRIGGERS)}.0123456789abcdef",
        }
    ).encode()
