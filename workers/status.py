"""Later status events of a gate job (pipeline cancelled or finished, the gate played in
GitLab behind the bot's back): what the webhook claims is confirmed with GitLab first, so a
forged event closes nothing and raises no alert."""

from __future__ import annotations

from bot.events import FINISHED_PIPELINE, PLAYED_JOB, GateEvent
from bot.outside_text import slack_format
from bot.runtime import Runtime
from bot.store import requests as store
from bot.store.models import RequestState
from workers import bypass, confirm
from workers.context import runtime
from workers.jobs import JOB_MOVED_ON, PIPELINE_FINISHED, open_confirmed
from workers.support import announce


def pipeline_update(event: GateEvent) -> str:
    """A later status of a gated pipeline, as a webhook claims it: confirmed with GitLab, it
    closes a pending request the pipeline moved past, or records a bypass."""
    rt = runtime()
    request = store.find_for_job(rt.db, event["project_id"], event["job_id"])
    if request is None:
        return unseen_gate_update(rt, event)
    claims_played = event["job_status"] in PLAYED_JOB
    if claims_played and request.state in bypass.OURS:
        return "played-by-us"
    if request.state != RequestState.PENDING and not claims_played:
        return "not-pending"
    job = confirm.request_job_now(rt, request, event)
    if job is None:
        return "refused"
    confirm.note_status(rt, event, job.pipeline_status, job.status)
    if job.status in PLAYED_JOB:
        return bypass.check(rt, job.status, request)
    if request.state != RequestState.PENDING:
        return "not-pending"
    if job.pipeline_status in FINISHED_PIPELINE:
        reason = slack_format(PIPELINE_FINISHED, status=job.pipeline_status)
    elif job.status != "manual":
        reason = slack_format(JOB_MOVED_ON, status=job.status)
    else:
        return "still-waiting"
    closed = store.close(rt.db, request.id, RequestState.CLOSED, reason, (RequestState.PENDING,))
    if closed is not None:
        announce(rt, closed, None)
    return "closed"


def unseen_gate_update(rt: Runtime, event: GateEvent) -> str:
    """A status of a gate job the bot has no request for: GitLab's facts decide."""
    facts = confirm.gate_facts_for(rt, event)
    if facts is None:
        return "refused"
    confirm.note_status(rt, event, facts["pipeline_status"], facts["job_status"])
    if facts["job_status"] in PLAYED_JOB:
        return bypass.check_unseen(rt, facts)
    if facts["job_status"] == "manual" and facts["pipeline_status"] not in FINISHED_PIPELINE:
        open_confirmed(rt, facts)
        return "opened"
    return "no-request"
