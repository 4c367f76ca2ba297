"""The RQ queue between the HTTP edge and the worker: names, serializer, retries."""

from __future__ import annotations

from typing import Any

from redis import Redis
from rq import Queue, Retry
from rq.job import Job
from rq.serializers import JSONSerializer

QUEUE_NAME = "approval-bot"
JOB_TIMEOUT_S = 300
# RQ re-runs a failed job after these delays; every job is idempotent, so a re-run is safe.
RETRY = Retry(max=6, interval=[5, 15, 30, 60, 120, 300])

OPEN_REQUEST = "workers.jobs.open_request"
APPROVE = "workers.jobs.approve"
REJECT = "workers.jobs.reject"
NOTIFY = "workers.jobs.notify"
PIPELINE_UPDATE = "workers.jobs.pipeline_update"
SWEEP = "workers.maintenance.sweep"
RECONCILE = "workers.maintenance.reconcile_gates"


def make_queue(redis: Redis) -> Queue:
    # JSON, not pickle: a job payload can never carry code.
    return Queue(
        QUEUE_NAME, connection=redis, serializer=JSONSerializer, default_timeout=JOB_TIMEOUT_S
    )


def enqueue(queue: Queue, function: str, payload: dict[str, Any], job_id: str | None = None) -> Job:
    return queue.enqueue_call(function, args=(payload,), job_id=job_id, retry=RETRY)
