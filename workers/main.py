"""`approval-bot worker`: an RQ worker on the configured Redis, with the jobs' runtime."""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.job import Job
from rq.serializers import JSONSerializer

from bot.logs import bind_request_id, clear_request_id, current_request_id, register_secrets
from bot.policy_audit import start_policy_watch
from bot.runtime import REDIS_HEALTH_CHECK_S, REDIS_TIMEOUT_S, Runtime
from workers import pacing
from workers.context import set_runtime
from workers.maintenance import Ticker
from workers.queue import REQUEST_ID_META, make_queue
from workers.scheduler import ParentBoundScheduler

log = logging.getLogger(__name__)

REDIS_WAIT_MAX_S = 30.0
MAINTENANCE_INTERVAL_S = 30


def redact(url: str) -> str:
    """A URL fit for logs: any password replaced."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"


def bind_job(job: Job) -> None:
    """Log the job's lines with the id of the request that queued it (else the job's id)."""
    meta = job.meta if isinstance(job.meta, dict) else {}
    request_id = meta.get(REQUEST_ID_META)
    if not isinstance(request_id, str) or not request_id:
        request_id = f"job:{job.id}"
    bind_request_id(request_id, job_id=job.id)


class RequestQueue(Queue):
    """Binds a dequeued job's request id at once, so RQ's "dequeued" line carries it too."""

    @classmethod
    def dequeue_any(cls, *args: Any, **kwargs: Any) -> tuple[Job, Queue] | None:
        result = super().dequeue_any(*args, **kwargs)
        if result is not None:
            bind_job(result[0])
        return result


class Worker(SimpleWorker):
    """RQ's in-process worker, with each job's log lines naming its request id."""

    queue_class = RequestQueue
    # Set when SIGTERM or SIGINT asked us to stop (RQ's own flag is only set mid-job).
    stop_signalled = False

    def request_stop(self, signum: Any, frame: Any) -> None:
        self.stop_signalled = True
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]

    def _start_scheduler(
        self,
        burst: bool = False,
        logging_level: str | None = "INFO",
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
    ) -> None:
        """RQ 3.0's own, with a scheduler child that exits when this worker dies."""
        self.scheduler = ParentBoundScheduler(
            self.queues,
            connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format,
            log_format=log_format,
            serializer=self.serializer,
        )
        self.scheduler.acquire_locks()  # type: ignore[no-untyped-call]
        if not self.scheduler.acquired_locks:
            return
        if not burst:
            self.scheduler.start()
            return
        try:
            self.scheduler.register_birth()
            self.scheduler.enqueue_scheduled_jobs()  # type: ignore[no-untyped-call]
        finally:
            self.scheduler.release_locks()  # type: ignore[no-untyped-call]
            self.scheduler.register_death()

    def execute_job(self, job: Job, queue: Queue) -> None:
        bind_job(job)
        try:
            super().execute_job(job, queue)
        finally:
            clear_request_id()


class QuietRoutineJobs(logging.Filter):
    """Drops RQ's INFO lines about routine work: the periodic sweep and reconciliation jobs
    (dequeued, done, result kept) and its own registry cleaning (every 30 s). An idle worker
    would otherwise log a few lines every sweep interval. What the sweep did, warnings and
    errors are still logged."""

    ROUTINE_JOBS = frozenset({"job:sweep", "job:reconcile"})
    ROUTINE_LINES = ("cleaning registries for queue", "cleaning group registries")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        if current_request_id() in self.ROUTINE_JOBS:
            return False
        message = record.getMessage()
        return not any(line in message for line in self.ROUTINE_LINES)


class _Stop(Exception):
    pass


def _stop(_signum: int, _frame: object) -> None:
    raise _Stop


def wait_for_redis(runtime: Runtime) -> bool:
    """Redis may come up after us (compose, systemd): wait, saying so, and retry.

    Returns False when SIGTERM or SIGINT arrives first (a clean stop, exit 0).
    """
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    delay = 1.0
    try:
        while True:
            try:
                runtime.redis.ping()
                return True
            except (RedisError, OSError) as exc:
                log.warning(
                    "Redis is not reachable at %s (%s); retrying in %.0fs",
                    redact(runtime.settings.REDIS_URL),
                    type(exc).__name__,
                    delay,
                )
                time.sleep(delay)
                delay = min(delay * 2, REDIS_WAIT_MAX_S)
    except _Stop:
        log.info("stopped while waiting for Redis")
        return False
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_worker(runtime: Runtime, burst: bool = False) -> int:
    set_runtime(runtime)
    register_secrets(runtime.settings.secret_values())
    if not wait_for_redis(runtime):
        return 0
    # SimpleWorker runs jobs in this process: the runtime (policy, engine, clients) is loaded
    # once, and a killed job is recovered from the database state machine, not by RQ.
    queue = make_queue(runtime.redis, RequestQueue)
    logging.getLogger("rq.worker").addFilter(QuietRoutineJobs())
    watcher = start_policy_watch(runtime)
    signal.signal(signal.SIGHUP, lambda _signum, _frame: runtime.policy.request_reload())
    ticker = Ticker(runtime, queue, every=runtime.settings.SWEEP_INTERVAL_SECONDS)
    mover = pacing.Mover(runtime, queue)
    if not burst:
        ticker.start()
        mover.start()
    try:
        while True:
            worker = new_worker(runtime, queue)
            try:
                worker.work(burst=burst, with_scheduler=not burst, logging_level="INFO")
                reason = "the worker loop ended"
            except (RedisError, OSError) as exc:
                reason = type(exc).__name__
                log.exception("worker loop failed")
            if burst or worker.stop_signalled:  # SIGTERM, SIGINT or --burst: done
                return 0
            # Redis went away mid-run (restart, failover): wait for it and go on, with a
            # new RQ worker (and scheduler). Jobs Redis lost are found again by the
            # reconciliation and the sweep.
            with contextlib.suppress(Exception):
                worker.stop_scheduler()  # type: ignore[no-untyped-call]
            worker.connection.close()  # the next RQ worker gets a connection of its own
            log.error("lost Redis (%s); waiting for it to come back", reason)
            if not wait_for_redis(runtime):
                return 0
    finally:
        mover.stop()
        ticker.stop()
        watcher.stop()


def blocking_connection(runtime: Runtime) -> Redis:
    """RQ's own Redis client. RQ waits for a job with a blocking pop of up to its dequeue
    timeout (worker TTL - 15 = 405 s) and raises the pool's socket timeout above that, but
    only for connections made afterwards: on the runtime's client, whose connections time
    out after 2 s, the idle worker logged "Timeout reading from socket" every few seconds
    (and the jobs' later connections lost their short timeout). A pool of its own keeps
    both right: no socket timeout here (RQ sets it above the blocking pop), 2 s for jobs."""
    return Redis.from_url(
        runtime.settings.REDIS_URL,
        socket_connect_timeout=REDIS_TIMEOUT_S,
        health_check_interval=REDIS_HEALTH_CHECK_S,
    )


def new_worker(runtime: Runtime, queue: Queue) -> Worker:
    return Worker(
        [queue],
        connection=blocking_connection(runtime),
        serializer=JSONSerializer,
        queue_class=RequestQueue,
        log_job_description=False,
        # Jobs of a worker that died are found and retried within a minute, not ten.
        maintenance_interval=MAINTENANCE_INTERVAL_S,
    )
