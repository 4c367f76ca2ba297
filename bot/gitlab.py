"""GitLab API client: the few calls the bot makes, with timeouts and named errors.

Playing the gate is the one call that must happen at most once, so it never relies on
blind HTTP retries: `play_once` reads the job before each attempt, stops as soon as it is
no longer `manual`, and plays nothing when it is no longer the job that was approved.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import gitlab
import requests
from gitlab.exceptions import GitlabError

from bot.gate_facts import (
    ApprovedJob,
    JobFacts,
    ProjectFacts,
    UnexpectedAnswer,
    job_facts,
    project_facts,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

GITLAB_TIMEOUT_S = 10
COMMIT_STATUS_NAME = "compliance/sign-off"
PLAY_RETRY_WINDOW_S = 60.0
# Play requests GitLab may refuse with 400 while the job still reads `manual` (at most).
MAX_UNPLAYABLE_PLAYS = 3
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 8.0
# Statuses of a job that has been started (by a play) rather than cancelled or skipped.
STARTED = frozenset(
    {"pending", "running", "success", "failed", "preparing", "waiting_for_resource", "created"}
)


class GitLabError(Exception):
    """A GitLab API call failed for good (4xx other than the cases named below)."""


class GitLabTransientError(GitLabError):
    """5xx, timeout or connection error: worth retrying."""


class JobNotPlayable(GitLabError):
    """GitLab refused to play the job (400 Unplayable Job: no longer manual)."""


class JobUnplayable(GitLabError):
    """GitLab kept refusing to play a job that still reads `manual` (a protected environment,
    a permission the bot lacks): retrying will not help until someone fixes GitLab."""


class StatusTransitionRefused(GitLabError):
    """GitLab refused a commit status transition ("Cannot transition status via :enqueue from
    :pending"): the status already is in that state, or past it."""


class GitLabPermissionError(GitLabError):
    """The bot's token may not do this (401/403): an admin must fix the token or protection."""


class GitLabNotFound(GitLabError):
    """404: no such project, or no such job in that project."""


class JobChanged(GitLabError):
    """Right before the play, the job was no longer the one approved (renamed, moved)."""

    def __init__(self, changes: list[str]) -> None:
        super().__init__("; ".join(changes))
        self.changes = changes


@dataclass(frozen=True)
class PlayResult:
    """`played` is True when this bot's play took effect; `status` is the job's last status."""

    played: bool
    status: str


def _translate(exc: Exception, what: str) -> GitLabError:
    if isinstance(exc, requests.RequestException | gitlab.exceptions.GitlabConnectionError):
        return GitLabTransientError(f"{what}: {type(exc).__name__}")
    code = getattr(exc, "response_code", None)
    if code is None or code >= 500 or code == 429:
        return GitLabTransientError(f"{what}: HTTP {code}")
    if code in (401, 403):
        return GitLabPermissionError(f"{what}: HTTP {code} (check the bot's GitLab token)")
    message = str(getattr(exc, "error_message", ""))
    if code == 400 and "Cannot transition status" in message:
        return StatusTransitionRefused(f"{what}: {message[:200]}")
    if code == 400 and "play" in what:
        return JobNotPlayable(f"{what}: {message[:200] or 'HTTP 400'}")
    if code == 404:
        return GitLabNotFound(f"{what}: HTTP 404")
    return GitLabError(f"{what}: HTTP {code}")


class GitLabClient:
    def __init__(self, url: str, token: str, timeout: float = GITLAB_TIMEOUT_S) -> None:
        self._gl = gitlab.Gitlab(
            url, private_token=token, timeout=timeout, retry_transient_errors=False
        )

    @property
    def api(self) -> gitlab.Gitlab:
        """The python-gitlab client, for the read-only calls in bot.gitlab_reads."""
        return self._gl

    def job(self, project_id: int, job_id: int) -> JobFacts:
        """`GET /projects/:id/jobs/:job_id`: the job, its pipeline, commit and user."""
        found = self._get(f"/projects/{project_id}/jobs/{job_id}", f"get job {job_id}")
        try:
            return job_facts(found)
        except UnexpectedAnswer as exc:
            raise GitLabError(f"get job {job_id}: {exc}") from None

    def project(self, project_id: int) -> ProjectFacts:
        """`GET /projects/:id`: the project's path and address."""
        found = self._get(f"/projects/{project_id}", f"get project {project_id}")
        try:
            return project_facts(found)
        except UnexpectedAnswer as exc:
            raise GitLabError(f"get project {project_id}: {exc}") from None

    def job_status(self, project_id: int, job_id: int) -> str:
        return self.job(project_id, job_id).status

    def _get(self, path: str, what: str) -> object:
        try:
            return self._gl.http_get(path)
        except (GitlabError, requests.RequestException) as exc:
            raise _translate(exc, what) from None

    def play_job(self, project_id: int, job_id: int) -> None:
        try:
            job = self._gl.projects.get(project_id, lazy=True).jobs.get(job_id, lazy=True)
            job.play()
        except (GitlabError, requests.RequestException) as exc:
            raise _translate(exc, f"play job {job_id}") from None

    def cancel_pipeline(self, project_id: int, pipeline_id: int) -> None:
        try:
            pipeline = self._gl.projects.get(project_id, lazy=True).pipelines.get(
                pipeline_id, lazy=True
            )
            pipeline.cancel()
        except (GitlabError, requests.RequestException) as exc:
            raise _translate(exc, f"cancel pipeline {pipeline_id}") from None

    def set_commit_status(
        self,
        project_id: int,
        sha: str,
        state: str,
        description: str,
        target_url: str | None,
        pipeline_id: int | None = None,
    ) -> None:
        """The `compliance/sign-off` status on the commit (shown on the commit and its MR)."""
        data: dict[str, object] = {
            "state": state,
            "name": COMMIT_STATUS_NAME,
            "description": description[:255],
        }
        if target_url:
            data["target_url"] = target_url
        if pipeline_id is not None:
            data["pipeline_id"] = pipeline_id
        self._post(f"/projects/{project_id}/statuses/{sha}", data, f"status of {sha[:8]}")

    def comment(self, project_id: int, sha: str, merge_request_iid: int | None, text: str) -> None:
        """A note on the merge request that brought the commit, else on the commit."""
        if merge_request_iid is not None:
            path = f"/projects/{project_id}/merge_requests/{merge_request_iid}/notes"
            self._post(path, {"body": text}, f"note on !{merge_request_iid}")
        else:
            path = f"/projects/{project_id}/repository/commits/{sha}/comments"
            self._post(path, {"note": text}, f"comment on {sha[:8]}")

    def _post(self, path: str, data: dict[str, object], what: str) -> None:
        try:
            self._gl.http_post(path, post_data=data)
        except (GitlabError, requests.RequestException) as exc:
            raise _translate(exc, what) from None


def backoff_delays(base: float = BACKOFF_BASE_S, cap: float = BACKOFF_MAX_S) -> Iterator[float]:
    """Exponential backoff with full jitter."""
    attempt = 0
    while True:
        yield random.uniform(0, min(cap, base * 2**attempt))  # noqa: S311 - jitter, not crypto
        attempt += 1


def with_retries(
    call: Callable[[], T],
    window_s: float,
    retry_on: tuple[type[Exception], ...] = (GitLabTransientError,),
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Retry a call on transient errors for up to `window_s` seconds, then re-raise."""
    deadline = time.monotonic() + window_s
    for delay in backoff_delays():
        try:
            return call()
        except retry_on as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("gitlab call failed, retrying in %.1fs: %s", delay, exc)
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def play_once(
    client: GitLabClient,
    approved: ApprovedJob,
    resumed: bool = False,
    window_s: float = PLAY_RETRY_WINDOW_S,
    sleep: Callable[[float], None] = time.sleep,
) -> PlayResult:
    """Play the approved manual job at most once, retrying transient errors for `window_s`.

    A play whose answer was lost (timeout, 5xx) may still have happened, so every attempt
    starts by reading the job: once it is no longer `manual`, our attempt took effect.
    `resumed` says an earlier worker of ours may already have played it (crash recovery).
    A 400 Unplayable is retried too (the next read tells what happened), but a job still
    `manual` after MAX_UNPLAYABLE_PLAYS refusals raises JobUnplayable. A job that is no
    longer the one approved (another name, pipeline or project) raises JobChanged, unplayed.
    """
    attempted = resumed
    refusals = 0
    project_id, job_id = approved.project_id, approved.job_id

    def attempt() -> PlayResult:
        nonlocal attempted, refusals
        job = client.job(project_id, job_id)
        changes = approved.changes(job)
        if changes:
            raise JobChanged(changes)
        if job.status != "manual":
            return PlayResult(played=attempted and job.status in STARTED, status=job.status)
        attempted = True
        try:
            client.play_job(project_id, job_id)
        except JobNotPlayable as exc:
            refusals += 1
            if refusals >= MAX_UNPLAYABLE_PLAYS:  # still manual after that: GitLab means it
                raise JobUnplayable(str(exc)) from None
            raise
        return PlayResult(played=True, status="pending")

    return with_retries(attempt, window_s, (JobNotPlayable, GitLabTransientError), sleep)
