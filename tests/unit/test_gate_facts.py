"""Facts from GitLab's API and where a webhook's claims differ from them."""

from __future__ import annotations

from typing import Any

import pytest

from bot.events import gate_event, gate_key, job_gate_event, parse_job, parse_pipeline
from bot.gate_facts import (
    ApprovedJob,
    UnexpectedAnswer,
    disagreements,
    gate_facts,
    job_facts,
    project_facts,
)
from bot.simulators.gitlab_entities import job_json, project_json
from bot.simulators.gitlab_events import job_event, pipeline_event

BASE = "https://gitlab.example.com"
PROJECT = {"id": 101, "path_with_namespace": "fintech/payments-api"}
PIPELINE = {
    "id": 5001,
    "project_id": 101,
    "status": "manual",
    "ref": "main",
    "sha": "a" * 40,
    "commit_title": "Add payment retries",
    "author_name": "Alice",
    "author_email": "alice@example.com",
}
JOB = {"id": 9001, "name": "compliance-gate", "status": "manual", "stage": "approve"}
USER = {"id": 8, "username": "ravi", "name": "Ravi", "public_email": "ravi@example.com"}


def api_job(**changes: Any) -> dict[str, Any]:
    return job_json({**JOB, "user": USER, **changes}, PIPELINE, PROJECT, BASE)


def test_every_fact_of_a_request_comes_from_the_api() -> None:
    job = job_facts(api_job())
    project = project_facts(project_json(PROJECT, BASE))
    facts = gate_facts(project, job, "production")
    assert facts == {
        "project_id": 101,
        "project_path": "fintech/payments-api",
        "project_url": f"{BASE}/fintech/payments-api",
        "pipeline_id": 5001,
        "pipeline_url": f"{BASE}/fintech/payments-api/-/pipelines/5001",
        "pipeline_status": "manual",
        "job_id": 9001,
        "job_name": "compliance-gate",
        "job_status": "manual",
        "ref": "main",
        "sha": "a" * 40,
        "commit_title": "Add payment retries",
        "commit_url": f"{BASE}/fintech/payments-api/-/commit/{'a' * 40}",
        "commit_author_name": "Alice",
        "commit_author_email": "alice@example.com",
        "triggered_by_username": "ravi",
        "triggered_by_name": "Ravi",
        "triggered_by_email": "ravi@example.com",
        "environment": "production",
    }
    assert job.pipeline_project_id == 101
    assert job.user_id == 8


@pytest.mark.parametrize(
    "answer", [[], {"id": "9001", "name": "x", "status": "manual"}, {"id": 1}, None]
)
def test_an_answer_that_is_no_job_is_refused(answer: Any) -> None:
    with pytest.raises(UnexpectedAnswer):
        job_facts(answer)
    with pytest.raises(UnexpectedAnswer):
        project_facts(answer)


def test_claims_are_compared_with_the_facts_they_state() -> None:
    facts = gate_facts(project_facts(project_json(PROJECT, BASE)), job_facts(api_job()), None)
    claim = dict(facts)
    assert disagreements(claim, facts) == []
    claim.update(project_path="fintech/wallet-app", job_name="drop-prod-db", sha=None)
    found = disagreements(claim, facts)
    assert [d.field for d in found] == ["project_path", "job_name"]  # an unstated sha: no claim
    assert "fintech/wallet-app" in str(found[0])
    assert "fintech/payments-api" in str(found[0])
    claim.update(pipeline_id=5002, ref="release", job_status="running", commit_title="x")
    fields = [d.field for d in disagreements(claim, facts)]
    assert fields == ["project_path", "job_name", "pipeline_id", "ref"]  # statuses: not claims


def test_the_job_approved_must_still_be_the_job_played() -> None:
    approved = ApprovedJob(101, 9001, "compliance-gate", 5001, f"{BASE}/fintech/payments-api")
    assert approved.changes(job_facts(api_job())) == []
    renamed = approved.changes(job_facts(api_job(name="drop-prod-db")))
    assert renamed == ["job name is now 'drop-prod-db', not 'compliance-gate'"]
    moved_project = job_json(
        {**JOB, "user": USER}, PIPELINE, {**PROJECT, "path_with_namespace": "other/x"}, BASE
    )
    assert "job is now at" in approved.changes(job_facts(moved_project))[0]
    other_pipeline = job_json({**JOB}, {**PIPELINE, "id": 5002}, PROJECT, BASE)
    changes = approved.changes(job_facts(other_pipeline))
    assert "job is now in pipeline #5002, not #5001" in changes
    foreign = job_json({**JOB}, {**PIPELINE, "project_id": 7}, {**PROJECT, "id": 7}, BASE)
    assert "job now belongs to project id 7" in approved.changes(job_facts(foreign))


def test_a_gate_keys_by_the_identity_it_claims() -> None:
    event = pipeline_event()
    gate = next(b for b in parse_pipeline(event).builds if b.name == "compliance-gate")
    claimed = gate_event(parse_pipeline(event), gate)
    job = parse_job(job_event())
    assert job.project is not None
    assert job.pipeline is not None
    same_job = job_gate_event(job, job.project, job.pipeline)
    assert gate_key(claimed) == gate_key(same_job)  # one gate, whichever hook tells of it
    forged = {**claimed, "project_path": "fintech/wallet-app"}
    assert gate_key(forged) != gate_key(claimed)  # a forgery never makes it a duplicate
    assert gate_key(forged).startswith("approval-bot:gate:101:9001:")
