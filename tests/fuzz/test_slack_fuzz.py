"""Fuzzing POST /slack/interactions and /slack/commands on the real app.

Signed requests (fresh timestamp, a body never sent before): 200 or 400 as the body
deserves, a documented JSON body, never 5xx, at most one queued job; the same request
again is a replay: 401 and nothing happens. Badly signed, unsigned or stale requests are
always 401 and change nothing: no Redis write, no queued job, no Slack or GitLab call.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import parse_qs, urlencode

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bot.simulators.slack_signing import FORM_CONTENT_TYPE, sign
from tests.fuzz import edge as E
from tests.fuzz import strategies as S

INTERACTIONS = "/slack/interactions"
COMMANDS = "/slack/commands"
SLACK_INTERACTION = "#/components/schemas/SlackInteraction"
SLASH_COMMAND = "#/components/schemas/SlashCommand"


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.large_base_example,
            HealthCheck.function_scoped_fixture,
        ],
    )


def known_ids(edge: E.Edge) -> list[str]:
    return list(edge.known_request_ids.values())


def unique(edge: E.Edge, body: bytes) -> bytes:
    """The body plus a form field never sent before, so no signed request is a replay."""
    return body + b"&_fuzz_nonce=" + edge.nonce().encode()


def signed_headers(body: bytes, timestamp: int | None = None) -> dict[str, str]:
    return {"Content-Type": FORM_CONTENT_TYPE, **sign(E.SIGNING_SECRET, body, timestamp)}


def post(edge: E.Edge, path: str, body: bytes, sent: dict[str, str]) -> tuple[int, Any]:
    response = edge.post(path, body, sent)
    return response.status_code, edge.check(path, "POST", response, body)


def form_of(body: bytes) -> dict[str, str] | None:
    """The form as the bot reads it (None: not UTF-8)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return {key: values[0] for key, values in parse_qs(text).items() if values}


def interaction_payload(body: bytes) -> Any:
    form = form_of(body)
    if form is None:
        return None
    try:
        return json.loads(form.get("payload", ""))
    except (ValueError, RecursionError):
        return None


Snapshot = tuple[int, int, int, int]


def accepted(
    edge: E.Edge, path: str, body: bytes, before: Snapshot | None = None
) -> tuple[int, Any]:
    """A properly signed request: never 401, at most one job; then its replay is refused."""
    sent = signed_headers(body)
    state = before or edge.snapshot()
    status, answer = post(edge, path, body, sent)
    if len(body) > E.MAX_BODY_BYTES:  # refused before anything else is looked at
        assert status == 413, (status, answer)
        assert edge.snapshot() == state
        return status, answer
    assert status in (200, 400), (status, answer, body[:500])
    queued_before = state[1]
    after = edge.snapshot()
    queued = after[1] - queued_before
    assert queued in ((0, 1) if status == 200 else (0,)), (status, queued, answer)
    replay, refusal = post(edge, path, body, sent)
    assert replay == 401, (replay, refusal)
    assert edge.snapshot() == after
    return status, answer


def refused(edge: E.Edge, path: str, body: bytes, *attempts: dict[str, str]) -> Snapshot:
    """Badly signed: 401 each, and nothing happened (no Redis write, job or call)."""
    before = edge.snapshot()
    for sent in attempts:
        status, answer = post(edge, path, body, sent)
        assert status == (413 if len(body) > E.MAX_BODY_BYTES else 401), (status, answer, sent)
    assert edge.snapshot() == before, f"a badly signed request changed something: {attempts}"
    return before


# ----------------------------------------------------------------------------- bad signatures


def always_wrong(body: bytes) -> list[dict[str, str]]:
    """Unsigned, and signed an hour ago: refused whatever the body."""
    stale = {**sign(E.SIGNING_SECRET, body, int(time.time()) - 3600)}
    return [{"Content-Type": FORM_CONTENT_TYPE}, {"Content-Type": FORM_CONTENT_TYPE, **stale}]


