"""A play GitLab refuses with 400 while the job still reads `manual` (protected environment,
a permission the bot lacks): at most 3 attempts, everyone told once, nothing signed off, and
an admin's `/approvals retry` plays it through the same exactly-once path (issue #14 item 7)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from rq import SimpleWorker
from rq.serializers import JSONSerializer
from sqlalchemy import select

from bot.runtime import Runtime
from bot.simulators.gitlab import FakeGitLab
from bot.simulators.slack import FakeSlack
from bot.simulators.slack_signing import signed_headers, slash_command_body
from bot.simulators.slack_workspace import dm_channel_for
from bot.store import requests as store
from bot.store.db import Database
from bot.store.models import LedgerEntry, RequestState, utcnow
from bot.store.play_failures import fail_play, find_failed_play, reopen_for_retry
from bot.web.commands import HELP, answer
from tests.unit.edge_support import edge_app
from workers import context, jobs
from workers import queue as jobqueue

PROJECT, PIPELINE, JOB = 101, 5001, 9001
ADMIN = "U0ADMIN01"
UNPLAYABLE = {"message": "400 Bad request - Unplayable Job <!channel> *bold*"}


@dataclass
class World:
    runtime: Runtime
    gitlab: FakeGitLab
    slack: FakeSlack
    request_id: str
    message_ts: str
    client: FlaskClient

    def command(self, user: str, text: str) -> tuple[str, float]:
        """`/approvals <text>` through the edge: the ephemeral answer and its time."""
        body = slash_command_body(user, text)
        headers = signed_headers("unit-slack-signing-secret", body)
        started = time.monotonic()
        answered = self.client.post("/slack/commands", data=body, headers=headers)
        elapsed = time.monotonic() - started
        assert answered.status_code == 200
        reply = answered.get_json()
        assert reply["response_type"] == "ephemeral"
        return str(reply["text"]), elapsed

    def plays(self) -> int:
        return len(self.gitlab.calls_to("POST", f"/jobs/{JOB}/play"))

    def state(self) -> str:
        return store.get(self.runtime.db, self.request_id).state

    def ledger_kinds(self) -> list[str]:
        with self.runtime.db.sessions() as session:
            return list(session.execute(select(LedgerEntry.kind)).scalars())

    def message_text(self) -> str:
        return str(self.slack.message("C0DEPLOYS", self.message_ts))

    def run_jobs(self) -> None:
        queue = jobqueue.make_queue(self.runtime.redis)
        SimpleWorker([queue], connection=self.runtime.redis, serializer=JSONSerializer).work(
            burst=True
        )


@pytest.fixture
def world(tmp_path: Path, redis_url: str) -> Iterator[World]:
    with FakeGitLab() as gitlab, FakeSlack() as slack:
        gitlab.add_project(PROJECT, "fintech/payments-api")
        gitlab.add_pipeline(PROJECT, PIPELINE, "manual", sha="c" * 40)
        gitlab.add_job(PROJECT, PIPELINE, JOB)
        env = {
            "GITLAB_URL": gitlab.url,
            "GITLAB_TOKEN": gitlab.token,
            "SLACK_API_URL": slack.api_url,
            "SLACK_BOT_TOKEN": slack.token,
        }
        with edge_app(tmp_path, redis_url, **env) as (app, runtime):
            now = utcnow()
            request, _ = store.create(
                runtime.db,
                {
                    "project_id": PROJECT,
                    "project_path": "fintech/payments-api",
                    "pipeline_id": PIPELINE,
                    "pipeline_url": "https://gitlab.example.com/p/-/pipelines/5001",
                    "job_id": JOB,
                    "job_name": "compliance-gate",
                    "ref": "main",
                    "sha": "c" * 40,
                    "channel": "C0DEPLOYS",
                    "policy_version": "v" * 64,
                    "state": RequestState.APPROVED,
                    "created_at": now,
                    "updated_at": now,
                    "expires_at": now + timedelta(hours=24),
                },
            )
            ts = runtime.slack.post_message("C0DEPLOYS", "Approval requested", [])
            store.set_message(runtime.db, request.id, "C0DEPLOYS", ts)
            context.set_runtime(runtime)
            try:
                yield World(runtime, gitlab, slack, request.id, ts, app.test_client())
            finally:
                context.set_runtime(None)


def refused_play(world: World) -> str:
    world.gitlab.fail_next("POST", f"/jobs/{JOB}/play", 400, times=None, body=UNPLAYABLE)
    started = time.monotonic()
    outcome = jobs.finish_approved(world.runtime, world.request_id)
    assert time.monotonic() - started < 30
    return outcome


def test_a_refused_play_is_tried_3_times_and_everyone_is_told_once(world: World) -> None:
    assert refused_play(world) == "play-failed"

    assert world.plays() == 3
    assert world.state() == RequestState.PLAY_FAILED
    assert "signoff" not in world.ledger_kinds()
    message = world.message_text()
    assert "Play failed" in message
    assert "Unplayable Job" in message
    assert "/approvals retry" in message
    thread = [m for m in world.slack.message_log if m.get("thread_ts") == world.message_ts]
    assert len(thread) == 1
    assert "was not played" in thread[0]["text"]
    dms = [m for m in world.slack.message_log if m["channel"] == dm_channel_for(ADMIN)]
    assert len(dms) == 1
    assert "Unplayable Job" in dms[0]["text"]
    told = [m["text"] for m in world.slack.message_log] + [message]
    assert not [text for text in told if "<!channel>" in text]  # GitLab's words escaped

    # The sweep or a re-run of the job plays nothing more and tells nobody again.
    assert jobs.finish_approved(world.runtime, world.request_id) == "play-claimed-elsewhere"
    assert world.plays() == 3
    posts = [m for m in world.slack.message_log if m["action"] == "post"]
    assert len(posts) == 3  # the request, the thread notice, the DM


def test_an_admin_retries_the_play_once_gitlab_allows_it(world: World) -> None:
    refused_play(world)
    world.gitlab.clear_faults()

    listing = answer(world.runtime, ADMIN, "failed")
    assert "refused to play" in listing
    assert world.request_id in listing
    assert "Only policy admins" in answer(world.runtime, "U0RM00001", f"retry {PIPELINE}")
    assert world.state() == RequestState.PLAY_FAILED
    text, elapsed = world.command(ADMIN, f"retry {PIPELINE}")
    assert "Playing the gate" in text
    assert elapsed < 3
    world.run_jobs()

    assert world.gitlab.play_count(JOB) == 1
    assert world.state() == RequestState.PLAYED
    assert world.ledger_kinds().count("signoff") == 1
    assert "No failed job or refused play" in answer(world.runtime, ADMIN, f"retry {PIPELINE}")
    assert "No failed jobs" in answer(world.runtime, ADMIN, "failed")


def test_retry_is_named_in_help() -> None:
    assert "/approvals retry <request or pipeline id>" in HELP


def test_a_refused_play_is_found_by_request_or_pipeline_id(db: Database) -> None:
    now = utcnow()
    fields = {
        "project_id": PROJECT,
        "project_path": "fintech/payments-api",
        "pipeline_id": PIPELINE,
        "job_id": JOB,
        "job_name": "compliance-gate",
        "channel": "C0DEPLOYS",
        "policy_version": "v" * 64,
        "state": RequestState.PLAYING,
        "created_at": now,
        "updated_at": now,
        "expires_at": now + timedelta(hours=24),
    }
    request, _ = store.create(db, fields)
    assert find_failed_play(db, request.id) is None  # still playing
    assert fail_play(db, request.id, "refused") is not None
    assert fail_play(db, request.id, "refused again") is None  # told once
    for name in (request.id, str(PIPELINE)):
        found = find_failed_play(db, name)
        assert found is not None
        assert found.id == request.id
    assert find_failed_play(db, "5002") is None
    assert find_failed_play(db, "9" * 40) is None  # longer than any pipeline id
    assert reopen_for_retry(db, request.id) is not None
    assert store.get(db, request.id).state == RequestState.APPROVED
    assert reopen_for_retry(db, request.id) is None
