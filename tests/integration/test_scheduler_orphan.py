"""The RQ scheduler child exits when its worker is killed (issue #15 item 4): no orphan keeps
the scheduler lock, and a new worker takes it."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from rq.scheduler import RQScheduler

from bot.simulators.gitlab import FakeGitLab
from bot.simulators.slack import FakeSlack
from tests.conftest import redis_db_url
from tests.integration.harness import Bot, bot_env, wait_until
from workers.queue import QUEUE_NAME

REDIS_URL = redis_db_url(9)  # no other module uses this suite database
LOCK = RQScheduler.get_locking_key(QUEUE_NAME)


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[Bot]:
    redis.Redis.from_url(REDIS_URL).flushdb()
    slack, gitlab = FakeSlack().start(), FakeGitLab().start()
    running = Bot(
        tmp_path,
        bot_env(tmp_path, slack, gitlab, f"sqlite:///{tmp_path}/a.db", REDIS_URL),
        slack,
        gitlab,
    )
    running.run("db", "upgrade")
    try:
        yield running
    finally:
        running.stop_all()
        slack.stop()
        gitlab.stop()
        redis.Redis.from_url(REDIS_URL).flushdb()


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def running(pid: int) -> bool:
    """Alive and not a zombie (a reparented child may wait to be reaped)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def holder(client: redis.Redis) -> bytes | None:
    value = client.get(LOCK)
    return value if isinstance(value, bytes) else None


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")
def test_the_scheduler_child_exits_when_its_worker_is_killed(bot: Bot) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    worker = bot.start("worker", "worker")
    wait_until(lambda: holder(client) is not None and children(worker.pid), 30, "the scheduler")
    first = holder(client)
    (scheduler,) = children(worker.pid)

    os.kill(worker.pid, signal.SIGKILL)  # the worker only, not its process group
    worker.wait(10)
    try:
        wait_until(lambda: not running(scheduler), 10, "the orphaned scheduler to exit")
    finally:
        if running(scheduler):  # do not leave an orphan behind when this fails
            os.kill(scheduler, signal.SIGKILL)
    wait_until(lambda: holder(client) is None, 5, "the scheduler lock to be released")
    bot.processes.pop("worker")
    bot.start("worker", "worker")
    wait_until(lambda: holder(client) not in (None, first), 30, "a new worker to take the lock")
