"""A deterministic corpus: tests/fixtures/pipeline_hook.json (and a Job Hook of the gate)
with every single-key deletion and every type swap at every path, each sent to the real app.

Every answer passes the edge checks (never 5xx, documented, JSON as the spec says). Beyond
that, docs/openapi.yaml decides what to expect: a change to a field the spec does not
describe (the bot does not read it) must not change the answer, and a payload the spec
still accepts must not be refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bot.simulators.gitlab_events import job_event
from tests.fuzz import edge as E

PATH = "/webhooks/gitlab"
PIPELINE_HOOK = "#/components/schemas/PipelineHook"
JOB_HOOK = "#/components/schemas/JobHook"
# One value of each JSON type; a swap replaces a value with each type it does not have.
REPRESENTATIVES: dict[str, Any] = {
    "null": None,
    "boolean": True,
    "integer": 0,
    "number": 1.5,
    "string": "x",
    "array": [],
    "object": {},
}


def corpus(doc: Any) -> Iterator[tuple[str, E.JsonPath, Any]]:
    for kind, value in REPRESENTATIVES.items():
        if kind != "object":
            yield f"root as {kind}", (), value
    for path in E.json_paths(doc):
        yield "delete", path, E.deleted(doc, path)
        current = E.json_kind(E.get_at(doc, path))
        for kind, value in REPRESENTATIVES.items():
            if kind != current:
                yield f"{current} → {kind}", path, E.replaced(doc, path, value)


def send(edge: E.Edge, event: Any) -> tuple[int, Any, int]:
    """(status, answer, queued jobs) for one delivery on a fresh Redis, job ids left out
    (a status update's job id is random)."""
    edge.reset_redis()
    body = json.dumps(event).encode()
    response = edge.post(
        PATH, body, {"Content-Type": "application/json", "X-Gitlab-Token": E.WEBHOOK_SECRET}
    )
    answer = edge.check(PATH, "POST", response, body)
    queued = edge.queue_length()
    if response.status_code == 202:
        assert queued == len(answer["jobs"]), answer
        answer = {**answer, "jobs": len(answer["jobs"])}
    return response.status_code, answer, queued


HOOKS: dict[str, tuple[Callable[[], Any], str]] = {
    # The Pipeline Hook of a gate waiting as manual: opens a request.
    "pipeline": (lambda: json.loads(E.PIPELINE_HOOK_PATH.read_text()), PIPELINE_HOOK),
    # The Job Hook of a gate played behind the bot's back: a status update for the worker.
    "job": (lambda: job_event(status="running", pipeline_status="running"), JOB_HOOK),
}


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_every_deletion_and_type_swap(edge: E.Edge, hook: str) -> None:
    make, schema = HOOKS[hook]
    pristine = make()
    expected = send(edge, pristine)
    assert expected == (202, {"status": "queued", "jobs": 1}, 1)

    failures: list[str] = []
    count = 0
    for change, path, event in corpus(pristine):
        count += 1
        where = "/".join(map(str, path)) or "<root>"
        try:
            got = send(edge, event)
        except AssertionError as exc:
            failures.append(f"{change} at {where}: {exc}")
            continue
        status, answer, _ = got
        if path and not E.spec_describes(schema, path):
            if got != expected:
                failures.append(f"{change} at {where} (not read): {status} {answer}")
        elif E.spec_valid(schema, event) and status not in (200, 202):
            failures.append(f"{change} at {where} (spec-valid): {status} {answer}")
        elif status not in (200, 202, 400):
            failures.append(f"{change} at {where}: {status} {answer}")
        if path == () and status != 400:
            failures.append(f"{change}: not an object but {status} {answer}")
    assert count > 6 * len(E.json_paths(pristine))
    assert not failures, f"{len(failures)} of {count} mutations:\n" + "\n".join(failures[:30])
