"""The real Flask app against the Slack simulator with one pending request, to time the
edge's answers to Slack (the ack tests and `python -m bench slack_ack`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from flask.testing import FlaskClient
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from bot.runtime import Runtime
from bot.simulators.slack import FakeSlack
from bot.simulators.slack_signing import block_actions_body, signed_headers, slash_command_body
from bot.store import requests as store
from bot.store.models import RequestState, utcnow
from tests.unit.edge_support import edge_app
from workers import context
from workers import queue as jobqueue

SIGNING_SECRET = "unit-slack-signing-secret"
MESSAGE_TS = "1700000000.000100"
GROUP_MEMBER = "U0RM00009"  # a release manager only through the S0RELEASE user group


class Edge:
    def __init__(self, client: FlaskClient, runtime: Runtime, slack: FakeSlack) -> None:
        self.client = client
        self.runtime = runtime
        self.slack = slack
        self.request_id = _open_request(runtime)

    def reject_click(self, user: str = GROUP_MEMBER) -> float:
        """Click Reject; the seconds until the edge answered (it must answer 200)."""
        body = block_actions_body(
            user,
            "reject",
            self.request_id,
            channel_id="C0DEPLOYS",
            message_ts=MESSAGE_TS,
            response_url=self.slack.response_url(user),
        )
        started = time.monotonic()
        answer = self.client.post(
            "/slack/interactions", data=body, headers=signed_headers(SIGNING_SECRET, body)
        )
        elapsed = time.monotonic() - started
        assert answer.status_code == 200
        return elapsed

    def command(self, user: str, text: str) -> tuple[str, float]:
        body = slash_command_body(user, text)
        started = time.monotonic()
        answer = self.client.post(
            "/slack/commands", data=body, headers=signed_headers(SIGNING_SECRET, body)
        )
        elapsed = time.monotonic() - started
        assert answer.status_code == 200
        return str(answer.get_json()["text"]), elapsed

    def told(self, user: str = GROUP_MEMBER) -> str:
        """Run the queued jobs; what the user was told ephemerally."""
        queue = jobqueue.make_queue(self.runtime.redis)
        SimpleWorker([queue], connection=self.runtime.redis, serializer=JSONSerializer).work(
            burst=True
        )
        posts = [post for post in self.slack.responses if post.name == user]
        assert posts, f"{user} was told nothing"
        return str(posts[-1].payload["text"])


def _open_request(runtime: Runtime) -> str:
    now = utcnow()
    row, _ = store.create(
        runtime.db,
        {
            "project_id": 101,
            "project_path": "fintech/payments-api",
            "project_url": "https://gitlab.example.com/fintech/payments-api",
            "pipeline_id": 5001,
            "pipeline_url": "https://gitlab.example.com/fintech/payments-api/-/pipelines/5001",
            "job_id": 9001,
            "job_name": "compliance-gate",
            "ref": "main",
            "sha": "a" * 40,
            "channel": "C0DEPLOYS",
            "policy_version": "v" * 64,
            "state": RequestState.PENDING,
            "created_at": now,
            "updated_at": now,
            "expires_at": now + timedelta(hours=24),
        },
    )
    store.set_message(runtime.db, row.id, "C0DEPLOYS", MESSAGE_TS)
    return row.id


@contextmanager
def slack_edge(tmp_path: Path, redis_url: str) -> Iterator[Edge]:
    """The edge, a Slack simulator, one pending request; the worker runtime set for burst runs."""
    with FakeSlack() as slack:
        slack.set_usergroup("S0RELEASE", [GROUP_MEMBER])
        env = {"SLACK_API_URL": slack.api_url, "SLACK_BOT_TOKEN": slack.token}
        with edge_app(tmp_path, redis_url, **env) as (app, runtime):
            context.set_runtime(runtime)
            try:
                yield Edge(app.test_client(), runtime, slack)
            finally:
                context.set_runtime(None)
