"""docs/openapi.yaml: a valid OpenAPI 3.1 document that describes exactly the app's routes,
whose examples and request schemas agree with what GitLab and Slack really send."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename

from bot.simulators.gitlab_events import job_event, pipeline_event
from bot.simulators.slack_signing import (
    block_actions_payload,
    slash_command_body,
    view_submission_payload,
)
from tests.fuzz.edge import (
    PIPELINE_HOOK_PATH,
    SPEC_PATH,
    build_app,
    inlined,
    resolve,
    settings_env,
    spec,
)

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def schema_ok(pointer: str, instance: Any) -> list[str]:
    validator = Draft202012Validator(inlined(resolve(pointer)))
    return [error.message for error in validator.iter_errors(instance)]


def operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec()["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def test_document_is_valid_openapi_3_1() -> None:
    document, base_uri = read_from_filename(str(SPEC_PATH))
    validate(document, base_uri=base_uri)
    assert str(document["openapi"]).startswith("3.1.")


def test_paths_match_the_flask_app(tmp_path: Path) -> None:
    app, runtime = build_app(
        settings_env(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9/api/")
    )
    try:
        routes = {
            (rule.rule.replace("<", "{").replace(">", "}"), method.lower())
            for rule in app.url_map.iter_rules()
            if rule.endpoint != "static"
            for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
        }
    finally:
        runtime.redis.close()
        runtime.db.engine.dispose()
    documented = {(path, method) for path, method, _ in operations()}
    assert documented == routes


def test_operations_document_their_headers_and_errors() -> None:
    def header_names(operation: dict[str, Any]) -> set[str]:
        params = [resolve(p["$ref"]) if "$ref" in p else p for p in operation["parameters"]]
        return {p["name"] for p in params if p["in"] == "header"}

    paths = spec()["paths"]
    webhook = paths["/webhooks/gitlab"]["post"]
    assert {"X-Gitlab-Token", "Idempotency-Key"} <= header_names(webhook)
    assert set(webhook["responses"]) == {"200", "202", "400", "401", "413", "503", "4XX", "5XX"}
    for path in ("/slack/interactions", "/slack/commands"):
        operation = paths[path]["post"]
        assert {"X-Slack-Signature", "X-Slack-Request-Timestamp"} <= header_names(operation)
        assert {"200", "400", "401", "413", "503"} <= set(operation["responses"])
        assert "application/x-www-form-urlencoded" in operation["requestBody"]["content"]
    assert set(paths["/readyz"]["get"]["responses"]) == {"200", "503", "4XX", "5XX"}
    for _path, _method, operation in operations():  # the server's own refusals, anywhere
        assert {"4XX", "5XX"} <= set(operation["responses"])
    assert "text/plain" in paths["/metrics"]["get"]["responses"]["200"]["content"]
    for path, method, operation in operations():
        for status, declared in operation["responses"].items():
            response = resolve(declared["$ref"]) if "$ref" in declared else declared
            for media, content in response.get("content", {}).items():
                assert "schema" in content, f"{method} {path} {status} {media}: no schema"
            if status.startswith(("4", "5")) and path != "/readyz":  # 503 there: the checks
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (path, status)


def examples() -> Iterator[tuple[str, str, Any]]:
    """(where, schema pointer, example value) for every inline example of a JSON body."""
    for path, method, operation in operations():
        for status, declared in operation["responses"].items():
            pointer = declared.get(
                "$ref", f"#/paths/{path.replace('/', '~1')}/{method}/responses/{status}"
            )
            content = resolve(pointer).get("content", {}).get("application/json")
            if content is None:
                continue
            for name, example in content.get("examples", {}).items():
                schema = f"{pointer}/content/application~1json/schema"
                yield f"{method} {path} {status} {name}", schema, example["value"]


@pytest.mark.parametrize(("where", "pointer", "value"), list(examples()))
def test_examples_match_their_schemas(where: str, pointer: str, value: Any) -> None:
    assert not schema_ok(pointer, value), where


def test_real_webhooks_match_the_request_schema() -> None:
    event = "#/components/schemas/WebhookEvent"
    pipeline = "#/components/schemas/PipelineHook"
    fixture = json.loads(PIPELINE_HOOK_PATH.read_text())
    for payload in (
        fixture,
        pipeline_event(),
        pipeline_event(status="success", gate_status="success"),
        pipeline_event(user={"name": "Private", "username": "priv", "email": "[REDACTED]"}),
    ):
        assert not schema_ok(pipeline, payload)
        assert not schema_ok(event, payload)
    assert not schema_ok(event, job_event())
    assert not schema_ok("#/components/schemas/JobHook", job_event(status="running"))
    assert schema_ok(event, {"object_kind": "build"})  # a job event needs its fields
    assert not schema_ok(event, {"object_kind": "push"})
    assert schema_ok(event, {"object_kind": 1})
    assert schema_ok(event, {"object_kind": "pipeline"})  # a pipeline needs its fields
    assert schema_ok(event, [])


def test_real_slack_requests_match_the_request_schemas() -> None:
    interaction = "#/components/schemas/SlackInteraction"
    assert not schema_ok(interaction, block_actions_payload("U0RM00001", "approve", "a" * 32))
    assert not schema_ok(interaction, block_actions_payload("U0RM00001", "reject", "a" * 32))
    assert not schema_ok(interaction, view_submission_payload("U0RM00001", "a" * 32, "no"))
    assert not schema_ok(interaction, {"type": "message_action", "user": {"id": "U1"}})
    assert schema_ok(interaction, {"type": "block_actions", "user": {"id": "U1"}, "actions": []})
    command = dict(parse_qsl(slash_command_body("U0RM00001", "pending").decode()))
    assert not schema_ok("#/components/schemas/SlashCommand", command)
