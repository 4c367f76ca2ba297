"""`make run` on a machine where nothing listens on 6379: a private Redis under var/redis/,
a full approval, and one SIGTERM (to make only, to scripts/run-local, or to the worker)
stops every process it started (issue #17, items 1 and 3). With REDIS_URL set, no private
Redis is started: production keeps using REDIS_URL."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.integration.namespaces import ROOT, VENV, on_a_fresh_machine

pytestmark = pytest.mark.integration

PRIVATE_REDIS = "approval-bot: no Redis at 127.0.0.1:6379 and REDIS_URL is not set: started a"


@pytest.mark.parametrize(
    ("stop_by", "make_status"),
    [("make", -15), ("supervisor", 0), ("worker", 0)],
)
def test_one_sigterm_stops_everything_make_run_started(stop_by: str, make_status: int) -> None:
    seen = on_a_fresh_machine(f"run-{stop_by}")

    said = [line for line in seen["output"].splitlines() if "private Redis" in line]
    assert len(said) == 1, seen["output"]
    assert said[0].startswith(PRIVATE_REDIS)
    assert "files in var/redis/), stopped with the bot" in said[0]
    if stop_by == "make":
        assert seen["approved"] is True  # played once, the message says Approved
    assert seen["left"] == [], seen["output"][-3000:]
    assert seen["web_port_free"] is True
    assert seen["make_status"] == make_status  # make dies of its SIGTERM; else run-local's 0
    assert seen["var_redis"] == ["run.log", "run.rdb"]  # kept, like var/approval-bot.db
    assert "approval-bot: stopped" in seen["output"]
    assert "Traceback" not in seen["output"]


def run_local(redis_url: str) -> subprocess.CompletedProcess[str]:
    if (ROOT / ".env").exists():
        pytest.skip("the checkout's .env would set REDIS_URL for scripts/run-local")
    env = {**os.environ, "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env["REDIS_URL"] = redis_url
    return subprocess.run(
        [str(ROOT / "scripts" / "run-local")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_with_redis_url_set_no_private_redis_is_started() -> None:
    done = run_local("redis://127.0.0.1:1/0")
    assert done.returncode == 1
    assert "approval-bot: Redis is not reachable at 127.0.0.1:1/0 (REDIS_URL)" in done.stderr
    assert "started a private Redis" not in done.stderr


def test_a_redis_url_without_scheme_is_named_as_such() -> None:
    done = run_local("localhost:6391")
    assert done.returncode == 2
    assert (
        "approval-bot: REDIS_URL must start with redis://, rediss:// or unix:// "
        "(for example redis://localhost:6391/0)"
    ) in done.stderr
    assert "not reachable" not in done.stderr
