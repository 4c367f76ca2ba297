"""Play GitLab and Slack against the real HTTP edge: signed webhooks, clicks and modal submits.

Nothing here calls the bot's code: every action is the request GitLab or Slack would send,
with the secret token or the v0 signature, so the sandbox exercises the product itself.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import requests

from bot.sandbox.env import Credentials
from bot.sandbox.people import CHANNELS, Person
from bot.simulators.gitlab import FakeGitLab
from bot.simulators.gitlab_events import build, hook_headers, pipeline_event, to_body
from bot.simulators.slack import FakeSlack
from bot.simulators.slack_signing import block_actions_payload, signed_headers
from bot.simulators.slack_signing import view_submission_payload as _view_submission

EDGE_TIMEOUT_S = 10
FIRST_PROJECT_ID = 101
CODE_FILE = "src/payments/retry.py"
CODE_CHANGE = "MAX_RETRIES = 3\n"
MIGRATION_FILE = "db/migrations/20261125_add_fee.sql"
MIGRATION_SQL = "ALTER TABLE transactions ADD COLUMN fee_cents bigint NOT NULL;\n"
SMOKE_JOB = "post-deploy"
ROLLBACK_JOB = "rollback:production"
NOT_PLAYED = "pipeline #{pipeline}: its gate has not been played yet"


def _after_deploy(gate_job_id: int) -> list[dict[str, Any]]:
    """The smoke test after the deploy, and the manual rollback job Roll back plays."""
    return [
        build(gate_job_id + 2, SMOKE_JOB, "verify", "created"),
        build(gate_job_id + 3, ROLLBACK_JOB, "rollback", "manual", when="manual"),
    ]


@dataclass(frozen=True)
class PipelineRequest:
    project: str
    ref: str
    triggered_by: Person
    author: Person
    title: str
    migration: bool = False


@dataclass(frozen=True)
class Click:
    """One button click sent as a person: where its ephemeral answers belong."""

    user_id: str
    action: str
    channel: str
    message_ts: str


@dataclass
class Started:
    pipeline_id: int
    project: str
    gate_job_id: int
    triggered_by: str
    event: dict[str, Any] = field(default_factory=dict, repr=False)
    deployed: bool = False


@dataclass
class Driver:
    edge_url: str
    credentials: Credentials
    slack: FakeSlack
    gitlab: FakeGitLab
    # Random ids per run: Redis remembers gate jobs it saw across sandbox runs.
    _ids: itertools.count[int] = field(
        default_factory=lambda: itertools.count(secrets.randbelow(80_000) * 1000 + 10_000_000)
    )
    _clicks: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    project_ids: dict[str, int] = field(default_factory=dict)
    pipelines: list[Started] = field(default_factory=list)
    clicks: dict[str, Click] = field(default_factory=dict)  # response_url name -> click
    modal_users: dict[str, str] = field(default_factory=dict)  # trigger_id -> user id
    closed_views: set[str] = field(default_factory=set)

    # --- GitLab ---------------------------------------------------------------------------

    def start_pipeline(self, wanted: PipelineRequest) -> dict[str, Any]:
        """A gated pipeline known to FakeGitLab, announced by a signed Pipeline Hook."""
        with self._lock:
            pipeline_id = next(self._ids)
            project_id = self.project_ids.setdefault(
                wanted.project, FIRST_PROJECT_ID + len(self.project_ids)
            )
        sha = hashlib.sha1(f"sandbox-{pipeline_id}".encode(), usedforsecurity=False).hexdigest()
        event = pipeline_event(
            project_id=project_id,
            project_path=wanted.project,
            pipeline_id=pipeline_id,
            ref=wanted.ref,
            sha=sha,
            gate_job_id=pipeline_id * 10 + 2,
            user=wanted.triggered_by.gitlab_user,
            author=wanted.author.commit_author,
            commit_title=wanted.title,
            gitlab_url=self.gitlab.url,
            extra_builds=_after_deploy(pipeline_id * 10 + 2),
        )
        self.gitlab.seed_from_event(event)
        self._add_commit(project_id, sha, wanted)
        self.pipelines.append(
            Started(
                pipeline_id, wanted.project, pipeline_id * 10 + 2, wanted.triggered_by.name, event
            )
        )
        return {"pipeline_id": pipeline_id, **self._hook(event)}

    def deploy(self, pipeline_id: int, smoke_passes: bool) -> dict[str, Any]:
        """The played gate's pipeline runs on: the deploy job succeeds and the post-deploy
        smoke test passes or fails, as GitLab would report it in a Pipeline Hook."""
        started = next((p for p in self.pipelines if p.pipeline_id == pipeline_id), None)
        if started is None or self.gitlab.play_count(started.gate_job_id) == 0:
            raise LookupError(NOT_PLAYED.format(pipeline=pipeline_id))
        statuses = {
            "compliance-gate": "success",
            "deploy-production": "success",
            SMOKE_JOB: "success" if smoke_passes else "failed",
        }
        event = dict(started.event)
        attributes = {
            **event["object_attributes"],
            "status": "success" if smoke_passes else "failed",
        }
        event["object_attributes"] = attributes
        event["builds"] = [
            {**b, "status": statuses.get(b["name"], b["status"])} for b in event["builds"]
        ]
        with self._lock:
            for job in event["builds"]:
                self.gitlab.job(job["id"])["status"] = job["status"]
            self.gitlab.pipeline(pipeline_id)["status"] = attributes["status"]
            started.deployed = True
        return {"pipeline_id": pipeline_id, **self._hook(event)}

    def _hook(self, event: dict[str, Any]) -> dict[str, Any]:
        headers = hook_headers(event, self.credentials.webhook_secret, gitlab_url=self.gitlab.url)
        answer = requests.post(
            f"{self.edge_url}/webhooks/gitlab",
            data=to_body(event),
            headers=headers,
            timeout=EDGE_TIMEOUT_S,
        )
        return _answer(answer)

    def _add_commit(self, project_id: int, sha: str, wanted: PipelineRequest) -> None:
        """The commit's changed files, for the evidence the worker gathers from GitLab."""
        # Looked up, not called directly: FakeGitLab gained add_commit with the evidence work.
        add_commit = getattr(self.gitlab, "add_commit", None)
        if add_commit is None:
            return
        files = {CODE_FILE: CODE_CHANGE}
        if wanted.migration:
            files[MIGRATION_FILE] = MIGRATION_SQL
        add_commit(
            project_id,
            sha,
            title=wanted.title,
            author_name=wanted.author.real_name,
            author_email=wanted.author.email,
            files=files,
        )

    # --- Slack ----------------------------------------------------------------------------

    def click(
        self, user: Person, action: str, value: str, block_id: str, channel: str, ts: str
    ) -> dict[str, Any]:
        """A signed `block_actions` request, as Slack sends it when `user` clicks a button."""
        n = next(self._clicks)
        name = f"click-{n}"
        trigger_id = f"{time.time():.6f}.{n}.{secrets.token_hex(8)}"
        self.clicks[name] = Click(user.slack_id, action, channel, ts)
        self.modal_users[trigger_id] = user.slack_id
        current = self.slack.messages.get((channel, ts), {})
        payload = block_actions_payload(
            user.slack_id,
            action,
            value,
            trigger_id=trigger_id,
            response_url=self.slack.response_url(name),
            channel_id=channel,
            channel_name=CHANNELS.get(channel, channel),
            message_ts=ts,
            user_name=user.name,
            block_id=block_id,
            message={"ts": ts, "text": current.get("text"), "blocks": current.get("blocks")},
        )
        return self._interaction(payload)

    def submit_view(
        self, user: Person, view_id: str, values: dict[str, dict[str, str]]
    ) -> dict[str, Any]:
        """A signed `view_submission` of a modal the bot opened, with the typed values."""
        opened = next((v for v in list(self.slack.views) if v["id"] == view_id), None)
        if opened is None:
            return {"status": 404, "body": {"error": "no such view"}}
        view = opened["view"]
        payload = _view_submission(
            user.slack_id,
            str(view.get("private_metadata", "")),
            "",
            str(view.get("callback_id", "")),
            view_id=view_id,
            user_name=user.name,
        )
        payload["view"]["blocks"] = view.get("blocks", [])
        payload["view"]["state"]["values"] = {
            block: {action: {"type": "plain_text_input", "value": text}}
            for block, actions in values.items()
            for action, text in actions.items()
        }
        answer = self._interaction(payload)
        body = answer.get("body")
        if not (isinstance(body, dict) and body.get("response_action") == "errors"):
            self.closed_views.add(view_id)
        return answer

    def close_view(self, view_id: str) -> None:
        self.closed_views.add(view_id)

    def _interaction(self, payload: dict[str, Any]) -> dict[str, Any]:
        body = urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode()
        answer = requests.post(
            f"{self.edge_url}/slack/interactions",
            data=body,
            headers=signed_headers(self.credentials.signing_secret, body),
            timeout=EDGE_TIMEOUT_S,
        )
        return _answer(answer)


def _answer(response: requests.Response) -> dict[str, Any]:
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return {"status": response.status_code, "body": body}
