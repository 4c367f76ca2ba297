"""Before the worker acts on a webhook, or plays a job, it asks GitLab.

A webhook body is a claim made by whoever holds a hook's secret token. The facts a request
is opened with, and the statuses that close it, record a bypass or offer a rollback, are
GitLab's own (`GET /projects/:id/jobs/:job_id`, `GET /projects/:id`). A body that names
another project, job, pipeline, ref or sha than GitLab does is refused: nothing is opened
or changed, the admins are told once per gate job, and
`approval_bot_webhook_refusals_total{reason}` counts it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from redis.exceptions import RedisError

from bot import metrics
from bot.admins import tell_admins_once
from bot.deploy_events import DeployEvent
from bot.events import GATE_TTL_S, GateEvent, gate_key, gate_status
from bot.gate_facts import ApprovedJob, JobFacts, disagreements, gate_facts
from bot.gitlab import GitLabNotFound, JobChanged
from bot.gitlab_reads import GitLabReads
from bot.policy_secrets import Scope
from bot.runtime import Runtime
from bot.slack_text import escape
from bot.store import requests as store
from bot.store.models import ApprovalRequest, RequestState
from workers.support import announce

log = logging.getLogger(__name__)

REFUSED_ADMIN = (
    ":rotating_light: A GitLab webhook about project id {project_id} ({project}) job "
    "{job_id} was refused: {why}. Nothing was opened, closed or played. It carried {scope}: "
    "unless the job changed in GitLab meanwhile, someone holding that webhook secret token "
    "is sending forged events; rotate it."
)
NOT_IN_GITLAB = "GitLab has no such job in that project"
# The status GitLab must show for the job a deployment fact names.
DEPLOY_STATUS = {"deployed": "success", "smoke_failed": "failed"}
UNCONFIRMED_DEPLOY = "deployment fact %s of %s pipeline %s not confirmed: job %s is %s in GitLab"
OUT_OF_SCOPE = "that secret token is not valid for {project}, the project GitLab names"
JOB_CHANGED = (
    "The gate job changed in GitLab after the request opened ({changes}); nothing was played."
)
JOB_CHANGED_ADMIN = (
    ":rotating_light: The approved gate job {job} of {project} pipeline #{pipeline} was not "
    "played: it changed in GitLab after the request opened ({changes}). The request is "
    "closed and nothing was signed off."
)


def approved_job(request: ApprovalRequest) -> ApprovedJob:
    return ApprovedJob(
        request.project_id,
        request.job_id,
        request.job_name,
        request.pipeline_id,
        request.project_url,
    )


def gate_facts_for(rt: Runtime, claim: Mapping[str, Any]) -> GateEvent | None:
    """GitLab's facts about the gate job a webhook (or the reconciliation) names, or None
    when they contradict the claim or its secret's scope (refused, logged, alerted).
    GitLab errors other than 404 propagate: the job is retried."""
    project_id, job_id = int(claim["project_id"]), int(claim["job_id"])
    try:
        job = rt.gitlab.job(project_id, job_id)
        project = rt.gitlab.project(project_id)
    except GitLabNotFound:
        refuse(rt, claim, "not_found", NOT_IN_GITLAB)
        return None
    facts = gate_facts(project, job, claim.get("environment"))
    found = disagreements(claim, facts)
    if found:
        refuse(rt, claim, "mismatch", "; ".join(map(str, found)))
        return None
    if not in_scope(rt, claim, facts["project_path"]):
        return None
    return facts


def request_job_now(
    rt: Runtime, request: ApprovalRequest, claim: Mapping[str, Any]
) -> JobFacts | None:
    """A request's gate job as GitLab shows it now (one call), or None (refused) when the
    claim names another job than the request's, or a project its secret may not speak for.
    (Whether it is still the job approved is checked right before a play.)"""
    try:
        job = rt.gitlab.job(request.project_id, request.job_id)
    except GitLabNotFound:
        refuse(rt, claim, "not_found", NOT_IN_GITLAB)
        return None
    known = {
        "project_path": request.project_path,
        "job_name": job.name,
        "pipeline_id": job.pipeline_id,
        "ref": job.ref,
        "sha": job.sha,
    }
    found = disagreements(claim, known)
    if found:
        refuse(rt, claim, "mismatch", "; ".join(map(str, found)))
        return None
    if not in_scope(rt, claim, request.project_path):
        return None
    return job


def in_scope(rt: Runtime, claim: Mapping[str, Any], project_path: str) -> bool:
    """May the secret the webhook carried speak for the project GitLab names? (Events that
    did not come from a webhook carry no scope.)"""
    scope = Scope.from_json(claim.get("scope"))
    if scope is None or scope.allows(project_path, rt.policy.current.webhook_keys):
        return True
    refuse(rt, claim, "out_of_scope", OUT_OF_SCOPE.format(project=project_path))
    return False


def refuse(rt: Runtime, claim: Mapping[str, Any], reason: str, why: str) -> None:
    project_id, job_id = claim.get("project_id"), claim.get("job_id") or claim.get("job_name")
    log.warning(
        "webhook refused (%s) for project id %s job %s: %s", reason, project_id, job_id, why
    )
    metrics.incr(rt.redis, "webhook_refusals_total", {"reason": reason})
    scope = Scope.from_json(claim.get("scope"))
    text = REFUSED_ADMIN.format(
        project_id=escape(str(project_id)),
        project=escape(str(claim.get("project_path"))),
        job_id=escape(str(job_id)),  # a deployment fact names its job by the body's name
        why=escape(why),
        scope=escape(scope.describe()) if scope else "no secret (it did not come from a hook)",
    )
    tell_admins_once(rt, f"webhook-refused:{project_id}:{job_id}", text)


def note_status(rt: Runtime, claim: GateEvent, pipeline_status: str, job_status: str) -> None:
    """Record GitLab's status as the gate's last one when the claimed one was not true, so
    that GitLab's genuine event for the claimed status is not taken for a duplicate."""
    actual = gate_status(pipeline_status, job_status)
    if actual == gate_status(claim["pipeline_status"], claim["job_status"]):
        return
    try:
        rt.redis.set(gate_key(claim), actual, ex=GATE_TTL_S)
    except RedisError as exc:
        log.warning("cannot record the gate's status: %s", type(exc).__name__)


