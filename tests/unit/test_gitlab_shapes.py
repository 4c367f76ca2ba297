"""GitLab's webhooks as GitLab documents them (issue #14 items 1 and 9): older Job Hook
shapes, Pipeline Hooks without optional keys, `canceling` pipelines. Payloads are the
documented examples, kept under tests/fixtures/gitlab/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
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


def gate_job_hook(name: str, status: str) -> dict[str, Any]:
    hook = fixture(f"gitlab/{name}.json")
    hook.update(build_name="compliance-gate", build_status=status)
    return hook


@pytest.mark.parametrize("name", ["job_hook_without_project", "job_hook_oldest"])
def test_a_job_hook_without_project_for_no_gate_is_ignored(
    tmp_path: Path, redis_url: str, name: str
) -> None:
    with edge_app(tmp_path, redis_url, MAX_BODY_BYTES=str(1 << 20)) as (app, _):
        answer = hook(app.test_client(), fixture(f"gitlab/{name}.json"))
    assert answer.status_code == 200
    assert answer.get_json() == {
        "status": "ignored",
        "reason": "job test is not the gate job of any policy gate",
    }


@pytest.mark.parametrize("name", ["job_hook_without_project", "job_hook_oldest"])
def test_a_gate_job_hook_without_project_that_moved_on_goes_to_the_worker_once(
    tmp_path: Path, redis_url: str, name: str
) -> None:
    with edge_app(tmp_path, redis_url, MAX_BODY_BYTES=str(1 << 20)) as (app, _):
        client = app.test_client()
        waiting = hook(client, gate_job_hook(name, "manual"))
        first = hook(client, gate_job_hook(name, "success"))
        again = hook(client, gate_job_hook(name, "success"))  # GitLab's repeated event
        queue = app.extensions["approval_bot"].queue
        queued = [queue.fetch_job(job_id) for job_id in queue.job_ids]
    assert waiting.get_json()["status"] == "ignored"  # the Pipeline Hook opens requests
    assert first.status_code == 202
    assert again.get_json() == {"status": "duplicate"}
    [job] = queued
    assert job.func_name == "workers.job_hooks.resolve"
    claim = job.args[0]
    # The worker takes the path from GitLab; the pipeline is `commit.id` when no pipeline_id.
    assert (claim["project_id"], claim["job_id"], claim["pipeline_id"]) == (380, 1977, 2366)
    assert claim["project_path"] is None
    assert claim["job_status"] == "success"


def test_a_job_hook_without_project_of_the_wrong_type_is_still_a_400(
    tmp_path: Path, redis_url: str
) -> None:
    bad = gate_job_hook("job_hook_without_project", "success")
    bad["project_id"] = "380"
    with edge_app(tmp_path, redis_url, MAX_BODY_BYTES=str(1 << 20)) as (app, _):
        answer = hook(app.test_client(), bad)
    assert answer.status_code == 400
    assert "project_id" in answer.get_json()["error"]


def test_an_older_pipeline_hook_without_project_id_is_ignored_with_the_reason(
    tmp_path: Path, redis_url: str
) -> None:
    with edge_app(tmp_path, redis_url, MAX_BODY_BYTES=str(1 << 20)) as (app, _):
        answer = hook(app.test_client(), fixture("gitlab/pipeline_hook_older.json"))
    assert answer.status_code == 200
    assert answer.get_json()["status"] == "ignored"
    assert "no project id" in answer.get_json()["reason"]


def test_an_older_pipeline_hook_missing_optional_keys_opens_the_request(
    tmp_path: Path, redis_url: str
) -> None:
    event = fixture("gitlab/pipeline_hook_older.json")
    event["project"].update(id=101, path_with_namespace="fintech/payments-api")
    event["object_attributes"]["status"] = "manual"
    event["builds"][0].update(name="compliance-gate", status="manual")
    with edge_app(tmp_path, redis_url, MAX_BODY_BYTES=str(1 << 20)) as (app, _):
        answer = hook(app.test_client(), event)
        wrong = dict(event, project={**event["project"], "id": "101"})
        refused = hook(app.test_client(), wrong)
    assert answer.status_code == 202
    assert answer.get_json()["status"] == "queued"
    assert refused.status_code == 400  # strict types stay
