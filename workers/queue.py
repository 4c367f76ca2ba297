"""The RQ queue between the HTTP edge and the worker: names, serializer, retries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.client import Pipeline
from rq import Queue, Retry
from rq.job import Job
from rq.serializers import JSONSerializer

from bot.logs import current_request_id

QUEUE_NAME = "approval-bot"
JOB_TIMEOUT_S = 300
# RQ re-runs a failed job after these delays; every job is idempotent, so a re-run is safe.
RETRY = Retry(max=6, interval=[5, 15, 30, 60, 120, 300])
# Nothing reads a finished job's return value (state lives in the database; failed jobs keep
# theirs for /admin/failed-jobs): RQ deletes a job at once when it succeeds.
RESULT_TTL_S = 0
# The periodic sweep is the exception: its last result (what it expired, recovered, re-posted)
# stays visible to operators (`rq info`, the job's hash) and tells that a sweep ran.
SWEEP_RESULT_TTL_S = 600

OPEN_REQUEST = "workers.jobs.open_request"
APPROVE = "workers.jobs.approve"
REJECT = "workers.jobs.reject"
NOTIFY = "workers.jobs.notify"
PIPELINE_UPDATE = "workers.status.pipeline_update"
RESOLVE_JOB_HOOK = "workers.job_hooks.resolve"
DEPLOYMENT_UPDATE = "workers.rollback.deployment_update"
ROLLBACK = "workers.rollback.rollback"
SWEEP = "workers.maintenance.sweep"
RECONCILE = "workers.maintenance.reconcile_gates"
WRITEBACK = "workers.writeback.update"
WRITEBACK_NOTE = "workers.writeback.note"
RETRY_PLAY = "workers.play_failures.retry_play"
# The id of the HTTP request (or job) that led to a job, in the job's meta: the worker binds
# it to the job's log lines, so one id follows a webhook or a click through web and worker.
REQUEST_ID_META = "request_id"


def make_queue(redis: Redis, queue_class: type[Queue] = Queue) -> Queue:
    # JSON, not pickle: a job payload can never carry code.
    return queue_class(
        QUEUE_NAME, connection=redis, serializer=JSONSerializer, default_timeout=JOB_TIMEOUT_S
    )


@dataclass(frozen=True)
class Call:
    """One job to queue: `function(payload)`, under `job_id` when given."""

    function: str
    payload: dict[str, Any]
    job_id: str | None = None
    result_ttl: int = RESULT_TTL_S


def enqueue(
    queue: Queue,
    function: str,
    payload: dict[str, Any],
    job_id: str | None = None,
    request_id: str | None = None,
    at_front: bool = False,
    result_ttl: int = RESULT_TTL_S,
) -> Job:
    """Queue `function(payload)`; `request_id` defaults to the one being logged (the HTTP
    request or job in progress)."""
    call = Call(function, payload, job_id, result_ttl)
    return _enqueue(queue, call, request_id or current_request_id(), at_front=at_front)


def enqueue_all(queue: Queue, calls: list[Call], request_id: str | None = None) -> list[str]:
    """Queue every call in one Redis round trip (one MULTI pipeline); their job ids."""
    if not calls:
        return []
    request_id = request_id or current_request_id()
    with queue.connection.pipeline() as pipe:
        queued = [_enqueue(queue, call, request_id, pipe) for call in calls]
        pipe.execute()
    return [job.id for job in queued]


def _enqueue(
    queue: Queue,
    call: Call,
    request_id: str | None,
    pipeline: Pipeline | None = None,
    at_front: bool = False,
) -> Job:
    """The description is the function name only: RQ would otherwise store and show the
    payload."""
    return queue.enqueue_call(
        call.function,
        args=(call.payload,),
        job_id=call.job_id,
        retry=RETRY,
        description=call.function,
        meta={REQUEST_ID_META: request_id} if request_id else None,
        at_front=at_front,
        result_ttl=call.result_ttl,
        pipeline=pipeline,
    )
