"""The webhook spool (bot.web.spool): what the edge keeps while Redis or the database is
unreachable, and how it is handed back (issue #14 item 3)."""

from __future__ import annotations

import json
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

    drainer = SpoolDrainer(spool, submit)
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
    assert SpoolDrainer(spool, lambda _e: True).drain_once() == 0
    assert spool.pending() == []
    assert (tmp_path / "00000000000000000001-x.bad").exists()


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


def test_the_database_down_spools_and_the_drainer_queues_it_once_both_answer(
    tmp_path: Path, redis_url: str
) -> None:
    event = json.loads(FIXTURE.read_text())
    spool_dir = tmp_path / "spool"
    env = {"MAX_BODY_BYTES": str(1 << 20), "WEBHOOK_SPOOL_DIR": str(spool_dir)}
    with database_down_app(tmp_path, redis_url, DATABASE_URL=DOWN_DATABASE, **env) as app:
        answer = hook(app.test_client(), event, "db-down-1")
        assert answer.status_code == 202
        assert answer.get_json() == {"status": "queued", "spooled": True}
        assert drainer_for(app).drain_once() == 0  # still down: kept
    assert len(Spool(spool_dir).pending()) == 1
    with edge_app(tmp_path, redis_url, **env) as (app, runtime):  # the database is back
        assert drainer_for(app).drain_once() == 1
        assert Spool(spool_dir).pending() == []
        assert runtime.redis.exists("approval-bot:delivery:db-down-1")
        assert len(app.extensions["approval_bot"].queue) == 1  # the open-request job
        again = hook(app.test_client(), event, "db-down-1")
    assert again.get_json() == {"status": "duplicate"}


def test_an_unwritable_spool_is_a_503(tmp_path: Path, redis_url: str) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("")
    env = {"MAX_BODY_BYTES": str(1 << 20), "WEBHOOK_SPOOL_DIR": str(blocked / "spool")}
    with database_down_app(tmp_path, redis_url, DATABASE_URL=DOWN_DATABASE, **env) as app:
        answer = hook(app.test_client(), json.loads(FIXTURE.read_text()), "nowhere-1")
    assert answer.status_code == 503
    assert "could not be spooled" in answer.get_json()["error"]
