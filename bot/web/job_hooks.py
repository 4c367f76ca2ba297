"""Job Hooks without a `project` object (older GitLab: only `project_id` and a display name).

The edge cannot tell from such an event which project's gate the job is, so it passes a
gate job's status change to the worker (workers.job_hooks), which reads the project from
GitLab's API first and then acts as on any other status change of a gate. Jobs no gate
could be, and statuses that need no action, are answered 200 ignored as usual.
"""

from __future__ import annotations

from typing import Any

from redis import Redis
from rq import Queue

from bot.events import GATE_TTL_S, HookProject, JobEvent, job_gate_event
from bot.policy import Policy
from workers import queue as jobs

# GitLab sends one Job Hook per status: a status already passed on is not passed on again.
STATUS_KEY = "approval-bot:job-hook:{}:{}:{}"
# A job in these statuses has not moved on yet: its Pipeline Hook opens the request.
NOT_MOVED = frozenset({"created", "manual"})
NOT_A_GATE = "job {job} is not the gate job of any policy gate"
NO_PIPELINE = "this job event names no pipeline (no pipeline_id, no commit.id)"
NOT_MOVED_ON = "job events do not open requests; the pipeline event does"
# The worker replaces this with the project's path from GitLab's API.
UNKNOWN_PATH = ""


def unresolved_claim(event: JobEvent, policy: Policy) -> dict[str, Any] | str:
    """What the worker completes from GitLab's API, or why the event needs no action."""
    pipeline_id = event.pipeline
    if pipeline_id is None:
        return NO_PIPELINE
    if not any(gate.job == event.build_name for gate in policy.gates):
        return NOT_A_GATE.format(job=event.build_name)
    if event.build_status in NOT_MOVED:
        return NOT_MOVED_ON
    project = HookProject(id=event.project_id, path_with_namespace=UNKNOWN_PATH)
    claim: dict[str, Any] = dict(job_gate_event(event, project, pipeline_id))
    claim["project_path"] = None  # unknown: never compared with GitLab's (gate_facts)
    return claim


def pass_on(redis: Redis, queue: Queue, claim: dict[str, Any]) -> str | None:
    """Queue the claim once per job and status: the job's id, or None (a duplicate).
    Raises RedisError (the caller forgets the key again)."""
    key = status_key(claim)
    if not redis.set(key, "1", nx=True, ex=GATE_TTL_S):
        return None
    return jobs.enqueue(queue, jobs.RESOLVE_JOB_HOOK, claim).id


def status_key(claim: dict[str, Any]) -> str:
    return STATUS_KEY.format(claim["project_id"], claim["job_id"], claim["job_status"])
