"""The private Redis of `make run`/`make sandbox` dies with the process that started it, even
when that process is killed outright (SIGKILL: no chance to stop it), on Linux."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from bot.private_redis import answers

pytestmark = pytest.mark.integration

STARTER = """
import sys, time
from pathlib import Path
from bot.private_redis import PrivateRedis
server = PrivateRedis(Path(sys.argv[1]), "orphan-test", persist=False)
print(server.start(), flush=True)
time.sleep(120)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal: Linux")
def test_the_private_redis_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER, str(tmp_path / "redis")],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert starter.stdout is not None
    url = starter.stdout.readline().strip()
    assert url.startswith("redis://127.0.0.1:")
    assert answers(url)
    starter.kill()
    starter.wait()
    deadline = time.monotonic() + 10
    while answers(url) and time.monotonic() < deadline:
        time.sleep(0.1)
    orphaned = answers(url)
    if orphaned:  # leave nothing running, even when failing
        with contextlib.suppress(redis.RedisError):
            redis.Redis.from_url(url).shutdown(nosave=True)
    assert not orphaned, "the private redis-server outlived the process that started it"
