"""RQ jobs: load → decide → act → record → reply. Every job is safe to run twice."""

from __future__ import annotations

import logging
from typing import Any

from bot import approvals, audit, ledger
from bot.admins import tell_admins_once
from bot.approvals import Counted, Denied
from bot.blocks import reject_reason
from bot.events import FINISHED_PIPELINE, GateEvent
from bot.evidence import gate_for_request
from bot.evidence_gather import Target, gather
from bot.gate_facts import disagreements
from bot.gitlab import (
    GitLabError,
    GitLabTransientError,
    JobChanged,
    JobUnplayable,
    play_once,
    with_retries,
)
from bot.gitlab_reads import GitLabReads
from bot.outside_text import (
    gitlab_markdown,
    slack_format,
    slack_link,
    slack_user,
)
from bot.policy import Gate, Policy
from bot.runtime import Runtime
from bot.slack import SlackError
from bot.store import queries
from bot.store import requests as store
from bot.store.models import ApprovalRequest, RequestState, utcnow
from workers import (
    confirm,
    pacing,
    play_failures,
    post_fallback,
    quorum,
    rollback_replies,
    writeback,
)
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
REJECTED_THREAD = ":no_entry: Rejected by {user}: {reason}"
REJECTED_NOTE = (
    ":no_entry: **compliance/sign-off**: pipeline {pipeline} ({sha}) was rejected in Slack "
    "by {who}: {reason}. The gate job will not be played."
)
CANCEL_FAILED = (
    ":warning: The release was rejected but the pipeline could not be cancelled: {error}"
)
PLAY_REFUSED = "GitLab refused to play the gate job ({error}); nothing was played."
JOB_MOVED_ON = "The gate job is no longer waiting in GitLab (status: {status}); nothing was played."
PIPELINE_FINISHED = "The pipeline finished ({status}) before the request was decided."
SUPERSEDED_BY = "Superseded by pipeline #{pipeline}: approve that one instead."
SUPERSEDED_BY_LINK = "Superseded by pipeline {link}: approve that one instead."
NOT_WAITING = "gate job %s of %s is not waiting in GitLab (%s/%s): no request opened"
PLAY_REFUSED_ADMIN = (
    ":warning: GitLab refused to play the approved gate of {project} pipeline #{pipeline} "
    "({error}). Give the bot's GitLab user permission to run the gate job."
)
POST_FAILED = (
    ":warning: approval-bot cannot post approval requests to channel {channel} ({error}). "
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
    """A webhook (or the reconciliation) says a gate job waits: take the facts from GitLab,
    then create its request (once) and post it to Slack (once it has no message)."""
    rt = runtime()
    known = store.find_for_job(rt.db, event["project_id"], event["job_id"])
    if known is not None and not disagreements(event, confirm.request_claims(known)):
        return known.id  # GitLab's facts were read when it opened
    facts = confirm.gate_facts_for(rt, event)
    if facts is None:
        return None
    if facts["job_status"] != "manual" or facts["pipeline_status"] in FINISHED_PIPELINE:
        confirm.note_status(rt, event, facts["pipeline_status"], facts["job_status"])
        log.info(
            NOT_WAITING,
            facts["job_id"],
            facts["project_path"],
            facts["pipeline_status"],
            facts["job_status"],
        )
        return None
    return open_confirmed(rt, facts, exists=known is not None)


def open_confirmed(rt: Runtime, event: GateEvent, exists: bool | None = None) -> str | None:
    """Create the request for a gate job GitLab shows waiting (`event`: GitLab's facts).

    `exists`: whether the job has a request already, when the caller has just looked."""
    loaded = rt.policy.current
    gate = loaded.policy.gate_for(event["project_path"], event["job_name"])
    if gate is None:
        log.info("no gate covers %s %s any more", event["project_path"], event["job_name"])
        return None
    fields = request_fields(event, gate, loaded.version, RequestState.PENDING)
    if exists is None:
        exists = store.find_for_job(rt.db, event["project_id"], event["job_id"]) is not None
    if not exists:
        fields.update(merge_request_facts(rt, gate, event))
        fields["evidence"] = gather_evidence(rt, loaded.policy, event)
    request, created = store.create(rt.db, fields)
    same = queries.same_ref(rt.db, request) if created else None
    if same is not None and same.newer is not None:
        # Webhooks arrived out of order: this one is already stale.
        reason = superseded_by(same.newer)
        store.close(rt.db, request.id, RequestState.SUPERSEDED, reason, (RequestState.PENDING,))
        return request.id
    # Only the run that created the request posts it: a concurrent duplicate must not post
    # twice. A post lost to a crash is re-sent by the sweep.
    if created and request.state == RequestState.PENDING:
        post_request(rt, request, undecided=True)
    if same is not None:
        supersede_older(rt, request, same.older_pending)
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


def post_request(
    rt: Runtime, request: ApprovalRequest, slotted: bool = False, undecided: bool = False
) -> None:
    """Post the request to its gate's channel and remember the message. While the channel
    cools down after a 429 the post waits for a slot (workers.pacing), which posts it;
    `slotted`: this is that slot; `undecided`: just created, no decision to read."""
    target = pacing.post_target(request.channel)
    if pacing.defer_if_cooling(rt, pacing.POST, request, target, slotted):
        return
    gate = gate_for_request(rt.policy.current.policy, request)
    text, blocks = render(rt, request, gate, undecided)
    try:
        ts = post_fallback.post_request_message(rt, request, text, blocks)
    except SlackError as exc:
        pacing.answered(rt, target, slotted)
        if pacing.defer_if_rate_limited(rt, pacing.POST, request, target, exc):
            return
        if exc.error in PERMANENT_SLACK_ERRORS:
            why = slack_format(POST_FAILED, channel=request.channel, error=exc.error)
            tell_admins_once(rt, f"post:{request.channel}:{exc.error}", why)
        raise  # RQ retries; the sweep re-posts once the cause is fixed
    pacing.answered(rt, target, slotted)
    store.set_message(rt.db, request.id, request.channel, ts)
    request.message_ts = ts
    writeback.schedule(rt, request)


def superseded_by(newer: ApprovalRequest) -> str:
    """The state reason (mrkdwn) of a request a newer pipeline replaced."""
    link = slack_link(newer.pipeline_url, f"#{newer.pipeline_id}")
    if link.startswith("<"):
        return SUPERSEDED_BY_LINK.format(link=link)
    return SUPERSEDED_BY.format(pipeline=newer.pipeline_id)


def rejection_note(request: ApprovalRequest, rejected_by: str | None) -> str:
    """The GitLab note of a rejection: who (their Slack name) and why, as literal text."""
    return REJECTED_NOTE.format(
        pipeline=request.pipeline_id,
        sha=gitlab_markdown((request.sha or "")[:8]),
        who=gitlab_markdown(rejected_by or request.rejected_by),
        reason=gitlab_markdown(request.reject_reason, limit=1000),
    )


def supersede_older(rt: Runtime, newer: ApprovalRequest, pending: list[ApprovalRequest]) -> None:
    """A newer pipeline for the same project, ref and gate closes the older pending ones
    (`pending`: found when it opened; a request decided since is left as it is)."""
    reason = superseded_by(newer)
    for older in pending:
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
    people = rt.identity_lookups.resolve(judged.people, gate.duties, identities)
    recheck = quorum.approvals_recheck(rt, judged.loaded.policy, gate, request.id)

    def decide(counted: list[Counted]) -> approvals.Decision:
        return approvals.decide_approval(gate, identities, clicker, people, counted)

    outcome = store.record_approval(
        rt.db,
        request.id,
        clicker.slack_user_id,
        judged.user.name,
        clicker.roles,
        judged.loaded.version,
        decide,
        recheck,
    )
    return reply_to_approval(rt, click, outcome, gate)


def reply_to_approval(
    rt: Runtime, click: dict[str, Any], outcome: store.ApprovalOutcome, gate: Gate
) -> str:
    """Tell the clicker how their approval was decided, update the message, play on quorum."""
    decision, request = outcome.decision, outcome.request
    if outcome.expired:
        announce(rt, request, None)
        tell(rt, click, EXPIRED.format(at=request.expires_at.strftime("%Y-%m-%d %H:%M")))
        return "expired"
    if decision is None:
        tell(rt, click, ALREADY_DECIDED.format(state=outcome.state_before))
        return outcome.state_before
    revoked = quorum.revoked_note(outcome.revoked)
    if isinstance(decision, Denied):
        log.info("approval denied on %s for %s: %s", request.id, click["user_id"], decision.code)
        if outcome.revoked:
            refresh_message(rt, request, gate)
        tell(rt, click, decision.message + revoked)
        return f"denied:{decision.code}"
    if not decision.quorum_met:
        refresh_message(rt, request, gate)
        missing = approvals.describe_missing(decision.missing)
        tell(rt, click, APPROVAL_RECORDED.format(missing=missing) + revoked)
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
            confirm.approved_job(before),
            # An earlier claim may have played it before its answer was lost.
            resumed=before.play_claimed_at is not None,
            window_s=rt.settings.play_retry_window,
        )
    except GitLabTransientError:
        store.release_play(rt.db, request_id)
        raise  # RQ retries the job; the next run asks GitLab again before playing
    except JobChanged as exc:
        return confirm.job_changed(rt, before, exc)
    except JobUnplayable as exc:
        return play_failures.play_refused(rt, before, exc)
    except GitLabError as exc:
        reason = slack_format(PLAY_REFUSED, error=exc)
        closed = store.close(rt.db, request_id, RequestState.CLOSED, reason)
        if closed is not None:
            announce(rt, closed, None)
        log.error("play refused for %s: %s", request_id, exc)
        project = before.project_path
        tell_admins_once(
            rt,
            f"play:{project}:{exc}",
            slack_format(
                PLAY_REFUSED_ADMIN, project=project, pipeline=before.pipeline_id, error=exc
            ),
        )
        return "play-refused"
    if not result.played:
        reason = slack_format(JOB_MOVED_ON, status=result.status)
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
    rollback_replies.withdraw_older(rt, played)  # production moves on from older deployments
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
    announce(rt, rejected, gate, note=rejection_note(rejected, judged.user.name))
    notify_thread(
        rt,
        rejected,
        REJECTED_THREAD.format(
            user=slack_user(clicker.slack_user_id), reason=reject_reason(submission["reason"])
        ),
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
        notify_thread(rt, request, slack_format(CANCEL_FAILED, error=exc))


def notify(payload: dict[str, Any]) -> None:
    """An ephemeral answer decided at the edge (e.g. someone not allowed to reject)."""
    tell(runtime(), payload, payload["text"])


def pipeline_update(event: GateEvent) -> str:
    """Jobs queued by an earlier version under this name: see workers.status."""
    from workers.status import pipeline_update as update

    return update(event)


def expire(rt: Runtime, request: ApprovalRequest) -> None:
    closed = store.close(
        rt.db,
        request.id,
        RequestState.EXPIRED,
        store.expiry_reason(request),
        (RequestState.PENDING,),
    )
    if closed is not None:
        announce(rt, closed, None)
