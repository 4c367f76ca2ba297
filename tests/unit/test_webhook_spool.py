"""The webhook spool (bot.web.spool): what the edge keeps while Redis or the database is
unreachable, and how it is handed back (issue #14 item 3)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from bot.logs import clear_secrets
from bot.runtime import build_runtime
from bot.settings import load_settings
from bot.web.app import create_app
from bot.web.spool import Spool, SpoolDrainer, Spooled
from bot.web.spool_drain import drainer_for
from tests.unit.edge_support import WEBHOOK_SECRET, edge_app, env_for

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "pipeline_hook.json"
# Nothing listens there: the database is "down" for the edge's readiness check.
DOWN_DATABASE = "postgresql://postgres@127.0.0.1:9/none?connect_timeout=1"


def spooled(n: int = 1) -> Spooled:
    return Spooled(
        {"object_kind": "pipeline", "n": n}, {"projects": [], "default": True}, None, 1.0
    )


def test_an_event_is_kept_whole_and_private(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    path = spool.keep(spooled())
    assert spool.pending() == [path]
    assert path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "spool").stat().st_mode & 0o777 == 0o700
    assert [p.name for p in (tmp_path / "spool").iterdir()] == [path.name]  # no temporary left
    assert json.loads(path.read_text())["payload"]["n"] == 1


def test_taken_events_are_removed_and_kept_ones_stay_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for n in range(3):
        spool.keep(spooled(n))
    seen: list[int] = []
    up = {"yes": True}

    def submit(event: Spooled) -> bool:
        if not up["yes"]:
            return False
        seen.append(event.payload["n"])
        return True

    drainer = SpoolDrainer(spool, submit, lambda: True, grace=0)
    up["yes"] = False
    assert drainer.drain_once() == 0
    assert len(spool.pending()) == 3  # still down: everything stays
    up["yes"] = True
    assert drainer.drain_once() == 3
    assert seen == [0, 1, 2]
    assert spool.pending() == []


def test_a_file_another_drainer_holds_is_left_to_it(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    path = spool.keep(spooled())
    with spool.claim(path) as mine:
        assert mine is not None
        with spool.claim(path) as theirs:
            assert theirs is None
    assert spool.pending() == []  # the holder took it


def test_an_unreadable_file_is_set_aside(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    (tmp_path / "00000000000000000001-x.json").write_text("{not json")
    assert SpoolDrainer(spool, lambda _e: True, lambda: True, grace=0).drain_once() == 0
    assert spool.pending() == []
    assert (tmp_path / "00000000000000000001-x.bad").exists()


def test_events_wait_until_both_have_answered_for_the_grace_period(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.keep(spooled())
    start = time.time()  # after the event was kept
    now = {"t": 0.0}
    up = {"yes": True}
    taken: list[Spooled] = []

    def submit(event: Spooled) -> bool:
        taken.append(event)
        return True

    drainer = SpoolDrainer(
        spool, submit, lambda: up["yes"], grace=5.0, clock=lambda: start + now["t"]
    )
    assert drainer.drain_once() == 0  # back at t=0: the grace period starts
    now["t"] = 4.9
    assert drainer.drain_once() == 0
    up["yes"], now["t"] = False, 5.5  # a break: it starts over
    assert drainer.drain_once() == 0
    up["yes"], now["t"] = True, 6.0
    assert drainer.drain_once() == 0
    now["t"] = 10.9
    assert drainer.drain_once() == 0
    assert taken == []
    assert len(spool.pending()) == 1
    now["t"] = 11.0
    assert drainer.drain_once() == 1
    assert len(taken) == 1
    assert spool.pending() == []


def test_an_event_kept_during_an_outage_the_drainer_did_not_see_waits_the_grace_period(
    tmp_path: Path,
) -> None:
    """An outage shorter than a check interval: the grace counts from the newest event."""
    spool = Spool(tmp_path)
    first = spool.keep(spooled(1))
    ten_s_ago = time.time_ns() - 10 * 10**9  # the first event was kept 10 s ago
    first.rename(first.with_name(f"{ten_s_ago:020d}-first.json"))
    now = {"t": time.time() - 6.0}
    taken: list[Spooled] = []

    def submit(event: Spooled) -> bool:
        taken.append(event)
        return True

    drainer = SpoolDrainer(spool, submit, lambda: True, grace=5.0, clock=lambda: now["t"])
    assert drainer.drain_once() == 0  # seen answering from here on
    spool.keep(spooled(2))  # a blip between two checks: answered 503, and kept
    kept_at = spool.newest_at()
    assert kept_at is not None
    now["t"] = kept_at + 0.9  # answering for 6.9 s, but the new event is 0.9 s old
    assert drainer.drain_once() == 0
    assert taken == []
    now["t"] = kept_at + 5.0
    assert drainer.drain_once() == 2
    assert [e.payload["n"] for e in taken] == [1, 2]


def test_a_full_spool_refuses(tmp_path: Path) -> None:
    spool = Spool(tmp_path, limit=1)
    spool.keep(spooled())
    with pytest.raises(Exception, match="already spooled"):
        spool.keep(spooled())


@contextmanager
def database_down_app(tmp: Path, redis_url: str, **extra: str) -> Iterator[Flask]:
    """The edge with its database unreachable (edge_app would migrate it first)."""
    runtime = build_runtime(load_settings(env_for(tmp, redis_url, **extra)))
    try:
        yield create_app(runtime)
    finally:
        runtime.db.dispose()
        runtime.redis.close()
        clear_secrets()


def hook(client: Any, event: dict[str, Any], key: str) -> Any:
    headers = {"X-Gitlab-Token": WEBHOOK_SECRET, "Idempotency-Key": key}
    return client.post("/webhooks/gitlab", data=json.dumps(event), headers=headers)


def spool_env(tmp_path: Path) -> dict[str, str]:
    return {"MAX_BODY_BYTES": str(1 << 20), "WEBHOOK_SPOOL_DIR": str(tmp_path / "spool")}


def answered_503_and_kept(tmp_path: Path, redis_url: str, event: dict[str, Any], key: str) -> None:
    """The delivery while the database is down: the contract's 503, and the event kept."""
    env = spool_env(tmp_path)
    with database_down_app(tmp_path, redis_url, DATABASE_URL=DOWN_DATABASE, **env) as app:
        answer = hook(app.test_client(), event, key)
        assert answer.status_code == 503, answer.get_data(as_text=True)
        assert answer.get_json()["kept"] is True
        assert "not ready" in answer.get_json()["error"]
        assert drainer_for(app, grace=0).drain_once() == 0  # still down: kept
    assert len(Spool(tmp_path / "spool").pending()) == 1


