"""`FakeGitLab`: a small GitLab REST API v4 state machine on a local port.

Use `gitlab.Gitlab(fake.url, private_token=fake.token)`. Only the endpoints
the bot needs exist; any other request answers 404 and lands in
`.unexpected` so tests can assert it stays empty.
"""

from __future__ import annotations

import copy
import hashlib
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wrappers import Request, Response

from bot.simulators.gitlab_entities import (
    BOT_USER,
    CANCELABLE_STATUSES,
    COMPLETED_STATUSES,
    composite_status,
    job_json,
    pipeline_json,
    project_json,
    user_json,
)
from bot.simulators.gitlab_repository import FakeCommit, FakeRepository, RawText, RepositoryNotFound
from bot.simulators.gitlab_users import GitLabUsers
from bot.simulators.server import FakeServer, FaultBook, FaultRule, json_response

__all__ = ["Call", "FakeGitLab"]

_PROJECT_ROUTE = re.compile(r"^/api/v4/projects/(?P<project>[^/]+)(?P<rest>/.*)?$")
_PLAYABLE_WHEN = ("manual", "delayed")
_LISTS = ("/jobs", "/deployments", r"/repository/commits/([0-9a-f]+)/merge_requests")
_WRITES = (
    r"/statuses/([0-9a-f]+)",
    r"/repository/commits/([0-9a-f]+)/comments",
    r"/merge_requests/(\d+)/notes",
)


