"""The `compliance/sign-off` commit status as GitLab takes it: a repeated pending or running
is refused with 400 by GitLab, so the bot never sends one, treats GitLab's "cannot
transition" as done, and the merge-request note never waits on the status (issue #14 item 8)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from bot.gitlab import StatusTransitionRefused
from bot.runtime import Runtime
from bot.simulators.gitlab import FakeGitLab
from bot.store import requests as store
from bot.store.models import ApprovalRequest, RequestState, utcnow
from tests.unit.edge_support import edge_app
from workers import context, writeback
from workers import queue as jobqueue

SHA = "c0ffee" + "0" * 34
PROJECT = 101


@dataclass
class World:
    runtime: Runtime
    gitlab: FakeGitLab
    request: ApprovalRequest

    def status_posts(self) -> list[str]:
        return [call.json["state"] for call in self.gitlab.calls_to("POST", "/statuses/")]

    def run_jobs(self) -> None:
        queue = jobqueue.make_queue(self.runtime.redis)
        SimpleWorker([queue], connection=self.runtime.redis, serializer=JSONSerializer).work(
            burst=True
        )


@pytest.fixture
def world(tmp_path: Path, redis_url: str) -> Iterator[World]:
    with FakeGitLab() as gitlab:
        gitlab.add_project(PROJECT, "fintech/payments-api")
        env = {"GITLAB_URL": gitlab.url, "GITLAB_TOKEN": gitlab.token}
        with edge_app(tmp_path, redis_url, **env) as (_, runtime):
            now = utcnow()
            request, _ = store.create(
                runtime.db,
                {
                    "project_id": PROJECT,
                    "project_path": "fintech/payments-api",
                    "project_url": "https://gitlab.example.com/fintech/payments-api",
                    "pipeline_id": 5001,
                    "pipeline_url": "https://gitlab.example.com/p/-/pipelines/5001",
                    "job_id": 9001,
                    "job_name": "compliance-gate",
                    "ref": "main",
                    "sha": SHA,
                    "channel": "C0DEPLOYS",
                    "policy_version": "v" * 64,
                    "merge_request_iid": 7,
                    "state": RequestState.PENDING,
                    "created_at": now,
                    "updated_at": now,
                    "expires_at": now + timedelta(hours=24),
                },
            )
            context.set_runtime(runtime)
            try:
                yield World(runtime, gitlab, request)
            finally:
                context.set_runtime(None)


def test_simulator_refuses_repeated_open_states_like_gitlab(world: World) -> None:
    post = world.runtime.gitlab.set_commit_status
    post(PROJECT, SHA, "pending", "waiting", None, 5001)
    with pytest.raises(StatusTransitionRefused, match="via :enqueue from :pending"):
        post(PROJECT, SHA, "pending", "waiting", None, 5001)
    post(PROJECT, SHA, "running", "playing", None, 5001)
    with pytest.raises(StatusTransitionRefused, match="via :run from :running"):
        post(PROJECT, SHA, "running", "playing", None, 5001)
    with pytest.raises(StatusTransitionRefused, match="via :enqueue from :running"):
        post(PROJECT, SHA, "pending", "waiting", None, 5001)
    post(PROJECT, SHA, "success", "signed off", None, 5001)
    post(PROJECT, SHA, "pending", "a new status once the last one finished", None, 5001)
    assert [s["state"] for s in world.gitlab.statuses] == [
        "pending",
        "running",
        "success",
        "pending",
    ]


def test_a_repeated_state_is_not_sent_again(world: World) -> None:
    payload = {"request_id": world.request.id}
    assert writeback.update(payload) == "pending"
    assert writeback.update(payload) == "unchanged"
    assert world.status_posts() == ["pending"]
    assert world.gitlab.refused_statuses == []


def test_gitlab_saying_the_status_is_already_there_counts_as_done(world: World) -> None:
    world.runtime.gitlab.set_commit_status(PROJECT, SHA, "pending", "set earlier", None, 5001)

    writeback.schedule(world.runtime, world.request)
    world.run_jobs()

    assert len(world.gitlab.refused_statuses) == 1  # GitLab said 400: already pending
    queue = jobqueue.make_queue(world.runtime.redis)
    assert queue.failed_job_registry.count == 0
    assert queue.scheduled_job_registry.count == 0  # not waiting for an RQ retry either


def test_the_note_is_posted_when_the_status_fails(world: World) -> None:
    world.gitlab.fail_next("POST", "/statuses/", 500, times=None)

    writeback.schedule(world.runtime, world.request, "Signed off by Rita and Colin")
    world.run_jobs()

    assert [note["text"] for note in world.gitlab.notes] == ["Signed off by Rita and Colin"]
    assert world.gitlab.statuses == []
