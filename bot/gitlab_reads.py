"""Read-only GitLab calls for reconciliation and evidence: projects, waiting gate jobs,
deployments, and the merge requests behind a commit."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests
from gitlab.exceptions import GitlabError

from bot.gitlab import GitLabClient, GitLabError, _translate


@dataclass(frozen=True)
class ProjectInfo:
    id: int
    path: str
    web_url: str | None


@dataclass(frozen=True)
class WaitingJob:
    """A manual job as the jobs API shows it, with its pipeline and commit."""

    id: int
    name: str
    status: str
    stage: str | None
    pipeline_id: int
    pipeline_status: str
    pipeline_url: str | None
    ref: str | None
    sha: str | None
    commit_title: str | None
    commit_url: str | None
    author_name: str | None
    author_email: str | None
    user_username: str | None
    user_name: str | None


@dataclass(frozen=True)
class Deployment:
    id: int
    sha: str | None
    pipeline_id: int | None
    status: str
    created_at: str | None
    environment: str | None
    job_name: str | None = None  # the job that deployed (deployable.name)


@dataclass(frozen=True)
class MergeRequest:
    iid: int
    web_url: str | None
    author_username: str | None
    merged_by_username: str | None


GLOB_CHARS = "*?["
# Newest deployments read to find the last one still in place (past rollbacks skipped).
DEPLOYMENTS_LOOKED_AT = 20


def _attr(obj: Any, name: str) -> Any:
    return getattr(obj, name, None) if not isinstance(obj, dict) else obj.get(name)


class GitLabReads:
    def __init__(self, client: GitLabClient) -> None:
        self._gl = client.api

    def _safely(self, what: str, call: Any) -> Any:
        try:
            return call()
        except (GitlabError, requests.RequestException) as exc:
            raise _translate(exc, what) from None

    def projects_matching(self, pattern: str) -> Iterator[ProjectInfo]:
        """Projects a policy `project` pattern covers: the path itself, or a glob resolved
        against the projects of its fixed leading group."""
        if not any(char in pattern for char in GLOB_CHARS):
            try:
                project = self._safely(pattern, lambda: self._gl.projects.get(pattern))
            except GitLabError:
                return
            yield ProjectInfo(int(project.id), str(project.path_with_namespace), project.web_url)
            return
        fixed = pattern.split("/")
        prefix = "/".join(
            p
            for p in fixed[
                : next(i for i, p in enumerate(fixed) if any(c in p for c in GLOB_CHARS))
            ]
        )
        if not prefix:
            return  # a pattern with no fixed group would mean listing all of GitLab
        group = self._gl.groups.get(prefix, lazy=True)
        found = self._safely(
            f"projects of {prefix}",
            lambda: list(group.projects.list(include_subgroups=True, iterator=True)),
        )
        for project in found:
            path = str(project.path_with_namespace)
            if fnmatch.fnmatchcase(path.lower(), pattern.lower()):
                yield ProjectInfo(int(project.id), path, project.web_url)

    def waiting_jobs(self, project_id: int, name: str) -> list[WaitingJob]:
        project = self._gl.projects.get(project_id, lazy=True)
        jobs = self._safely(
            f"manual jobs of {project_id}",
            lambda: list(project.jobs.list(scope=["manual"], iterator=True)),
        )
        return [_waiting(job) for job in jobs if job.name == name and job.status == "manual"]

    def deployments(self, project_id: int, environment: str, since: str | None) -> list[Deployment]:
        project = self._gl.projects.get(project_id, lazy=True)
        filters: dict[str, Any] = {"environment": environment, "status": "success"}
        if since:
            filters["updated_after"] = since
        found = self._safely(
            f"deployments of {project_id}",
            lambda: list(project.deployments.list(iterator=True, **filters)),
        )
        return [_deployment(d) for d in found]

    def merge_requests_of(self, project_id: int, sha: str) -> list[MergeRequest]:
        project = self._gl.projects.get(project_id, lazy=True)
        path = f"/projects/{project_id}/repository/commits/{sha}/merge_requests"
        found = self._safely(
            f"merge requests of {sha[:8]}", lambda: self._gl.http_list(path, get_all=True)
        )
        del project
        return [
            MergeRequest(
                iid=int(mr["iid"]),
                web_url=mr.get("web_url"),
                author_username=(mr.get("author") or {}).get("username"),
                merged_by_username=((mr.get("merge_user") or mr.get("merged_by")) or {}).get(
                    "username"
                ),
            )
            for mr in found
        ]

    # -- evidence: each call may fail on its own; the gatherer says what is missing --------

    def last_deployment(
        self, project_id: int, environment: str, rollback_jobs: frozenset[str] = frozenset()
    ) -> Deployment | None:
        """The newest successful deployment to an environment that is still in place: a
        rollback job's deployment, and the deployment it rolled back, are skipped (the
        rollback job runs in the rolled-back pipeline, at its commit)."""
        path = f"/projects/{project_id}/deployments"
        query = {
            "environment": environment,
            "status": "success",
            "order_by": "id",
            "sort": "desc",
            "per_page": DEPLOYMENTS_LOOKED_AT,
        }
        found = self._safely(
            f"deployments of {project_id}",
            lambda: self._gl.http_list(path, query_data=query, get_all=False),
        )
        rolled_back: set[int | None] = set()
        for deployment in map(_deployment, found):
            if deployment.job_name in rollback_jobs:
                rolled_back.add(deployment.pipeline_id)
            elif deployment.pipeline_id is None or deployment.pipeline_id not in rolled_back:
                return deployment
        return None

    def compare(self, project_id: int, base: str, head: str) -> dict[str, Any]:
        """GitLab's compare of two commits: `commits` (oldest first), `diffs`, `web_url`."""
        path = f"/projects/{project_id}/repository/compare"
        query = {"from": base, "to": head}
        result = self._safely(
            f"compare {base[:8]}...{head[:8]}", lambda: self._gl.http_get(path, query_data=query)
        )
        return dict(result)

    def commit(self, project_id: int, sha: str) -> dict[str, Any]:
        path = f"/projects/{project_id}/repository/commits/{sha}"
        return dict(self._safely(f"commit {sha[:8]}", lambda: self._gl.http_get(path)))

    def commit_diff(self, project_id: int, sha: str) -> list[dict[str, Any]]:
        path = f"/projects/{project_id}/repository/commits/{sha}/diff"
        found = self._safely(
            f"diff of {sha[:8]}", lambda: self._gl.http_list(path, get_all=True, per_page=100)
        )
        return [dict(d) for d in found]

    def pipeline_jobs(self, project_id: int, pipeline_id: int) -> list[dict[str, Any]]:
        path = f"/projects/{project_id}/pipelines/{pipeline_id}/jobs"
        found = self._safely(
            f"jobs of pipeline {pipeline_id}",
            lambda: self._gl.http_list(path, get_all=True, per_page=100),
        )
        return [dict(j) for j in found]

    def file_at(self, project_id: int, file_path: str, ref: str) -> str:
        """A file's content at a commit, decoded as UTF-8 (undecodable bytes replaced)."""
        path = f"/projects/{project_id}/repository/files/{quote(file_path, safe='')}/raw"
        response = self._safely(
            f"file {file_path}",
            lambda: self._gl.http_get(path, query_data={"ref": ref}, raw=True, streamed=False),
        )
        return bytes(response.content).decode("utf-8-sig", errors="replace")


