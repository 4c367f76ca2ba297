"""A running bot for the integration tests: real `approval-bot web` and `worker` processes,
real Redis and database, and the fake Slack and GitLab servers on threads."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import redis
import requests
from rq import Worker as RqWorker
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from bot.sandbox.env import Credentials
from bot.sandbox.env import bot_env as sandbox_env
from bot.simulators.audit import FakeAuditApi
from bot.simulators.gitlab import FakeGitLab
from bot.simulators.gitlab_events import pipeline_event
from bot.simulators.slack import FakeSlack
from bot.simulators.slack_signing import (
    block_actions_payload,
    signed_headers,
    slash_command_body,
    view_submission_payload,
)
from workers.queue import make_queue

FIXTURES = Path(__file__).parent.parent / "fixtures"
WEBHOOK_SECRET = "gitlab-webhook-secret-for-tests"
SIGNING_SECRET = "slack-signing-secret-for-tests"
SLACK_TOKEN = "xoxb-test-token"
GITLAB_TOKEN = "glpat-test"
CREDENTIALS = Credentials(WEBHOOK_SECRET, SIGNING_SECRET, SLACK_TOKEN, GITLAB_TOKEN)

USERS = {
    "U0RM00001": ("rita", "rita@example.com"),
    "U0RM00002": ("ravi", "ravi@example.com"),
    "U0CO00001": ("colin", "colin@example.com"),
    "U0ADMIN01": ("ada", "ada@example.com"),
    "U0DEV0001": ("alice", "alice@example.com"),
    "U0BOB0001": ("bob", "bob@example.com"),
    "U0OUTSIDE": ("oscar", "oscar@example.com"),
    "U0GROUP01": ("greta", "greta@example.com"),
    "U0DBA0001": ("dana", "dana@example.com"),
}


def executable() -> str:
    found = Path(sys.executable).with_name("approval-bot")
    return str(found) if found.exists() else (shutil.which("approval-bot") or "approval-bot")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# RQ job statuses after which a job does nothing more (a failed job due a retry is "scheduled").
JOB_DONE = frozenset({"finished", "failed", "stopped", "canceled"})
REQUEST_ID_HEADER = "X-Request-Id"
SWEEP_JOB_ID = "sweep"  # the id the worker's ticker gives every sweep (workers/maintenance.py)


def wait_until(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class Bot:
    """The bot as an operator runs it, plus helpers to drive it as GitLab and Slack would."""

    workdir: Path
    env: dict[str, str]
    slack: FakeSlack
    gitlab: FakeGitLab
    audit: FakeAuditApi | None = None
    port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # Merged into every interaction payload / slash command form (e.g. an enterprise id).
    payload_extra: dict[str, Any] = field(default_factory=dict)
    command_extra: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def run(
        self, *args: str, check: bool = True, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [executable(), *args],
            cwd=self.workdir,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"approval-bot {' '.join(args)} failed: {result.stderr}")
        return result

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("ab")
        # A session of its own: a SIGKILL in a test reaches its children too (the RQ
        # scheduler a worker forks), as it would when a container or node dies.
        process = subprocess.Popen(
            [executable(), *args],
            cwd=self.workdir,
            env=self.env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        self.processes[name] = process
        return process

    def start_all(self) -> None:
        self.run("db", "upgrade")
        self.start("web", "web", "--port", str(self.port))
        self.start("worker", "worker")
        wait_until(self._ready, 30, "the web process to be ready")

    def _ready(self) -> bool:
        try:
            return requests.get(f"{self.url}/readyz", timeout=1).status_code == 200
        except (requests.ConnectionError, requests.Timeout):  # the worker may still be booting
            return False

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        process = self.processes.pop(name)
        if sig == signal.SIGKILL:
            self._kill_group(process)
        else:
            process.send_signal(sig)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill_group(process)
            return process.wait()

    @staticmethod
    def _kill_group(process: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    def stop_all(self) -> dict[str, int]:
        return {name: self.stop(name) for name in list(self.processes)}

    def jobs_of(self, answer: requests.Response) -> dict[str, str]:
        """job id -> RQ status of every job the HTTP request behind `answer` led to (the jobs
        it queued, and the jobs those queued: all carry its X-Request-Id in their meta)."""
        request_id = answer.headers[REQUEST_ID_HEADER]
        found: dict[str, str] = {}
        with redis.Redis.from_url(self.env["REDIS_URL"]) as client:
            for key in client.scan_iter("rq:job:*", count=500):
                job_id = key.decode().removeprefix("rq:job:")
                if ":" in job_id:  # rq:job:<id>:dependents and the like, not a job
                    continue
                meta, status = client.hmget(key, ["meta", "status"])
                if meta and json.loads(meta).get("request_id") == request_id:
                    found[job_id] = (status or b"").decode()
        return found

    def jobs_done(self, *answers: requests.Response, timeout: float = 20) -> None:
        """Wait until the worker has finished every job these HTTP requests led to: the
        positive signal before asserting that something did NOT happen."""
        for answer in answers:
            # The edge queues before it answers, and a job queues its follow-ups before it
            # ends; a job that succeeded is deleted (no result kept). So once no job of this
            # request is left short of done, every one of them has run.
            def done(answer: requests.Response = answer) -> bool:
                return set(self.jobs_of(answer).values()) <= JOB_DONE

            what = f"the jobs of {answer.request.method} {answer.request.path_url} to finish"
            wait_until(done, timeout, what)

    def queue_idle(self) -> bool:
        """Nothing queued and no job running on the bot's queue (the sweep included)."""
        with redis.Redis.from_url(self.env["REDIS_URL"]) as client:
            queue = make_queue(client)
            return queue.count == 0 and StartedJobRegistry(queue=queue).count == 0

    def sweep_finished_since(self, moment: datetime) -> bool:
        """A sweep (expiry, orphaned plays, lost posts) started after `moment` has finished."""
        with redis.Redis.from_url(self.env["REDIS_URL"]) as client:
            try:
                job = Job.fetch(SWEEP_JOB_ID, connection=client, serializer=JSONSerializer)
            except NoSuchJobError:
                return False
            started = job.started_at
            if started is not None and started.tzinfo is None:
                started = started.replace(tzinfo=UTC)
            return job.get_status() == "finished" and started is not None and started > moment

    def workers_listening(self) -> int:
        """How many RQ workers are registered on the bot's queue (each then takes jobs)."""
        with redis.Redis.from_url(self.env["REDIS_URL"]) as client:
            return int(RqWorker.count(queue=make_queue(client)))

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # --- GitLab side ---------------------------------------------------------------------

    def pipeline(self, **kwargs: Any) -> dict[str, Any]:
        """A gated pipeline, known to the fake GitLab as well."""
        kwargs.setdefault("gitlab_url", self.gitlab.url)
        event = pipeline_event(**kwargs)
        self.gitlab.seed_from_event(event)
        return event

    def webhook(
        self,
        event: dict[str, Any] | bytes,
        token: str = WEBHOOK_SECRET,
        key: str | None = None,
        **headers: str,
    ) -> requests.Response:
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        sent = {"Content-Type": "application/json", "X-Gitlab-Event": "Pipeline Hook", **headers}
        if token:
            sent["X-Gitlab-Token"] = token
        if key:
            sent["Idempotency-Key"] = key
        return requests.post(f"{self.url}/webhooks/gitlab", data=body, headers=sent, timeout=10)

    # --- Slack side ----------------------------------------------------------------------

    def post_slack(
        self, path: str, body: bytes, timestamp: int | None = None, secret: str = SIGNING_SECRET
    ) -> requests.Response:
        headers = signed_headers(secret, body, timestamp)
        return requests.post(f"{self.url}{path}", data=body, headers=headers, timeout=10)

    def click(self, user_id: str, action: str, request_id: str, **kwargs: Any) -> requests.Response:
        """A click on the button of the message that carries it (as Slack sends it), unless
        `channel_id` / `message_ts` say otherwise."""
        kwargs.setdefault("response_url", self.slack.response_url(f"{user_id}-{action}"))
        posted = self.message_with_button(action, request_id)
        if posted is not None:
            kwargs.setdefault("channel_id", posted[0])
            kwargs.setdefault("message_ts", posted[1])
        payload = block_actions_payload(user_id, action, request_id, **kwargs)
        return self.interact(payload)

    def interact(self, payload: dict[str, Any]) -> requests.Response:
        """POST a signed interaction payload (with `payload_extra` merged in)."""
        body = urlencode({"payload": json.dumps({**payload, **self.payload_extra})}).encode()
        return self.post_slack("/slack/interactions", body)

    def message_with_button(self, action: str, value: str) -> tuple[str, str] | None:
        """(channel, ts) of the latest message the bot posted with this button."""
        for entry in reversed(list(self.slack.message_log)):
            if entry.get("action") == "post" and _has_button(entry.get("blocks"), action, value):
                return str(entry["channel"]), str(entry["ts"])
        return None

    def submit_reason(
        self, user_id: str, request_id: str, reason: str, view_id: str | None = None
    ) -> requests.Response:
        """Submit the rejection form the bot opened for this request (its view id)."""
        if view_id is None:
            opened = [
                v["id"]
                for v in list(self.slack.views)
                if v["view"].get("private_metadata") == request_id
            ]
            view_id = opened[-1] if opened else "V0000000001"
        payload = view_submission_payload(user_id, request_id, reason, view_id=view_id)
        return self.interact(payload)

    def command(self, user_id: str, text: str) -> requests.Response:
        body = slash_command_body(user_id, text, response_url=self.slack.response_url("cmd"))
        if self.command_extra:
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            body = urlencode({**form, **self.command_extra}).encode()
        return self.post_slack("/slack/commands", body)

    def posted_request(self, channel: str = "C0DEPLOYS", count: int = 1) -> dict[str, Any]:
        """The latest approval request posted to a channel (waiting for it)."""

        def found() -> list[Any]:
            return [
                c
                for c in self.slack.calls_to("chat.postMessage")
                if c.params.get("channel") == channel and "thread_ts" not in c.params
            ]

        calls = wait_until(lambda: len(found()) >= count and found(), 15, f"a post in {channel}")
        return calls[-1].params  # type: ignore[no-any-return]

    def responses_to(self, name: str) -> list[str]:
        return [str(r.payload.get("text", "")) for r in self.slack.responses if r.name == name]

    def wait_response(self, name: str, timeout: float = 15) -> str:
        texts = wait_until(lambda: self.responses_to(name), timeout, f"a reply to {name}")
        return str(texts[-1])

    def message_update(self, needle: str, timeout: float = 15) -> dict[str, Any]:
        """The latest chat.update whose blocks mention `needle` (waiting for it)."""

        def found() -> list[Any]:
            return [
                c
                for c in self.slack.calls_to("chat.update")
                if needle in str(c.params.get("blocks"))
            ]

        return wait_until(found, timeout, f"a message update with {needle!r}")[-1].params  # type: ignore[no-any-return]

    def ledger(self) -> list[dict[str, Any]]:
        result = self.run("ledger", "export", "--format", "json")
        return json.loads(result.stdout)  # type: ignore[no-any-return]


