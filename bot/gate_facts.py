"""What GitLab's API says about a gate job, and where a webhook's claims disagree with it.

A webhook body is a claim. Before the bot opens a request, closes one, records a bypass or
plays a job, it reads the job (`GET /projects/:id/jobs/:job_id`) and the project
(`GET /projects/:id`) and acts on what GitLab answers. Pure: parsing and comparing only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.events import GateEvent

# The facts a body must state as GitLab does (when it states them at all).
CHECKED = ("project_path", "job_name", "pipeline_id", "ref", "sha")


class UnexpectedAnswer(ValueError):
    """GitLab answered 200 with something that is not the entity asked for."""


@dataclass(frozen=True)
class ProjectFacts:
    id: int
    path: str
    web_url: str | None


@dataclass(frozen=True)
class JobFacts:
    """A job as `GET /projects/:id/jobs/:job_id` shows it (Entities::Ci::Job)."""

    id: int
    name: str
    stage: str | None
    status: str
    ref: str | None
    web_url: str | None
    pipeline_id: int
    pipeline_project_id: int | None  # PipelineBasic.project_id (absent on old GitLab)
    pipeline_status: str
    pipeline_url: str | None
    sha: str | None
    commit_title: str | None
    commit_url: str | None
    author_name: str | None
    author_email: str | None
    user_id: int | None
    user_username: str | None
    user_name: str | None
    # The user's public e-mail: one GitLab verified, unlike a commit's author e-mail.
    user_public_email: str | None


@dataclass(frozen=True)
class Disagreement:
    field: str
    claimed: object
    actual: object

    def __str__(self) -> str:
        return f"{self.field}: the webhook said {self.claimed!r}, GitLab says {self.actual!r}"


def _text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) and value else None


def _int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    return value if type(value) is int else None


def _mapping(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def project_facts(data: Any) -> ProjectFacts:
    if not isinstance(data, dict):
        raise UnexpectedAnswer("the project is not a JSON object")
    project_id, path = _int(data, "id"), _text(data, "path_with_namespace")
    if project_id is None or path is None:
        raise UnexpectedAnswer("the project has no id or path_with_namespace")
    return ProjectFacts(project_id, path, _text(data, "web_url"))


def job_facts(data: Any) -> JobFacts:
    if not isinstance(data, dict):
        raise UnexpectedAnswer("the job is not a JSON object")
    pipeline, commit, user = (_mapping(data, k) for k in ("pipeline", "commit", "user"))
    job_id, name, status = _int(data, "id"), _text(data, "name"), _text(data, "status")
    pipeline_id = _int(pipeline, "id")
    if job_id is None or name is None or status is None or pipeline_id is None:
        raise UnexpectedAnswer("the job has no id, name, status or pipeline id")
    return JobFacts(
        id=job_id,
        name=name,
        stage=_text(data, "stage"),
        status=status,
        ref=_text(data, "ref") or _text(pipeline, "ref"),
        web_url=_text(data, "web_url"),
        pipeline_id=pipeline_id,
        pipeline_project_id=_int(pipeline, "project_id"),
        pipeline_status=_text(pipeline, "status") or "unknown",
        pipeline_url=_text(pipeline, "web_url"),
        sha=_text(pipeline, "sha") or _text(commit, "id"),
        commit_title=_text(commit, "title"),
        commit_url=_text(commit, "web_url"),
        author_name=_text(commit, "author_name"),
        author_email=_text(commit, "author_email"),
        user_id=_int(user, "id"),
        user_username=_text(user, "username"),
        user_name=_text(user, "name"),
        user_public_email=_text(user, "public_email"),
    )


def gate_facts(project: ProjectFacts, job: JobFacts, environment: str | None) -> GateEvent:
    """A gate job as the bot records it: every fact from GitLab. `environment` (the first
    later job's environment) is the body's, once the body's other facts were confirmed."""
    return GateEvent(
        project_id=project.id,
        project_path=project.path,
        project_url=project.web_url,
        pipeline_id=job.pipeline_id,
        pipeline_url=job.pipeline_url,
        pipeline_status=job.pipeline_status,
        job_id=job.id,
        job_name=job.name,
        job_status=job.status,
        ref=job.ref,
        sha=job.sha,
        commit_title=job.commit_title,
        commit_url=job.commit_url,
        commit_author_name=job.author_name,
        commit_author_email=job.author_email,
        triggered_by_username=job.user_username,
        triggered_by_name=job.user_name,
        triggered_by_email=job.user_public_email,
        environment=environment,
    )


def disagreements(claim: Mapping[str, Any], facts: Mapping[str, Any]) -> list[Disagreement]:
    """Where a webhook's claim about a gate job differs from GitLab's facts. A fact the
    claim leaves out (null) is not a disagreement: the bot uses GitLab's anyway."""
    return [
        Disagreement(name, claim.get(name), facts.get(name))
        for name in CHECKED
        if claim.get(name) is not None and claim.get(name) != facts.get(name)
    ]


@dataclass(frozen=True)
class ApprovedJob:
    """The job a request was approved for, as GitLab showed it when the request opened."""

    project_id: int
    job_id: int
    name: str
    pipeline_id: int
    project_url: str | None

    def changes(self, job: JobFacts) -> list[str]:
        """How the job GitLab shows now differs from the one approved (empty: the same)."""
        found = []
        if job.id != self.job_id:
            found.append(f"job id is now {job.id}")
        if job.name != self.name:
            found.append(f"job name is now {job.name!r}, not {self.name!r}")
        if job.pipeline_id != self.pipeline_id:
            found.append(f"job is now in pipeline #{job.pipeline_id}, not #{self.pipeline_id}")
        if job.pipeline_project_id not in (None, self.project_id):
            found.append(f"job now belongs to project id {job.pipeline_project_id}")
        expected_url = f"{self.project_url}/-/jobs/{self.job_id}" if self.project_url else None
        if expected_url and job.web_url and job.web_url != expected_url:
            found.append(f"job is now at {job.web_url}, not under {self.project_url}")
        return found
