"""JSON shapes of the GitLab REST API v4 entities FakeGitLab serves.

Field names follow GitLab's API entities (Entities::Ci::Job,
Entities::Ci::Pipeline, Entities::Project); state dicts are the fake's own.
"""

from __future__ import annotations

from typing import Any

# From GitLab's Ci::HasStatus: which job statuses a pipeline cancel touches.
# `manual` is NOT in it: cancelling a pipeline leaves manual jobs playable.
CANCELABLE_STATUSES = frozenset(
    {"created", "waiting_for_resource", "preparing", "pending", "running", "scheduled"}
)
COMPLETED_STATUSES = frozenset({"success", "failed", "canceled", "skipped"})

# Pipeline `detailed_status.label` (what the UI shows) per status.
_PIPELINE_LABELS = {
    "success": "passed",
    "manual": "waiting for manual action",
    "scheduled": "waiting for delayed job",
    "waiting_for_resource": "waiting for resource",
}

BOT_USER: dict[str, Any] = {
    "id": 42,
    "username": "approval-bot",
    "name": "Approval Bot",
    "state": "active",
    "locked": False,
    "avatar_url": None,
    "web_url": "https://gitlab.example.com/approval-bot",
    "public_email": "",
    "bot": True,
}

DEFAULT_USER: dict[str, Any] = {
    "id": 7,
    "username": "bob",
    "name": "Bob Builder",
    "state": "active",
    "locked": False,
    "avatar_url": None,
    "web_url": "https://gitlab.example.com/bob",
    "public_email": "",
}


def user_json(hook_user: dict[str, Any] | None, base_url: str) -> dict[str, Any]:
    """The API's user (Entities::User) for a webhook's user: its e-mail there is the user's
    public e-mail, or "[REDACTED]" when they have none (User#webhook_email)."""
    if not hook_user:
        return dict(DEFAULT_USER)
    email = hook_user.get("email")
    return {
        "id": hook_user.get("id", 7),
        "username": hook_user["username"],
        "name": hook_user["name"],
        "state": "active",
        "locked": False,
        "avatar_url": hook_user.get("avatar_url"),
        "web_url": f"{base_url}/{hook_user['username']}",
        "public_email": email if email and email != "[REDACTED]" else "",
    }


def iso(ts: str | None) -> str | None:
    """'2026-11-25 10:00:00 UTC' (webhook style) -> '2026-11-25T10:00:00.000Z' (API)."""
    if ts is None or "T" in ts:
        return ts
    return ts.removesuffix(" UTC").replace(" ", "T") + ".000Z"


def composite_status(jobs: list[dict[str, Any]]) -> str | None:
    """A pipeline's status from its jobs, as GitLab's Ci::Status::Composite does."""
    seen: set[str] = set()
    for job in jobs:
        status, allowed = job["status"], bool(job.get("allow_failure"))
        if allowed and status in ("failed", "canceled"):
            seen.add("success_with_warnings")
        elif allowed and status == "manual":
            seen.add("ignored")  # non-blocking manual job
        else:
            seen.add(status)
    if not seen:
        return None

    def only(*names: str) -> bool:
        return seen <= set(names)

    def any_of(*names: str) -> bool:
        return bool(seen & set(names))

    ordered: list[tuple[bool, str]] = [
        (only("skipped", "ignored"), "skipped"),
        (only("success", "skipped", "success_with_warnings", "ignored"), "success"),
        (only("created", "success_with_warnings", "ignored"), "created"),
        (only("preparing", "success_with_warnings", "ignored"), "preparing"),
        (only("canceled", "success", "skipped", "success_with_warnings", "ignored"), "canceled"),
        (only("pending", "created", "skipped", "success_with_warnings", "ignored"), "pending"),
        (any_of("running", "pending"), "running"),
        (any_of("waiting_for_resource"), "waiting_for_resource"),
        (any_of("manual"), "manual"),
        (any_of("scheduled"), "scheduled"),
        (any_of("preparing"), "preparing"),
        (any_of("created"), "running"),
    ]
    return next((status for cond, status in ordered if cond), "failed")


def project_json(project: dict[str, Any], base_url: str) -> dict[str, Any]:
    path = project["path_with_namespace"]
    namespace, _, name = path.rpartition("/")
    web_url = f"{base_url}/{path}"
    return {
        "id": project["id"],
        "description": project.get("description", ""),
        "name": name,
        "name_with_namespace": " / ".join(path.split("/")),
        "path": name,
        "path_with_namespace": path,
        "created_at": "2026-01-05T09:00:00.000Z",
        "default_branch": project.get("default_branch", "main"),
        "tag_list": [],
        "topics": [],
        "ssh_url_to_repo": f"git@{base_url.rsplit('://', maxsplit=1)[-1]}:{path}.git",
        "http_url_to_repo": f"{web_url}.git",
        "web_url": web_url,
        "readme_url": f"{web_url}/-/blob/main/README.md",
        "avatar_url": None,
        "forks_count": 0,
        "star_count": 0,
        "last_activity_at": "2026-11-25T10:00:00.000Z",
        "namespace": {
            "id": 1,
            "name": namespace,
            "path": namespace.rsplit("/", 1)[-1],
            "kind": "group",
            "full_path": namespace,
            "web_url": f"{base_url}/groups/{namespace}",
        },
        "visibility": "private",
        "archived": False,
        "empty_repo": False,
    }


