"""One real app for the whole fuzz session: fake GitLab and Slack on local ports, SQLite in a
tmp dir (migrated, with a few approval requests), Redis database 8 (this suite's alone).

Budget: the package sends a little over 11,000 requests (keep it above 10,000) in about
25 s of CPU; the terminal summary prints the count and CPU time per test."""

from __future__ import annotations

import fcntl
import hashlib
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from bot.simulators.gitlab import FakeGitLab
from bot.simulators.slack import FakeSlack
from bot.store import requests as store
from bot.store.migrate import upgrade
from bot.store.models import RequestState, utcnow
from tests.fuzz.edge import REDIS_URL, Edge, build_app, settings_env

# One lock per Redis database used: sessions on other Redis servers (TEST_REDIS_SERVER) do
# not wait for each other.
LOCK_PATH = Path(
    "/tmp/approval-bot-fuzz-" + hashlib.sha256(REDIS_URL.encode()).hexdigest()[:12] + ".lock"
)
LOCK_TIMEOUT_S = 300

_session: dict[str, Edge] = {}


def _seed_requests(runtime: Any) -> dict[str, str]:
    """Requests the Slack fuzzing can click on: one per state the edge tells apart."""
    now = utcnow()
    base = {
        "project_id": 101,
        "project_path": "fintech/payments-api",
        "project_url": "https://gitlab.example.com/fintech/payments-api",
        "pipeline_id": 5001,
        "pipeline_url": "https://gitlab.example.com/fintech/payments-api/-/pipelines/5001",
        "job_name": "compliance-gate",
        "ref": "main",
        "sha": "3f5c0a9d2b7e4c1f8a6d9e0b1c2d3e4f5a6b7c8d",
        "commit_title": "Add payment retries",
        "commit_url": None,
        "commit_author_name": "Alice Author",
        "commit_author_email": "alice@example.com",
        "triggered_by_username": "bob",
        "triggered_by_name": "Bob Builder",
        "triggered_by_email": "bob@example.com",
        "environment": "production",
        "channel": "C0DEPLOYS",
        "policy_version": "0" * 64,
        "created_at": now - timedelta(minutes=5),
        "updated_at": now,
        "expires_at": now + timedelta(hours=24),
    }
    variants = {
        "pending": {"job_id": 7001, "state": RequestState.PENDING},
        "pending-ledger": {
            "job_id": 7002,
            "project_id": 102,
            "project_path": "fintech/ledger-core",
            "channel": "C0LEDGER",
            "state": RequestState.PENDING,
        },
        "expired": {
            "job_id": 7003,
            "state": RequestState.PENDING,
            "expires_at": now - timedelta(hours=1),
        },
        "rejected": {
            "job_id": 7004,
            "state": RequestState.REJECTED,
            "rejected_by": "U0ADMIN01",
            "reject_reason": "not today",
        },
        "no-gate": {"job_id": 7005, "job_name": "other-job", "state": RequestState.PENDING},
    }
    ids = {}
    for name, fields in variants.items():
        row, created = store.create(runtime.db, {**base, **fields})
        assert created
        ids[name] = row.id
    return ids


@pytest.fixture(scope="session")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"Redis is required for the fuzz tests ({REDIS_URL}): {exc}")
    # Redis DB 8 is this suite's alone; two fuzz sessions at once would see each other's jobs.
    lock = LOCK_PATH.open("a")
    deadline = time.monotonic() + LOCK_TIMEOUT_S
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                pytest.fail(f"another fuzz session holds {LOCK_PATH} ({REDIS_URL})")
            time.sleep(0.2)
    gitlab = FakeGitLab(token="glpat-test").start()
    slack = FakeSlack(token="xoxb-test-token").start()
    slack.set_usergroup("S0RELEASE", ["U0GROUP01"])
    tmp = tmp_path_factory.mktemp("fuzz")
    app, runtime = build_app(settings_env(tmp, gitlab.url, slack.api_url))
    upgrade(runtime.db)
    state = Edge(
        app=app,
        runtime=runtime,
        client=app.test_client(),
        redis=client,
        gitlab=gitlab,
        slack=slack,
    )
    state.reset_redis()
    state.known_request_ids = _seed_requests(runtime)
    _session["edge"] = state
    try:
        yield state
    finally:
        state.reset_redis()
        runtime.redis.close()
        runtime.db.engine.dispose()
        client.close()
        gitlab.stop()
        slack.stop()
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


@pytest.fixture(autouse=True)
def _edge_stays_healthy(request: pytest.FixtureRequest, edge: Edge) -> Iterator[None]:
    """Per test: a clean Redis DB 8 before; no outside call and a healthy server after."""
    edge.reset_redis()
    before, cpu = edge.requests, time.process_time()
    yield
    edge.per_test[request.node.nodeid] = (edge.requests - before, time.process_time() - cpu)
    edge.outside_calls_ok()
    assert edge.get("/healthz").status_code == 200
    ready = edge.get("/readyz")
    assert ready.status_code == 200, ready.get_data()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    state = _session.get("edge")
    if state is None:
        return
    elapsed = time.monotonic() - state.started
    terminalreporter.write_sep("-", "fuzz: requests sent to the Flask app (and CPU seconds)")
    for nodeid, (count, cpu) in state.per_test.items():
        terminalreporter.write_line(f"{count:7d} {cpu:6.1f}  {nodeid}")
    cpu = sum(cpu for _, cpu in state.per_test.values())
    terminalreporter.write_line(
        f"{state.requests:7d} {cpu:6.1f}  in total; {elapsed:.1f} s wall since the app was built"
    )
