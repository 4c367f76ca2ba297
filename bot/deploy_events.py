"""What webhooks say about a deployment after its gate was played: the deploy job
succeeded, or the post-deploy smoke test failed. Pure: the edge queues what this finds."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any, Literal, NotRequired, TypedDict

from bot.events import PLAYED_JOB, Build, JobEvent, PipelineEvent, deploy_after
from bot.policy import Gate, Policy

DeployFact = Literal["deployed", "smoke_failed"]
# The edge acts on each fact once per pipeline (and environment): Redis SET NX on this key.
# The claimed project path is part of it: a forged fact (another project's ids under a path
# the forger's secret may speak for) never makes the genuine one a duplicate.
DEPLOY_KEY = "approval-bot:deploy:{}:{}:{}:{}:{}"


class DeployEvent(TypedDict):
    """Plain JSON for the queue: which pipeline, and what happened in it."""

    project_id: int
    project_path: str
    pipeline_id: int
    fact: DeployFact
    job_name: str
    environment: str | None
    # The projects the webhook's secret may speak for (bot.policy_secrets.Scope.to_json).
    scope: NotRequired[dict[str, Any]]


def deploy_key(event: DeployEvent) -> str:
    path = hashlib.sha256(event["project_path"].lower().encode()).hexdigest()[:16]
    return DEPLOY_KEY.format(
        event["project_id"], event["pipeline_id"], event["fact"], event["environment"] or "", path
    )


def from_pipeline(event: PipelineEvent, gated: Iterable[tuple[Gate, Build]]) -> list[DeployEvent]:
    """Deployment facts in a pipeline event, for each played gate in it (`gated`: the
    policy's gates and their jobs in this event, as `bot.events.gate_jobs` finds them)."""
    found: list[DeployEvent] = []
    for gate, build in gated:
        if build.status not in PLAYED_JOB:
            continue
        deploy = deploy_after(event, build)
        if deploy is not None and deploy.environment and deploy.status == "success":
            found.append(_fact(event, "deployed", deploy.name, deploy.environment.name))
        for smoke in event.builds:
            if smoke.name == gate.rollback.smoke_job and smoke.status == "failed":
                found.append(_fact(event, "smoke_failed", smoke.name, None))
    return found


def from_job(event: JobEvent, policy: Policy) -> list[DeployEvent]:
    """A Job Hook for a smoke test that failed, or a deploy job that succeeded (a job that
    starts an environment; not a gate, not a rollback job, not a stop action). Older Job
    Hooks name no project path or pipeline: the Pipeline Hook carries the same facts."""
    if event.project is None or event.pipeline is None:
        return []
    gates = policy.gates_for_project(event.project.path_with_namespace)
    environment = event.environment.name if event.environment is not None else None
    action = event.environment.action if event.environment is not None else None
    not_deploys = {g.job for g in gates} | {g.rollback.job for g in gates}
    fact: DeployFact | None = None
    if event.build_status == "failed" and any(
        g.rollback.smoke_job == event.build_name for g in gates
    ):
        fact, environment = "smoke_failed", None
    elif (
        gates
        and event.build_status == "success"
        and environment
        and action in (None, "start")
        and event.build_name not in not_deploys
    ):
        fact = "deployed"
    if fact is None:
        return []
    return [
        DeployEvent(
            project_id=event.project_id,
            project_path=event.project.path_with_namespace,
            pipeline_id=event.pipeline,
            fact=fact,
            job_name=event.build_name,
            environment=environment,
        )
    ]


def _fact(
    event: PipelineEvent, fact: DeployFact, job_name: str, environment: str | None
) -> DeployEvent:
    return DeployEvent(
        project_id=event.project.id,
        project_path=event.project.path_with_namespace,
        pipeline_id=event.object_attributes.id,
        fact=fact,
        job_name=job_name,
        environment=environment,
    )