def _detailed_status(status: str, details_path: str) -> dict[str, Any]:
    label = _PIPELINE_LABELS.get(status, status.replace("_", " "))
    text = {"success": "Passed", "manual": "Blocked"}.get(status, status.capitalize())
    return {
        "icon": f"status_{status}",
        "text": text,
        "label": label,
        "group": status,
        "tooltip": label,
        "has_details": True,
        "details_path": details_path,
        "illustration": None,
        "favicon": f"/assets/ci_favicons/favicon_status_{status}.png",
    }


def pipeline_json(
    pipeline: dict[str, Any], project: dict[str, Any], base_url: str
) -> dict[str, Any]:
    path = project["path_with_namespace"]
    web_url = f"{base_url}/{path}/-/pipelines/{pipeline['id']}"
    finished = pipeline["status"] in COMPLETED_STATUSES
    return {
        "id": pipeline["id"],
        "iid": pipeline.get("iid", pipeline["id"] % 1000),
        "project_id": project["id"],
        "name": pipeline.get("name"),
        "sha": pipeline["sha"],
        "ref": pipeline["ref"],
        "status": pipeline["status"],
        "source": pipeline.get("source", "push"),
        "created_at": "2026-11-25T10:00:00.000Z",
        "updated_at": "2026-11-25T10:02:00.000Z",
        "web_url": web_url,
        "before_sha": pipeline.get("before_sha", "0" * 40),
        "tag": bool(pipeline.get("tag", False)),
        "yaml_errors": None,
        "user": pipeline.get("user", DEFAULT_USER),
        "started_at": "2026-11-25T10:00:05.000Z",
        "finished_at": "2026-11-25T10:05:00.000Z" if finished else None,
        "committed_at": None,
        "duration": 63 if finished else None,
        "queued_duration": 2.0,
        "coverage": None,
        "detailed_status": _detailed_status(
            pipeline["status"], f"/{path}/-/pipelines/{pipeline['id']}"
        ),
    }


def job_json(
    job: dict[str, Any], pipeline: dict[str, Any], project: dict[str, Any], base_url: str
) -> dict[str, Any]:
    path = project["path_with_namespace"]
    status = job["status"]
    started = status in ("running", "success", "failed") or (
        status == "canceled" and job.get("started_at") is not None
    )
    return {
        "id": job["id"],
        "status": status,
        "stage": job["stage"],
        "name": job["name"],
        "ref": pipeline["ref"],
        "tag": bool(pipeline.get("tag", False)),
        "coverage": None,
        "allow_failure": bool(job.get("allow_failure", False)),
        "created_at": iso(job.get("created_at")) or "2026-11-25T10:00:00.000Z",
        "started_at": (iso(job.get("started_at")) or "2026-11-25T10:01:00.000Z")
        if started
        else None,
        "finished_at": (iso(job.get("finished_at")) or "2026-11-25T10:02:00.000Z")
        if status in COMPLETED_STATUSES
        else None,
        "erased_at": None,
        "duration": job.get("duration") if started else None,
        "queued_duration": job.get("queued_duration"),
        "user": job.get("user", DEFAULT_USER),
        "commit": {
            "id": pipeline["sha"],
            "short_id": pipeline["sha"][:8],
            "created_at": "2026-11-25T09:58:00.000+00:00",
            "parent_ids": [pipeline.get("before_sha", "0" * 40)],
            "title": pipeline.get("commit_title", "Add payment retries"),
            "message": pipeline.get("commit_title", "Add payment retries") + "\n",
            "author_name": pipeline.get("author_name", "Alice Author"),
            "author_email": pipeline.get("author_email", "alice@example.com"),
            "authored_date": "2026-11-25T09:58:00.000+00:00",
            "committer_name": pipeline.get("author_name", "Alice Author"),
            "committer_email": pipeline.get("author_email", "alice@example.com"),
            "committed_date": "2026-11-25T09:58:00.000+00:00",
            "trailers": {},
            "web_url": f"{base_url}/{path}/-/commit/{pipeline['sha']}",
        },
        "pipeline": {
            "id": pipeline["id"],
            "iid": pipeline.get("iid", pipeline["id"] % 1000),
            "project_id": project["id"],
            "sha": pipeline["sha"],
            "ref": pipeline["ref"],
            "status": pipeline["status"],
            "source": pipeline.get("source", "push"),
            "created_at": "2026-11-25T10:00:00.000Z",
            "updated_at": "2026-11-25T10:02:00.000Z",
            "web_url": f"{base_url}/{path}/-/pipelines/{pipeline['id']}",
        },
        "failure_reason": job.get("failure_reason") if status == "failed" else None,
        "web_url": f"{base_url}/{path}/-/jobs/{job['id']}",
        "project": {"ci_job_token_scope_enabled": False},
        "artifacts": [],
        "artifacts_expire_at": None,
        "tag_list": list(job.get("tag_list", [])),
        "runner": None,
        "runner_manager": None,
        "archived": False,
    }
