"""The worker's jobs called in-process, as RQ calls them: fake Slack and GitLab on threads
(bot/simulators), SQLite and the test Redis database. Each scenario asserts what the fakes
were asked and the rows left behind, with no worker process and no waiting."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from bot import ledger
from bot.events import GateEvent, gate_event, gate_jobs, parse_pipeline
from bot.logs import clear_secrets
from bot.runtime import Runtime, build_runtime
from bot.settings import load_settings
from bot.simulators.gitlab import FakeGitLab
from bot.simulators.gitlab_events import pipeline_event
from bot.simulators.slack import FakeSlack
from bot.store import requests as store
from bot.store.migrate import upgrade
from bot.store.models import ApprovalRequest, RequestState, utcnow
from tests.integration.harness import bot_env, seed_users
from workers import jobs, maintenance
from workers.context import set_runtime

RM, CO, OUTSIDER = "U0RM00001", "U0CO00001", "U0OUTSIDE"
_ids = itertools.count(1)


@dataclass
class World:
    """The worker's runtime and the fakes it talks to."""

    rt: Runtime
    slack: FakeSlack
    gitlab: FakeGitLab

    def gate_event(self, **kwargs: Any) -> GateEvent:
        """The GateEvent the edge queues for a fresh gated pipeline GitLab knows about."""
        n = next(_ids)
        kwargs.setdefault("pipeline_id", 40_000 + n)
        kwargs.setdefault("gate_job_id", 400_000 + n * 10)
        hook = pipeline_event(gitlab_url=self.gitlab.url, **kwargs)
        self.gitlab.seed_from_event(hook)
        parsed = parse_pipeline(hook)
        [(_, build)] = gate_jobs(parsed, self.rt.policy.current.policy)
        return gate_event(parsed, build)

    def request(self, request_id: str) -> ApprovalRequest:
        return store.get(self.rt.db, request_id)

    def click(self, user_id: str, request_id: str, action: str = "approve") -> dict[str, Any]:
        """The job payload of a click on the request's own message."""
        request = self.request(request_id)
        return {
            "request_id": request_id,
            "user_id": user_id,
            "user_name": user_id.lower(),
            "response_url": self.slack.response_url(f"{user_id}-{action}"),
            "channel_id": request.channel,
            "message_channel": request.channel,
            "message_ts": request.message_ts,
        }

    def rejection(self, user_id: str, request_id: str, reason: str) -> dict[str, Any]:
        return {"request_id": request_id, "user_id": user_id, "user_name": "r", "reason": reason}

    def replies(self, name: str) -> list[str]:
        return [str(r.payload.get("text", "")) for r in self.slack.responses if r.name == name]

    def posts(self, channel: str) -> list[dict[str, Any]]:
        calls = self.slack.calls_to("chat.postMessage")
        return [
            c.params
            for c in calls
            if c.params.get("channel") == channel and "thread_ts" not in c.params
        ]

    def updates(self, ts: str | None) -> list[str]:
        calls = self.slack.calls_to("chat.update")
        return [str(c.params.get("blocks")) for c in calls if c.params.get("ts") == ts]

    def ledger_kinds(self, request_id: str) -> list[str]:
        with self.rt.db.sessions() as session:
            return [r["kind"] for r in ledger.records(session) if r["request_id"] == request_id]

    def expire_now(self, request_id: str) -> None:
        """Move the request's deadline into the past (the clock is not ours to turn)."""
        with self.rt.db.transaction() as session:
            session.execute(
                update(ApprovalRequest)
                .where(ApprovalRequest.id == request_id)
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )


@pytest.fixture
def world(tmp_path: Path, redis_url: str) -> Iterator[World]:
    slack, gitlab = FakeSlack().start(), FakeGitLab().start()
    seed_users(slack, gitlab)
    env = bot_env(tmp_path, slack, gitlab, f"sqlite:///{tmp_path}/approvals.db", redis_url)
    rt = build_runtime(load_settings(env))
    upgrade(rt.db)
    set_runtime(rt)
    try:
        yield World(rt, slack, gitlab)
        assert not slack.unexpected, slack.unexpected
        assert not gitlab.unexpected, gitlab.unexpected
    finally:
        set_runtime(None)
        rt.db.dispose()
        rt.redis.close()
        clear_secrets()
        slack.stop()
        gitlab.stop()


def opened(world: World, **kwargs: Any) -> tuple[str, int]:
    """Run open_request for a fresh gate: (request id, gate job id)."""
    event = world.gate_event(**kwargs)
    request_id = jobs.open_request(event)
    assert request_id is not None
    return request_id, event["job_id"]


