"""Reconciliation with GitLab: gates waiting without a request (a missed webhook, a Redis
restart), and production deployments without a sign-off in the ledger."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select

from bot.events import FINISHED_PIPELINE, GateEvent
from bot.gitlab import GitLabError
from bot.gitlab_reads import Deployment, GitLabReads, ProjectInfo, WaitingJob
from bot.runtime import Runtime
from bot.store import requests as store
from bot.store.models import LedgerEntry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeploymentCheck:
    project: str
    deployment: Deployment
    signoff_sequence: int | None

    @property
    def signed_off(self) -> bool:
        return self.signoff_sequence is not None


def policy_projects(rt: Runtime, reads: GitLabReads) -> Iterator[tuple[ProjectInfo, str]]:
    """(project, gate job name) for every project a policy gate covers, once each."""
    policy = rt.policy.current.policy
    seen: set[tuple[int, str]] = set()
    for gate in policy.gates:
        try:
            projects = list(reads.projects_matching(gate.project))
        except GitLabError as exc:
            log.warning("cannot list projects for %s: %s", gate.project, exc)
            continue
        for project in projects:
            # First matching gate wins, as for webhooks.
            if policy.gate_for(project.path, gate.job) is not gate:
                continue
            if (project.id, gate.job) not in seen:
                seen.add((project.id, gate.job))
                yield project, gate.job


def missing_requests(rt: Runtime) -> list[GateEvent]:
    """Gate jobs waiting as `manual` in GitLab that have no approval request."""
    reads = GitLabReads(rt.gitlab)
    missing = []
    for project, job_name in policy_projects(rt, reads):
        try:
            jobs = reads.waiting_jobs(project.id, job_name)
        except GitLabError as exc:
            log.warning("cannot list waiting jobs of %s: %s", project.path, exc)
            continue
        for job in jobs:
            if job.pipeline_status in FINISHED_PIPELINE:
                continue
            if store.find_for_job(rt.db, project.id, job.id) is None:
                missing.append(_gate_event(project, job))
    return missing


def _gate_event(project: ProjectInfo, job: WaitingJob) -> GateEvent:
    return GateEvent(
        project_id=project.id,
        project_path=project.path,
        project_url=project.web_url,
        pipeline_id=job.pipeline_id,
        pipeline_url=job.pipeline_url,
        pipeline_status=job.pipeline_status,
        job_id=job.id,
        job_name=job.name,
        job_status=job.status,
        ref=job.ref,
        sha=job.sha,
        commit_title=job.commit_title,
        commit_url=job.commit_url,
        commit_author_name=job.author_name,
        commit_author_email=job.author_email,
        triggered_by_username=job.user_username,
        triggered_by_name=job.user_name,
        # The jobs API hides e-mails; the identities map covers the triggerer instead.
        triggered_by_email=None,
        environment=None,
    )


def signoffs_by_pipeline(rt: Runtime) -> dict[tuple[str, int], int]:
    """(project path, pipeline id) → sequence of its sign-off ledger record."""
    found: dict[tuple[str, int], int] = {}
    with rt.db.sessions() as session:
        rows = session.execute(
            select(LedgerEntry.sequence, LedgerEntry.body).where(LedgerEntry.kind == "signoff")
        )
        for sequence, body in rows:
            record = json.loads(body)
            if record.get("pipeline_id") is not None:
                found[(str(record.get("project")), int(record["pipeline_id"]))] = int(sequence)
    return found


def check_deployments(rt: Runtime, since: str | None, environment: str) -> list[DeploymentCheck]:
    """Every successful deployment to `environment` since `since`, with its sign-off if any."""
    reads = GitLabReads(rt.gitlab)
    signoffs = signoffs_by_pipeline(rt)
    checks = []
    for project, _job in policy_projects(rt, reads):
        for deployment in reads.deployments(project.id, environment, since):
            sequence = (
                signoffs.get((project.path, deployment.pipeline_id))
                if deployment.pipeline_id is not None
                else None
            )
            checks.append(DeploymentCheck(project.path, deployment, sequence))
    return checks
