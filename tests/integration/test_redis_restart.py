"""Redis restarts (losing its queue) during a burst of webhooks: after the reconciler runs,
every gate has exactly one request, and the worker carried on by itself."""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Iterator

import pytest
import redis
import requests

from tests.integration.conftest import running_bot
from tests.integration.harness import Bot, free_port, wait_until

pytestmark = pytest.mark.integration

GATES = 16


class PrivateRedis:
    """A redis-server of the test's own, without persistence, that can be killed."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        wait_until(lambda: _pings(client), 10, "redis-server")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


@pytest.fixture(scope="module")
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    yield server
    if server.process and server.process.poll() is None:
        server.kill()


@pytest.fixture(scope="module")
def bot(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    private_redis: PrivateRedis,
) -> Iterator[Bot]:
    with running_bot(request, tmp_path_factory, "sqlite", {"REDIS_URL": private_redis.url}) as b:
        yield b


def test_burst_across_a_redis_restart(live: Bot, private_redis: PrivateRedis) -> None:
    events = [
        live.pipeline(pipeline_id=120_000 + i, gate_job_id=1_200_000 + i * 10, ref=f"burst-{i}")
        for i in range(GATES)
    ]
    first, second = events[: GATES // 2], events[GATES // 2 :]
    for event in first:
        assert live.webhook(event).status_code == 202
    private_redis.kill()  # whatever was still queued is lost with it
    refused = [e for e in second if live.webhook(e).status_code == 503]
    assert refused, "webhooks must be refused (503) while Redis is down"
    private_redis.start()
    wait_until(
        lambda: requests.get(f"{live.url}/readyz", timeout=2).status_code == 200,
        30,
        "ready again",
    )
    redelivered = [live.webhook(event) for event in second]  # GitLab redelivers the refused
    for answer in redelivered:
        assert answer.status_code in (200, 202), answer.text

    result = live.run("reconcile", check=False)
    assert "Traceback" not in result.stderr

    def posted_pipelines() -> list[int]:
        found = []
        for call in live.slack.calls_to("chat.postMessage"):
            if call.faulted or "thread_ts" in call.params:
                continue
            text = str(call.params.get("blocks"))
            found += [
                e["object_attributes"]["id"]
                for e in events
                if f"#{e['object_attributes']['id']}" in text
            ]
        return found

    wait_until(lambda: len(set(posted_pipelines())) == GATES, 30, "a request for every gate")
    live.jobs_done(*[a for a in redelivered if a.status_code == 202])
    wait_until(live.queue_idle, 30, "the queue to be empty and no job running")
    posted = posted_pipelines()
    assert sorted(posted) == sorted(e["object_attributes"]["id"] for e in events)
    assert live.processes["worker"].poll() is None  # the worker rode it out