def test_open_posts_one_request_with_its_buttons(world: World) -> None:
    request_id, _ = opened(world)
    request = world.request(request_id)
    assert request.state == RequestState.PENDING
    [post] = world.posts("C0DEPLOYS")
    assert request.message_ts is not None
    assert f"'value': '{request_id}'" in str(post["blocks"])
    assert world.ledger_kinds(request_id) == []


def test_duplicate_webhook_job_opens_and_posts_once(world: World) -> None:
    event = world.gate_event()
    first = jobs.open_request(event)
    again = jobs.open_request(GateEvent(**event))  # the same facts, delivered again
    assert first is not None
    assert again == first
    assert len(world.posts("C0DEPLOYS")) == 1
    assert store.find_for_job(world.rt.db, event["project_id"], event["job_id"]) is not None


def test_approvals_to_quorum_play_the_gate_once_with_one_signoff(world: World) -> None:
    request_id, job_id = opened(world)
    assert jobs.approve(world.click(RM, request_id)) == "granted"
    assert "recorded" in world.replies(f"{RM}-approve")[-1]
    assert world.gitlab.play_count(job_id) == 0
    assert jobs.approve(world.click(CO, request_id)) == "played"
    assert "completed the quorum" in world.replies(f"{CO}-approve")[-1]
    assert world.gitlab.play_count(job_id) == 1
    assert world.request(request_id).state == RequestState.PLAYED
    assert world.ledger_kinds(request_id) == ["signoff"]
    message_ts = world.request(request_id).message_ts
    assert any("Approved" in blocks for blocks in world.updates(message_ts))


def test_retried_jobs_after_the_play_never_play_again(world: World) -> None:
    request_id, job_id = opened(world)
    jobs.approve(world.click(RM, request_id))
    final = world.click(CO, request_id)
    assert jobs.approve(final) == "played"
    # RQ re-runs a job whose answer was lost: the same click, and the play step itself.
    assert jobs.approve(final) == RequestState.PLAYED
    assert "already played" in world.replies(f"{CO}-approve")[-1]
    assert jobs.finish_approved(world.rt, request_id) == "play-claimed-elsewhere"
    assert world.gitlab.play_count(job_id) == 1
    assert world.ledger_kinds(request_id) == ["signoff"]


def test_not_an_approver_counts_nothing(world: World) -> None:
    request_id, job_id = opened(world)
    assert jobs.approve(world.click(OUTSIDER, request_id)).startswith("denied:")
    assert "may not approve" in world.replies(f"{OUTSIDER}-approve")[-1]
    assert jobs.approve(world.click(RM, request_id)) == "granted"  # still needs both roles
    assert world.gitlab.play_count(job_id) == 0
    assert world.request(request_id).state == RequestState.PENDING


def test_reject_records_the_reason_cancels_and_never_plays(world: World) -> None:
    request_id, job_id = opened(world)
    assert jobs.reject(world.rejection(RM, request_id, "not on a Friday")) == "rejected"
    request = world.request(request_id)
    assert request.state == RequestState.REJECTED
    assert request.reject_reason == "not on a Friday"
    assert world.ledger_kinds(request_id) == ["rejection"]
    assert world.gitlab.calls_to("POST", rf"/pipelines/{request.pipeline_id}/cancel")
    assert any("Rejected" in blocks for blocks in world.updates(request.message_ts))
    # A late approval and a re-run of the rejection change nothing.
    assert jobs.approve(world.click(CO, request_id)) == RequestState.REJECTED
    assert jobs.reject(world.rejection(RM, request_id, "again")) == RequestState.REJECTED
    assert world.gitlab.play_count(job_id) == 0
    assert world.ledger_kinds(request_id) == ["rejection"]


def test_expiry_by_the_sweep_closes_the_request_and_blocks_approval(world: World) -> None:
    request_id, job_id = opened(world)
    jobs.approve(world.click(RM, request_id))
    world.expire_now(request_id)
    assert maintenance.sweep()["expired"] == 1
    request = world.request(request_id)
    assert request.state == RequestState.EXPIRED
    assert world.ledger_kinds(request_id) == ["expiry"]
    assert any("Expired" in blocks for blocks in world.updates(request.message_ts))
    assert maintenance.sweep()["expired"] == 0  # once
    assert jobs.approve(world.click(CO, request_id)) == RequestState.EXPIRED
    assert world.gitlab.play_count(job_id) == 0


def test_a_click_after_the_deadline_expires_the_request_itself(world: World) -> None:
    request_id, job_id = opened(world)
    world.expire_now(request_id)  # the sweep has not come by yet
    assert jobs.approve(world.click(RM, request_id)) == "expired"
    assert "expired" in world.replies(f"{RM}-approve")[-1]
    assert world.request(request_id).state == RequestState.EXPIRED
    assert world.ledger_kinds(request_id) == ["expiry"]
    assert world.gitlab.play_count(job_id) == 0
