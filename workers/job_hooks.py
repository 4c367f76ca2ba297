"""A gate job's status change from a Job Hook that named no project (bot.web.job_hooks):
the project comes from GitLab's API, then it is handled as any other status change."""

from __future__ import annotations

import logging
from typing import Any, cast

from bot.events import GateEvent
from bot.gitlab import GitLabNotFound
from workers import confirm
from workers.context import runtime
from workers.status import pipeline_update

log = logging.getLogger(__name__)


def resolve(claim: dict[str, Any]) -> str:
    rt = runtime()
    try:
        project = rt.gitlab.project(int(claim["project_id"]))
    except GitLabNotFound:
        confirm.refuse(rt, claim, "not_found", confirm.NOT_IN_GITLAB)
        return "refused"
    web = project.web_url
    event = cast(
        GateEvent,
        {
            **claim,
            "project_path": project.path,
            "project_url": web,
            "pipeline_url": f"{web}/-/pipelines/{claim['pipeline_id']}" if web else None,
        },
    )
    if rt.policy.current.policy.gate_for(project.path, event["job_name"]) is None:
        log.info("job %s of %s is not a gate", event["job_name"], project.path)
        return "not-a-gate"
    return pipeline_update(event)