def queued_jobs(app: Flask) -> list[str]:
    return list(app.extensions["approval_bot"].queue.get_job_ids())


def test_the_database_down_is_a_503_and_the_kept_event_is_queued_once_both_answer(
    tmp_path: Path, redis_url: str
) -> None:
    event = json.loads(FIXTURE.read_text())
    answered_503_and_kept(tmp_path, redis_url, event, "db-down-1")
    with edge_app(tmp_path, redis_url, **spool_env(tmp_path)) as (app, runtime):
        assert drainer_for(app, grace=0).drain_once() == 1
        assert Spool(tmp_path / "spool").pending() == []
        jobs = queued_jobs(app)
        assert [j.split("-")[0] for j in jobs] == ["open"]
        # The 503 is not remembered (CONTRACT): the redelivery is processed, and reaches
        # the gate that already has its request.
        assert not runtime.redis.exists("approval-bot:delivery:db-down-1")
        again = hook(app.test_client(), event, "db-down-1")
        assert again.status_code == 200
        assert again.get_json() == {"status": "duplicate"}
        assert queued_jobs(app) == jobs


def test_a_redelivery_before_the_drain_opens_the_request_and_the_drain_is_a_no_op(
    tmp_path: Path, redis_url: str
) -> None:
    event = json.loads(FIXTURE.read_text())
    answered_503_and_kept(tmp_path, redis_url, event, "db-down-2")
    with edge_app(tmp_path, redis_url, **spool_env(tmp_path)) as (app, _runtime):
        again = hook(app.test_client(), event, "db-down-2")
        assert again.status_code == 202, again.get_data(as_text=True)
        jobs = queued_jobs(app)
        assert len(jobs) == 1
        assert drainer_for(app, grace=0).drain_once() == 1  # taken, as a duplicate
        assert Spool(tmp_path / "spool").pending() == []
        assert queued_jobs(app) == jobs


def test_a_late_drained_copy_does_not_reopen_a_gate_that_moved_on(
    tmp_path: Path, redis_url: str
) -> None:
    event = json.loads(FIXTURE.read_text())
    answered_503_and_kept(tmp_path, redis_url, event, "db-down-3")
    played = json.loads(FIXTURE.read_text())
    played["object_attributes"]["status"] = "running"
    for build in played["builds"]:
        if build["name"] == "compliance-gate":
            build["status"] = "success"
    with edge_app(tmp_path, redis_url, **spool_env(tmp_path)) as (app, _runtime):
        client = app.test_client()
        assert hook(client, event, "db-down-3").status_code == 202  # the redelivery opens
        assert hook(client, played, "played-3").status_code == 202  # then the gate is played
        jobs = queued_jobs(app)
        assert drainer_for(app, grace=0).drain_once() == 1
        assert queued_jobs(app) == jobs  # the stale "manual" copy opens nothing


def test_an_unwritable_spool_is_a_503(tmp_path: Path, redis_url: str) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("")
    env = {"MAX_BODY_BYTES": str(1 << 20), "WEBHOOK_SPOOL_DIR": str(blocked / "spool")}
    with database_down_app(tmp_path, redis_url, DATABASE_URL=DOWN_DATABASE, **env) as app:
        answer = hook(app.test_client(), json.loads(FIXTURE.read_text()), "nowhere-1")
    assert answer.status_code == 503
    assert "could not be spooled" in answer.get_json()["error"]
