"""`approval-bot sandbox` refuses to start with one clear line when it cannot run."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest
import redis

from tests.conftest import redis_db_url
from tests.integration.harness import executable

pytestmark = pytest.mark.integration
REDIS_URL = redis_db_url(7)  # the sandbox tests' database (the browser test's too)


@pytest.fixture(autouse=True)
def empty_database() -> None:
    """The sandbox refuses a database holding data that is not its own."""
    redis.Redis.from_url(REDIS_URL).flushdb()


def sandbox(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [executable(), "sandbox", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_unreachable_redis_exits_2_with_one_line_saying_how_to_get_one() -> None:
    done = sandbox("--port", "0", "--redis-url", "redis://:secret@127.0.0.1:1/0")
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Redis is not reachable at 127.0.0.1:1/0" in lines[0]
    assert "apt-get install redis-server" in lines[0]
    assert "docker run -p 6379:6379 redis" in lines[0]
    assert "secret" not in lines[0]


def test_busy_page_port_exits_2_with_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = sandbox("--port", str(port), "--redis-url", REDIS_URL)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in lines[0]


def test_ctrl_c_stops_the_bot_processes_and_exits_0(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [executable(), "sandbox", "--port", "0", "--redis-url", REDIS_URL],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # the URL: the web and worker processes are up
    assert "http://127.0.0.1:" in line
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=40)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    workdir = re.search(r"starting the bot in (\S+)", err)
    assert workdir is not None
    assert not Path(workdir.group(1)).exists()  # the temporary directory is removed