def _fixed_segments(pattern: str) -> list[str]:
    """The leading path segments of a glob that contain no wildcard (its fixed group)."""
    fixed = []
    for segment in pattern.split("/"):
        if any(char in segment for char in GLOB_CHARS):
            break
        fixed.append(segment)
    return fixed


def _waiting(job: Any) -> WaitingJob:
    pipeline = job.pipeline or {}
    commit = job.commit or {}
    user = job.user or {}
    return WaitingJob(
        id=int(job.id),
        name=str(job.name),
        status=str(job.status),
        stage=getattr(job, "stage", None),
        pipeline_id=int(pipeline["id"]),
        pipeline_status=str(pipeline.get("status") or "manual"),
        pipeline_url=pipeline.get("web_url"),
        ref=getattr(job, "ref", None) or pipeline.get("ref"),
        sha=pipeline.get("sha") or commit.get("id"),
        commit_title=commit.get("title"),
        commit_url=commit.get("web_url"),
        author_name=commit.get("author_name"),
        author_email=commit.get("author_email"),
        user_username=user.get("username"),
        user_name=user.get("name"),
    )


def _deployment(deployment: Any) -> Deployment:
    deployable = _attr(deployment, "deployable") or {}
    pipeline = deployable.get("pipeline") or {}
    environment = _attr(deployment, "environment") or {}
    return Deployment(
        id=int(_attr(deployment, "id")),
        sha=_attr(deployment, "sha"),
        pipeline_id=int(pipeline["id"]) if pipeline.get("id") is not None else None,
        status=str(_attr(deployment, "status")),
        created_at=_attr(deployment, "created_at"),
        environment=environment.get("name"),
        job_name=deployable.get("name"),
    )
