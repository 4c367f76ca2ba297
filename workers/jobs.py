"""RQ jobs: load → decide → act → record → reply. Every job is safe to run twice."""

from __future__ import annotations

import logging
from typing import Any

from bot import approvals, audit, ledger
from bot.admins import tell_admins_once
from bot.approvals import Counted, Denied
from bot.events import FINISHED_PIPELINE, PLAYED_JOB, GateEvent
from bot.evidence import gate_for_request
from bot.evidence_gather import Target, gather
from bot.gitlab import GitLabError, GitLabTransientError, play_once, with_retries
from bot.gitlab_reads import GitLabReads
from bot.policy import Gate, Policy
from bot.runtime import Runtime
from bot.slack import SlackError
from bot.slack_text import escape
from bot.store import queries
from bot.store import requests as store
from bot.store.models import ApprovalRequest, RequestState, utcnow
from workers import bypass, writeback
from workers.context import runtime
from workers.support import (
    announce,
    approver_records,
    clicked_request,
    counted,
    judging,
    notify_thread,
    refresh_message,
    render,
    request_fields,
    signoff_note,
    tell,
)

log = logging.getLogger(__name__)

# User-facing replies (ephemeral unless noted).
ALREADY_DECIDED = "This request is already {state}; nothing more can be done on it."
EXPIRED = "This request expired at {at} UTC; it can no longer be approved."
APPROVAL_RECORDED = "Your approval is recorded. Still needed: {missing}."
APPROVAL_COMPLETE = "Your approval completed the quorum: playing the gate job now."
REJECTED_THREAD = ":no_entry: Rejected by <@{user}>: {reason}"
CANCEL_FAILED = (
    ":warning: The release was rejected but the pipeline could not be cancelled: {error}"
)
PLAY_REFUSED = "GitLab refused to play the gate job ({error}); nothing was played."
JOB_MOVED_ON = "The gate job is no longer waiting in GitLab (status: {status}); nothing was played."
PIPELINE_FINISHED = "The pipeline finished ({status}) before the request was decided."
SUPERSEDED_BY = "Superseded by pipeline #{pipeline}: approve that one instead."
SUPERSEDED_BY_LINK = "Superseded by pipeline <{url}|#{pipeline}>: approve that one instead."
PLAY_REFUSED_ADMIN = (
    ":warning: GitLab refused to play the approved gate of {project} pipeline #{pipeline} "
    "({error}). Give the bot's GitLab user permission to run the gate job."
)
POST_FAILED = (
    ":warning: approval-bot cannot post approval requests to <#{channel}> ({error}). "
    "Invite the bot to the channel or fix the gate's `channel` in the policy."
)
PERMANENT_SLACK_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "missing_scope",
        "invalid_auth",
        "account_inactive",
        "token_revoked",
    }
)
CANCEL_WINDOW_S = 30.0


def open_request(event: GateEvent) -> str | None:
    """Create the request for a gate job (once) and post it to Slack (once it has no message)."""
    rt = runtime()
    loaded = rt.policy.current
    gate = loaded.policy.gate_for(event["project_path"], event["job_name"])
    if gate is None:
        log.info("no gate covers %s %s any more", event["project_path"], event["job_name"])
        return None
    fields = request_fields(event, gate, loaded.version, RequestState.PENDING)
    if store.find_for_job(rt.db, event["project_id"], event["job_id"]) is None:
        fields.update(merge_request_facts(rt, gate, event))
        fields["evidence"] = gather_evidence(rt, loaded.policy, event)
    request, created = store.create(rt.db, fields)
    if created:
        newer = queries.newer_request_for_ref(rt.db, request)
        if newer is not None:  # webhooks arrived out of order: this one is already stale
            reason = superseded_by(newer)
            store.close(rt.db, request.id, RequestState.SUPERSEDED, reason, (RequestState.PENDING,))
            return request.id
    # Only the run that created the request posts it: a concurrent duplicate must not post
    # twice. A post lost to a crash is re-sent by the sweep.
    if created and request.state == RequestState.PENDING:
        post_request(rt, request)
    if created:
        supersede_older(rt, request)
    log.info(
        "approval request %s for %s job %s (new=%s)",
        request.id,
        request.project_path,
        request.job_id,
        created,
    )
    return request.id


def merge_request_facts(rt: Runtime, gate: Gate, event: GateEvent) -> dict[str, Any]:
    """Who opened and merged the merge request behind the commit, when the gate forbids them.

    A GitLab error here fails the job, so RQ retries it: a request must not open with
    separation of duties it cannot enforce.
    """
    if not {"merge_request_author", "merged_by"} & set(gate.duties) or not event["sha"]:
        return {}
    found = GitLabReads(rt.gitlab).merge_requests_of(event["project_id"], event["sha"])
    if not found:
        return {}
    # A commit can reach production through several merge requests (into a release
    # branch, then main): everyone who opened or merged any of them is excluded.
    authors = sorted({mr.author_username for mr in found if mr.author_username})
    mergers = sorted({mr.merged_by_username for mr in found if mr.merged_by_username})
    shown = next((mr for mr in found if mr.merged_by_username), found[0])
    return {
        "merge_request_iid": shown.iid,
        "merge_request_url": shown.web_url,
        "merge_request_author_username": ",".join(authors) or None,
        "merged_by_username": ",".join(mergers) or None,
    }


