"""Periodic work: expire, recover and re-post, so nothing waits on a lost job.

Every worker runs a ticker thread that, at most once per interval across all workers (a
Redis key claimed with SET NX), enqueues one `sweep` job. The sweep itself runs in the
worker's normal job loop, so it never races the worker's other jobs in-process; across
workers every transition it makes is the same conditional one a click would make.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

from redis.exceptions import RedisError
from rq import Queue

from bot import audit, reconcile
from bot.runtime import Runtime
from bot.store import queries, slack_guard
from bot.store import requests as store
from workers import anchoring, jobs, pacing, reminders, rollback
from workers import queue as jobqueue
from workers.context import runtime

log = logging.getLogger(__name__)

SWEEP_EVERY_S = 10
TICK_KEY = "approval-bot:sweep-tick"


def sweep(_payload: dict[str, object] | None = None) -> dict[str, int]:
    """One pass: close expired requests, finish orphaned plays, post lost messages, check
    and anchor the ledger's head."""
    rt = runtime()
    done = {
        "expired": expire_due(rt),
        "recovered": recover_plays(rt),
        "reposted": repost(rt),
        "reminded": reminders.remind_and_escalate(rt),
        "anchored": anchoring.anchor(rt),
    }
    if rt.settings.AUDIT_API_URL:
        done["audited"] = audit.deliver_due(rt.db, rt.settings.AUDIT_API_URL)
    done["forgotten"] = forget_spent_slack_requests(rt)
    if any(done.values()):
        log.info("sweep: %s", done)
    return done


def forget_spent_slack_requests(rt: Runtime) -> int:
    """Drop replay-guard rows past Slack's 5-minute window and stale rejection forms."""
    return slack_guard.prune_seen(rt.db, int(time.time())) + slack_guard.prune_views(rt.db)


def expire_due(rt: Runtime) -> int:
    expired = queries.due_for_expiry(rt.db)
    for request in expired:
        jobs.expire(rt, request)
    return len(expired)


def recover_plays(rt: Runtime) -> int:
    """Finish gate plays and rollbacks whose worker died (or that nobody picked up)."""
    lease = rt.settings.play_lease
    stuck = [
        *(("play", r, jobs.finish_approved) for r in queries.stuck_plays(rt.db, lease)),
        *(("rollback", r, rollback.finish_rollback) for r in queries.stuck_rollbacks(rt.db, lease)),
    ]
    for what, request, finish in stuck:
        log.warning("recovering the %s of %s (state %s)", what, request.id, request.state)
        try:
            finish(rt, request.id)
        except Exception:  # one bad request must not stop the sweep; RQ logs the rest
            log.exception("recovery of %s failed; the next sweep retries", request.id)
    return len(stuck)


def repost(rt: Runtime) -> int:
    # A post waiting for its slot (Slack rate limit) is not lost: its own job posts it.
    waiting = pacing.waiting(rt, pacing.POST)
    lost = [request for request in queries.unposted(rt.db) if request.id not in waiting]
    for request in lost:
        try:
            jobs.post_request(rt, store.get(rt.db, request.id))
        except Exception:
            log.exception("re-posting %s failed; the next sweep retries", request.id)
    return len(lost)


class Ticker(threading.Thread):
    """Enqueues a sweep every SWEEP_EVERY_S seconds (one per interval across workers)."""

    def __init__(self, rt: Runtime, queue: Queue, every: float = SWEEP_EVERY_S) -> None:
        super().__init__(name="approval-bot-ticker", daemon=True)
        self.rt = rt
        self.queue = queue
        self.every = every
        self.stopping = threading.Event()

    def run(self) -> None:
        # The first reconciliation runs one interval after start, then every interval.
        with contextlib.suppress(RedisError):
            self.rt.redis.set(RECONCILE_KEY, "1", nx=True, ex=RECONCILE_EVERY_S)
        while not self.stopping.wait(self.every):
            self.tick()

    def tick(self) -> None:
        try:
            if self.rt.redis.set(TICK_KEY, "1", nx=True, ex=max(1, int(self.every) - 1)):
                jobqueue.enqueue(
                    self.queue,
                    jobqueue.SWEEP,
                    {},
                    job_id="sweep",
                    result_ttl=jobqueue.SWEEP_RESULT_TTL_S,
                )
            if self.rt.redis.set(RECONCILE_KEY, "1", nx=True, ex=RECONCILE_EVERY_S):
                jobqueue.enqueue(self.queue, jobqueue.RECONCILE, {}, job_id="reconcile")
        except RedisError as exc:
            log.warning("sweep tick skipped, Redis unavailable: %s", type(exc).__name__)

    def stop(self) -> None:
        self.stopping.set()


RECONCILE_EVERY_S = 300
RECONCILE_KEY = "approval-bot:reconcile-tick"


def reconcile_gates(_payload: dict[str, object] | None = None) -> int:
    """Open requests for gates GitLab shows waiting that have none (missed webhooks)."""
    rt = runtime()
    missing = reconcile.missing_requests(rt)
    for event in missing:
        log.warning(
            "gate waiting without a request, opening it: %s pipeline %s job %s",
            event["project_path"],
            event["pipeline_id"],
            event["job_id"],
        )
        jobs.open_request(event)
    return len(missing)
