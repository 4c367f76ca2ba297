"""GitLab's webhooks as GitLab documents them (issue #14 items 1 and 9): older Job Hook
shapes, Pipeline Hooks without optional keys, `canceling` pipelines. Payloads are the
documented examples, kept under tests/fixtures/gitlab/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from tests.unit.edge_support import WEBHOOK_SECRET, edge_app

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def fixture(name: str) -> dict[str, Any]:
    loaded = json.loads((FIXTURES / name).read_text())
    assert isinstance(loaded, dict)
    return loaded


def hook(client: FlaskClient, event: dict[str, Any], key: str | None = None) -> Any:
    headers = {"X-Gitlab-Token": WEBHOOK_SECRET, "Content-Type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    return client.post("/webhooks/gitlab", data=json.dumps(event), headers=headers)


def test_a_canceling_pipeline_opens_no_request(tmp_path: Path, redis_url: str) -> None:
    event = fixture("pipeline_hook.json")
    event["object_attributes"]["status"] = "canceling"
    with edge_app(tmp_path, redis_url, MAX_BODY_BYTES=str(1 << 20)) as (app, _):
        answer = hook(app.test_client(), event)
    assert answer.status_code == 200
    assert answer.get_json()["status"] == "ignored"
    assert "not waiting" in answer.get_json()["reason"]


def test_a_canceling_pipeline_after_a_request_is_passed_on_to_close_it(
    tmp_path: Path, redis_url: str
) -> None:
    event = fixture("pipeline_hook.json")
    with edge_app(tmp_path, redis_url, MAX_BODY_BYTES=str(1 << 20)) as (app, _):
        client = app.test_client()
        assert hook(client, event).status_code == 202  # the request opens
        event["object_attributes"]["status"] = "canceling"
        answer = hook(client, event)
    assert answer.status_code == 202
    assert answer.get_json()["status"] == "queued"
