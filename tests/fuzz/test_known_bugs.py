"""Bugs the fuzzing found, one regression test each, asserting what the contract asks for:
a reject click with an id that cannot be encoded, a chunked body of exactly the limit, and
gate events with ids or strings the store cannot keep (now a 400, not a queued job that
can never be stored)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.simulators.gitlab_events import pipeline_event
from bot.simulators.slack_signing import FORM_CONTENT_TYPE, block_actions_payload, sign
from tests.fuzz import edge as E

WEBHOOK = "/webhooks/gitlab"
INTERACTIONS = "/slack/interactions"
COMMANDS = "/slack/commands"
WEBHOOK_HEADERS = {"Content-Type": "application/json", "X-Gitlab-Token": E.WEBHOOK_SECRET}


def signed(body: bytes) -> dict[str, str]:
    return {"Content-Type": FORM_CONTENT_TYPE, **sign(E.SIGNING_SECRET, body)}


def interaction(edge: E.Edge, payload: Any) -> bytes:
    return (
        urlencode({"payload": json.dumps(payload)}).encode()
        + b"&_fuzz_nonce="
        + edge.nonce().encode()
    )


def status_of(edge: E.Edge, path: str, body: bytes, headers: dict[str, str], **kw: Any) -> int:
    response = edge.post(path, body, headers, **kw)
    edge.check(path, "POST", response, body)  # raises on a 5xx or a traceback
    return response.status_code


# ----------------------------------------------------------------------------- request ids


@pytest.mark.parametrize("request_id", ["\ud800", "abc\udfff"])
def test_reject_with_unencodable_request_id_is_answered(edge: E.Edge, request_id: str) -> None:
    """An unknown request id is answered 200 and told ephemerally (a queued notify)."""
    payload = block_actions_payload("U0ADMIN01", "reject", request_id)
    body = interaction(edge, payload)
    assert b"%5cud" in body.lower()  # JSON carries it as a \ud... escape
    queued = edge.queue_length()
    assert status_of(edge, INTERACTIONS, body, signed(body)) == 200
    assert edge.queue_length() == queued + 1


# ----------------------------------------------------------------------------- sizes


def exactly_the_limit(path: str, fill: bytes) -> tuple[bytes, dict[str, str], int]:
    """A body of exactly MAX_BODY_BYTES for `path`, its headers and the expected status."""
    if path == WEBHOOK:
        start = json.dumps(pipeline_event()).encode()[:-1]
        body = start + b" " * (E.MAX_BODY_BYTES - len(start) - 1) + b"}"
        return body, WEBHOOK_HEADERS, 202
    if path == COMMANDS:
        start = urlencode({"user_id": "U0OUTSIDE", "text": "help"}).encode()
    else:
        start = urlencode({"payload": json.dumps({"type": "other"})}).encode()
    start += b"&pad="
    body = start + fill * (E.MAX_BODY_BYTES - len(start))
    return body, signed(body), 200


@pytest.mark.parametrize("path", [WEBHOOK, INTERACTIONS, COMMANDS])
def test_chunked_body_of_exactly_the_limit_is_read(edge: E.Edge, path: str) -> None:
    body, headers, expected = exactly_the_limit(path, b"x")
    assert len(body) == E.MAX_BODY_BYTES
    # With a Content-Length the body is read ...
    assert status_of(edge, path, body, headers) == expected
    edge.reset_redis()
    # ... and without one (chunked) it must be too (another body: no replay).
    body, headers, expected = exactly_the_limit(path, b"y")
    assert len(body) == E.MAX_BODY_BYTES
    assert status_of(edge, path, body, headers, chunked=True) == expected


# ----------------------------------------------------------------------------- unstorable


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (("builds", 1, "id"), 2**63),
        (("project", "id"), 2**64),
        (("object_attributes", "id"), -(2**63) - 1),
        (("user", "name"), "\ud800"),
        (("commit", "title"), "fix \udfff"),
    ],
    ids=["gate-id", "project-id", "pipeline-id", "surrogate-user", "surrogate-title"],
)
def test_unstorable_gate_events_are_refused(
    edge: E.Edge, where: tuple[str | int, ...], value: Any
) -> None:
    """The worker can never store these (OverflowError / UnicodeEncodeError on every retry),
    so the gate would silently never get its request: the edge must refuse them (400),
    as it does other pipeline events it cannot read."""
    event = E.replaced(json.loads(E.PIPELINE_HOOK_PATH.read_text()), where, value)
    queued = edge.queue_length()
    status = status_of(edge, WEBHOOK, json.dumps(event).encode(), WEBHOOK_HEADERS)
    assert edge.queue_length() == queued
    assert status == 400
