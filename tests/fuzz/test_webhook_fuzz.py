"""Fuzzing POST /webhooks/gitlab on the real app (docs/openapi.yaml says what may come back).

Every answer: never 5xx (Redis and the database are up), a status the spec documents, a
JSON body matching the spec's schema for it, no traceback. A wrong or missing token is
always 401 and leaves Redis, the queue and both fakes untouched.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bot.simulators.gitlab_events import pipeline_event
from tests.fuzz import edge as E
from tests.fuzz import strategies as S

PATH = "/webhooks/gitlab"
PIPELINE_HOOK = "#/components/schemas/PipelineHook"
JOB_HOOK = "#/components/schemas/JobHook"
ACTED_ON = ("pipeline", "build")  # the object_kinds the bot reads further
ALWAYS_WRONG = (None, "", E.WEBHOOK_SECRET.upper(), E.WEBHOOK_SECRET + " ")
WEBHOOK_EVENT = "#/components/schemas/WebhookEvent"


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


def headers(token: str | None = E.WEBHOOK_SECRET, key: str | None = None) -> dict[str, str]:
    sent = {"Content-Type": "application/json", "X-Gitlab-Event": "Pipeline Hook"}
    if token is not None:
        sent["X-Gitlab-Token"] = token
    if key is not None:
        sent["Idempotency-Key"] = key
    return sent


def send(edge: E.Edge, body: bytes, sent: dict[str, str], **kw: Any) -> tuple[int, Any]:
    response = edge.post(PATH, body, sent, **kw)
    return response.status_code, edge.check(PATH, "POST", response, body)


def expected(body: bytes) -> set[int]:
    """What the contract allows for this body with the right token."""
    if len(body) > E.MAX_BODY_BYTES:
        return {413}
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return {400}
    if not isinstance(payload, dict) or not isinstance(payload.get("object_kind"), str):
        return {400}
    if payload["object_kind"] not in ACTED_ON:
        return {200}
    return {200, 202, 400}


Snapshot = tuple[int, int, int, int]


def accepted_once(
    edge: E.Edge, body: bytes, key: str, before: Snapshot | None = None
) -> tuple[int, Any]:
    """Send with the right token; check the answer, the queue, and a redelivery.

    `before` is the state just before, if the caller knows it (saves a Redis round trip).
    """
    queued_before = (before or edge.snapshot())[1]
    status, answer = send(edge, body, headers(key=key))
    assert status in expected(body), (status, answer, body[:500])
    after = edge.snapshot()
    queued = after[1] - queued_before
    if status == 202:
        assert queued == len(answer["jobs"]) >= 1
    else:
        assert queued == 0, (status, answer)
    if status == 200 and json.loads(body).get("object_kind") not in ACTED_ON:
        assert answer["status"] == "ignored"
    # The same delivery again: remembered after a 2xx that routed it, forgotten after a 4xx.
    again, answer_again = send(edge, body, headers(key=key))
    if status == 202:
        assert (again, answer_again) == (200, {"status": "duplicate"})
        assert edge.snapshot() == after
    elif status == 400:
        assert again == 400
    return status, answer


def refused(edge: E.Edge, body: bytes, *tokens: str | None, key: str | None = None) -> Snapshot:
    """Wrong tokens: 401 each, and nothing at all happened (no Redis write, job or call).

    Returns the (unchanged) state.
    """
    before = edge.snapshot()
    for token in tokens:
        status, answer = send(edge, body, headers(token, key))
        assert status == 401, (status, answer, token)  # the token is checked first
    assert edge.snapshot() == before, f"one of the tokens {tokens!r} changed something"
    return before


# ----------------------------------------------------------------------------- properties


def derived(value: Any) -> list[Any]:
    """Cheap extra cases from one generated value: it in place of each pipeline and job
    field the bot reads."""
    pipeline = ("object_attributes", "project", "builds", "user", "commit")
    job = ("build_id", "build_name", "build_status", "pipeline_id", "project_id", "project")
    return [
        {"object_kind": "pipeline", **dict.fromkeys(pipeline, value)},
        {"object_kind": "build", **dict.fromkeys(job, value)},
    ]


@fuzz(200)
@given(value=S.json_values(), key=st.one_of(st.none(), S.header_text), token=S.wrong_tokens)
def test_random_json_values(edge: E.Edge, value: Any, key: str | None, token: str | None) -> None:
    edge.reset_redis()
    body = S.to_json(value)
    state = refused(edge, body, token, key=key)
    accepted_once(edge, body, key or edge.nonce(), state)
    for event in derived(value):
        body = S.to_json(event)
        status, _ = send(edge, body, headers())
        assert status in expected(body)


@fuzz(250)
@given(event=S.webhook_objects(), token=S.wrong_tokens)
def test_random_objects_with_object_kind(edge: E.Edge, event: Any, token: str | None) -> None:
    edge.reset_redis()
    body = S.to_json(event)
    state = refused(edge, body, token)
    accepted_once(edge, body, edge.nonce(), state)


@fuzz(330)
@given(data=st.data(), token=S.wrong_tokens)
def test_mutated_pipeline_events(edge: E.Edge, data: st.DataObject, token: str | None) -> None:
    edge.reset_redis()
    original = data.draw(st.one_of(S.pipeline_events(), S.job_events()), label="event")
    event = data.draw(S.mutated(original), label="mutated")
    body = S.to_json(event)
    state = refused(edge, body, token, key=edge.nonce())
    status, answer = accepted_once(edge, body, edge.nonce(), state)
    if (
        len(body) <= E.MAX_BODY_BYTES
        and E.storable(event)
        and (E.spec_valid(PIPELINE_HOOK, event) or E.spec_valid(JOB_HOOK, event))
    ):
        assert status in (200, 202), f"a spec-valid event was refused: {answer}"


@fuzz(250)
@given(event=S.spec_valid_webhooks(), token=S.wrong_tokens)
def test_spec_valid_events_are_accepted(edge: E.Edge, event: Any, token: str | None) -> None:
    """What docs/openapi.yaml says a webhook may be is never refused with a 400 (with what
    the webhook's description adds: no NUL or lone surrogate, names within their length)."""
    assume(E.storable(event))
    edge.reset_redis()
    assert E.spec_valid(WEBHOOK_EVENT, event)
    body = S.to_json(event)
    state = refused(edge, body, token)
    status, answer = accepted_once(edge, body, edge.nonce(), state)
    assert status in (200, 202), answer


@fuzz(300)
@given(
    body=st.one_of(
        st.builds(S.to_json, st.builds(pipeline_event)),  # would be 202 with the right token
        st.builds(S.to_json, S.json_values(8)),
        st.binary(max_size=200),
    ),
    token=S.wrong_tokens,
    key=st.one_of(st.none(), S.header_text),
)
def test_wrong_token_never_enqueues(
    edge: E.Edge, body: bytes, token: str | None, key: str | None
) -> None:
    refused(edge, body, token, *ALWAYS_WRONG, key=key)


@fuzz(300)
@given(body=st.one_of(st.binary(max_size=500), st.text().map(str.encode)), token=S.wrong_tokens)
def test_raw_bytes(edge: E.Edge, body: bytes, token: str | None) -> None:
    edge.reset_redis()
    refused(edge, body, token)
    status, _ = send(edge, body, headers())
    assert status in expected(body)


@fuzz(100)
@given(
    key=st.one_of(st.none(), S.header_text),
    event_header=S.header_text,
    content_type=st.one_of(
        st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded"]),
        S.header_text,
    ),
    extra=st.dictionaries(
        st.sampled_from(
            ["X-Request-Id", "X-Gitlab-Event-UUID", "X-Gitlab-Instance", "User-Agent", "X-Other"]
        ),
        S.header_text,
        max_size=3,
    ),
)
def test_random_headers(
    edge: E.Edge, key: str | None, event_header: str, content_type: str, extra: dict[str, str]
) -> None:
    """Headers other than the token change nothing but deduplication."""
    edge.reset_redis()
    sent = {
        **extra,
        **headers(key=key),
        "X-Gitlab-Event": event_header,
        "Content-Type": content_type,
    }
    status, answer = send(edge, S.to_json(pipeline_event()), sent)
    assert (status, answer["status"]) == (202, "queued")
    status, answer = send(edge, S.to_json(pipeline_event(gate_job_id=1)), sent)
    # Same Idempotency-Key: the same delivery, whatever it holds; none: a new gate job.
    assert status == (200 if key else 202), answer


@fuzz(100)
@given(body=S.deep_json_bodies(E.MAX_BODY_BYTES))
def test_deeply_nested_json(edge: E.Edge, body: bytes) -> None:
    """However deep the nesting, the answer is the contract's (a 400 when Python's JSON
    parser gives up), never a 500 (regression: 06ec179)."""
    edge.reset_redis()
    status, answer = send(edge, body, headers())
    assert status in expected(body), (status, answer)


def padded(size: int) -> bytes:
    """A gated pipeline event of exactly `size` bytes."""
    body = S.to_json(pipeline_event())
    assert len(body) < size
    return body[:-1] + b" " * (size - len(body)) + b"}"


@fuzz(150)
@given(delta=st.integers(-3, 3), far=st.sampled_from([0, 0, 0, 1, 100_000]))
def test_sizes_around_the_limit(edge: E.Edge, delta: int, far: int) -> None:
    edge.reset_redis()
    body = padded(E.MAX_BODY_BYTES + delta + far)
    status, _ = send(edge, body, headers())
    assert status == (413 if len(body) > E.MAX_BODY_BYTES else 202)


@fuzz(100)
@given(delta=st.integers(-3, 3), far=st.sampled_from([0, 1, 100_000]))
def test_chunked_sizes_around_the_limit(edge: E.Edge, delta: int, far: int) -> None:
    """Without Content-Length the limit holds as well (exactly the limit: see known bugs)."""
    edge.reset_redis()
    body = padded(E.MAX_BODY_BYTES + delta + far)
    status, _ = send(edge, body, headers(), chunked=True)
    assert status == (413 if len(body) > E.MAX_BODY_BYTES else 202)


@fuzz(100)
@given(declared=st.integers(E.MAX_BODY_BYTES + 1, 2**62))
def test_declared_length_above_the_limit(edge: E.Edge, declared: int) -> None:
    """A Content-Length above the limit is refused before the body is read."""
    body = S.to_json(pipeline_event())
    before = edge.snapshot()
    status, _ = send(edge, body, headers(), environ_overrides={"CONTENT_LENGTH": str(declared)})
    assert status == 413
    assert edge.snapshot() == before