@dataclass
class Call:
    """One recorded request. `path` is the raw path as sent (a project path is
    URL-encoded, e.g. /api/v4/projects/fintech%2Fpayments-api/jobs/9001)."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    query: dict[str, list[str]]
    faulted: bool = False
    status: int | None = None
    response: Any = None
    # When the fake received it (time.monotonic()), for latency measurements.
    at: float = field(default_factory=time.monotonic)


class _NotFoundError(Exception):
    def __init__(self, message: str = "404 Not found") -> None:
        super().__init__(message)
        self.message = message


class FakeGitLab(FakeServer):
    """Fake GitLab: projects, pipelines and jobs you seed, real-ish answers."""

    def __init__(
        self,
        token: str = "glpat-test",
        *,
        cancel_manual_jobs: bool = False,
    ) -> None:
        super().__init__()
        self.token = token
        # Real GitLab leaves manual jobs alone on pipeline cancel; set True
        # for a simplified world where cancel also kills the manual gate.
        self.cancel_manual_jobs = cancel_manual_jobs
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._faults = FaultBook()
        self.projects: dict[int, dict[str, Any]] = {}
        self.pipelines: dict[int, dict[str, Any]] = {}
        self.jobs: dict[int, dict[str, Any]] = {}
        self._plays: dict[int, int] = {}
        self.deployments: list[dict[str, Any]] = []
        self.repositories: dict[int, FakeRepository] = {}
        self.merge_requests: list[dict[str, Any]] = []
        self.statuses: list[dict[str, Any]] = []
        self.refused_statuses: list[dict[str, Any]] = []
        self.notes: list[dict[str, Any]] = []
        self.calls: list[Call] = []
        self.unexpected: list[Call] = []
        # The users API (`users.add(...)`); `admin` makes the bot's token an administrator's.
        self.users = GitLabUsers()
        self.admin = False

    # ------------------------------------------------------------------ state
    def add_project(
        self, project_id: int, path_with_namespace: str, *, default_branch: str = "main"
    ) -> dict[str, Any]:
        project = {
            "id": project_id,
            "path_with_namespace": path_with_namespace,
            "default_branch": default_branch,
        }
        self.projects[project_id] = project
        return project

    def add_pipeline(
        self,
        project_id: int,
        pipeline_id: int,
        status: str = "manual",
        ref: str = "main",
        sha: str | None = None,
        *,
        source: str = "push",
        user: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if project_id not in self.projects:
            raise KeyError(f"add_project({project_id}, ...) first")
        pipeline: dict[str, Any] = {
            "id": pipeline_id,
            "project_id": project_id,
            "status": status,
            "ref": ref,
            "sha": sha or hashlib.sha1(str(pipeline_id).encode()).hexdigest(),
            "source": source,
        }
        if user is not None:
            pipeline["user"] = user
        self.pipelines[pipeline_id] = pipeline
        return pipeline

    def add_job(
        self,
        project_id: int,
        pipeline_id: int,
        job_id: int,
        name: str = "compliance-gate",
        status: str = "manual",
        stage: str = "approve",
        *,
        when: str | None = None,
        allow_failure: bool = False,
    ) -> dict[str, Any]:
        if pipeline_id not in self.pipelines:
            raise KeyError(f"add_pipeline({project_id}, {pipeline_id}, ...) first")
        job = {
            "id": job_id,
            "project_id": project_id,
            "pipeline_id": pipeline_id,
            "name": name,
            "status": status,
            "stage": stage,
            "when": when or ("manual" if status == "manual" else "on_success"),
            "allow_failure": allow_failure,
            "retried": False,
        }
        self.jobs[job_id] = job
        return job

    def seed_from_event(self, event: dict[str, Any]) -> None:
        """Mirror a Pipeline Hook payload (bot.simulators.gitlab_events): the API then
        answers the facts the event states (project, pipeline, ref, sha, commit, users)."""
        attrs, project = event["object_attributes"], event["project"]
        self.add_project(project["id"], project["path_with_namespace"])
        user = user_json(event.get("user"), self.url)
        pipeline = self.add_pipeline(
            project["id"], attrs["id"], attrs["status"], attrs["ref"], attrs["sha"], user=user
        )
        commit = event.get("commit") or {}
        author = commit.get("author") or {}
        for key, value in (
            ("commit_title", commit.get("title")),
            ("author_name", author.get("name")),
            ("author_email", author.get("email")),
        ):
            if value is not None:
                pipeline[key] = value
        for build in event["builds"]:
            job = self.add_job(
                project["id"],
                attrs["id"],
                build["id"],
                build["name"],
                build["status"],
                build["stage"],
                when=build["when"],
                allow_failure=build["allow_failure"],
            )
            job["user"] = user_json(build.get("user") or event.get("user"), self.url)

    def seed_from_job_event(self, event: dict[str, Any]) -> None:
        """Mirror a Job Hook payload: its project, pipeline (unless known) and job."""
        project, commit = event["project"], event.get("commit") or {}
        if event["project_id"] not in self.projects:
            self.add_project(event["project_id"], project["path_with_namespace"])
        if event["pipeline_id"] not in self.pipelines:
            status = commit.get("status") or "running"
            self.add_pipeline(
                event["project_id"], event["pipeline_id"], status, event["ref"], event["sha"]
            )
        job = self.add_job(
            event["project_id"],
            event["pipeline_id"],
            event["build_id"],
            event["build_name"],
            event["build_status"],
            event["build_stage"],
            when="manual",
            allow_failure=event.get("build_allow_failure", False),
        )
        job["user"] = user_json(event.get("user"), self.url)

    def add_deployment(
        self,
        project_id: int,
        deployment_id: int,
        pipeline_id: int,
        sha: str,
        environment: str = "production",
        status: str = "success",
        created_at: str = "2026-11-25T10:05:00.000Z",
        job_name: str = "deploy-production",
    ) -> dict[str, Any]:
        """A deployment as GET /projects/:id/deployments lists it (`job_name`: the job that
        deployed, GitLab's `deployable.name`)."""
        with self._lock:
            deployment = {
                "id": deployment_id,
                "iid": deployment_id,
                "project_id": project_id,
                "ref": "main",
                "sha": sha,
                "status": status,
                "created_at": created_at,
                "updated_at": created_at,
                "environment": {"id": 1, "name": environment, "tier": "production"},
                "deployable": {
                    "id": deployment_id * 10,
                    "name": job_name,
                    "status": status,
                    "pipeline": {"id": pipeline_id, "sha": sha, "status": status},
                },
            }
            self.deployments.append(deployment)
            return deployment

    def add_commit(
        self,
        project_id: int,
        sha: str,
        *,
        title: str = "Change",
        author_name: str = "Alice Dev",
        author_email: str = "alice@example.com",
        files: dict[str, str | None] | None = None,
        parent: str | None = None,
    ) -> dict[str, Any]:
        """A commit in the project's repository (for commits, diffs, compare and raw files);
        `files` maps each path it changes to the new content, None for a deletion."""
        project = self.projects[project_id]
        with self._lock:
            repository = self.repositories.setdefault(
                project_id, FakeRepository(f"{self.url}/{project['path_with_namespace']}")
            )
            commit = FakeCommit(sha, title, author_name, author_email, parent, dict(files or {}))
            repository.add(commit)
            return repository.commit_json(commit)

    def add_merge_request(
        self,
        project_id: int,
        iid: int,
        sha: str,
        author: str,
        merged_by: str | None = None,
        merge_commit_sha: str | None = None,
    ) -> dict[str, Any]:
        """A merged merge request whose commits include `sha` (commits/:sha/merge_requests)."""
        project = self.projects[project_id]
        with self._lock:
            mr = {
                "id": project_id * 1000 + iid,
                "iid": iid,
                "project_id": project_id,
                "title": f"MR !{iid}",
                "state": "merged" if merged_by else "opened",
                "sha": sha,
                "merge_commit_sha": merge_commit_sha,
                "author": {"id": 50 + iid, "username": author, "name": author.title()},
                "merged_by": {"id": 80 + iid, "username": merged_by, "name": merged_by.title()}
                if merged_by
                else None,
                "merge_user": {"id": 80 + iid, "username": merged_by, "name": merged_by.title()}
                if merged_by
                else None,
                "web_url": f"{self.url}/{project['path_with_namespace']}/-/merge_requests/{iid}",
            }
            self.merge_requests.append(mr)
            return mr

    def job(self, job_id: int) -> dict[str, Any]:
        """The live state dict of a job; tests may change `status` directly."""
        return self.jobs[job_id]

    def pipeline(self, pipeline_id: int) -> dict[str, Any]:
        return self.pipelines[pipeline_id]

    def play_count(self, job_id: int) -> int:
        """How many plays of `job_id` GitLab accepted (faulted responses included)."""
        with self._lock:
            return self._plays.get(job_id, 0)

    # -------------------------------------------------------- fault injection
    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int | None = None,
        *,
        times: int | None = 1,
        timeout: float | None = None,
        body: Any = None,
        retry_after: int | None = None,
        side_effect_then_fail: bool = False,
    ) -> None:
        """Make the next `times` matching requests misbehave.

        `path_regex` is searched in the raw and the URL-decoded path.
        - `status` (default 500): answer it with `body` or `{"message": ...}`;
        - `timeout=s` alone: sleep s, then handle the request normally (the
          client has given up but GitLab did the work);
        - `side_effect_then_fail=True`: do the work (e.g. the play), then answer
          `status` (default 500): "GitLab did it but the response was lost".
        """
        rx = re.compile(path_regex)

        def matches(key: tuple[str, str]) -> bool:
            verb, path = key
            return verb == method.upper() and bool(rx.search(path) or rx.search(unquote(path)))

        self._faults.add(
            FaultRule(
                matches=matches,
                times=times,
                status=status,
                body=body,
                delay=timeout,
                retry_after=retry_after,
                side_effect=side_effect_then_fail,
            )
        )

    def clear_faults(self) -> None:
        self._faults.clear()

    # -------------------------------------------------------------- recording
    def calls_to(self, method: str, path_regex: str = "") -> list[Call]:
        rx = re.compile(path_regex)
        with self._lock:
            return [
                c
                for c in self.calls
                if c.method == method.upper() and (rx.search(c.path) or rx.search(unquote(c.path)))
            ]

    def wait_for(
        self, method: str, path_regex: str = "", count: int = 1, timeout: float = 5.0
    ) -> list[Call]:
        """Block until `count` matching requests arrived (async workers)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(found := self.calls_to(method, path_regex)) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [f"{c.method} {c.path}" for c in self.calls]
                    raise AssertionError(f"timed out waiting for {method} {path_regex}: {seen}")
                self._changed.wait(remaining)
            return found

    def reset(self) -> None:
        """Forget calls, unexpected requests, faults and play counts (not state)."""
        with self._lock:
            self.calls.clear()
            self.unexpected.clear()
            self._plays.clear()
        self._faults.clear()

    # ------------------------------------------------------------ dispatching
    def handle(self, request: Request) -> Response:
        # werkzeug decodes %2F in PATH_INFO; the raw URI keeps project paths
        # like fintech%2Fpayments-api as one segment, as GitLab sees them.
        raw_uri = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
        raw_path = urlsplit(raw_uri).path if raw_uri else request.path
        call = Call(
            method=request.method,
            path=raw_path,
            headers=dict(request.headers),
            json=request.get_json(silent=True),
            query={k: request.args.getlist(k) for k in request.args},
        )
        with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

        fault = self._faults.take((request.method, raw_path))
        if fault is None:
            return self._finish(call, *self._dispatch(call))
        call.faulted = True
        if fault.delay:
            self.sleep(fault.delay)
        if fault.side_effect or (fault.delay and fault.status is None):
            body, status = self._dispatch(call)
            if fault.status is None and not fault.side_effect:
                return self._finish(call, body, status)
        status = fault.status or 500
        body = (
            fault.body
            if fault.body is not None
            else {"message": f"{status} {HTTP_STATUS_CODES.get(status, 'Error')}"}
        )
        headers = None if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
        return self._finish(call, body, status, headers)

    @staticmethod
    def _finish(
        call: Call, body: Any, status: int, headers: dict[str, str] | None = None
    ) -> Response:
        call.status, call.response = status, body
        if isinstance(body, RawText):
            return Response(body.text, status=status, content_type="text/plain; charset=utf-8")
        return json_response(body, status, headers)

    def _dispatch(self, call: Call) -> tuple[Any, int]:
        headers = {k.lower(): v for k, v in call.headers.items()}
        token = headers.get("private-token") or headers.get("authorization", "").removeprefix(
            "Bearer "
        )
        if token != self.token:
            return {"message": "401 Unauthorized"}, 401
        try:
            with self._lock:
                answer = self._route(call)
        except _NotFoundError as exc:
            return {"message": exc.message}, 404
        if answer is None:  # no such route: Grape's own 404 body
            with self._lock:
                self.unexpected.append(call)
            return {"error": "404 Not Found"}, 404
        return answer

    def _route(self, call: Call) -> tuple[Any, int] | None:
        verb, path = call.method, call.path
        if verb == "GET" and path == "/api/v4/user":
            return dict(BOT_USER), 200
        users = self.users.route(verb, path, call.query, self.admin)
        if users is not None:
            return users
        group = re.fullmatch(r"/api/v4/groups/([^/]+)/projects", path)
        if verb == "GET" and group:
            prefix = unquote(group[1]) + "/"
            found = [
                project_json(p, self.url)
                for p in self.projects.values()
                if p["path_with_namespace"].startswith(prefix)
            ]
            return found, 200
        match = _PROJECT_ROUTE.match(path)
        if match is None:
            return None
        rest = match["rest"] or ""
        if verb == "GET" and rest.startswith("/repository/") and "merge_requests" not in rest:
            return self._repository(self._project(unquote(match["project"])), rest, call)
        routes: list[tuple[str, str]] = [
            ("GET", r""),
            ("GET", r"/jobs"),
            ("GET", r"/deployments"),
            ("GET", r"/repository/commits/([0-9a-f]+)/merge_requests"),
            ("POST", r"/statuses/([0-9a-f]+)"),
            ("POST", r"/repository/commits/([0-9a-f]+)/comments"),
            ("POST", r"/merge_requests/(\d+)/notes"),
            ("GET", r"/jobs/(\d+)"),
            ("POST", r"/jobs/(\d+)/play"),
            ("GET", r"/pipelines/(\d+)"),
            ("GET", r"/pipelines/(\d+)/jobs"),
            ("POST", r"/pipelines/(\d+)/cancel"),
        ]
        for route_verb, pattern in routes:
            hit = re.fullmatch(pattern, rest)
            if route_verb == verb and hit:
                project = self._project(unquote(match["project"]))
                if pattern in _LISTS:
                    return self._lists(pattern, project, hit, call)
                if pattern in _WRITES:
                    return self._write(pattern, project, hit[1], call)
                arg = int(hit[1]) if hit.groups() else 0
                return self._endpoint(verb, pattern, project, arg, call)
        return None

    def _repository(self, project: dict[str, Any], rest: str, call: Call) -> tuple[Any, int]:
        repository = self.repositories.get(project["id"])
        if repository is None:
            raise _NotFoundError("404 Commit Not Found")
        try:
            return repository.route(rest, call.query)
        except RepositoryNotFound as exc:
            raise _NotFoundError(str(exc)) from None

    def _write(
        self, pattern: str, project: dict[str, Any], target: str, call: Call
    ) -> tuple[Any, int]:
        """Commit statuses and notes: recorded in `.statuses` and `.notes`."""
        data = call.json or {k: v[0] for k, v in call.query.items()}
        if pattern.startswith("/statuses"):
            if data.get("state") not in ("pending", "running", "success", "failed", "canceled"):
                return {"message": "400 Bad request - state does not have a valid value"}, 400
            refused = refused_status_transition(
                self._open_status(project["id"], target, data), str(data["state"])
            )
            if refused is not None:
                self.refused_statuses.append({"sha": target, **data})
                return {"message": refused}, 400
            status = {
                "id": len(self.statuses) + 1,
                "sha": target,
                "project_id": project["id"],
                **data,
            }
            self.statuses.append(status)
            return status, 201
        note = {
            "id": len(self.notes) + 1,
            "project_id": project["id"],
            "target": target,
            "kind": "commit" if "commits" in pattern else "merge_request",
            "text": data.get("note") or data.get("body"),
        }
        self.notes.append(note)
        return note, 201

    def _open_status(
        self, project_id: int, sha: str, data: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The status GitLab would update: the same commit, name and pipeline, still pending or
        running (a finished one is kept and a new status created, as GitLab does)."""
        name = data.get("name") or "default"
        for status in reversed(self.statuses):
            if (
                status["project_id"] == project_id
                and status["sha"] == sha
                and (status.get("name") or "default") == name
                and status.get("pipeline_id") == data.get("pipeline_id")
            ):
                return status if status["state"] in ("pending", "running") else None
        return None

    def _lists(
        self, pattern: str, project: dict[str, Any], found: re.Match[str], call: Call
    ) -> tuple[Any, int]:
        """Project-wide lists: jobs by scope, deployments, merge requests of a commit."""
        if pattern == "/jobs":
            scopes = call.query.get("scope[]", []) + call.query.get("scope", [])
            jobs = [
                j
                for j in self.jobs.values()
                if j["project_id"] == project["id"]
                and not j["retried"]
                and (not scopes or j["status"] in scopes)
            ]
            jobs.sort(key=lambda j: -j["id"])
            return [self._job_json(j) for j in jobs], 200
        if pattern == "/deployments":
            env = call.query.get("environment", [None])[0]
            status = call.query.get("status", [None])[0]
            newest_first = call.query.get("sort", ["asc"])[0] == "desc"
            return sorted(
                (
                    d
                    for d in self.deployments
                    if d["project_id"] == project["id"]
                    and (env is None or d["environment"]["name"] == env)
                    and (status is None or d["status"] == status)
                ),
                key=lambda d: d["id"],
                reverse=newest_first,
            ), 200
        sha = found[1]
        return [
            m
            for m in self.merge_requests
            if m["project_id"] == project["id"] and sha in (m["sha"], m["merge_commit_sha"])
        ], 200

    def _endpoint(
        self, verb: str, pattern: str, project: dict[str, Any], arg: int, call: Call
    ) -> tuple[Any, int]:
        if pattern == "":
            return project_json(project, self.url), 200
        if pattern.startswith("/jobs/"):
            job = self._job(project, arg)
            if verb == "POST":
                return self._play(project, job)
            return self._job_json(job), 200
        pipeline = self.pipelines.get(arg)
        if pipeline is None or pipeline["project_id"] != project["id"]:
            raise _NotFoundError
        if pattern.endswith("/cancel"):
            self._cancel(pipeline)
        elif pattern.endswith("/jobs"):
            return self._list_jobs(pipeline, call.query)
        return pipeline_json(pipeline, project, self.url), 200

    # --------------------------------------------------------------- behaviour
    def _project(self, ident: str) -> dict[str, Any]:
        for project in self.projects.values():
            if ident in (str(project["id"]), project["path_with_namespace"]):
                return project
        raise _NotFoundError("404 Project Not Found")

    def _job(self, project: dict[str, Any], job_id: int) -> dict[str, Any]:
        job = self.jobs.get(job_id)
        if job is None or job["project_id"] != project["id"]:
            raise _NotFoundError
        return job

    def _job_json(self, job: dict[str, Any]) -> dict[str, Any]:
        pipeline = self.pipelines[job["pipeline_id"]]
        return job_json(job, pipeline, self.projects[job["project_id"]], self.url)

    def _play(self, project: dict[str, Any], job: dict[str, Any]) -> tuple[Any, int]:
        # Ci::Build#playable?: action? && (manual? || scheduled? || retryable?)
        status = job["status"]
        if (
            job["when"] not in _PLAYABLE_WHEN
            or job["retried"]
            or status not in ("manual", "scheduled", "success", "failed", "canceled")
        ):
            return {"message": "400 Bad request - Unplayable Job"}, 400
        self._plays[job["id"]] = self._plays.get(job["id"], 0) + 1
        if status in ("manual", "scheduled"):
            played = job  # enqueued in place: same id, manual -> pending
        else:
            # Playing a *finished* manual job retries it: a new job id runs again.
            job["retried"] = True
            played = {**copy.deepcopy(job), "id": max(self.jobs) + 1, "retried": False}
            self.jobs[played["id"]] = played
        played["status"] = "pending"
        played["user"] = dict(BOT_USER)  # GitLab records who played it
        self._refresh_pipeline(self.pipelines[job["pipeline_id"]])
        return self._job_json(played), 200

    def _cancel(self, pipeline: dict[str, Any]) -> None:
        cancelable = set(CANCELABLE_STATUSES)
        if self.cancel_manual_jobs:
            cancelable.add("manual")
        changed = False
        for job in self._pipeline_jobs(pipeline):
            if job["status"] in cancelable:
                job["status"] = "canceled"
                changed = True
        if self.cancel_manual_jobs and pipeline["status"] not in COMPLETED_STATUSES:
            pipeline["status"] = "canceled"
        elif changed:
            self._refresh_pipeline(pipeline)

    def _refresh_pipeline(self, pipeline: dict[str, Any]) -> None:
        status = composite_status(self._pipeline_jobs(pipeline))
        if status is not None:
            pipeline["status"] = status

    def _pipeline_jobs(self, pipeline: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            j for j in self.jobs.values() if j["pipeline_id"] == pipeline["id"] and not j["retried"]
        ]

    def _list_jobs(self, pipeline: dict[str, Any], query: dict[str, list[str]]) -> tuple[Any, int]:
        scopes = query.get("scope[]", []) + query.get("scope", [])
        jobs = [j for j in self.jobs.values() if j["pipeline_id"] == pipeline["id"]]
        if query.get("include_retried", ["false"])[0] != "true":
            jobs = [j for j in jobs if not j["retried"]]
        jobs.sort(key=lambda j: -j["id"])  # GitLab lists newest first
        if scopes:
            jobs = [j for j in jobs if j["status"] in scopes]
        return [self._job_json(j) for j in jobs], 200


# GitLab's commit status events (Ci::CreateCommitStatusService#update_status): pending is
# `enqueue!`, running `enqueue` then `run!`; each raises on a state it cannot leave that way.
_STATUS_EVENTS = {"pending": ("enqueue", ("pending", "running")), "running": ("run", ("running",))}


def refused_status_transition(current: dict[str, Any] | None, state: str) -> str | None:
    """GitLab's 400 message for posting `state` over the open status `current`, or None."""
    if current is None or state not in _STATUS_EVENTS:
        return None
    event, refused_from = _STATUS_EVENTS[state]
    if current["state"] not in refused_from:
        return None
    return (
        f"Cannot transition status via :{event} from :{current['state']} "
        f'(Reason(s): Status cannot transition via "{event}")'
    )
