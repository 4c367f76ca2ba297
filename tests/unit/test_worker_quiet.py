"""An idle worker's log stays quiet: RQ's INFO lines about the periodic sweep and its own
registry cleaning are dropped; other jobs' lines, and anything at WARNING, are kept."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from bot.logs import bind_request_id, clear_request_id
from workers.main import QuietRoutineJobs


@pytest.fixture
def rq_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    logger = logging.getLogger("rq.worker")
    quiet = QuietRoutineJobs()
    logger.addFilter(quiet)
    caplog.set_level(logging.INFO, logger="rq.worker")
    try:
        yield caplog
    finally:
        logger.removeFilter(quiet)
        clear_request_id()


def test_sweep_job_lines_and_registry_cleaning_are_dropped(
    rq_log: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("rq.worker")
    bind_request_id("job:sweep", job_id="sweep")
    log.info("Worker %s: %s: %s", "w1", "approval-bot", "sweep")
    log.info("Worker %s: job %s result is kept for %d seconds", "w1", "sweep", 500)
    clear_request_id()
    log.info("Worker %s: cleaning registries for queue: %s", "w1", "approval-bot")
    log.info("Worker %s: cleaning group registries", "w1")
    assert rq_log.records == []


def test_other_jobs_and_warnings_are_kept(rq_log: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("rq.worker")
    bind_request_id("req-1", job_id="j1")
    log.info("Worker %s: %s: %s", "w1", "approval-bot", "j1")
    bind_request_id("job:sweep", job_id="sweep")
    log.error("Worker %s: could not connect to Redis instance", "w1")
    assert [r.levelname for r in rq_log.records] == ["INFO", "ERROR"]
