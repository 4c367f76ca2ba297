"""RQ jobs for what follows a played gate: offer the rollback once the deployment
succeeded, alert when the smoke test fails, and roll back exactly once when approved."""

from __future__ import annotations

import logging
from typing import Any

from bot import approvals, ledger
from bot.approvals import Denied
from bot.deploy_events import DeployEvent, deploy_key
from bot.evidence import gate_for_request
from bot.gate_facts import ApprovedJob
from bot.gitlab import GitLabError, GitLabTransientError, JobChanged, play_once
from bot.gitlab_reads import GitLabReads
from bot.policy import Gate
from bot.rollback_blocks import Kind, rollback_message
from bot.runtime import Runtime
from bot.slack import SlackError
from bot.store import queries, rollbacks
from bot.store import requests as store
from bot.store.models import ApprovalRequest
from bot.store.rollbacks import RollbackState
from workers import confirm, quorum
from workers import rollback_replies as replies
from workers.context import runtime
from workers.jobs import deliver_audit
from workers.rollback_replies import MESSAGE_COLUMNS, refresh
from workers.support import approver_dicts, clicked_request, counted, judging, tell

log = logging.getLogger(__name__)

NOT_OFFERED = "This deployment cannot be rolled back from Slack now (rollback: {state})."
VOTE_RECORDED = "Your rollback approval is recorded. Still needed: {missing}."
ROLLING_BACK = "Rolling back now: playing `{job}`."
NEWER_DEPLOYMENT = (
    "Production has moved on: pipeline #{pipeline} was deployed after this one, so rolling "
    "this one back would undo the wrong release. Roll back from that pipeline's thread."
)
DEFAULT_JOB = "rollback:production"
MOVED_ON_STATES = (RollbackState.OFFERED, RollbackState.SUPERSEDED)


@counted("rollbacks_total", "outcome")
def deployment_update(event: DeployEvent) -> str:
    """The deployment of a played gate succeeded, or its smoke test failed: offer Roll back."""
    rt = runtime()
    request = rollbacks.played_request(rt.db, event["project_id"], event["pipeline_id"])
    if request is None:
        # Not played yet as far as the database knows (a play being recovered, say): let
        # the edge take the same fact again from a later event of this pipeline.
        rt.redis.delete(deploy_key(event))
        return "no-played-gate"
    if not confirm.deploy_confirmed(rt, request, event):
        rt.redis.delete(deploy_key(event))  # GitLab's own event for it must still count
        return "not-confirmed"
    deployed_elsewhere = (
        event["fact"] == "deployed"
        and event["environment"] is not None
        and request.environment is not None
        and event["environment"] != request.environment
    )
    if deployed_elsewhere:
        return "other-environment"
    if queries.newer_deployment(rt.db, request) is not None:
        return "newer-deployment"  # production moved on: nothing to offer
    noted = rollbacks.note_deployment(rt.db, request.id, event["fact"])
    kind: Kind = "alert" if event["fact"] == "smoke_failed" else "offer"
    if noted is None or noted.message_ts is None or getattr(noted, MESSAGE_COLUMNS[kind]):
        return "not-news"
    gate = gate_for_request(rt.policy.current.policy, noted)
    text, blocks = rollback_message(noted, kind, *replies.reply_parts(rt, noted, gate))
    try:
        ts = rt.slack.post_reply(
            noted.channel, noted.message_ts, text, blocks, broadcast=kind == "alert"
        )
    except SlackError as exc:
        log.error("cannot offer the rollback of %s: %s", noted.id, exc.error)
        raise  # RQ retries the post: the reply is not recorded yet, so the retry posts it
    rollbacks.set_message(rt.db, noted.id, MESSAGE_COLUMNS[kind], ts)
    if queries.newer_deployment(rt.db, noted) is not None:
        # A newer gate was played while this reply was being posted: withdraw it at once.
        replies.withdraw(rt, store.get(rt.db, noted.id))
    return kind


