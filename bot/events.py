"""GitLab webhook payloads, typed at the boundary, and what a pipeline event means for gates."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, NotRequired, TypedDict, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from bot.policy import Gate, Policy
from bot.store.limits import FULL_PATH_MAX, URL_MAX
from bot.validation import first_problem

# Pipeline statuses after which nothing in the pipeline will run any more. Newer GitLab shows
# `canceling` while a cancelled pipeline's jobs stop: for a gate it is as good as `canceled`.
FINISHED_PIPELINE = frozenset({"success", "failed", "canceled", "canceling", "skipped"})
# Statuses of a gate job that has been played (by the bot, or behind its back).
PLAYED_JOB = frozenset(
    {"pending", "running", "success", "failed", "preparing", "waiting_for_resource"}
)


M = TypeVar("M", bound=BaseModel)


def _storable(text: str) -> str:
    """Text the database can keep: no NUL byte, no lone UTF-16 surrogate."""
    if "\x00" in text:
        raise ValueError("must not contain a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode") from None
    return text


# The shapes the store can hold: 64-bit ids, and strings that fit their columns.
Id = Annotated[int, Field(ge=0, le=2**63 - 1)]
Short = Annotated[str, Field(max_length=255), AfterValidator(_storable)]
# A project's full path: up to 20 nested groups and the project, each path up to 255.
FullPath = Annotated[str, Field(max_length=FULL_PATH_MAX), AfterValidator(_storable)]
Sha = Annotated[str, Field(max_length=64), AfterValidator(_storable)]
Url = Annotated[str, Field(max_length=URL_MAX), AfterValidator(_storable)]
Text = Annotated[str, Field(max_length=100_000), AfterValidator(_storable)]


# Old GitLab's Pipeline Hook names the project by path only; the reconciliation (which lists
# the projects through the API) still finds its waiting gates.
NO_PROJECT_ID = (
    "this pipeline event names no project id (GitLab before 11.0); "
    "its gates are found by the reconciliation"
)


class BadEvent(ValueError):
    """The payload is JSON but not a pipeline event we can read; the message says why."""


class _Model(BaseModel):
    # Strict: an id is a JSON integer, never `true` or "101"; a name is a JSON string.
    # GitLab sends every field read here with exactly these types (or null where optional).
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


class HookUser(_Model):
    id: Id | None = None
    name: Short | None = None
    username: Short | None = None
    email: Short | None = None


class CommitAuthor(_Model):
    name: Short | None = None
    email: Short | None = None


class HookCommit(_Model):
    id: Sha | None = None
    title: Text | None = None
    message: Text | None = None
    url: Url | None = None
    author: CommitAuthor | None = None


class HookProject(_Model):
    id: Id
    path_with_namespace: FullPath
    web_url: Url | None = None


class PipelineAttributes(_Model):
    id: Id
    ref: Short | None = None
    sha: Sha | None = None
    status: Short
    url: Url | None = None
    stages: list[Short] = Field(default_factory=list)


class Environment(_Model):
    name: Short | None = None
    action: Short | None = None


class Build(_Model):
    id: Id
    name: Short
    stage: Short | None = None
    status: Short
    environment: Environment | None = None


class PipelineEvent(_Model):
    object_kind: str
    object_attributes: PipelineAttributes
    project: HookProject
    user: HookUser | None = None
    commit: HookCommit | None = None
    builds: list[Build] = Field(default_factory=list)


class GateEvent(TypedDict):
    """What the worker needs to open a request: plain JSON, safe to put on the queue."""

    project_id: int
    project_path: str
    project_url: str | None
    pipeline_id: int
    pipeline_url: str | None
    pipeline_status: str
    job_id: int
    job_name: str
    job_status: str
    ref: str | None
    sha: str | None
    commit_title: str | None
    commit_url: str | None
    commit_author_name: str | None
    commit_author_email: str | None
    triggered_by_username: str | None
    triggered_by_name: str | None
    triggered_by_email: str | None
    environment: str | None
    # On events from a webhook: the projects the secret it carried may speak for
    # (bot.policy_secrets.Scope.to_json); never the secret itself.
    scope: NotRequired[dict[str, Any]]


# Per gate job and claimed identity, the last status seen (`{pipeline}/{job}`): GitLab's
# repeated events for the same state are duplicates. The claimed identity is part of the
# key, so a forged event (other path, name, pipeline, ref or sha) never makes the genuine
# one a duplicate; the worker resets the status to GitLab's when a claimed one is false.
GATE_KEY = "approval-bot:gate:{}:{}:{}"
GATE_TTL_S = 90 * 24 * 3600


def gate_key(event: GateEvent) -> str:
    claimed = [event["project_path"], event["job_name"], event["pipeline_id"]]
    claimed += [event["ref"], event["sha"]]
    digest = hashlib.sha256(json.dumps(claimed).encode()).hexdigest()[:16]
    return GATE_KEY.format(event["project_id"], event["job_id"], digest)


def gate_status(pipeline_status: str, job_status: str) -> str:
    return f"{pipeline_status}/{job_status}"


class JobCommit(_Model):
    id: Id | None = None  # the pipeline's id (older Job Hooks have no `pipeline_id`)
    sha: Sha | None = None
    message: Text | None = None
    author_name: Short | None = None
    author_email: Short | None = None
    status: Short | None = None  # the pipeline's status


class JobEvent(_Model):
    """GitLab's Job Hook (object_kind "build"): one job's status change. Older GitLab sends
    no `project` object (only `project_id` and `project_name`, a display name) and, older
    still, no `pipeline_id` (then `commit.id` is the pipeline's id)."""

    object_kind: str
    build_id: Id
    build_name: Short
    build_status: Short
    build_stage: Short | None = None
    pipeline_id: Id | None = None
    sha: Sha | None = None
    ref: Short | None = None
    project_id: Id
    project: HookProject | None = None
    user: HookUser | None = None
    commit: JobCommit | None = None
    environment: Environment | None = None

    @property
    def pipeline(self) -> int | None:
        if self.pipeline_id is not None:
            return self.pipeline_id
        return self.commit.id if self.commit is not None else None


def _validate(model: type[M], payload: dict[str, Any], what: str) -> M:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise BadEvent(f"invalid {what}: {first_problem(exc)}") from None


def parse_pipeline(payload: dict[str, Any]) -> PipelineEvent:
    return _validate(PipelineEvent, payload, "pipeline event")


def usable_pipeline(payload: dict[str, Any]) -> PipelineEvent | str:
    """The pipeline event, or why it cannot be used (GitLab before 11 sent no `project.id`)."""
    project = payload.get("project")
    if isinstance(project, dict) and "id" not in project:
        return NO_PROJECT_ID
    return parse_pipeline(payload)


def parse_job(payload: dict[str, Any]) -> JobEvent:
    return _validate(JobEvent, payload, "job event")


def job_gate_event(event: JobEvent, project: HookProject, pipeline_id: int) -> GateEvent:
    """The same facts from a Job Hook (fewer of them: used for status changes only)."""
    commit = event.commit or JobCommit()
    user = event.user or HookUser()
    web = project.web_url
    return GateEvent(
        project_id=event.project_id,
        project_path=project.path_with_namespace,
        project_url=web,
        pipeline_id=pipeline_id,
        pipeline_url=f"{web}/-/pipelines/{pipeline_id}" if web else None,
        pipeline_status=commit.status or "running",
        job_id=event.build_id,
        job_name=event.build_name,
        job_status=event.build_status,
        ref=event.ref,
        sha=event.sha or commit.sha,
        commit_title=(commit.message or "").split("\n", 1)[0] or None,
        commit_url=None,
        commit_author_name=commit.author_name,
        commit_author_email=commit.author_email,
        triggered_by_username=user.username,
        triggered_by_name=user.name,
        triggered_by_email=user.email,
        environment=None,
    )


def builds_after(event: PipelineEvent, gate: Build) -> list[Build]:
    """The pipeline's jobs after the gate, in the order they run (stage order, then id)."""
    stages = event.object_attributes.stages
    order = {name: index for index, name in enumerate(stages)}
    gate_rank = order.get(gate.stage or "", -1)

    def rank(build: Build) -> tuple[int, int]:
        return (order.get(build.stage or "", len(stages)), build.id)

    return sorted(
        (b for b in event.builds if b.id != gate.id and rank(b) > (gate_rank, gate.id)), key=rank
    )


def deploy_after(event: PipelineEvent, gate: Build) -> Build | None:
    """The first job after the gate that names an environment: the deployment."""
    return next(
        (b for b in builds_after(event, gate) if b.environment and b.environment.name), None
    )


def environment_after(event: PipelineEvent, gate: Build) -> str | None:
    """The environment of the first job after the gate that names one (stage order, then id)."""
    deploy = deploy_after(event, gate)
    return deploy.environment.name if deploy is not None and deploy.environment else None


def gate_jobs(event: PipelineEvent, policy: Policy) -> list[tuple[Gate, Build]]:
    """Jobs of this pipeline that a policy gate covers, whatever their status."""
    found = []
    for build in event.builds:
        gate = policy.gate_for(event.project.path_with_namespace, build.name)
        if gate is not None:
            found.append((gate, build))
    return found


def gate_event(event: PipelineEvent, build: Build) -> GateEvent:
    commit = event.commit or HookCommit()
    author = commit.author or CommitAuthor()
    user = event.user or HookUser()
    attrs = event.object_attributes
    return GateEvent(
        project_id=event.project.id,
        project_path=event.project.path_with_namespace,
        project_url=event.project.web_url,
        pipeline_id=attrs.id,
        pipeline_url=attrs.url,
        pipeline_status=attrs.status,
        job_id=build.id,
        job_name=build.name,
        job_status=build.status,
        ref=attrs.ref,
        sha=attrs.sha or commit.id,
        commit_title=commit.title or (commit.message or "").split("\n", 1)[0] or None,
        commit_url=commit.url,
        commit_author_name=author.name,
        commit_author_email=author.email,
        triggered_by_username=user.username,
        triggered_by_name=user.name,
        triggered_by_email=user.email,
        environment=environment_after(event, build),
    )