def gather_evidence(rt: Runtime, policy: Policy, event: GateEvent) -> str | None:
    """What changed, how earlier jobs went, and migration risk: stored with the request."""
    if not event["sha"]:
        return None
    target = Target(
        event["project_id"],
        event["pipeline_id"],
        event["job_id"],
        event["sha"],
        event["project_url"],
    )
    # The project's gates include this one: their rollback jobs' deployments are skipped.
    rollback_jobs = frozenset(
        g.rollback.job for g in policy.gates_for_project(event["project_path"])
    )
    reads = GitLabReads(rt.gitlab)
    return gather(reads, target, policy.evidence, rollback_jobs=rollback_jobs).to_json()


def post_request(rt: Runtime, request: ApprovalRequest) -> None:
    """Post the request to its gate's channel and remember the message."""
    gate = gate_for_request(rt.policy.current.policy, request)
    text, blocks = render(rt, request, gate)
    try:
        ts = rt.slack.post_message(request.channel, text, blocks)
    except SlackError as exc:
        if exc.error in PERMANENT_SLACK_ERRORS:
            why = POST_FAILED.format(channel=request.channel, error=exc.error)
            tell_admins_once(rt, f"post:{request.channel}:{exc.error}", why)
        raise  # RQ retries; the sweep re-posts once the cause is fixed
    store.set_message(rt.db, request.id, request.channel, ts)
    request.message_ts = ts
    writeback.schedule(rt, request)


def superseded_by(newer: ApprovalRequest) -> str:
    if newer.pipeline_url:
        return SUPERSEDED_BY_LINK.format(pipeline=newer.pipeline_id, url=newer.pipeline_url)
    return SUPERSEDED_BY.format(pipeline=newer.pipeline_id)


def supersede_older(rt: Runtime, newer: ApprovalRequest) -> None:
    """A newer pipeline for the same project, ref and gate closes the older pending ones."""
    reason = superseded_by(newer)
    for older in queries.older_pending_for_ref(rt.db, newer):
        closed = store.close(
            rt.db, older.id, RequestState.SUPERSEDED, reason, (RequestState.PENDING,)
        )
        if closed is not None:
            announce(rt, closed, None)


@counted("decisions_total", "outcome")
def approve(click: dict[str, Any]) -> str:
    """Decide an Approve click; play the gate when it completes the quorum."""
    rt = runtime()
    request = clicked_request(rt, click)
    if request is None:
        return "unknown"
    if request.state in (RequestState.APPROVED, RequestState.PLAYING):
        return finish_approved(rt, request.id)  # a re-run after a failed play
    if request.state != RequestState.PENDING:
        tell(rt, click, ALREADY_DECIDED.format(state=request.state))
        return str(request.state)
    if utcnow() >= request.expires_at:
        expire(rt, request)
        tell(rt, click, EXPIRED.format(at=request.expires_at.strftime("%Y-%m-%d %H:%M")))
        return "expired"
    judged = judging(rt, click, request)
    if judged is None:
        return "no-gate"
    gate, clicker, identities = judged.gate, judged.clicker, judged.loaded.policy.identities

    def decide(counted: list[Counted]) -> approvals.Decision:
        return approvals.decide_approval(gate, identities, clicker, judged.people, counted)

    outcome = store.record_approval(
        rt.db,
        request.id,
        clicker.slack_user_id,
        judged.user.name,
        clicker.roles,
        judged.loaded.version,
        decide,
    )
    decision = outcome.decision
    if decision is None:
        tell(rt, click, ALREADY_DECIDED.format(state=outcome.state_before))
        return outcome.state_before
    if isinstance(decision, Denied):
        log.info(
            "approval denied on %s for %s: %s", request.id, clicker.slack_user_id, decision.code
        )
        tell(rt, click, decision.message)
        return f"denied:{decision.code}"
    if not decision.quorum_met:
        refresh_message(rt, outcome.request, gate)
        tell(
            rt,
            click,
            APPROVAL_RECORDED.format(missing=approvals.describe_missing(decision.missing)),
        )
        return "granted"
    tell(rt, click, APPROVAL_COMPLETE)
    return finish_approved(rt, request.id)