@st.composite
def bad_signatures(draw: st.DrawFn, body: bytes) -> dict[str, str]:
    """Headers that must not authenticate `body`: missing, wrong, stale or mangled."""
    now = int(time.time())
    good = sign(E.SIGNING_SECRET, body, now)
    ts, sig = good["X-Slack-Request-Timestamp"], good["X-Slack-Signature"]
    mode = draw(
        st.sampled_from(
            [
                "none",
                "no-signature",
                "no-timestamp",
                "wrong-secret",
                "stale",
                "other-body",
                "tampered",
                "other-version",
                "uppercase",
                "reformatted-ts",
                "random",
            ]
        )
    )
    headers = {"Content-Type": FORM_CONTENT_TYPE}
    if mode == "none":
        return headers
    if mode == "no-signature":
        return {**headers, "X-Slack-Request-Timestamp": ts}
    if mode == "no-timestamp":
        return {**headers, "X-Slack-Signature": sig}
    if mode == "wrong-secret":
        secret = draw(
            st.one_of(
                st.sampled_from([E.WEBHOOK_SECRET, E.SIGNING_SECRET.upper(), "x"]),
                st.text(min_size=1, max_size=20),
            ).filter(lambda s: s != E.SIGNING_SECRET)
        )
        return {**headers, **sign(secret, body, now)}
    if mode == "stale":
        # Well past the 5 minutes, so a slow machine cannot bring it back into the window.
        offset = draw(st.integers(330, 10**9)) * draw(st.sampled_from([-1, 1]))
        return {**headers, **sign(E.SIGNING_SECRET, body, max(0, now + offset))}
    if mode == "other-body":
        other = draw(st.binary(max_size=50).filter(lambda b: b != body))
        return {**headers, **sign(E.SIGNING_SECRET, other, now)}
    if mode == "tampered":
        index = draw(st.integers(3, len(sig) - 1))
        flipped = "0" if sig[index] != "0" else "1"
        return {
            **headers,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": sig[:index] + flipped + sig[index + 1 :],
        }
    if mode == "other-version":
        version = draw(st.sampled_from(["v1=", "V0=", "", "v0:", "v0= "]))
        return {
            **headers,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": version + sig.removeprefix("v0="),
        }
    if mode == "uppercase":
        return {**headers, "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig.upper()}
    if mode == "reformatted-ts":
        shown = draw(st.sampled_from([" " + ts, ts + " ", "+" + ts, "0" + ts, ts + ".0", "-" + ts]))
        return {**headers, "X-Slack-Request-Timestamp": shown, "X-Slack-Signature": sig}
    random_ts = draw(
        st.one_of(S.header_text, S.digits_text, st.integers(-(10**12), 10**12).map(str))
    )
    return {
        **headers,
        "X-Slack-Request-Timestamp": random_ts,
        "X-Slack-Signature": draw(st.one_of(S.header_text, st.just(sig))),
    }


# ----------------------------------------------------------------------------- interactions


@fuzz(320)
@given(data=st.data())
def test_signed_interactions(edge: E.Edge, data: st.DataObject) -> None:
    body, payload = data.draw(S.interaction_bodies(known_ids(edge)), label="body")
    body = unique(edge, body)
    bad = data.draw(bad_signatures(body), label="bad headers")
    state = refused(edge, INTERACTIONS, body, bad, *always_wrong(body))
    status, answer = accepted(edge, INTERACTIONS, body, state)
    payload = interaction_payload(body)
    if status == 413:
        return
    if not isinstance(payload, dict):
        assert status == 400, answer
    elif payload.get("type") not in ("block_actions", "view_submission"):
        assert status == 200
        assert answer["status"] == "ignored"
    elif E.spec_valid(SLACK_INTERACTION, payload):
        assert status == 200, f"a spec-valid interaction was refused: {answer}"


@fuzz(200)
@given(data=st.data())
def test_spec_valid_interactions_are_accepted(edge: E.Edge, data: st.DataObject) -> None:
    payload = data.draw(S.spec_schema(SLACK_INTERACTION), label="payload")
    assert E.spec_valid(SLACK_INTERACTION, payload)
    body = unique(edge, urlencode({"payload": json.dumps(payload)}).encode())
    state = refused(edge, INTERACTIONS, body, data.draw(bad_signatures(body), label="bad"))
    status, answer = accepted(edge, INTERACTIONS, body, state)
    assert status == 200, answer


@fuzz(100)
@given(data=st.data(), path=st.sampled_from([INTERACTIONS, COMMANDS]))
def test_known_requests_and_users(edge: E.Edge, data: st.DataObject, path: str) -> None:
    """Clicks and commands by the policy's people on the seeded requests (modal, refusals)."""
    user = data.draw(st.sampled_from(S.SLACK_USERS), label="user")
    if path == COMMANDS:
        text = data.draw(st.sampled_from(["pending", "whoami", "help", ""]), label="text")
        body = unique(edge, urlencode({"user_id": user, "text": text}).encode())
        status, answer = accepted(edge, path, body)
        assert status == 200
        assert answer["response_type"] == "ephemeral"
        return
    request_id = data.draw(st.sampled_from(known_ids(edge)), label="request id")
    action = data.draw(st.sampled_from(["approve", "reject"]), label="action")
    payload = {
        "type": "block_actions",
        "user": {"id": user},
        "trigger_id": data.draw(st.sampled_from(["1.2.abc", ""]), label="trigger"),
        "actions": [{"action_id": action, "value": request_id}],
    }
    body = unique(edge, urlencode({"payload": json.dumps(payload)}).encode())
    status, answer = accepted(edge, INTERACTIONS, body)
    assert (status, answer) == (200, None)


@fuzz(60)
@given(data=st.data())
def test_deeply_nested_payload(edge: E.Edge, data: st.DataObject) -> None:
    """A payload nested deeper than Python's JSON parser goes is a 400 (regression: 06ec179)."""
    deep = data.draw(S.deep_json_bodies(E.MAX_BODY_BYTES // 3), label="payload")
    body = unique(edge, urlencode({"payload": deep.decode()}).encode())
    status, answer = accepted(edge, INTERACTIONS, body)
    payload = interaction_payload(body)
    if not isinstance(payload, dict):
        assert status == 400, answer


@fuzz(60)
@given(
    path=st.sampled_from([INTERACTIONS, COMMANDS]),
    timestamp=S.digits_text.filter(lambda ts: not ts.isascii()),
)
def test_non_ascii_digit_timestamps_are_refused(edge: E.Edge, path: str, timestamp: str) -> None:
    """'\u00b2'.isdigit() is true, yet it is no timestamp: 401 even when signed with the
    right secret (regression: 06ec179, a 500 on commands and a 400 on interactions)."""
    body = unique(edge, b"payload=%7B%7D&user_id=U0ADMIN01&text=pending")
    base = b"v0:" + timestamp.encode() + b":" + body
    digest = hmac.new(E.SIGNING_SECRET.encode(), base, hashlib.sha256).hexdigest()
    sent = {
        "Content-Type": FORM_CONTENT_TYPE,
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": f"v0={digest}",
    }
    refused(edge, path, body, sent)


# ----------------------------------------------------------------------------- commands


@fuzz(250)
@given(data=st.data())
def test_signed_commands(edge: E.Edge, data: st.DataObject) -> None:
    body = unique(edge, data.draw(S.command_bodies(), label="body"))
    bad = data.draw(bad_signatures(body), label="bad headers")
    state = refused(edge, COMMANDS, body, bad, *always_wrong(body))
    status, answer = accepted(edge, COMMANDS, body, state)
    form = form_of(body)
    if status == 413:
        return
    if form is None or not form.get("user_id"):
        assert status == 400, answer
    else:
        assert status == 200, answer
        assert answer["response_type"] == "ephemeral"


@fuzz(100)
@given(data=st.data())
def test_spec_valid_commands_are_accepted(edge: E.Edge, data: st.DataObject) -> None:
    fields = data.draw(S.spec_schema(SLASH_COMMAND), label="form")
    assert E.spec_valid(SLASH_COMMAND, fields)
    # A form is UTF-8 on the wire: a lone surrogate cannot be sent at all.
    assume(all(_utf8(str(value)) for value in fields.values()))
    body = unique(edge, urlencode(fields).encode())
    status, answer = accepted(edge, COMMANDS, body)
    assert status == 200, answer


# ----------------------------------------------------------------------------- sizes


@fuzz(60)
@given(
    path=st.sampled_from([INTERACTIONS, COMMANDS]),
    delta=st.integers(-3, 3),
    far=st.sampled_from([0, 0, 1, 100_000]),
    signed=st.booleans(),
)
def test_sizes_around_the_limit(
    edge: E.Edge, path: str, delta: int, far: int, signed: bool
) -> None:
    """Size is checked first: 413 above the limit, signed or not; at or below, as usual."""
    size = E.MAX_BODY_BYTES + delta + far
    if path == INTERACTIONS:
        payload = {
            "type": "block_actions",
            "user": {"id": "U0OUTSIDE"},
            "actions": [{"action_id": "unknown"}],
        }
        start = urlencode({"payload": json.dumps(payload)}).encode()
    else:
        start = urlencode({"user_id": "U0OUTSIDE", "text": "help"}).encode()
    start = unique(edge, start) + b"&pad="
    body = start + b"x" * (size - len(start))
    assert len(body) == size
    sent = signed_headers(body) if signed else {"Content-Type": FORM_CONTENT_TYPE}
    before = edge.snapshot()
    status, _ = post(edge, path, body, sent)
    if size > E.MAX_BODY_BYTES:
        assert status == 413
        assert edge.snapshot() == before
    else:
        assert status == (200 if signed else 401)


def _utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
