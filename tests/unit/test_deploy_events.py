"""After the gate: which webhooks say the deployment succeeded or its smoke test failed,
and how the edge queues them (once per pipeline and fact)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.deploy_events import from_job, from_pipeline
from bot.events import gate_jobs, parse_job, parse_pipeline
from bot.policy import load_policy
from bot.simulators.gitlab_events import build, job_event, pipeline_event
from tests.unit.edge_support import POLICY, WEBHOOK_SECRET, body_of, edge_app

GATE = 9001


def deployed(gate: str = "success", deploy: str = "success", smoke: str = "success") -> dict:
    event = pipeline_event(
        gate_job_id=GATE,
        status="running",
        extra_builds=[build(GATE + 2, "post-deploy", "verify", smoke)],
    )
    statuses = {"compliance-gate": gate, "deploy-production": deploy}
    event["builds"] = [
        {**b, "status": statuses.get(b["name"], b["status"])} for b in event["builds"]
    ]
    return event


def facts(event: dict[str, Any]) -> list[tuple[str, str | None]]:
    parsed = parse_pipeline(event)
    found = from_pipeline(parsed, gate_jobs(parsed, load_policy(POLICY).policy))
    return [(f["fact"], f["environment"]) for f in found]


def test_a_successful_deploy_after_the_played_gate_is_a_deployment() -> None:
    assert facts(deployed(smoke="running")) == [("deployed", "production")]


def test_a_failed_smoke_test_is_reported_with_the_deployment() -> None:
    assert facts(deployed(smoke="failed")) == [("deployed", "production"), ("smoke_failed", None)]


def test_nothing_before_the_gate_is_played_or_the_deploy_finishes() -> None:
    assert facts(deployed(gate="manual", deploy="created")) == []
    assert facts(deployed(deploy="running", smoke="created")) == []
    assert facts(deployed(deploy="failed", smoke="skipped")) == []


def test_job_hooks_for_the_smoke_test_and_the_deploy_job() -> None:
    policy = load_policy(POLICY).policy
    smoke = job_event(job_id=GATE + 2, job_name="post-deploy", status="failed")
    assert [f["fact"] for f in from_job(parse_job(smoke), policy)] == ["smoke_failed"]
    deploy = job_event(
        job_id=GATE + 1,
        job_name="deploy-production",
        status="success",
        environment={"name": "production", "action": "start"},
    )
    found = from_job(parse_job(deploy), policy)
    assert [(f["fact"], f["environment"]) for f in found] == [("deployed", "production")]
    deploy["build_status"] = "running"
    assert from_job(parse_job(deploy), policy) == []
    rollback = job_event(
        job_id=GATE + 5,
        job_name="rollback:production",
        status="success",
        environment={"name": "production", "action": "start"},
    )
    assert from_job(parse_job(rollback), policy) == []  # a rollback is not a deployment
    stop = job_event(
        job_name="stop-review", status="success", environment={"name": "review", "action": "stop"}
    )
    assert from_job(parse_job(stop), policy) == []
    other = job_event(job_name="post-deploy", status="failed", project_path="acme/web")
    assert from_job(parse_job(other), policy) == []


def test_the_edge_queues_each_fact_once_per_pipeline(tmp_path: Path, redis_url: str) -> None:
    with edge_app(tmp_path, redis_url, MAX_BODY_BYTES="65536") as (app, runtime):
        runtime.redis.flushdb()
        client = app.test_client()
        headers = {"X-Gitlab-Token": WEBHOOK_SECRET, "Content-Type": "application/json"}
        first = client.post(
            "/webhooks/gitlab", data=body_of(deployed(smoke="failed")), headers=headers
        )
        assert first.status_code == 202, first.json
        # The gate's own status change (a bypass check), the deployment and the smoke test.
        assert len(first.json["jobs"]) == 3
        again = client.post(
            "/webhooks/gitlab", data=body_of(deployed(smoke="failed")), headers=headers
        )
        assert again.status_code == 200
        assert again.json["status"] == "duplicate"
        smoke = job_event(job_id=GATE + 2, job_name="post-deploy", status="failed")
        hook = client.post(
            "/webhooks/gitlab",
            data=body_of(smoke),
            headers={**headers, "X-Gitlab-Event": "Job Hook"},
        )
        assert hook.json["status"] == "duplicate"  # the pipeline event told us already