@counted("rollbacks_total", "outcome")
def rollback(click: dict[str, Any]) -> str:
    """Decide a Roll back click under the gate's rollback policy; roll back on quorum."""
    rt = runtime()
    request = clicked_request(rt, click, buttons="rollback")
    if request is None:
        return "unknown"
    if request.rollback_state in (RollbackState.APPROVED, RollbackState.PLAYING):
        return finish_rollback(rt, request.id)
    newer = queries.newer_deployment(rt.db, request)
    if newer is not None and request.rollback_state in MOVED_ON_STATES:
        replies.withdraw(rt, request)  # an offer left behind is withdrawn now
        tell(rt, click, NEWER_DEPLOYMENT.format(pipeline=newer.pipeline_id))
        return "newer-deployment"
    judged = judging(rt, click, request)
    if judged is None:
        return "no-gate"
    gate, clicker, identities = judged.gate, judged.clicker, judged.loaded.policy.identities
    duties = approvals.rollback_gate(gate).duties
    people = rt.identity_lookups.resolve(judged.people, duties, identities)
    recheck = quorum.rollback_recheck(rt, judged.loaded.policy, gate, request.id)

    def decide(votes: list[approvals.Counted]) -> approvals.Decision:
        return approvals.decide_rollback(gate, identities, clicker, people, votes)

    roles = approvals.rollback_roles(gate, clicker.roles)
    outcome = rollbacks.record_vote(
        rt.db,
        request.id,
        clicker.slack_user_id,
        judged.user.name,
        roles,
        judged.loaded.version,
        decide,
        recheck,
    )
    decision = outcome.decision
    if decision is None:
        tell(rt, click, NOT_OFFERED.format(state=outcome.state_before))
        return f"not-offered:{outcome.state_before}"
    revoked = quorum.revoked_note(outcome.revoked)
    if isinstance(decision, Denied):
        tell(rt, click, decision.message + revoked)
        return f"denied:{decision.code}"
    if not decision.quorum_met:
        refresh(rt, outcome.request, gate)
        missing = approvals.describe_missing(decision.missing)
        tell(rt, click, VOTE_RECORDED.format(missing=missing) + revoked)
        return "granted"
    tell(rt, click, ROLLING_BACK.format(job=gate.rollback.job))
    return finish_rollback(rt, request.id)


def finish_rollback(rt: Runtime, request_id: str) -> str:
    """Play the pipeline's rollback job exactly once, then record it."""
    with rt.db.sessions() as session:  # no rollback whose ledger record would be refused
        ledger.require_verified_head(session, f"roll back {request_id}")
    before = store.get(rt.db, request_id)
    gate = gate_for_request(rt.policy.current.policy, before)
    name = gate.rollback.job if gate is not None else DEFAULT_JOB
    # Found before the claim, so a slow job list does not eat into the play's lease.
    try:
        job_id = _rollback_job(rt, before, name)
    except GitLabTransientError:
        raise  # nothing claimed yet: RQ retries
    except GitLabError as exc:
        log.error("cannot list the jobs of pipeline %s: %s", before.pipeline_id, exc)
        job_id = None
    if not rollbacks.claim(rt.db, request_id, rt.settings.play_lease):
        return "rollback-claimed-elsewhere"
    result = None
    if job_id is not None:
        try:
            approved = ApprovedJob(
                before.project_id, job_id, name, before.pipeline_id, before.project_url
            )
            result = play_once(
                rt.gitlab,
                approved,
                resumed=before.rollback_claimed_at is not None,
                window_s=rt.settings.play_retry_window,
            )
        except GitLabTransientError:
            rollbacks.release(rt.db, request_id)
            raise  # RQ retries; the next run asks GitLab before playing
        except JobChanged as exc:
            confirm.rollback_job_changed(rt, before, job_id, exc)
        except GitLabError as exc:
            log.error("rollback of %s refused by GitLab: %s", request_id, exc)
    if job_id is None or result is None or not result.played:
        failed = rollbacks.fail(rt.db, request_id)
        if failed is not None:
            refresh(rt, failed, gate)
        return "rollback-failed"
    approvers = _voters(rt, before, gate)
    job_url = f"{before.project_url}/-/jobs/{job_id}" if before.project_url else None
    audit = bool(rt.settings.AUDIT_API_URL)
    played, entry = rollbacks.finish(rt.db, request_id, (job_id, job_url), approvers, audit)
    if entry is not None:
        deliver_audit(rt)
    log.info("rolled back %s; ledger record %s", request_id, entry.sequence if entry else None)
    refresh(rt, played, gate, record=entry.sequence if entry else None)
    return "rolled-back"


def _rollback_job(rt: Runtime, request: ApprovalRequest, name: str) -> int | None:
    """The newest job of that name in the request's pipeline."""
    jobs = GitLabReads(rt.gitlab).pipeline_jobs(request.project_id, request.pipeline_id)
    found = [int(j["id"]) for j in jobs if j.get("name") == name]
    return max(found, default=None)


def _voters(rt: Runtime, request: ApprovalRequest, gate: Gate | None) -> list[dict[str, Any]]:
    rows = rollbacks.votes(rt.db, request.id)
    rules = approvals.rollback_gate(gate).require if gate is not None else ()
    return approver_dicts(rows, approvals.assign(rules, store.counted(rows)))