def _has_button(blocks: Any, action: str, value: str) -> bool:
    for block in blocks or []:
        if isinstance(block, dict) and block.get("type") == "actions":
            for element in block.get("elements", []):
                if element.get("action_id") == action and element.get("value") == value:
                    return True
    return False


def request_id_of(message: dict[str, Any]) -> str:
    """The approval request id, as carried by the Approve button."""
    for block in message["blocks"]:
        if block.get("type") == "actions":
            for element in block["elements"]:
                if element["action_id"] == "approve":
                    return str(element["value"])
    raise AssertionError("no approve button in the message")


def bot_env(
    workdir: Path, slack: FakeSlack, gitlab: FakeGitLab, database_url: str, redis_url: str
) -> dict[str, str]:
    """The environment of the bot's processes, built as `approval-bot sandbox` builds it."""
    policy = workdir / "approvers.yml"
    policy.write_bytes((FIXTURES / "approvers.yml").read_bytes())
    return sandbox_env(
        database_url=database_url,
        redis_url=redis_url,
        gitlab_url=gitlab.url,
        slack_api_url=slack.api_url,
        policy=policy,
        credentials=CREDENTIALS,
        extra={
            "MAX_BODY_BYTES": str(64 * 1024),
            "USERGROUP_CACHE_TTL": "1",
            "SWEEP_INTERVAL_SECONDS": "2",
        },
    )


# GitLab user ids of the same people (bob and ravi as the pipeline events name them).
GITLAB_IDS = {"bob": 7, "ravi": 8}


def seed_users(slack: FakeSlack, gitlab: FakeGitLab | None = None) -> None:
    """The people in Slack and, with the same handle and e-mail, in GitLab: each GitLab user
    shows their e-mail as public (verified) e-mail, as a normal team would have it."""
    for number, (user_id, (name, email)) in enumerate(USERS.items()):
        slack.add_user(user_id, name, email, real_name=name.title())
        if gitlab is not None:
            gitlab_id = GITLAB_IDS.get(name, 20 + number)
            gitlab.users.add(gitlab_id, name, name.title(), public_email=email)
    slack.set_usergroup("S0RELEASE", ["U0GROUP01"])