def request_claims(request: ApprovalRequest) -> dict[str, Any]:
    """The facts a request was opened with (from GitLab), as a claim is compared with."""
    return {
        "project_path": request.project_path,
        "job_name": request.job_name,
        "pipeline_id": request.pipeline_id,
        "ref": request.ref,
        "sha": request.sha,
    }


def job_changed(rt: Runtime, request: ApprovalRequest, exc: JobChanged) -> str:
    """The approved job is not the one GitLab would play: close, tell, sign nothing off."""
    changes = escape(str(exc))
    closed = store.close(
        rt.db, request.id, RequestState.CLOSED, JOB_CHANGED.format(changes=changes)
    )
    if closed is not None:
        announce(rt, closed, None)
    log.error("gate of %s not played, the job changed in GitLab: %s", request.id, exc)
    text = JOB_CHANGED_ADMIN.format(
        job=request.job_id,
        project=escape(request.project_path),
        pipeline=request.pipeline_id,
        changes=changes,
    )
    tell_admins_once(rt, f"job-changed:{request.project_id}:{request.job_id}", text)
    return "job-changed"


def deploy_confirmed(rt: Runtime, request: ApprovalRequest, event: DeployEvent) -> bool:
    """Does GitLab show what a deployment fact claims, for the played request's pipeline:
    the newest job of that name succeeded (deployed) or failed (smoke test)? A claim about
    another project than the request's is refused; a status GitLab does not show (yet) is
    not acted on, and not alerted either: it may just be late."""
    known = {"project_path": request.project_path}
    found = disagreements({"project_path": event["project_path"]}, known)
    if found:
        refuse(rt, event, "mismatch", "; ".join(map(str, found)))
        return False
    if not in_scope(rt, event, request.project_path):
        return False
    jobs = GitLabReads(rt.gitlab).pipeline_jobs(request.project_id, request.pipeline_id)
    named = [j for j in jobs if j.get("name") == event["job_name"] and type(j.get("id")) is int]
    newest = max(named, key=lambda j: int(j["id"]), default=None)
    status = str(newest.get("status")) if newest is not None else "missing"
    if status == DEPLOY_STATUS[event["fact"]]:
        return True
    log.info(
        UNCONFIRMED_DEPLOY,
        event["fact"],
        request.project_path,
        request.pipeline_id,
        event["job_name"],
        status,
    )
    return False


ROLLBACK_CHANGED_ADMIN = (
    ":rotating_light: The rollback job {job} of {project} pipeline #{pipeline} was not "
    "played: it is not the job that was approved ({changes})."
)


def rollback_job_changed(
    rt: Runtime, request: ApprovalRequest, job_id: int, exc: JobChanged
) -> None:
    log.error("rollback of %s not played, the job changed in GitLab: %s", request.id, exc)
    text = ROLLBACK_CHANGED_ADMIN.format(
        job=job_id,
        project=escape(request.project_path),
        pipeline=request.pipeline_id,
        changes=escape(str(exc)),
    )
    tell_admins_once(rt, f"job-changed:{request.project_id}:{job_id}", text)
