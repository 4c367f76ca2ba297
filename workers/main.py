"""`approval-bot worker`: an RQ worker on the configured Redis, with the jobs' runtime."""

from __future__ import annotations

import logging
import signal
import time

from redis.exceptions import RedisError
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from bot.policy_audit import start_policy_watch
from bot.runtime import Runtime
from workers.context import set_runtime
from workers.maintenance import Ticker
from workers.queue import make_queue

log = logging.getLogger(__name__)

REDIS_WAIT_MAX_S = 30.0
MAINTENANCE_INTERVAL_S = 30


def redact(url: str) -> str:
    """A URL fit for logs: any password replaced."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"


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
    if not wait_for_redis(runtime):
        return 0
    # SimpleWorker runs jobs in this process: the runtime (policy, engine, clients) is loaded
    # once, and a killed job is recovered from the database state machine, not by RQ.
    queue = make_queue(runtime.redis)
    worker = SimpleWorker(
        [queue],
        connection=runtime.redis,
        serializer=JSONSerializer,
        log_job_description=False,
        # Jobs of a worker that died are found and retried within a minute, not ten.
        maintenance_interval=MAINTENANCE_INTERVAL_S,
    )
    watcher = start_policy_watch(runtime)
    signal.signal(signal.SIGHUP, lambda _signum, _frame: runtime.policy.request_reload())
    ticker = Ticker(runtime, queue)
    if not burst:
        ticker.start()
    try:
        worker.work(burst=burst, with_scheduler=not burst, logging_level="INFO")
    finally:
        ticker.stop()
        watcher.stop()
    return 0