@counted("plays_total", "result")
def finish_approved(rt: Runtime, request_id: str) -> str:
    """Play the gate of an approved request exactly once, then record the sign-off."""
    with rt.db.sessions() as session:  # no play whose sign-off would be refused (forged head)
        ledger.require_verified_head(session, f"play the gate of {request_id}")
    before = store.get(rt.db, request_id)
    if not store.claim_play(rt.db, request_id, rt.settings.play_lease):
        return "play-claimed-elsewhere"
    try:
        result = play_once(
            rt.gitlab,
            before.project_id,
            before.job_id,
            # An earlier claim may have played it before its answer was lost.
            resumed=before.play_claimed_at is not None,
            window_s=rt.settings.play_retry_window,
        )
    except GitLabTransientError:
        store.release_play(rt.db, request_id)
        raise  # RQ retries the job; the next run asks GitLab again before playing
    except GitLabError as exc:
        closed = store.close(rt.db, request_id, RequestState.CLOSED, PLAY_REFUSED.format(error=exc))
        if closed is not None:
            announce(rt, closed, None)
        log.error("play refused for %s: %s", request_id, exc)
        project = before.project_path
        tell_admins_once(
            rt,
            f"play:{project}:{exc}",
            PLAY_REFUSED_ADMIN.format(project=project, pipeline=before.pipeline_id, error=exc),
        )
        return "play-refused"
    if not result.played:
        reason = JOB_MOVED_ON.format(status=result.status)
        closed = store.close(rt.db, request_id, RequestState.CLOSED, reason)
        if closed is not None:
            announce(rt, closed, None)
        return "job-moved-on"
    gate = gate_for_request(rt.policy.current.policy, before)
    audit_url = rt.settings.AUDIT_API_URL
    approvers = approver_records(rt, before, gate)
    played, entry = store.finish_play(rt.db, request_id, approvers, audit=bool(audit_url))
    if entry is not None:
        deliver_audit(rt)
    log.info(
        "gate played for %s; sign-off ledger record %s",
        request_id,
        entry.sequence if entry else None,
    )
    announce(rt, played, gate, note=signoff_note(played, approvers, entry))
    return "played"


@counted("decisions_total", "outcome")
def reject(submission: dict[str, Any]) -> str:
    """Record a rejection (with its reason), never play, and stop the release if asked."""
    rt = runtime()
    try:
        request = store.get(rt.db, submission["request_id"])
    except store.RequestNotFound:
        log.warning("rejection for unknown request %s", submission["request_id"])
        return "unknown"
    reply = {"channel_id": request.channel, **submission}
    judged = judging(rt, reply, request)
    if judged is None:
        return "no-gate"
    gate, clicker, loaded = judged.gate, judged.clicker, judged.loaded
    denied = approvals.decide_rejection(gate, clicker)
    if denied is not None:
        store.record_denied_rejection(
            rt.db, request.id, clicker.slack_user_id, denied, loaded.version
        )
        tell(rt, reply, denied.message)
        return "denied"
    rejected, entry = store.reject(
        rt.db, request.id, clicker.slack_user_id, submission["reason"], loaded.version
    )
    if entry is None:
        tell(rt, reply, ALREADY_DECIDED.format(state=rejected.state))
        return str(rejected.state)
    announce(rt, rejected, gate)
    notify_thread(
        rt,
        rejected,
        REJECTED_THREAD.format(user=clicker.slack_user_id, reason=escape(submission["reason"])),
    )
    if gate.on_reject == "cancel_pipeline":
        cancel_pipeline(rt, rejected)
    return "rejected"


def deliver_audit(rt: Runtime) -> None:
    """Send due audit-API messages now; whatever fails is retried by the sweep."""
    if rt.settings.AUDIT_API_URL:
        audit.deliver_due(rt.db, rt.settings.AUDIT_API_URL)


def cancel_pipeline(rt: Runtime, request: ApprovalRequest) -> None:
    try:
        with_retries(
            lambda: rt.gitlab.cancel_pipeline(request.project_id, request.pipeline_id),
            CANCEL_WINDOW_S,
        )
    except GitLabError as exc:
        log.error("cannot cancel pipeline %s: %s", request.pipeline_id, exc)
        notify_thread(rt, request, CANCEL_FAILED.format(error=exc))


def notify(payload: dict[str, Any]) -> None:
    """An ephemeral answer decided at the edge (e.g. someone not allowed to reject)."""
    tell(runtime(), payload, payload["text"])


def pipeline_update(event: GateEvent) -> str:
    """A later status of a gated pipeline: close a pending request the pipeline moved past."""
    rt = runtime()
    request = store.find_for_job(rt.db, event["project_id"], event["job_id"])
    if event["job_status"] in PLAYED_JOB:
        return bypass.check(rt, event, request)
    if request is None:
        if event["job_status"] == "manual" and event["pipeline_status"] not in FINISHED_PIPELINE:
            open_request(event)
            return "opened"
        return "no-request"
    if request.state != RequestState.PENDING:
        return "not-pending"
    if event["pipeline_status"] in FINISHED_PIPELINE:
        reason = PIPELINE_FINISHED.format(status=event["pipeline_status"])
    elif event["job_status"] != "manual":
        reason = JOB_MOVED_ON.format(status=event["job_status"])
    else:
        return "still-waiting"
    closed = store.close(rt.db, request.id, RequestState.CLOSED, reason, (RequestState.PENDING,))
    if closed is not None:
        announce(rt, closed, None)
    return "closed"


def expire(rt: Runtime, request: ApprovalRequest) -> None:
    at = request.expires_at.strftime("%Y-%m-%d %H:%M")
    closed = store.close(
        rt.db,
        request.id,
        RequestState.EXPIRED,
        f"Expired at {at} UTC without the required approvals.",
        (RequestState.PENDING,),
    )
    if closed is not None:
        announce(rt, closed, None)
