"""Admins see the jobs RQ gave up on and can put them back on the queue."""

from __future__ import annotations

from pathlib import Path

from rq import SimpleWorker
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer

from bot.web.commands import answer
from tests.unit.edge_support import edge_app
from workers import queue as jobqueue


def test_admin_lists_and_retries_a_failed_job(tmp_path: Path, redis_url: str) -> None:
    with edge_app(tmp_path, redis_url) as (_, runtime):
        queue = jobqueue.make_queue(runtime.redis)
        # A job that fails for real (no retries left): the worker runtime is not set here.
        queue.enqueue_call(jobqueue.SWEEP, args=({},), job_id="failed-sweep")
        SimpleWorker([queue], connection=runtime.redis, serializer=JSONSerializer).work(burst=True)
        assert "failed-sweep" in FailedJobRegistry(queue=queue).get_job_ids()

        assert "Only policy admins" in answer(runtime, "U0RM00001", "failed")
        listing = answer(runtime, "U0ADMIN01", "failed")
        assert "failed-sweep" in listing
        assert "runtime is not configured" in listing
        assert "No failed job" in answer(runtime, "U0ADMIN01", "retry nope")
        assert "queued again" in answer(runtime, "U0ADMIN01", "retry failed-sweep")
        assert "failed-sweep" in queue.get_job_ids()
        assert "No failed jobs" in answer(runtime, "U0ADMIN01", "failed")
